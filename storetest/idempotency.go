package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

func runIdempotency(t *testing.T, setup func(t *testing.T) sluice.Store) {
	t0 := time.UnixMilli(1_700_000_000_000).UTC()
	start := func(key string, at time.Time) *sluice.IdempotentRecord {
		return &sluice.IdempotentRecord{Key: key, Fingerprint: "fp-" + key, CreatedAt: at}
	}

	// The first request starts; a repeat gets the record, in progress and then
	// finished; another key is independent.
	t.Run("Idempotent/StartAndFinish", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		if _, ok, err := s.StartIdempotent(ctx, start("k1", t0), t0.Add(-time.Hour)); err != nil || !ok {
			t.Fatalf("first start: got %t, %v; want true", ok, err)
		}
		got, ok, err := s.StartIdempotent(ctx, start("k1", t0.Add(time.Second)), t0.Add(-time.Hour))
		if err != nil || ok || got.Status != 0 || got.Fingerprint != "fp-k1" || !got.CreatedAt.Equal(t0) {
			t.Fatalf("repeat while running: got %+v, %t, %v; want the running record", got, ok, err)
		}
		done := &sluice.IdempotentRecord{Key: "k1", Fingerprint: "fp-k1", Status: 200,
			Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"id":"batch_1"}`), CreatedAt: t0}
		if err := s.FinishIdempotent(ctx, done); err != nil {
			t.Fatal(err)
		}
		got, ok, err = s.StartIdempotent(ctx, start("k1", t0.Add(time.Minute)), t0.Add(-time.Hour))
		if err != nil || ok {
			t.Fatalf("repeat after: got %t, %v", ok, err)
		}
		if diff := cmp.Diff(done, got); diff != "" {
			t.Errorf("record (-want +got):\n%s", diff)
		}
		if _, ok, _ := s.StartIdempotent(ctx, start("k2", t0), t0.Add(-time.Hour)); !ok {
			t.Error("another key did not start")
		}
	})

	// A record older than notBefore is replaced; a deleted one starts again; records
	// before a time go.
	t.Run("Idempotent/ExpireAndDelete", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		s.StartIdempotent(ctx, start("old", t0), t0.Add(-time.Hour))
		if _, ok, err := s.StartIdempotent(ctx, start("old", t0.Add(25*time.Hour)), t0.Add(time.Hour)); err != nil || !ok {
			t.Errorf("start over an expired record: got %t, %v; want true", ok, err)
		}
		s.StartIdempotent(ctx, start("gone", t0), t0.Add(-time.Hour))
		if err := s.DeleteIdempotent(ctx, "gone"); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.StartIdempotent(ctx, start("gone", t0), t0.Add(-time.Hour)); !ok {
			t.Error("a deleted key did not start again")
		}
		if err := s.DeleteIdempotentBefore(ctx, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.StartIdempotent(ctx, start("gone", t0.Add(2*time.Hour)), t0.Add(-48*time.Hour)); !ok {
			t.Error("a record before the cut survived")
		}
		if _, ok, _ := s.StartIdempotent(ctx, start("old", t0.Add(26*time.Hour)), t0.Add(-48*time.Hour)); ok {
			t.Error("a record after the cut was deleted")
		}
	})

	// Of concurrent starts with one key, exactly one starts.
	t.Run("Idempotent/Concurrent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			started int
		)
		for range 20 {
			wg.Go(func() {
				_, ok, err := s.StartIdempotent(t.Context(), start("k", t0), t0.Add(-time.Hour))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					started++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if started != 1 {
			t.Errorf("%d of 20 started, want 1", started)
		}
	})
}
