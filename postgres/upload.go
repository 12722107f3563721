package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-batch/sluice"
)

const uploadColumns = `id, created_at, expires_at, filename, purpose, bytes, mime_type, status, file_expires_after, file_id, project`

func scanUpload(row scanner) (*sluice.Upload, error) {
	var u sluice.Upload
	err := row.Scan(&u.ID, &u.CreatedAt, &u.ExpiresAt, &u.Filename, &u.Purpose, &u.Bytes, &u.MimeType, &u.Status,
		&u.FileExpiresAfter, &u.FileID, &u.Project)
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.ExpiresAt = u.CreatedAt.UTC(), u.ExpiresAt.UTC()
	return &u, nil
}

// CreateUpload implements sluice.Store.
func (s *Store) CreateUpload(ctx context.Context, u *sluice.Upload) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO uploads (`+uploadColumns+`) VALUES (`+placeholders(1, 11)+`)`,
		u.ID, sec(u.CreatedAt), sec(u.ExpiresAt), u.Filename, string(u.Purpose), u.Bytes, u.MimeType, string(u.Status),
		u.FileExpiresAfter, u.FileID, u.Project)
	return interpret(err, "Upload", u.ID)
}

// FindUploadByID implements sluice.Store.
func (s *Store) FindUploadByID(ctx context.Context, id string) (*sluice.Upload, error) {
	u, err := scanUpload(s.pool.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1`, id))
	return u, interpret(err, "Upload", id)
}

// UpdateUpload implements sluice.Store. The upload's row is locked while its status is
// checked, so a part cannot be added or finished between the check and the change.
func (s *Store) UpdateUpload(ctx context.Context, id string, upd sluice.UploadUpdate) (*sluice.Upload, error) {
	var (
		set []string
		p   params
	)
	if upd.Status != nil {
		set = append(set, "status = "+p.add(string(*upd.Status)))
	}
	if upd.FileID != nil {
		set = append(set, "file_id = "+p.add(*upd.FileID))
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("update upload: %w", err)
	}
	defer tx.Rollback(ctx)
	u, err := scanUpload(tx.QueryRow(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return nil, interpret(err, "Upload", id)
	}
	if upd.IfStatus != "" && u.Status != upd.IfStatus {
		return nil, sluice.Errorf(sluice.KindConflict, "The upload %s is %s.", id, u.Status)
	}
	if len(set) > 0 {
		q := `UPDATE uploads SET ` + strings.Join(set, ", ") + ` WHERE id = ` + p.add(id) + ` RETURNING ` + uploadColumns
		if u, err = scanUpload(tx.QueryRow(ctx, q, p...)); err != nil {
			return nil, interpret(err, "Upload", id)
		}
	}
	return u, interpret(tx.Commit(ctx), "Upload", id)
}

// FindUploads implements sluice.Store.
func (s *Store) FindUploads(ctx context.Context, expiredBy time.Time, limit int) ([]*sluice.Upload, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE expires_at <= $1
		ORDER BY expires_at, id COLLATE "C" LIMIT $2`, expiredBy, limit)
	if err != nil {
		return nil, fmt.Errorf("find uploads: %w", err)
	}
	defer rows.Close()
	var out []*sluice.Upload
	for rows.Next() {
		u, err := scanUpload(rows)
		if err != nil {
			return nil, fmt.Errorf("find uploads: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find uploads: %w", err)
	}
	return out, nil
}

// DeleteUpload implements sluice.Store: one statement, so one transaction.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	_, err := s.pool.Exec(ctx, `WITH p AS (DELETE FROM upload_parts WHERE upload_id = $1)
		DELETE FROM uploads WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return nil
}

// lockUpload locks an upload's row in tx, for share or for update, and returns its
// status and size.
func lockUpload(ctx context.Context, tx pgx.Tx, id, mode string) (sluice.UploadStatus, int64, error) {
	var (
		status sluice.UploadStatus
		bytes  int64
	)
	err := tx.QueryRow(ctx, `SELECT status, bytes FROM uploads WHERE id = $1 FOR `+mode, id).Scan(&status, &bytes)
	return status, bytes, interpret(err, "Upload", id)
}

// AddUploadPart implements sluice.Store. It holds the upload's row for share, so parts
// are added side by side but not while the upload's status changes.
func (s *Store) AddUploadPart(ctx context.Context, p *sluice.UploadPart) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("add upload part: %w", err)
	}
	defer tx.Rollback(ctx)
	status, _, err := lockUpload(ctx, tx, p.UploadID, "SHARE")
	if err != nil {
		return err
	}
	if status != sluice.UploadPending {
		return sluice.Errorf(sluice.KindConflict, "The upload %s is %s: no part can be added.", p.UploadID, status)
	}
	_, err = tx.Exec(ctx, `INSERT INTO upload_parts (upload_id, id, created_at, bytes) VALUES ($1, $2, $3, -1)`,
		p.UploadID, p.ID, sec(p.CreatedAt))
	if err != nil {
		return interpret(err, "UploadPart", p.ID)
	}
	return interpret(tx.Commit(ctx), "UploadPart", p.ID)
}

// FinishUploadPart implements sluice.Store. The upload's row is locked for update, so
// parts of one upload finish one after another and never outgrow it together.
func (s *Store) FinishUploadPart(ctx context.Context, uploadID, partID string, bytes int64) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("finish upload part: %w", err)
	}
	defer tx.Rollback(ctx)
	status, limit, err := lockUpload(ctx, tx, uploadID, "UPDATE")
	if err != nil {
		return err
	}
	if status != sluice.UploadPending {
		return sluice.Errorf(sluice.KindConflict, "The upload %s is %s: no part can be added.", uploadID, status)
	}
	var have int64
	err = tx.QueryRow(ctx, `SELECT coalesce(sum(bytes), 0)::bigint FROM upload_parts WHERE upload_id = $1 AND bytes >= 0 AND id <> $2`,
		uploadID, partID).Scan(&have)
	if err != nil {
		return fmt.Errorf("finish upload part %s: %w", partID, err)
	}
	if have+bytes > limit {
		return sluice.Errorf(sluice.KindConflict, "The upload %s would hold %d bytes with this part, more than the %d it was created for.",
			uploadID, have+bytes, limit)
	}
	tag, err := tx.Exec(ctx, `UPDATE upload_parts SET bytes = $1 WHERE upload_id = $2 AND id = $3`, bytes, uploadID, partID)
	if err != nil {
		return fmt.Errorf("finish upload part %s: %w", partID, err)
	}
	if tag.RowsAffected() == 0 {
		return interpret(pgx.ErrNoRows, "UploadPart", partID)
	}
	return interpret(tx.Commit(ctx), "UploadPart", partID)
}

// FindUploadParts implements sluice.Store.
func (s *Store) FindUploadParts(ctx context.Context, uploadID string) ([]*sluice.UploadPart, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, created_at, bytes FROM upload_parts WHERE upload_id = $1 ORDER BY seq`, uploadID)
	if err != nil {
		return nil, fmt.Errorf("find upload parts: %w", err)
	}
	defer rows.Close()
	var out []*sluice.UploadPart
	for rows.Next() {
		p := &sluice.UploadPart{UploadID: uploadID}
		if err := rows.Scan(&p.ID, &p.CreatedAt, &p.Bytes); err != nil {
			return nil, fmt.Errorf("find upload parts: %w", err)
		}
		p.CreatedAt = p.CreatedAt.UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find upload parts: %w", err)
	}
	return out, nil
}
