package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

const uploadColumns = `id, created_at, expires_at, filename, purpose, bytes, mime_type, status, file_expires_after, file_id, project`

func scanUpload(row scanner) (*sluice.Upload, error) {
	var (
		u                sluice.Upload
		created, expires int64
	)
	err := row.Scan(&u.ID, &created, &expires, &u.Filename, &u.Purpose, &u.Bytes, &u.MimeType, &u.Status, &u.FileExpiresAfter, &u.FileID, &u.Project)
	if err != nil {
		return nil, err
	}
	u.CreatedAt, u.ExpiresAt = time.Unix(created, 0).UTC(), time.Unix(expires, 0).UTC()
	return &u, nil
}

// CreateUpload implements sluice.Store.
func (s *Store) CreateUpload(ctx context.Context, u *sluice.Upload) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO uploads (`+uploadColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, unix(u.CreatedAt), unix(u.ExpiresAt), u.Filename, u.Purpose, u.Bytes, u.MimeType, u.Status, u.FileExpiresAfter, u.FileID, u.Project)
	return interpret(err, "Upload", u.ID)
}

// FindUploadByID implements sluice.Store.
func (s *Store) FindUploadByID(ctx context.Context, id string) (*sluice.Upload, error) {
	u, err := scanUpload(s.r.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	return u, interpret(err, "Upload", id)
}

// UpdateUpload implements sluice.Store.
func (s *Store) UpdateUpload(ctx context.Context, id string, upd sluice.UploadUpdate) (*sluice.Upload, error) {
	var (
		set  []string
		args []any
	)
	if upd.Status != nil {
		set, args = append(set, "status = ?"), append(args, *upd.Status)
	}
	if upd.FileID != nil {
		set, args = append(set, "file_id = ?"), append(args, *upd.FileID)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update upload: %w", err)
	}
	defer tx.Rollback()
	u, err := scanUpload(tx.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id))
	if err != nil {
		return nil, interpret(err, "Upload", id)
	}
	if upd.IfStatus != "" && u.Status != upd.IfStatus {
		return nil, sluice.Errorf(sluice.KindConflict, "The upload %s is %s.", id, u.Status)
	}
	if len(set) > 0 {
		if _, err := tx.ExecContext(ctx, `UPDATE uploads SET `+strings.Join(set, ", ")+` WHERE id = ?`, append(args, id)...); err != nil {
			return nil, interpret(err, "Upload", id)
		}
		if u, err = scanUpload(tx.QueryRowContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE id = ?`, id)); err != nil {
			return nil, interpret(err, "Upload", id)
		}
	}
	return u, interpret(tx.Commit(), "Upload", id)
}

// FindUploads implements sluice.Store.
func (s *Store) FindUploads(ctx context.Context, expiredBy time.Time, limit int) ([]*sluice.Upload, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+uploadColumns+` FROM uploads WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?`,
		unix(expiredBy), limit)
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
	return out, rows.Err()
}

// DeleteUpload implements sluice.Store.
func (s *Store) DeleteUpload(ctx context.Context, id string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete upload: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM upload_parts WHERE upload_id = ?`, id); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM uploads WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete upload %s: %w", id, err)
	}
	return interpret(tx.Commit(), "Upload", id)
}

// uploadStatus reads an upload's status in tx.
func uploadStatus(ctx context.Context, tx *sql.Tx, id string) (sluice.UploadStatus, int64, error) {
	var (
		status sluice.UploadStatus
		bytes  int64
	)
	err := tx.QueryRowContext(ctx, `SELECT status, bytes FROM uploads WHERE id = ?`, id).Scan(&status, &bytes)
	return status, bytes, interpret(err, "Upload", id)
}

// AddUploadPart implements sluice.Store.
func (s *Store) AddUploadPart(ctx context.Context, p *sluice.UploadPart) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add upload part: %w", err)
	}
	defer tx.Rollback()
	status, _, err := uploadStatus(ctx, tx, p.UploadID)
	if err != nil {
		return err
	}
	if status != sluice.UploadPending {
		return sluice.Errorf(sluice.KindConflict, "The upload %s is %s: no part can be added.", p.UploadID, status)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO upload_parts (upload_id, id, created_at, bytes) VALUES (?, ?, ?, -1)`,
		p.UploadID, p.ID, unix(p.CreatedAt))
	if err != nil {
		return interpret(err, "UploadPart", p.ID)
	}
	return interpret(tx.Commit(), "UploadPart", p.ID)
}

// FinishUploadPart implements sluice.Store.
func (s *Store) FinishUploadPart(ctx context.Context, uploadID, partID string, bytes int64) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("finish upload part: %w", err)
	}
	defer tx.Rollback()
	status, limit, err := uploadStatus(ctx, tx, uploadID)
	if err != nil {
		return err
	}
	if status != sluice.UploadPending {
		return sluice.Errorf(sluice.KindConflict, "The upload %s is %s: no part can be added.", uploadID, status)
	}
	var have int64
	err = tx.QueryRowContext(ctx, `SELECT coalesce(sum(bytes), 0) FROM upload_parts WHERE upload_id = ? AND bytes >= 0 AND id != ?`,
		uploadID, partID).Scan(&have)
	if err != nil {
		return fmt.Errorf("finish upload part %s: %w", partID, err)
	}
	if have+bytes > limit {
		return sluice.Errorf(sluice.KindConflict, "The upload %s would hold %d bytes with this part, more than the %d it was created for.",
			uploadID, have+bytes, limit)
	}
	res, err := tx.ExecContext(ctx, `UPDATE upload_parts SET bytes = ? WHERE upload_id = ? AND id = ?`, bytes, uploadID, partID)
	if err != nil {
		return fmt.Errorf("finish upload part %s: %w", partID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return interpret(sql.ErrNoRows, "UploadPart", partID)
	}
	return interpret(tx.Commit(), "UploadPart", partID)
}

// FindUploadParts implements sluice.Store.
func (s *Store) FindUploadParts(ctx context.Context, uploadID string) ([]*sluice.UploadPart, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, created_at, bytes FROM upload_parts WHERE upload_id = ? ORDER BY seq`, uploadID)
	if err != nil {
		return nil, fmt.Errorf("find upload parts: %w", err)
	}
	defer rows.Close()
	var out []*sluice.UploadPart
	for rows.Next() {
		p := &sluice.UploadPart{UploadID: uploadID}
		var created int64
		if err := rows.Scan(&p.ID, &created, &p.Bytes); err != nil {
			return nil, fmt.Errorf("find upload parts: %w", err)
		}
		p.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, p)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("find upload parts: %w", err)
	}
	return out, nil
}
