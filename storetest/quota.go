package storetest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

// tokenBatch returns a batch of deployment dep holding tokens, in status.
func tokenBatch(id, dep string, tokens int64, status sluice.Status) *sluice.Batch {
	b := newBatch(id, "file-"+id, status, 1000)
	b.Deployment, b.Model, b.InputTokens = dep, dep+"-model", tokens
	return b
}

// MustAdmitBatch admits b under limit and returns what the deployment holds after, and
// whether b was admitted.
func MustAdmitBatch(tb testing.TB, s sluice.Store, b *sluice.Batch, limit int64) (int64, bool) {
	tb.Helper()
	res, err := s.AdmitBatch(tb.Context(), b, sluice.AdmitLimits{Deployment: limit})
	if err != nil {
		tb.Fatalf("admit batch %s: %v", b.ID, err)
	}
	return res.Held, res.Admitted
}

// MustEnqueuedTokens returns the tokens each deployment holds.
func MustEnqueuedTokens(tb testing.TB, s sluice.Store) map[string]int64 {
	tb.Helper()
	m, err := s.EnqueuedTokens(tb.Context())
	if err != nil {
		tb.Fatalf("enqueued tokens: %v", err)
	}
	return m
}

func runQuota(t *testing.T, setup func(t *testing.T) sluice.Store) {
	// A batch is admitted while the deployment's held tokens plus its own stay within
	// the limit, the limit itself included; a refused batch is not created; other
	// deployments do not count.
	t.Run("AdmitBatch/Limit", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, tokenBatch("other", "dep-b", 5000, sluice.StatusInProgress))
		steps := []struct {
			id       string
			tokens   int64
			wantHeld int64
			wantOK   bool
		}{
			{"batch-1", 600, 600, true},
			{"batch-2", 500, 600, false},
			{"batch-3", 400, 1000, true},
			{"batch-4", 1, 1000, false},
			{"batch-5", 0, 1000, true},
		}
		for _, st := range steps {
			held, ok := MustAdmitBatch(t, s, tokenBatch(st.id, "dep-a", st.tokens, sluice.StatusValidating), 1000)
			if held != st.wantHeld || ok != st.wantOK {
				t.Errorf("admit %s (%d tokens): got held %d, admitted %t; want %d, %t", st.id, st.tokens, held, ok, st.wantHeld, st.wantOK)
			}
		}
		_, err := s.FindBatchByID(t.Context(), "batch-2")
		wantKind(t, err, sluice.KindNotFound)
		want := map[string]int64{"dep-a": 1000, "dep-b": 5000}
		if diff := cmp.Diff(want, MustEnqueuedTokens(t, s)); diff != "" {
			t.Errorf("enqueued tokens mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("AdmitBatch/NoLimit", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustAdmitBatch(t, s, tokenBatch("batch-1", "dep-a", 1<<40, sluice.StatusValidating), 0)
		held, ok := MustAdmitBatch(t, s, tokenBatch("batch-2", "dep-a", 1<<40, sluice.StatusValidating), 0)
		if held != 2<<40 || !ok {
			t.Errorf("got held %d, admitted %t; want %d, true", held, ok, int64(2<<40))
		}
	})

	t.Run("AdmitBatch/DuplicateID", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustAdmitBatch(t, s, tokenBatch("batch-1", "dep-a", 10, sluice.StatusValidating), 100)
		_, err := s.AdmitBatch(t.Context(), tokenBatch("batch-1", "dep-a", 10, sluice.StatusValidating), sluice.AdmitLimits{Deployment: 100})
		wantKind(t, err, sluice.KindConflict)
		if diff := cmp.Diff(map[string]int64{"dep-a": 10}, MustEnqueuedTokens(t, s)); diff != "" {
			t.Errorf("enqueued tokens mismatch (-want +got):\n%s", diff)
		}
	})

	// Every state that is not terminal holds its batch's tokens; every terminal state
	// releases them.
	t.Run("AdmitBatch/Release", func(t *testing.T) {
		t.Parallel()
		for _, st := range []sluice.Status{
			sluice.StatusValidating, sluice.StatusInProgress, sluice.StatusFinalizing, sluice.StatusCancelling,
			sluice.StatusCompleted, sluice.StatusFailed, sluice.StatusExpired, sluice.StatusCancelled,
		} {
			s := setup(t)
			MustAdmitBatch(t, s, tokenBatch("big", "dep-a", 900, sluice.StatusValidating), 1000)
			if _, err := s.UpdateBatch(t.Context(), "big", sluice.BatchUpdate{Status: sluice.Ptr(st)}); err != nil {
				t.Fatal(err)
			}
			_, ok := MustAdmitBatch(t, s, tokenBatch("next", "dep-a", 500, sluice.StatusValidating), 1000)
			if ok != st.Terminal() {
				t.Errorf("with the first batch %s: next admitted %t, want %t", st, ok, st.Terminal())
			}
		}
	})

	// Concurrent admissions never pass the limit together.
	t.Run("AdmitBatch/Concurrent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		const creates, tokens, limit = 20, 100, 1000
		admitted := AdmitConcurrently(t, []sluice.Store{s}, creates, func(i int) *sluice.Batch {
			return tokenBatch(string(rune('a'+i)), "dep-a", tokens, sluice.StatusValidating)
		}, sluice.AdmitLimits{Deployment: limit})
		if admitted != limit/tokens {
			t.Errorf("admitted %d of %d, want %d", admitted, creates, limit/tokens)
		}
		if got := MustEnqueuedTokens(t, s)["dep-a"]; got != limit {
			t.Errorf("enqueued %d, want %d", got, limit)
		}
	})

	t.Run("FindBatches/Deployment", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, tokenBatch("batch-1", "dep-a", 1, sluice.StatusInProgress))
		MustCreateBatch(t, s, tokenBatch("batch-2", "dep-b", 1, sluice.StatusInProgress))
		MustCreateBatch(t, s, tokenBatch("batch-3", "dep-a", 1, sluice.StatusCompleted))
		got, _, err := s.FindBatches(t.Context(), sluice.BatchFilter{Deployment: "dep-a"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"batch-3", "batch-1"}, batchIDs(got)); diff != "" {
			t.Errorf("batches mismatch (-want +got):\n%s", diff)
		}
	})
}
