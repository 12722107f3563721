package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

const hiBody = `{"model":"m","messages":[{"role":"user","content":"hi"}]}`

// waitStats polls s until ok holds for its stats, for at most 10 seconds.
func waitStats(t *testing.T, s *sim.Server, what string, ok func(sim.Stats) bool) sim.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("got stats %+v after 10s, want %s", st, what)
		}
		time.Sleep(time.Millisecond) // polling, not waiting for a duration
	}
}

type answer struct {
	n    int // the request's place in the order sent
	resp *http.Response
	body []byte
	err  error
}

// sendAsync posts body to the chat route in a goroutine and delivers the answer to out.
func sendAsync(t *testing.T, ctx context.Context, url string, c *http.Client, n int, body string, out chan<- answer) {
	t.Helper()
	go func() {
		resp, b, err := send(t, ctx, c, http.MethodPost, url+"/v1/chat/completions", body)
		out <- answer{n, resp, b, err}
	}()
}

func TestCapacityQueuesInsteadOfRefusing(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Options{Latency: time.Hour, Capacity: 2})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	answers := make(chan answer, 5)
	for i := range 5 {
		sendAsync(t, ctx, srv.URL, srv.Client(), i, hiBody, answers)
	}
	waitStats(t, s, "2 running and 3 waiting", func(st sim.Stats) bool { return st.Running == 2 && st.Waiting == 3 })
	select {
	case a := <-answers:
		t.Fatalf("got an answer (%s, error %v) while the capacity was taken, want every request to wait", a.body, a.err)
	default:
	}
	_, b, err := send(t, t.Context(), srv.Client(), http.MethodGet, srv.URL+"/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`vllm:num_requests_running{model_name="sim"} 2`, `vllm:num_requests_waiting{model_name="sim"} 3`,
		"sim_requests_in_flight 5", "sim_requests_running 2", "sim_requests_waiting 3"} {
		if !strings.Contains(string(b), "\n"+line+"\n") {
			t.Errorf("GET /metrics: got no line %q in\n%s", line, b)
		}
	}
	cancel()
	for range 5 {
		if a := <-answers; !errors.Is(a.err, context.Canceled) {
			t.Errorf("got %v, want %v", a.err, context.Canceled)
		}
	}
	st := waitIdle(t, s)
	want := sim.Stats{Requests: 5, Canceled: 5, MaxInFlight: 5, MaxWaiting: 3}
	if st != want {
		t.Errorf("got stats %+v, want %+v", st, want)
	}
}

func TestCapacityServesInOrder(t *testing.T) {
	t.Parallel()
	const latency = 30 * time.Millisecond
	s, srv := start(t, sim.Options{Latency: latency, Capacity: 1})
	answers := make(chan answer, 3)
	t0 := time.Now()
	for i := range 3 {
		sendAsync(t, t.Context(), srv.URL, srv.Client(), i, hiBody, answers)
		// The next is sent once this one is in line, so they line up in order.
		waitStats(t, s, "the request in line", func(st sim.Stats) bool { return st.Running+st.Waiting == int64(i+1) })
	}
	for want := range 3 {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		if a.resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: got status %d (%s), want 200", a.n, a.resp.StatusCode, a.body)
		}
		if a.n != want {
			t.Errorf("got request %d answered as number %d, want first come first served", a.n, want)
		}
	}
	if took := time.Since(t0); took < 3*latency {
		t.Errorf("three requests through one slot took %v, want at least %v", took, 3*latency)
	}
	if st := waitIdle(t, s); st.Completed != 3 || st.MaxWaiting < 1 {
		t.Errorf("got stats %+v, want 3 completed after waiting", st)
	}
}

