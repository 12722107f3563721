package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
)

func runLeases(t *testing.T, setup func(t *testing.T) sluice.Store) {
	// One owner at a time; the holder extends; a lease that ran out or was released
	// passes to another.
	t.Run("Lease/OneAtATime", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		take := func(name, owner string, until time.Time) bool {
			t.Helper()
			ok, err := s.TryLease(ctx, name, owner, until)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !take("sweep", "a", future()) {
			t.Fatal("a free lease was refused")
		}
		if take("sweep", "b", future()) {
			t.Fatal("b took a lease a holds")
		}
		if !take("sweep", "a", future().Add(time.Hour)) {
			t.Fatal("the holder could not extend its lease")
		}
		if !take("other", "b", future()) {
			t.Fatal("a lease of another name was refused")
		}
		if err := s.ReleaseLease(ctx, "sweep", "b"); err != nil {
			t.Fatal(err)
		}
		if take("sweep", "b", future()) {
			t.Fatal("a release by a non-holder freed the lease")
		}
		if err := s.ReleaseLease(ctx, "sweep", "a"); err != nil {
			t.Fatal(err)
		}
		if !take("sweep", "b", past()) {
			t.Fatal("a released lease was refused")
		}
		if !take("sweep", "c", future()) {
			t.Fatal("a lease that ran out was refused")
		}
	})

	// Many owners at once: exactly one gets a free lease.
	t.Run("Lease/Concurrent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		won := 0
		for i := range 8 {
			wg.Go(func() {
				ok, err := s.TryLease(t.Context(), "finalize:batch_1", string(rune('a'+i)), future())
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					won++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if won != 1 {
			t.Errorf("%d owners took one lease, want 1", won)
		}
	})
}
