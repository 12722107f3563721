package sqlite

import (
	"context"
	"fmt"
	"time"
)

// TryLease implements sluice.Store.
func (s *Store) TryLease(ctx context.Context, name, owner string, until time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, owner, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.owner = excluded.owner OR leases.until <= ?`,
		name, owner, until.UnixMilli(), s.now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ReleaseLease implements sluice.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND owner = ?`, name, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