func TestQueueLimit(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Options{Latency: time.Hour, Capacity: 1, QueueLimit: 1, RetryAfter: 2 * time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	answers := make(chan answer, 2)
	for i := range 2 {
		sendAsync(t, ctx, srv.URL, srv.Client(), i, hiBody, answers)
	}
	waitStats(t, s, "1 running and 1 waiting", func(st sim.Stats) bool { return st.Running == 1 && st.Waiting == 1 })
	resp, b := post(t, srv, "/v1/chat/completions", hiBody, http.StatusTooManyRequests)
	checkErrorBody(t, b, "rate_limit_error", nil, "rate_limit_exceeded")
	if got := resp.Header.Get("Retry-After"); got != "2" {
		t.Errorf("got Retry-After %q, want 2", got)
	}
	cancel()
	for range 2 {
		<-answers
	}
	st := waitIdle(t, s)
	want := sim.Stats{Requests: 3, Canceled: 2, Faults: sim.Faults{QueueFull: 1}, MaxInFlight: 3, MaxWaiting: 1}
	if st != want {
		t.Errorf("got stats %+v, want %+v", st, want)
	}
}

func TestCapacitySlowdown(t *testing.T) {
	t.Parallel()
	// Alone, 50 tokens at 250 a second take 200 ms. With Slowdown 1, two requests served
	// together each go at half speed: whichever arrives second by δ, both take 400 ms
	// less δ. Without the slowdown they would take 200 ms.
	s, srv := start(t, sim.Options{Capacity: 4, TokensPerSecond: 250, Slowdown: 1, MaxTokens: 100000})
	body := `{"model":"m","messages":[{"role":"user","content":"Tell me a long story."}],"max_tokens":50}`
	answers := make(chan answer, 2)
	times := make(chan time.Duration, 2)
	for i := range 2 {
		go func() {
			t0 := time.Now()
			resp, b, err := send(t, t.Context(), srv.Client(), http.MethodPost, srv.URL+"/v1/chat/completions", body)
			times <- time.Since(t0)
			answers <- answer{i, resp, b, err}
		}()
	}
	for range 2 {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		var out chatResponse
		if err := json.Unmarshal(a.body, &out); err != nil {
			t.Fatalf("decode %s: %v", a.body, err)
		}
		if out.Usage.CompletionTokens != 50 {
			t.Fatalf("got %d completion tokens, want the budget of 50 (pick a prompt with a longer natural reply)", out.Usage.CompletionTokens)
		}
		if took := <-times; took < 300*time.Millisecond {
			t.Errorf("a request served with another took %v, want at least 300ms", took)
		}
	}
	if st := waitIdle(t, s); st.Completed != 2 || st.MaxWaiting != 0 {
		t.Errorf("got stats %+v, want 2 completed without waiting", st)
	}
}

func TestCapacityOptions(t *testing.T) {
	t.Parallel()
	t.Run("Validate", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name      string
			opts      sim.Options
			wantField string // "" for valid
		}{
			{"capacity", sim.Options{Capacity: 64, Slowdown: 0.02, QueueLimit: 100}, ""},
			{"negative-capacity", sim.Options{Capacity: -1}, "Capacity"},
			{"negative-slowdown", sim.Options{Capacity: 1, Slowdown: -0.1}, "Slowdown"},
			{"negative-queue-limit", sim.Options{Capacity: 1, QueueLimit: -1}, "QueueLimit"},
			{"slowdown-without-capacity", sim.Options{Slowdown: 0.1}, "Slowdown"},
			{"queue-limit-without-capacity", sim.Options{QueueLimit: 5}, "QueueLimit"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				err := tt.opts.Validate()
				if tt.wantField == "" {
					if err != nil {
						t.Errorf("got %v, want nil", err)
					}
					return
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantField+" ") {
					t.Errorf("got %v, want an error naming %s", err, tt.wantField)
				}
			})
		}
	})
	t.Run("RegisterFlags", func(t *testing.T) {
		t.Parallel()
		var got sim.Options
		fs := flag.NewFlagSet("sim", flag.ContinueOnError)
		got.RegisterFlags(fs)
		if err := fs.Parse([]string{"-capacity", "64", "-slowdown", "0.02", "-queue-limit", "256"}); err != nil {
			t.Fatal(err)
		}
		want := sim.Options{RetryAfter: time.Second, MaxTokens: 16, Model: "sim", Capacity: 64, Slowdown: 0.02, QueueLimit: 256}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})
}
