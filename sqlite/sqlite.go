// Package sqlite is the embedded Store: one SQLite file in WAL mode, written through a
// single connection (SQLite has one writer) and read through a small pool.
//
// Results are committed in groups: the engine hands CommitResults a slice of results
// and they land in one transaction, with the batch's request counts, so a finished line
// is durable before it counts and the hot path pays one fsync-free WAL append per group.
package sqlite

import (
	"context"
	"database/sql"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed schema.sql
var schema string

// Options are the optional settings of Open. Nil means the defaults.
type Options struct {
	// NowFunc returns the current time; default time.Now.
	NowFunc func() time.Time
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
	// KeepLeases keeps the leases found at Open. By default Open releases them: the
	// embedded store has one process (the data folder is locked), so any lease found at
	// start belongs to a process that died, and its lines can be sent again at once.
	KeepLeases bool
}

// Store is a sluice.Store on SQLite.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers

	prepared  map[string]*sql.Stmt // hot statements on the writer, by SQL text; read-only after Open
	findBatch *sql.Stmt            // FindBatchByID on the readers, when the cache misses
	cache     *batchCache
	now       func() time.Time
	log       *slog.Logger
}

var _ sluice.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Store{now: opts.NowFunc, log: opts.Logger, cache: newBatchCache()}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "foreign_keys(on)"} {
		q.Add("_pragma", p)
	}
	w, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode()+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	q.Add("_pragma", "query_only(on)")
	r, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	r.SetMaxOpenConns(4)
	s.w, s.r = w, r
	if err := migrate(ctx, w); err != nil {
		s.Close()
		return nil, err
	}
	if s.findBatch, err = r.PrepareContext(ctx, sqlFindBatch); err != nil {
		s.Close()
		return nil, fmt.Errorf("prepare statement: %w", err)
	}
	s.prepared = make(map[string]*sql.Stmt)
	for _, q := range hotStatements() {
		st, err := w.PrepareContext(ctx, q)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("prepare statement: %w", err)
		}
		s.prepared[q] = st
	}
	if !opts.KeepLeases {
		res, err := w.ExecContext(ctx, `UPDATE chunks SET state = 0, owner = NULL, lease_until = NULL WHERE state = 1`)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("release leases: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			s.log.InfoContext(ctx, "released leases of a previous process", "chunks", n)
		}
	}
	return s, nil
}

// schemaVersion is the PRAGMA user_version of the current schema. Version 0 with a
// requests table is the first release's schema, which kept a row per request line and
// every result's bytes.
// Version 2 lacks the batches' token columns, which version 3 added.
// Version 3 lacks the uploads tables (CREATE TABLE IF NOT EXISTS adds them) and the
// batches' window_policy and blob-mode columns and the files' source, which version 4
// added.
// Version 4 lacks the project column of files, batches and uploads, which version 5
// added.
const schemaVersion = 5

// migrate brings the database to the current schema.
func migrate(ctx context.Context, w *sql.DB) error {
	var version int
	if err := w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("the database has schema version %d, newer than this sluice knows (%d); run a newer sluice", version, schemaVersion)
	}
	if version < schemaVersion {
		var perLine int
		if err := w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'requests'`).Scan(&perLine); err != nil {
			return fmt.Errorf("migrate sqlite: %w", err)
		}
		if perLine > 0 {
			if err := dropPerLineTables(ctx, w); err != nil {
				return err
			}
		}
	}
	if _, err := w.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	if err := addColumns(ctx, w, "batches", tokenColumns); err != nil {
		return err
	}
	if err := addColumns(ctx, w, "batches", v4BatchColumns); err != nil {
		return err
	}
	if err := addColumns(ctx, w, "files", [][2]string{{"source_url", "TEXT NOT NULL DEFAULT ''"}, {"source_etag", "TEXT NOT NULL DEFAULT ''"}}); err != nil {
		return err
	}
	for _, table := range []string{"files", "batches", "uploads"} {
		if err := addColumns(ctx, w, table, [][2]string{projectColumn}); err != nil {
			return err
		}
	}
	// A project's lists, and the sum its admissions take, read these; they come after
	// the column, which a database of version 4 gains only above.
	for _, q := range []string{
		`CREATE INDEX IF NOT EXISTS files_project ON files (project, seq)`,
		`CREATE INDEX IF NOT EXISTS batches_project ON batches (project, seq)`,
		`CREATE INDEX IF NOT EXISTS batches_project_enqueued ON batches (project)
			WHERE status IN ('validating', 'in_progress', 'finalizing', 'cancelling')`,
	} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate sqlite: %w", err)
		}
	}
	if _, err := w.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

// projectColumn is the column of files, batches and uploads that schema version 5
// added: what a version 4 database holds belongs to the default project.
var projectColumn = [2]string{"project", "TEXT NOT NULL DEFAULT 'default'"}

// v4BatchColumns are the batches' columns that schema version 4 added.
var v4BatchColumns = [][2]string{
	{"window_policy", "TEXT NOT NULL DEFAULT ''"},
	{"input_blob", "TEXT NOT NULL DEFAULT ''"},
	{"output_folder", "TEXT NOT NULL DEFAULT ''"},
	{"output_delimiter", "TEXT NOT NULL DEFAULT ''"},
	{"output_blob", "TEXT NOT NULL DEFAULT ''"},
	{"error_blob", "TEXT NOT NULL DEFAULT ''"},
}

// tokenColumns are the batches' columns that schema version 3 added, with their types.
var tokenColumns = [][2]string{
	{"model", "TEXT NOT NULL DEFAULT ''"},
	{"input_tokens", "INTEGER NOT NULL DEFAULT 0"},
	{"usage_input", "INTEGER NOT NULL DEFAULT 0"},
	{"usage_cached", "INTEGER NOT NULL DEFAULT 0"},
	{"usage_output", "INTEGER NOT NULL DEFAULT 0"},
	{"usage_reasoning", "INTEGER NOT NULL DEFAULT 0"},
	{"usage_estimated", "INTEGER NOT NULL DEFAULT 0"},
}

// addColumns adds to table those of cols it lacks: CREATE TABLE IF NOT EXISTS leaves a
// table of an earlier schema as it was.
func addColumns(ctx context.Context, w *sql.DB, table string, cols [][2]string) error {
	rows, err := w.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	have := make(map[string]bool)
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return fmt.Errorf("migrate sqlite: %w", err)
		}
		have[name] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	for _, c := range cols {
		if have[c[0]] {
			continue
		}
		if _, err := w.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN `+c[0]+` `+c[1]); err != nil {
			return fmt.Errorf("migrate sqlite: add %s.%s: %w", table, c[0], err)
		}
	}
	return nil
}

