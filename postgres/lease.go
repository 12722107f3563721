package postgres

import (
	"context"
	"fmt"
	"time"
)

// TryLease implements sluice.Store. The lease runs out by the database's clock unless
// Options.NowFunc is set, as chunk leases do.
func (s *Store) TryLease(ctx context.Context, name, owner string, until time.Time) (bool, error) {
	var now any // nil: the database's now()
	if s.now != nil {
		now = s.now()
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, owner, until) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, until = excluded.until
		WHERE leases.owner = excluded.owner OR leases.until <= coalesce($4::timestamptz, now())`,
		name, owner, until, now)
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	return tag.RowsAffected() > 0, nil
}

// ReleaseLease implements sluice.Store.
func (s *Store) ReleaseLease(ctx context.Context, name, owner string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND owner = $2`, name, owner); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
