package sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

// batchEndpoints are the routes a batch may use beyond chat, completions and embeddings,
// each with a good body. tokens says whether its answer has generation time.
var batchEndpoints = []struct {
	path   string
	body   string
	model  bool // the answer names the model
	tokens bool
}{
	{"/responses", `{"input":"Tell me about rivers."}`, true, true},
	{"/moderations", `{"input":"A calm river."}`, true, false},
	{"/images/generations", `{"prompt":"A river at dawn"}`, false, true},
	{"/images/edits", `{"prompt":"Add fog","images":[{"image_url":"https://example.com/a.png"}]}`, false, true},
	{"/videos", `{"prompt":"A river at dawn"}`, true, true},
}

// name returns a subtest name for path: path without its leading slash, its other
// slashes as dashes.
func name(path string) string { return strings.ReplaceAll(path[1:], "/", "-") }

func TestBatchEndpointRoutes(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{Model: "my-model"})
	prefixes := []struct {
		name, prefix, wantModel string
	}{
		{"v1", "/v1", "my-model"},
		{"no-prefix", "", "my-model"},
		{"azure-v1", "/openai/v1", "my-model"},
		{"azure-openai", "/openai", "my-model"},
		{"azure-deployment", "/openai/deployments/my-deploy", "my-deploy"},
	}
	for _, ep := range batchEndpoints {
		for _, p := range prefixes {
			t.Run(name(ep.path)+"/"+p.name, func(t *testing.T) {
				t.Parallel()
				resp, b := post(t, srv, p.prefix+ep.path+"?api-version=2025-04-01-preview", ep.body, http.StatusOK)
				if resp.Header.Get("x-request-id") == "" || resp.Header.Get("Content-Type") != "application/json" {
					t.Errorf("got x-request-id %q Content-Type %q, want one and application/json",
						resp.Header.Get("x-request-id"), resp.Header.Get("Content-Type"))
				}
				if !ep.model {
					return
				}
				var got struct {
					Model string `json:"model"`
				}
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				if got.Model != p.wantModel {
					t.Errorf("got model %q, want %q", got.Model, p.wantModel)
				}
			})
		}
		t.Run(name(ep.path)+"/get", func(t *testing.T) {
			t.Parallel()
			resp, b, err := send(t, t.Context(), srv.Client(), http.MethodGet, srv.URL+"/v1"+ep.path, "")
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
				t.Errorf("got status %d Allow %q, want 405 and POST", resp.StatusCode, resp.Header.Get("Allow"))
			}
			checkErrorBody(t, b, "invalid_request_error", nil, nil)
		})
	}
}

func TestBatchEndpointFaults(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name       string
		opts       sim.Options
		wantStatus int
		wantType   string
		wantCode   any
		wantFaults sim.Faults
	}{
		{"fail-rate-1", sim.Options{FailRate: 1}, 500, "server_error", nil, sim.Faults{ServerError: 1}},
		{"rate-limit-rate-1", sim.Options{RateLimitRate: 1}, 429, "rate_limit_error", "rate_limit_exceeded", sim.Faults{RateLimited: 1}},
	}
	for _, ep := range batchEndpoints {
		for _, f := range faults {
			t.Run(name(ep.path)+"/"+f.name, func(t *testing.T) {
				t.Parallel()
				s, srv := start(t, f.opts)
				_, b := post(t, srv, "/v1"+ep.path, ep.body, f.wantStatus)
				checkErrorBody(t, b, f.wantType, nil, f.wantCode)
				if got, want := s.Stats(), (sim.Stats{Requests: 1, Faults: f.wantFaults, MaxInFlight: 1}); got != want {
					t.Errorf("got stats %+v, want %+v", got, want)
				}
			})
		}
		t.Run(name(ep.path)+"/reset", func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Options{ResetRate: 1})
			if resp, _, err := send(t, t.Context(), srv.Client(), http.MethodPost, srv.URL+"/v1"+ep.path, ep.body); err == nil {
				t.Fatalf("got status %d, want a connection error", resp.StatusCode)
			}
			if got := s.Stats().Faults; got != (sim.Faults{Reset: 1}) {
				t.Errorf("got faults %+v, want one reset", got)
			}
		})
	}
}