// dropPerLineTables removes the first release's per-line tables. Their results cannot
// be carried over (result bytes now live in the bucket), so a database with batches
// still running refuses, rather than lose finished lines.
func dropPerLineTables(ctx context.Context, w *sql.DB) error {
	var running int
	err := w.QueryRowContext(ctx, `SELECT count(*) FROM batches WHERE status IN ('in_progress', 'finalizing', 'cancelling')`).Scan(&running)
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	if running > 0 {
		return fmt.Errorf("the database holds %d batches running under the previous schema, which kept results in the database; "+
			"let them finish with the previous sluice, or move the data folder away", running)
	}
	for _, q := range []string{`DROP TABLE IF EXISTS results`, `DROP TABLE IF EXISTS requests`, `DROP TABLE IF EXISTS chunks`} {
		if _, err := w.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate sqlite: %w", err)
		}
	}
	return nil
}

// Close implements sluice.Store.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.prepared {
		errs = append(errs, st.Close())
	}
	if s.findBatch != nil {
		errs = append(errs, s.findBatch.Close())
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// interpret translates driver errors into sluice kinds, once, for every method.
func interpret(err error, what, id string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return sluice.Errorf(sluice.KindNotFound, "No such %s object: %s", what, id).WithErr(err)
	case strings.Contains(err.Error(), "UNIQUE constraint failed"):
		return sluice.Errorf(sluice.KindConflict, "The %s %s already exists.", what, id).WithErr(err)
	}
	return fmt.Errorf("%s %s: %w", what, id, err)
}

func unix(t time.Time) int64 { return t.Unix() }

func unixPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.Unix()
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.Unix(v.Int64, 0).UTC()
	return &t
}

func jsonOrNull(v any, empty bool) (any, error) {
	if empty {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// --- files ---

const fileColumns = `id, bytes, created_at, expires_at, filename, purpose, status, status_details, scan, source_url, source_etag, project`

type scanner interface{ Scan(...any) error }

func scanFile(row scanner) (*sluice.File, error) {
	var (
		f       sluice.File
		created int64
		expires sql.NullInt64
		scan    sql.NullString
	)
	if err := row.Scan(&f.ID, &f.Bytes, &created, &expires, &f.Filename, &f.Purpose, &f.Status, &f.StatusDetails, &scan, &f.Source, &f.SourceETag, &f.Project); err != nil {
		return nil, err
	}
	f.CreatedAt = time.Unix(created, 0).UTC()
	f.ExpiresAt = timePtr(expires)
	if scan.Valid {
		f.Scan = new(sluice.FileScan)
		if err := json.Unmarshal([]byte(scan.String), f.Scan); err != nil {
			return nil, fmt.Errorf("decode scan of %s: %w", f.ID, err)
		}
	}
	return &f, nil
}

// CreateFile implements sluice.Store.
func (s *Store) CreateFile(ctx context.Context, f *sluice.File) error {
	scan, err := jsonOrNull(f.Scan, f.Scan == nil)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO files (`+fileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		f.ID, f.Bytes, unix(f.CreatedAt), unixPtr(f.ExpiresAt), f.Filename, f.Purpose, f.Status, f.StatusDetails, scan, f.Source, f.SourceETag, f.Project)
	return interpret(err, "File", f.ID)
}

// FindFileByID implements sluice.Store.
func (s *Store) FindFileByID(ctx context.Context, id string) (*sluice.File, error) {
	f, err := scanFile(s.r.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = ?`, id))
	return f, interpret(err, "File", id)
}

// FindFiles implements sluice.Store.
func (s *Store) FindFiles(ctx context.Context, filter sluice.FileFilter) ([]*sluice.File, bool, error) {
	where, args := fileWhere(filter)
	order, cmp := "DESC", "<"
	if filter.Asc {
		order, cmp = "ASC", ">"
	}
	if filter.After != "" {
		where = append(where, "seq "+cmp+" (SELECT seq FROM files WHERE id = ?)")
		args = append(args, filter.After)
	}
	q := `SELECT ` + fileColumns + ` FROM files`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq " + order
	if filter.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, filter.Limit+1)
	}
	return s.findFiles(ctx, q, args, filter.Limit)
}

