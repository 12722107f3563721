package sim_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

// recorder serves the simulator and keeps every request body it gets.
type recorder struct {
	mu     sync.Mutex
	bodies []string
	next   http.Handler
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rec.mu.Lock()
	rec.bodies = append(rec.bodies, string(b))
	rec.mu.Unlock()
	r.Body = io.NopCloser(strings.NewReader(string(b)))
	rec.next.ServeHTTP(w, r)
}

func (rec *recorder) sorted() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Sorted(slices.Values(rec.bodies))
}

func TestRunLoad(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{Latency: 5 * time.Millisecond})
	rec := &recorder{next: s}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)

	opts := &sim.LoadOptions{Seed: 42, MaxTokens: 8, Model: "online"}
	rep, err := sim.RunLoad(t.Context(), srv.URL+"/v1", 200, 300*time.Millisecond, opts)
	if err != nil {
		t.Fatal(err)
	}
	// 60 arrivals expected; a Poisson count is within 30 of that all but once in 10^5.
	if rep.Sent < 30 || rep.Sent > 90 {
		t.Errorf("got %d sent at 200/s for 0.3s, want about 60", rep.Sent)
	}
	if rep.OK != rep.Sent || rep.Statuses["200"] != rep.Sent || len(rep.Statuses) != 1 || rep.Dropped != 0 {
		t.Errorf("got report %+v, want every request answered 200", rep)
	}
	if st := s.Stats(); st.Requests != rep.Sent || st.Completed != rep.Sent {
		t.Errorf("got simulator stats %+v, want %d requests completed", st, rep.Sent)
	}
	l := rep.LatencyMS
	if !(l.P50 >= 5 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Mean >= 5) {
		t.Errorf("got latencies %+v, want ordered and at least the 5ms latency", l)
	}
	if rep.MeanInFlight <= 0 || rep.Seed != 42 || rep.MaxTokens != 8 {
		t.Errorf("got report %+v, want mean in flight, seed 42 and max_tokens 8", rep)
	}
	first := rec.sorted()
	if !strings.Contains(first[0], `"model":"online"`) || !strings.Contains(first[0], `"max_tokens":8}`) {
		t.Errorf("got body %s, want model online and max_tokens 8", first[0])
	}

	t.Run("SameSeedSameRequests", func(t *testing.T) {
		t.Parallel()
		rec2 := &recorder{next: sim.New(sim.Options{})}
		srv2 := httptest.NewServer(rec2)
		defer srv2.Close()
		rep2, err := sim.RunLoad(t.Context(), srv2.URL+"/v1", 200, 300*time.Millisecond, opts)
		if err != nil {
			t.Fatal(err)
		}
		if rep2.Sent != rep.Sent || !slices.Equal(rec2.sorted(), first) {
			t.Errorf("seed 42 twice: got %d and %d requests, want the same requests", rep.Sent, rep2.Sent)
		}
	})
}

func TestRunLoadCountsFailures(t *testing.T) {
	t.Parallel()
	t.Run("NoServer", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		rep, err := sim.RunLoad(t.Context(), url+"/v1", 100, 100*time.Millisecond, &sim.LoadOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent == 0 || rep.Statuses["error"] != rep.Sent || rep.OK != 0 || rep.FirstError == "" {
			t.Errorf("got report %+v, want every request an error", rep)
		}
	})
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		_, srv := start(t, sim.Options{RateLimitRate: 1})
		rep, err := sim.RunLoad(t.Context(), srv.URL+"/v1", 100, 100*time.Millisecond, &sim.LoadOptions{Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent == 0 || rep.Statuses["429"] != rep.Sent || rep.OK != 0 || rep.LatencyMS.P99 != 0 {
			t.Errorf("got report %+v, want every request a 429 and no latencies of successes", rep)
		}
	})
	t.Run("MaxInFlight", func(t *testing.T) {
		t.Parallel()
		_, srv := start(t, sim.Options{Latency: 200 * time.Millisecond})
		rep, err := sim.RunLoad(t.Context(), srv.URL+"/v1", 500, 100*time.Millisecond, &sim.LoadOptions{Seed: 3, MaxInFlight: 1})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Sent != 1 || rep.Dropped == 0 {
			t.Errorf("got report %+v, want 1 sent and the rest dropped", rep)
		}
	})
}

func TestRunLoadArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		url  string
		rate float64
		d    time.Duration
		opts *sim.LoadOptions
		want string
	}{
		{"no-scheme", "127.0.0.1:9000/v1", 1, time.Second, nil, "base URL"},
		{"zero-rate", "http://127.0.0.1:9000/v1", 0, time.Second, nil, "rate"},
		{"zero-duration", "http://127.0.0.1:9000/v1", 1, 0, nil, "duration"},
		{"negative-max-tokens", "http://127.0.0.1:9000/v1", 1, time.Second, &sim.LoadOptions{MaxTokens: -1}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := sim.RunLoad(t.Context(), tt.url, tt.rate, tt.d, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error about %s", err, tt.want)
			}
		})
	}
}