// TestBatchEndpointWaits checks that each route waits out Latency, and its generation
// time at TokensPerSecond when it generates, by cancelling once the server holds the
// request.
func TestBatchEndpointWaits(t *testing.T) {
	t.Parallel()
	waits := []struct {
		name string
		opts sim.Options
		want sim.Stats
	}{
		{"hang-rate-1", sim.Options{HangRate: 1}, sim.Stats{Requests: 1, Faults: sim.Faults{Hang: 1}, MaxInFlight: 1}},
		{"latency", sim.Options{Latency: time.Hour}, sim.Stats{Requests: 1, Canceled: 1, MaxInFlight: 1}},
		{"slow-generation", sim.Options{TokensPerSecond: 1e-6}, sim.Stats{Requests: 1, Canceled: 1, MaxInFlight: 1}},
	}
	for _, ep := range batchEndpoints {
		for _, w := range waits {
			t.Run(name(ep.path)+"/"+w.name, func(t *testing.T) {
				t.Parallel()
				s, srv := start(t, w.opts)
				answeredAtOnce := w.name == "slow-generation" && !ep.tokens // no generation
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				if !answeredAtOnce {
					// Cancel once the server holds the request. (A route answered at once
					// must not be cancelled: the cancel could beat the answer to the client.)
					go func() {
						for s.Stats().InFlight == 0 && ctx.Err() == nil {
							time.Sleep(time.Millisecond) // polling
						}
						cancel()
					}()
				}
				resp, _, err := send(t, ctx, srv.Client(), http.MethodPost, srv.URL+"/v1"+ep.path, ep.body)
				want := w.want
				if answeredAtOnce {
					if err != nil || resp.StatusCode != http.StatusOK {
						t.Fatalf("got response %v and error %v, want 200", resp, err)
					}
					want = sim.Stats{Requests: 1, Completed: 1, MaxInFlight: 1}
				} else if resp != nil || !errors.Is(err, context.Canceled) {
					t.Fatalf("got response %v and error %v, want no response and %v", resp, err, context.Canceled)
				}
				if got := waitIdle(t, s); got != want {
					t.Errorf("got stats %+v, want %+v", got, want)
				}
			})
		}
	}
}

func TestBatchEndpointMaxConcurrency(t *testing.T) {
	t.Parallel()
	for _, ep := range batchEndpoints {
		t.Run(name(ep.path), func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, sim.Options{Latency: time.Hour, MaxConcurrency: 1})
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			held := make(chan error, 1)
			go func() {
				_, _, err := send(t, ctx, srv.Client(), http.MethodPost, srv.URL+"/v1"+ep.path, ep.body)
				held <- err
			}()
			for s.Stats().InFlight == 0 {
				time.Sleep(time.Millisecond) // polling
			}
			resp, b := post(t, srv, "/v1"+ep.path, ep.body, http.StatusTooManyRequests)
			if resp.Header.Get("Retry-After") != "1" {
				t.Errorf("got Retry-After %q, want 1", resp.Header.Get("Retry-After"))
			}
			checkErrorBody(t, b, "rate_limit_error", nil, "rate_limit_exceeded")
			cancel()
			if err := <-held; !errors.Is(err, context.Canceled) {
				t.Errorf("held request: got %v, want %v", err, context.Canceled)
			}
			want := sim.Stats{Requests: 2, Canceled: 1, Faults: sim.Faults{OverConcurrency: 1}, MaxInFlight: 1}
			if got := waitIdle(t, s); got != want {
				t.Errorf("got stats %+v, want %+v", got, want)
			}
		})
	}
}

func TestBatchEndpointStats(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Options{})
	for _, ep := range batchEndpoints {
		post(t, srv, "/v1"+ep.path, ep.body, http.StatusOK)
		post(t, srv, "/v1"+ep.path, `{}`, http.StatusBadRequest)
		if _, _, err := send(t, t.Context(), srv.Client(), http.MethodGet, srv.URL+"/v1"+ep.path, ""); err != nil { // not a POST: not counted
			t.Fatal(err)
		}
	}
	n := int64(len(batchEndpoints))
	want := sim.Stats{Requests: 2 * n, Completed: n, Invalid: n, MaxInFlight: 1}
	if got := s.Stats(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// With NoUsage the routes whose answers carry usage answer without it, and the rest of
// the answer is as before.
func TestBatchEndpointNoUsage(t *testing.T) {
	t.Parallel()
	_, plain := start(t, sim.Options{})
	_, bare := start(t, sim.Options{NoUsage: true})
	for _, ep := range batchEndpoints {
		_, with := post(t, plain, "/v1"+ep.path, ep.body, http.StatusOK)
		_, without := post(t, bare, "/v1"+ep.path, ep.body, http.StatusOK)
		var w, wo map[string]json.RawMessage
		if err := json.Unmarshal(with, &w); err != nil {
			t.Fatalf("%s: %v: %s", ep.path, err, with)
		}
		if err := json.Unmarshal(without, &wo); err != nil {
			t.Fatalf("%s with NoUsage: %v: %s", ep.path, err, without)
		}
		if _, ok := wo["usage"]; ok {
			t.Errorf("%s: NoUsage answered with usage: %s", ep.path, without)
		}
		_, hasUsage := w["usage"]
		if wantUsage := ep.path != "/moderations" && ep.path != "/videos"; hasUsage != wantUsage {
			t.Errorf("%s: got usage %v in the default answer, want %v", ep.path, hasUsage, wantUsage)
		}
		delete(w, "usage")
		if len(w) != len(wo) {
			t.Errorf("%s: got members %d without usage and %d with NoUsage, want the same", ep.path, len(w), len(wo))
		}
	}
}