// CountFiles implements sluice.Store.
func (s *Store) CountFiles(ctx context.Context, filter sluice.FileFilter) (int, error) {
	where, args := fileWhere(filter)
	q := `SELECT count(*) FROM files`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := s.r.QueryRowContext(ctx, q, args...).Scan(&n); err != nil {
		return 0, fmt.Errorf("count files: %w", err)
	}
	return n, nil
}

// fileWhere returns the conditions of filter that select rows, not pages.
func fileWhere(filter sluice.FileFilter) (where []string, args []any) {
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
		where = append(where, "project = ?")
		args = append(args, filter.Project)
	}
	if filter.Purpose != "" {
		where = append(where, "purpose = ?")
		args = append(args, filter.Purpose)
	}
	if filter.Status != "" {
		where = append(where, "status = ?")
		args = append(args, filter.Status)
	}
	if filter.ExpiredBy != nil {
		where = append(where, "expires_at IS NOT NULL AND expires_at <= ?")
		args = append(args, filter.ExpiredBy.Unix())
	}
	return where, args
}

// findFiles runs a query for files and returns a page of at most limit (0: all).
func (s *Store) findFiles(ctx context.Context, q string, args []any, limit int) ([]*sluice.File, bool, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
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
	more := limit > 0 && len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// UpdateFile implements sluice.Store.
func (s *Store) UpdateFile(ctx context.Context, id string, upd sluice.FileUpdate) (*sluice.File, error) {
	var (
		set  []string
		args []any
	)
	add := func(col string, v any) { set = append(set, col+" = ?"); args = append(args, v) }
	if upd.Bytes != nil {
		add("bytes", *upd.Bytes)
	}
	if upd.Filename != nil {
		add("filename", *upd.Filename)
	}
	if upd.Purpose != nil {
		add("purpose", *upd.Purpose)
	}
	if upd.Status != nil {
		add("status", *upd.Status)
	}
	if upd.StatusDetails != nil {
		add("status_details", *upd.StatusDetails)
	}
	if upd.ExpiresAt != nil {
		add("expires_at", unix(*upd.ExpiresAt))
	}
	if upd.Scan != nil {
		scan, err := jsonOrNull(upd.Scan, false)
		if err != nil {
			return nil, err
		}
		add("scan", scan)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update file: %w", err)
	}
	defer tx.Rollback()
	if len(set) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE files SET `+strings.Join(set, ", ")+` WHERE id = ?`, append(args, id)...); err != nil {
			return nil, interpret(err, "File", id)
		}
	}
	f, err := scanFile(tx.QueryRowContext(ctx, `SELECT `+fileColumns+` FROM files WHERE id = ?`, id))
	if err != nil {
		return nil, interpret(err, "File", id)
	}
	return f, interpret(tx.Commit(), "File", id)
}

// DeleteFile implements sluice.Store.
func (s *Store) DeleteFile(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete file: %w", err)
	}
	defer tx.Rollback()
	var busy string
	err = tx.QueryRowContext(ctx, `SELECT id FROM batches WHERE input_file_id = ? AND status IN ('validating', 'in_progress', 'finalizing', 'cancelling') LIMIT 1`, id).Scan(&busy)
	switch {
	case err == nil:
		return sluice.Errorf(sluice.KindConflict, "The file %s is the input of batch %s, which is still running; cancel the batch or wait for it to end first.", id, busy).WithParam("file_id")
	case !errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("delete file %s: %w", id, err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM files WHERE id = ?`, id)
	if err != nil {
		return interpret(err, "File", id)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return interpret(sql.ErrNoRows, "File", id)
	}
	return interpret(tx.Commit(), "File", id)
}
