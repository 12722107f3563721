package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/sqlite"
	"github.com/sluice-batch/sluice/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) sluice.Store {
		return MustOpen(t)
	})
}

// MustOpen opens a store in a new database file and closes it when tb ends. Its clock is
// the real one: storetest makes leases run out with lease times in the past.
func MustOpen(tb testing.TB) *sqlite.Store {
	tb.Helper()
	s, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "db"), &sqlite.Options{NowFunc: time.Now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}
