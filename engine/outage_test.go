package engine_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/engine"
)

// An upstream that drops every connection for a while is an outage, not a reason to
// fail lines: once it is marked down, attempts stop counting, one probe at a time goes,
// and when it answers again the batch completes with nothing in its error file.
func TestOutagePausesInsteadOfFailing(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	var during atomic.Int64 // requests that reached the upstream while it was down
	down.Store(true)
	handler := func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			during.Add(1)
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		ok(w)
	}
	b := setup(t, sluice.Upstream{MaxConcurrency: 8}, handler, engine.Options{MaxAttempts: 2})
	go func() {
		time.Sleep(1500 * time.Millisecond) // longer than the first probes' waits
		down.Store(false)
	}()
	out := b.MustRun(t, lines(300))
	if len(out.errors) != 0 || len(out.output) != 300 {
		t.Fatalf("after an outage: %d output lines, %d error lines; want 300 and none (first error %v)",
			len(out.output), len(out.errors), first(out.errors))
	}
	// While down, the upstream saw the failures that marked it down, the lines in flight
	// then, and the probes: not every line's every attempt.
	if n := during.Load(); n >= 300 {
		t.Errorf("the upstream got %d requests while down, want far fewer than the 300 lines", n)
	}
}

func first(rs []map[string]any) any {
	if len(rs) == 0 {
		return nil
	}
	return rs[0]
}

// A line's own refusal is final at once; an upstream that answers 500 for one line
// while it answers the others is not down, and the line fails after MaxAttempts.
func TestLineOwnFailuresStillFail(t *testing.T) {
	t.Parallel()
	handler := func(w http.ResponseWriter, r *http.Request) {
		body := readBody(r)
		q := body["messages"].([]any)[0].(map[string]any)["content"].(string)
		switch q {
		case "q0":
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":{"message":"bad"}}`))
		case "q1":
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"error":{"message":"boom"}}`))
		default:
			ok(w)
		}
	}
	b := setup(t, sluice.Upstream{MaxConcurrency: 2}, handler, engine.Options{MaxAttempts: 3})
	out := b.MustRun(t, lines(20))
	if len(out.errors) != 2 || len(out.output) != 18 {
		t.Fatalf("%d output, %d error lines; want 18 and 2", len(out.output), len(out.errors))
	}
}

// A hung request frees its slot once the upstream's pace says it is late, long before
// request_timeout, and the line goes again: with one slot and a request_timeout
// longer than MustRun waits, the batch completes only if the hang is cut short.
func TestHungRequestFreesItsSlot(t *testing.T) {
	t.Parallel()
	var hung atomic.Int64
	handler := func(w http.ResponseWriter, r *http.Request) {
		body := readBody(r)
		q := body["messages"].([]any)[0].(map[string]any)["content"].(string)
		if q == "q50" && hung.Add(1) == 1 {
			<-r.Context().Done() // hangs until the client gives up
			return
		}
		ok(w)
	}
	b := setup(t, sluice.Upstream{MaxConcurrency: 1}, handler, engine.Options{
		MaxAttempts: 2, RequestTimeout: time.Hour, MinRequestTimeout: 20 * time.Millisecond})
	out := b.MustRun(t, lines(100))
	if len(out.errors) != 0 || len(out.output) != 100 {
		t.Fatalf("%d output lines, %d error lines; want 100 and none (first error %v)", len(out.output), len(out.errors), first(out.errors))
	}
	if n := hung.Load(); n != 2 {
		t.Errorf("the hung line was sent %d times, want 2: the hung attempt and its retry", n)
	}
}

// A request that hangs before the upstream's pace is known (its timeout is then
// request_timeout) is held to the pace's timeout once it is known, counted from its
// start: a hang in the first wave does not hold its slot for request_timeout.
func TestHungFirstRequestHeldToPace(t *testing.T) {
	t.Parallel()
	var hung atomic.Int64
	handler := func(w http.ResponseWriter, r *http.Request) {
		body := readBody(r)
		q := body["messages"].([]any)[0].(map[string]any)["content"].(string)
		if q == "q0" && hung.Add(1) == 1 {
			<-r.Context().Done()
			return
		}
		ok(w)
	}
	b := setup(t, sluice.Upstream{MaxConcurrency: 2}, handler, engine.Options{
		MaxAttempts: 2, RequestTimeout: time.Hour, MinRequestTimeout: 20 * time.Millisecond})
	out := b.MustRun(t, lines(100))
	if len(out.errors) != 0 || len(out.output) != 100 {
		t.Fatalf("%d output lines, %d error lines; want 100 and none (first error %v)", len(out.output), len(out.errors), first(out.errors))
	}
	if n := hung.Load(); n != 2 {
		t.Errorf("the hung line was sent %d times, want 2", n)
	}
}
