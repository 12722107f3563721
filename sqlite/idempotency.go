package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluice-batch/sluice"
)

// StartIdempotent implements sluice.Store. The writer's transaction makes the look and
// the insert one step, so two requests with one key never both start.
func (s *Store) StartIdempotent(ctx context.Context, r *sluice.IdempotentRecord, notBefore time.Time) (*sluice.IdempotentRecord, bool, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, fmt.Errorf("start idempotent request: %w", err)
	}
	defer tx.Rollback()
	old, err := scanIdempotent(tx.QueryRowContext(ctx,
		`SELECT key, fingerprint, status, header, body, created_at FROM idempotency WHERE key = ?`, r.Key))
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, false, fmt.Errorf("start idempotent request: %w", err)
	case !old.CreatedAt.Before(notBefore):
		return old, false, nil
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO idempotency (key, fingerprint, status, header, body, created_at)
		VALUES (?, ?, 0, NULL, NULL, ?) ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
			status = 0, header = NULL, body = NULL, created_at = excluded.created_at`,
		r.Key, r.Fingerprint, r.CreatedAt.UnixMilli())
	if err != nil {
		return nil, false, fmt.Errorf("start idempotent request: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, false, fmt.Errorf("start idempotent request: %w", err)
	}
	return r, true, nil
}

func scanIdempotent(row scanner) (*sluice.IdempotentRecord, error) {
	var (
		r       sluice.IdempotentRecord
		header  sql.NullString
		created int64
	)
	if err := row.Scan(&r.Key, &r.Fingerprint, &r.Status, &header, &r.Body, &created); err != nil {
		return nil, err
	}
	if header.Valid {
		if err := json.Unmarshal([]byte(header.String), &r.Header); err != nil {
			return nil, err
		}
	}
	r.CreatedAt = time.UnixMilli(created).UTC()
	return &r, nil
}

// FinishIdempotent implements sluice.Store.
func (s *Store) FinishIdempotent(ctx context.Context, r *sluice.IdempotentRecord) error {
	header, err := json.Marshal(r.Header)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `UPDATE idempotency SET status = ?, header = ?, body = ? WHERE key = ?`,
		r.Status, string(header), r.Body, r.Key)
	if err != nil {
		return fmt.Errorf("finish idempotent request: %w", err)
	}
	return nil
}

// DeleteIdempotent implements sluice.Store.
func (s *Store) DeleteIdempotent(ctx context.Context, key string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM idempotency WHERE key = ?`, key); err != nil {
		return fmt.Errorf("delete idempotent request: %w", err)
	}
	return nil
}

// DeleteIdempotentBefore implements sluice.Store.
func (s *Store) DeleteIdempotentBefore(ctx context.Context, t time.Time) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM idempotency WHERE created_at < ?`, t.UnixMilli()); err != nil {
		return fmt.Errorf("delete old idempotent requests: %w", err)
	}
	return nil
}
