package engine_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/engine"
)

// The answers of a real engine that the simulator does not give, in the shapes Ollama
// gives them (scripts/ollama.sh runs the real one; cmd/sluice's TestOllama drives it).

// ollamaBusy is Ollama's answer when a request finds the model loading and its queue
// full: 503 at once, with no Retry-After.
func ollamaBusy(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `{"error":{"message":"server busy, please try again.  maximum pending requests exceeded","type":"api_error","param":null,"code":null}}`)
}

// A 503 without Retry-After is a busy server: the line waits, longer each time, and is
// sent again however often it comes, since it counts no attempt; it never fails the line.
func TestBusyWithoutRetryAfterBacksOff(t *testing.T) {
	t.Parallel()
	const busy = 7 // answers before the model is loaded, more than MaxAttempts
	var a attempts
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		if a.next(r) <= busy {
			ollamaBusy(w)
			return
		}
		ok(w)
	}, engine.Options{MaxAttempts: 3, BackoffBase: 100 * time.Millisecond, BackoffMax: 2 * time.Second})
	out := b.MustRun(t, lines(1))
	if out.batch.Status != sluice.StatusCompleted || out.batch.RequestCounts.Completed != 1 || len(out.errors) != 0 {
		t.Fatalf("got %s %+v with %d error lines, want completed 1 and none", out.batch.Status, out.batch.RequestCounts, len(out.errors))
	}
	waits := b.Waits()
	if len(waits) != busy {
		t.Fatalf("waits: got %v, want %d (one per busy answer)", waits, busy)
	}
	for i, w := range waits {
		hi := min(100*time.Millisecond<<i, 2*time.Second)
		if w < hi/2 || w > hi {
			t.Errorf("wait %d: got %v, want within [%v, %v]", i, w, hi/2, hi)
		}
	}
}

// Ollama cuts off an answer that repeats one token 31 times and answers 200 with
// finish_reason null and every usage count 0. The line is the upstream's answer, as it
// came, and succeeded; its tokens are counted by Sluice (an estimated line), not taken
// as 0.
func TestZeroUsageIsCounted(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-412","object":"chat.completion","created":1760000000,"model":"dep","system_fingerprint":"fp_ollama",`+
			`"choices":[{"index":0,"message":{"role":"assistant","content":"the the the the the the the the the the the the the the the the"},"finish_reason":null}],`+
			`"usage":{"prompt_tokens":0,"completion_tokens":0,"total_tokens":0}}`)
	}, engine.Options{})
	out := b.MustRun(t, lines(10))
	if out.batch.Status != sluice.StatusCompleted || len(out.output) != 10 {
		t.Fatalf("got %s with %d output lines, want completed with 10", out.batch.Status, len(out.output))
	}
	body := out.output[0]["response"].(map[string]any)["body"].(map[string]any)
	if fr := body["choices"].([]any)[0].(map[string]any)["finish_reason"]; fr != nil {
		t.Errorf("finish_reason: got %v, want null as the upstream sent it", fr)
	}
	u := out.batch.Usage
	if u.EstimatedLines != 10 || u.InputTokens < 10 || u.OutputTokens < 10*10 {
		t.Errorf("usage: got %+v, want 10 estimated lines with their input and output counted", u)
	}
}

// Ollama's response IDs are chatcmpl- and a number below 999: they repeat within any
// batch. Nothing depends on them: every line gets its result, under its own ID.
func TestRepeatedResponseIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{MaxConcurrency: 8}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-7","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}`)
	}, engine.Options{})
	const n = 600
	out := b.MustRun(t, lines(n))
	if out.batch.RequestCounts.Completed != n || len(out.output) != n {
		t.Fatalf("got %+v and %d output lines, want %d", out.batch.RequestCounts, len(out.output), n)
	}
	customIDs, ids, requestIDs := map[any]bool{}, map[any]bool{}, map[any]bool{}
	for _, l := range out.output {
		customIDs[l["custom_id"]] = true
		ids[l["id"]] = true
		requestIDs[l["response"].(map[string]any)["request_id"]] = true
	}
	for name, m := range map[string]map[any]bool{"custom_id": customIDs, "id": ids, "request_id": requestIDs} {
		if len(m) != n {
			t.Errorf("%d distinct %s values, want %d", len(m), name, n)
		}
	}
	if u := out.batch.Usage; u.InputTokens != 9*n || u.OutputTokens != n {
		t.Errorf("usage: got %+v, want %d input and %d output tokens", u, 9*n, n)
	}
	for i := range n {
		if !customIDs[fmt.Sprintf("c%d", i)] {
			t.Fatalf("no result for c%d", i)
		}
	}
}
