package engine_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/engine"
)

// Under WindowExpire a batch whose window ends with lines left ends as expired: the
// finished lines in its output file, every other line once in its error file with
// batch_expired. Under WindowContinue the same batch runs on.
func TestWindowPolicy(t *testing.T) {
	t.Parallel()
	for _, policy := range []sluice.WindowPolicy{sluice.WindowExpire, sluice.WindowContinue} {
		t.Run(string(policy), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			now := time.Unix(1_800_000_000, 0)
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			release := make(chan struct{})
			var answered sync.Map
			// The first 10 lines are answered at once; the others wait until released.
			handler := func(w http.ResponseWriter, r *http.Request) {
				body := readBody(r)
				msgs := body["messages"].([]any)
				q := msgs[0].(map[string]any)["content"].(string)
				if n := len(q); n <= 2 { // q0 .. q9
					answered.Store(q, true)
					ok(w)
					return
				}
				select {
				case <-release:
					ok(w)
				case <-r.Context().Done():
				}
			}
			b := setup(t, sluice.Upstream{MaxConcurrency: 8}, handler, engine.Options{NowFunc: clock, CancelGrace: 10 * time.Millisecond})
			t.Cleanup(func() { close(release) })
			ctx := context.Background()
			f, err := b.eng.UploadFile(ctx, sluice.FileUpload{Filename: "in.jsonl", Body: strings.NewReader(lines(300))})
			if err != nil {
				t.Fatal(err)
			}
			batch, _, err := b.eng.CreateBatch(ctx, sluice.BatchCreate{InputFileID: f.ID, Endpoint: "/chat/completions",
				CompletionWindow: "24h", WindowPolicy: policy})
			if err != nil {
				t.Fatal(err)
			}
			if batch.WindowPolicy != policy {
				t.Fatalf("window policy %q, want %q", batch.WindowPolicy, policy)
			}
			waitFor := func(what string, cond func(*sluice.Batch) bool) *sluice.Batch {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for {
					got, err := b.store.FindBatchByID(ctx, batch.ID)
					if err != nil {
						t.Fatal(err)
					}
					if cond(got) {
						return got
					}
					if time.Now().After(deadline) {
						t.Fatalf("%s: batch %s with %+v", what, got.Status, got.RequestCounts)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			waitFor("the first 10 lines", func(b *sluice.Batch) bool { return b.RequestCounts.Completed == 10 })
			mu.Lock()
			now = now.Add(25 * time.Hour)
			mu.Unlock()
			if policy == sluice.WindowContinue {
				time.Sleep(100 * time.Millisecond) // steps run every 10 ms
				if got := waitFor("still running", func(*sluice.Batch) bool { return true }); got.Status != sluice.StatusInProgress {
					t.Fatalf("past its window under continue: %s, want in_progress", got.Status)
				}
				return
			}
			got := waitFor("expired", func(b *sluice.Batch) bool { return b.Status.Terminal() })
			if got.Status != sluice.StatusExpired || got.ExpiredAt == nil {
				t.Fatalf("status %s, expired_at %v; want expired with a time", got.Status, got.ExpiredAt)
			}
			out, errs := b.read(t, got.OutputFileID), b.read(t, got.ErrorFileID)
			if len(out) != 10 || got.RequestCounts.Completed != 10 {
				t.Errorf("%d output lines, %d completed; want 10", len(out), got.RequestCounts.Completed)
			}
			if len(errs) != 290 || got.RequestCounts.Failed != 290 {
				t.Errorf("%d error lines, %d failed; want 290", len(errs), got.RequestCounts.Failed)
			}
			seen := map[string]bool{}
			for _, r := range append(out, errs...) {
				id := r["custom_id"].(string)
				if seen[id] {
					t.Errorf("custom_id %s has two results", id)
				}
				seen[id] = true
			}
			for _, r := range errs {
				e, _ := r["error"].(map[string]any)
				if e == nil || e["code"] != "batch_expired" || r["response"] != nil {
					t.Errorf("error line %v, want response null and error code batch_expired", r)
					break
				}
			}
			if len(seen) != 300 {
				t.Errorf("%d custom_ids have a result, want 300", len(seen))
			}
		})
	}
}
