package sim_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-batch/sluice/sim"
)

func TestStatsAndMetricsRoutes(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Options{Capacity: 8, Model: `m"x`})
	for range 3 {
		post(t, srv, "/v1/chat/completions", hiBody, http.StatusOK)
	}
	post(t, srv, "/openai/deployments/d/chat/completions", `{`, http.StatusBadRequest)
	post(t, srv, "/embeddings", `{"input":"x"}`, http.StatusOK)
	wantAnswers := map[string]map[string]int64{
		"/v1/chat/completions": {"200": 3, "400": 1},
		"/v1/embeddings":       {"200": 1},
	}
	if diff := cmp.Diff(wantAnswers, s.Answers()); diff != "" {
		t.Errorf("Answers() (-want +got):\n%s", diff)
	}

	t.Run("Stats", func(t *testing.T) {
		t.Parallel()
		resp, b, err := send(t, t.Context(), srv.Client(), http.MethodGet, srv.URL+"/stats", "")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %q, want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var got struct {
			sim.Stats
			Capacity int                         `json:"capacity"`
			Answers  map[string]map[string]int64 `json:"answers"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if want := (sim.Stats{Requests: 5, Completed: 4, Invalid: 1, MaxInFlight: 1}); got.Stats != want {
			t.Errorf("got stats %+v, want %+v", got.Stats, want)
		}
		if got.Capacity != 8 {
			t.Errorf("got capacity %d, want 8", got.Capacity)
		}
		if diff := cmp.Diff(wantAnswers, got.Answers); diff != "" {
			t.Errorf("answers (-want +got):\n%s", diff)
		}
		for _, key := range []string{`"in_flight":`, `"running":`, `"waiting":`, `"max_waiting":`, `"queue_full":`} {
			if !strings.Contains(string(b), key) {
				t.Errorf("got %s, want a member %s", b, key)
			}
		}
	})

	t.Run("Metrics", func(t *testing.T) {
		t.Parallel()
		resp, b, err := send(t, t.Context(), srv.Client(), http.MethodGet, srv.URL+"/metrics", "")
		if err != nil {
			t.Fatal(err)
		}
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
			t.Fatalf("got %d %q, want 200 and the text exposition format", resp.StatusCode, ct)
		}
		text := string(b)
		for _, line := range []string{
			`sim_requests_total{route="/v1/chat/completions",status="200"} 3`,
			`sim_requests_total{route="/v1/chat/completions",status="400"} 1`,
			`sim_requests_total{route="/v1/embeddings",status="200"} 1`,
			`sim_faults_total{kind="queue_full"} 0`,
			`# TYPE vllm:num_requests_waiting gauge`,
			`vllm:num_requests_waiting{model_name="m\"x"} 0`,
			`vllm:num_requests_running{model_name="m\"x"} 0`,
		} {
			if !strings.Contains(text, line+"\n") {
				t.Errorf("got no line %q in\n%s", line, text)
			}
		}
		// Every sample line is a name, optional labels, and an integer.
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			if strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE ") {
				continue
			}
			i := strings.LastIndexByte(line, ' ')
			if i < 0 || strings.Trim(line[i+1:], "0123456789") != "" {
				t.Errorf("got sample line %q, want a name and a value", line)
			}
		}
	})

	t.Run("MethodNotAllowed", func(t *testing.T) {
		t.Parallel()
		post(t, srv, "/metrics", "", http.StatusMethodNotAllowed)
	})
}

func TestAnswersCountEveryOutcome(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts sim.Options
		path string
		want map[string]map[string]int64
	}{
		{"server-error", sim.Options{FailRate: 1}, "/v1/completions", map[string]map[string]int64{"/v1/completions": {"500": 1}}},
		{"rate-limited", sim.Options{RateLimitRate: 1}, "/v1/responses", map[string]map[string]int64{"/v1/responses": {"429": 1}}},
		{"reset", sim.Options{ResetRate: 1}, "/v1/moderations", map[string]map[string]int64{"/v1/moderations": {"none": 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, tt.opts)
			_, _, _ = send(t, t.Context(), srv.Client(), http.MethodPost, srv.URL+tt.path, `{"input":"x","prompt":"x"}`)
			waitIdle(t, s)
			if diff := cmp.Diff(tt.want, s.Answers()); diff != "" {
				t.Errorf("Answers() (-want +got):\n%s", diff)
			}
		})
	}
}
