package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-batch/sluice"
)

const fileColumns = `id, bytes, created_at, expires_at, filename, purpose, status, status_details, scan, source_url, source_etag, project`

// notTerminal is the SQL list of the states whose batches hold quota and their input.
const notTerminal = `('validating', 'in_progress', 'finalizing', 'cancelling')`

type scanner interface{ Scan(...any) error }

func scanFile(row scanner) (*sluice.File, error) {
	var (
		f    sluice.File
		scan []byte
	)
	if err := row.Scan(&f.ID, &f.Bytes, &f.CreatedAt, &f.ExpiresAt, &f.Filename, &f.Purpose, &f.Status, &f.StatusDetails,
		&scan, &f.Source, &f.SourceETag, &f.Project); err != nil {
		return nil, err
	}
	f.CreatedAt = f.CreatedAt.UTC()
	f.ExpiresAt = utc(f.ExpiresAt)
	if scan != nil {
		f.Scan = new(sluice.FileScan)
		if err := json.Unmarshal(scan, f.Scan); err != nil {
			return nil, fmt.Errorf("decode scan of %s: %w", f.ID, err)
		}
	}
	return &f, nil
}

// jsonOrNull returns v as JSON, or nil (NULL) when empty.
func jsonOrNull(v any, empty bool) ([]byte, error) {
	if empty {
		return nil, nil
	}
	return json.Marshal(v)
}

// CreateFile implements sluice.Store.
func (s *Store) CreateFile(ctx context.Context, f *sluice.File) error {
	return createFile(ctx, s.pool, f)
}

func createFile(ctx context.Context, q querier, f *sluice.File) error {
	scan, err := jsonOrNull(f.Scan, f.Scan == nil)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO files (`+fileColumns+`) VALUES (`+placeholders(1, 12)+`)`,
		f.ID, f.Bytes, sec(f.CreatedAt), secPtr(f.ExpiresAt), f.Filename, string(f.Purpose), string(f.Status), f.StatusDetails,
		scan, f.Source, f.SourceETag, f.Project)
	return interpret(err, "File", f.ID)
}

// FindFileByID implements sluice.Store.
func (s *Store) FindFileByID(ctx context.Context, id string) (*sluice.File, error) {
	f, err := scanFile(s.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM files WHERE id = $1`, id))
	return f, interpret(err, "File", id)
}

// fileWhere returns the conditions of filter that select rows, not pages.
func fileWhere(filter sluice.FileFilter, p *params) []string {
	var where []string
	if !filter.Sources {
		where = append(where, "source_url = ''")
	}
	if filter.Expiring != nil {
		if *filter.Expiring {
			where = append(where, "expires_at IS NOT NULL")
		} else {
			where = append(where, "expires_at IS NULL")
		}
	}
	if filter.Project != "" {
		where = append(where, "project = "+p.add(filter.Project))
	}
	if filter.Purpose != "" {
		where = append(where, "purpose = "+p.add(string(filter.Purpose)))
	}
	if filter.Status != "" {
		where = append(where, "status = "+p.add(string(filter.Status)))
	}
	if filter.ExpiredBy != nil {
		where = append(where, "expires_at IS NOT NULL AND expires_at <= "+p.add(*filter.ExpiredBy))
	}
	return where
}

// FindFiles implements sluice.Store. Pages follow the insertion order (seq).
func (s *Store) FindFiles(ctx context.Context, filter sluice.FileFilter) ([]*sluice.File, bool, error) {
	var p params
	where := fileWhere(filter, &p)
	order, cmp := "DESC", "<"
	if filter.Asc {
		order, cmp = "ASC", ">"
	}
	if filter.After != "" {
		where = append(where, "seq "+cmp+" (SELECT seq FROM files WHERE id = "+p.add(filter.After)+")")
	}
	q := `SELECT ` + fileColumns + ` FROM files`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq " + order
	if filter.Limit > 0 {
		q += " LIMIT " + p.add(filter.Limit+1)
	}
	rows, err := s.pool.Query(ctx, q, p...)
	if err != nil {
		return nil, false, fmt.Errorf("find files: %w", err)
	}
	defer rows.Close()
	var out []*sluice.File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, false, fmt.Errorf("find files: %w", err)
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("find files: %w", err)
	}
	more := filter.Limit > 0 && len(out) > filter.Limit
	if more {
		out = out[:filter.Limit]
	}
	return out, more, nil
}

// CountFiles implements sluice.Store.
func (s *Store) CountFiles(ctx context.Context, filter sluice.FileFilter) (int, error) {
	var p params
	where := fileWhere(filter, &p)
	q := `SELECT count(*) FROM files`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := s.pool.QueryRow(ctx, q, p...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count files: %w", err)
	}
	return n, nil
}

// UpdateFile implements sluice.Store.
func (s *Store) UpdateFile(ctx context.Context, id string, upd sluice.FileUpdate) (*sluice.File, error) {
	var (
		set []string
		p   params
	)
	add := func(col string, v any) { set = append(set, col+" = "+p.add(v)) }
	if upd.Bytes != nil {
		add("bytes", *upd.Bytes)
	}
	if upd.Filename != nil {
		add("filename", *upd.Filename)
	}
	if upd.Purpose != nil {
		add("purpose", string(*upd.Purpose))
	}
	if upd.Status != nil {
		add("status", string(*upd.Status))
	}
	if upd.StatusDetails != nil {
		add("status_details", *upd.StatusDetails)
	}
	if upd.ExpiresAt != nil {
		add("expires_at", sec(*upd.ExpiresAt))
	}
	if upd.Scan != nil {
		scan, err := jsonOrNull(upd.Scan, false)
		if err != nil {
			return nil, err
		}
		add("scan", scan)
	}
	var row pgx.Row
	if len(set) == 0 {
		row = s.pool.QueryRow(ctx, `SELECT `+fileColumns+` FROM files WHERE id = $1`, id)
	} else {
		q := `UPDATE files SET ` + strings.Join(set, ", ") + ` WHERE id = ` + p.add(id) + ` RETURNING ` + fileColumns
		row = s.pool.QueryRow(ctx, q, p...)
	}
	f, err := scanFile(row)
	return f, interpret(err, "File", id)
}

// DeleteFile implements sluice.Store. The check for a running batch and the delete are
// one statement.
func (s *Store) DeleteFile(ctx context.Context, id string) error {
	var (
		busy    *string
		deleted bool
	)
	err := s.pool.QueryRow(ctx, `WITH busy AS (
			SELECT id FROM batches WHERE input_file_id = $1 AND status IN `+notTerminal+` LIMIT 1
		), del AS (
			DELETE FROM files WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM busy) RETURNING 1
		)
		SELECT (SELECT id FROM busy), EXISTS (SELECT 1 FROM del)`, id).Scan(&busy, &deleted)
	switch {
	case err != nil:
		return fmt.Errorf("delete file %s: %w", id, err)
	case busy != nil:
		return sluice.Errorf(sluice.KindConflict, "The file %s is the input of batch %s, which is still running; cancel the batch or wait for it to end first.", id, *busy).WithParam("file_id")
	case !deleted:
		return interpret(pgx.ErrNoRows, "File", id)
	}
	return nil
}
