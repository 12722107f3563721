package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sluice-batch/sluice"
)

// StartIdempotent implements sluice.Store. The upsert decides: it inserts the key, or
// replaces a record created before notBefore, and otherwise leaves the record as it is,
// locked; of concurrent starts with one key, exactly one inserts or replaces, the others
// wait for it and then read its record. The read is a statement of its own, after the
// upsert, so its snapshot sees the record that a concurrent start committed.
func (s *Store) StartIdempotent(ctx context.Context, r *sluice.IdempotentRecord, notBefore time.Time) (*sluice.IdempotentRecord, bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("start idempotent request: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, `INSERT INTO idempotency (key, fingerprint, status, header, body, created_at)
		VALUES ($1, $2, 0, NULL, NULL, $3)
		ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint, status = 0, header = NULL, body = NULL,
			created_at = excluded.created_at
		WHERE idempotency.created_at < $4`,
		r.Key, r.Fingerprint, r.CreatedAt.Truncate(time.Millisecond), notBefore)
	if err != nil {
		return nil, false, fmt.Errorf("start idempotent request: %w", err)
	}
	if tag.RowsAffected() == 1 {
		if err := tx.Commit(ctx); err != nil {
			return nil, false, fmt.Errorf("start idempotent request: %w", err)
		}
		return r, true, nil
	}
	old, err := scanIdempotent(tx.QueryRow(ctx,
		`SELECT key, fingerprint, status, header, body, created_at FROM idempotency WHERE key = $1`, r.Key))
	if err != nil {
		return nil, false, fmt.Errorf("start idempotent request: %w", err)
	}
	return old, false, nil
}

func scanIdempotent(row scanner) (*sluice.IdempotentRecord, error) {
	var (
		r      sluice.IdempotentRecord
		header []byte
	)
	if err := row.Scan(&r.Key, &r.Fingerprint, &r.Status, &header, &r.Body, &r.CreatedAt); err != nil {
		return nil, err
	}
	if header != nil {
		if err := json.Unmarshal(header, &r.Header); err != nil {
			return nil, err
		}
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return &r, nil
}

// FinishIdempotent implements sluice.Store.
func (s *Store) FinishIdempotent(ctx context.Context, r *sluice.IdempotentRecord) error {
	header, err := json.Marshal(r.Header)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, `UPDATE idempotency SET status = $1, header = $2, body = $3 WHERE key = $4`,
		r.Status, header, r.Body, r.Key)
	if err != nil {
		return fmt.Errorf("finish idempotent request: %w", err)
	}
	return nil
}

// DeleteIdempotent implements sluice.Store.
func (s *Store) DeleteIdempotent(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE key = $1`, key); err != nil {
		return fmt.Errorf("delete idempotent request: %w", err)
	}
	return nil
}

// DeleteIdempotentBefore implements sluice.Store.
func (s *Store) DeleteIdempotentBefore(ctx context.Context, t time.Time) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM idempotency WHERE created_at < $1`, t.Truncate(time.Millisecond)); err != nil {
		return fmt.Errorf("delete old idempotent requests: %w", err)
	}
	return nil
}
