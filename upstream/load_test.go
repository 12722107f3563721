package upstream_test

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/sim"
	"github.com/sluice-batch/sluice/upstream"
)

const vllmMetrics = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen2.5-7B"} 12.0
vllm:num_requests_running{engine="1",model_name="Qwen/Qwen2.5-7B"} 3.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen2.5-7B"} 4.0 1712345678901
vllm:num_requests_waiting{engine="1",model_name="Qwen/Qwen2.5-7B"} 0.0
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen2.5-7B"} 0.42
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{le="+Inf",model_name="Qwen/Qwen2.5-7B"} 1795.0
vllm:num_requests_waiting_by_reason{reason="x"} 99
`

const sglangMetrics = `# HELP sglang:num_running_reqs The number of running requests.
# TYPE sglang:num_running_reqs gauge
sglang:num_running_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct",tp_rank="0"} 31.0
# TYPE sglang:num_queue_reqs gauge
sglang:num_queue_reqs{model_name="meta-llama/Llama-3.1-8B-Instruct",tp_rank="0"} 2.0
sglang:token_usage{model_name="meta-llama/Llama-3.1-8B-Instruct",tp_rank="0"} 0.91
`

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		text  string
		names []string
		want  map[string]float64
	}{
		{"vllm-summed-over-labels", vllmMetrics, []string{"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"},
			map[string]float64{"vllm:num_requests_running": 15, "vllm:num_requests_waiting": 4, "vllm:kv_cache_usage_perc": 0.42}},
		{"no-labels", "a 1\nb 2.5e1\n", []string{"b"}, map[string]float64{"b": 25}},
		{"labels-with-escapes", `m{path="a\"}b",x="{\\"} 7` + "\n", []string{"m"}, map[string]float64{"m": 7}},
		{"empty-labels-and-blank-lines", "\n\nm{} 3\n  \n", []string{"m"}, map[string]float64{"m": 3}},
		{"a-prefix-is-another-name", "m_total 5\nmx 6\n", []string{"m"}, map[string]float64{}},
		{"special-values", "a +Inf\nb -Inf\n", []string{"a", "b"}, map[string]float64{"a": math.Inf(1), "b": math.Inf(-1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := upstream.ParseMetrics(strings.NewReader(tt.text), tt.names...)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseMetricsRefusesMalformedLines(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"m\n",
		"m{a=\"1\" 2\n",
		"m{a=\"}\"\n",
		"m one\n",
		"m 1 2 3\n",
		"{a=\"1\"} 2\n",
	} {
		if got, err := upstream.ParseMetrics(strings.NewReader(text), "m"); err == nil {
			t.Errorf("ParseMetrics(%q) = %v, want an error", text, got)
		}
	}
	if got, err := upstream.ParseMetrics(strings.NewReader("m NaN\n"), "m"); err != nil || !math.IsNaN(got["m"]) {
		t.Errorf("ParseMetrics(m NaN) = %v, %v; want NaN", got, err)
	}
}

func TestMetricsURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		up   sluice.Upstream
		want string
	}{
		{"root-of-the-host", sluice.Upstream{BaseURL: "http://10.0.0.5:8000/v1", Load: &sluice.UpstreamLoad{Metrics: "vllm"}}, "http://10.0.0.5:8000/metrics"},
		{"no-password", sluice.Upstream{BaseURL: "https://u:p@gpu.example/proxy/v1/", Load: &sluice.UpstreamLoad{Metrics: "sglang"}}, "https://gpu.example/metrics"},
		{"configured", sluice.Upstream{BaseURL: "http://a/v1", Load: &sluice.UpstreamLoad{Metrics: "vllm", URL: "http://b:9090/m"}}, "http://b:9090/m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := upstream.MetricsURL(tt.up); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// metricsServer serves text at /metrics and records the Authorization header.
func metricsServer(t *testing.T, text string, auth chan<- string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		if auth != nil {
			select {
			case auth <- r.Header.Get("Authorization"):
			default:
			}
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte(text))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestLoadPollerRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, kind, text string
		want             upstream.Load
	}{
		{"vllm", "vllm", vllmMetrics, upstream.Load{Waiting: 4, Running: 15, CacheUsage: 0.42}},
		{"vllm-before-0.10", "vllm", "vllm:num_requests_running 2\nvllm:num_requests_waiting 1\nvllm:gpu_cache_usage_perc 0.5\n", upstream.Load{Waiting: 1, Running: 2, CacheUsage: 0.5}},
		{"sglang", "sglang", sglangMetrics, upstream.Load{Waiting: 2, Running: 31, CacheUsage: 0.91}},
		{"no-cache-gauge", "vllm", "vllm:num_requests_running 2\nvllm:num_requests_waiting 0\n", upstream.Load{Running: 2, CacheUsage: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			auth := make(chan string, 1)
			srv := metricsServer(t, tt.text, auth)
			up := sluice.Upstream{BaseURL: srv.URL + "/v1", APIKey: "k", Load: &sluice.UpstreamLoad{Metrics: tt.kind}}
			p, err := upstream.NewLoadPoller(up, upstream.NewGate(upstream.GateConfig{Floor: 1, Ceiling: 8}), nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Read(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if a := <-auth; a != "Bearer k" {
				t.Errorf("got Authorization %q, want the upstream's key on its own host", a)
			}
		})
	}

	t.Run("missing-gauge", func(t *testing.T) {
		t.Parallel()
		srv := metricsServer(t, "vllm:num_requests_running 2\n", nil)
		p, err := upstream.NewLoadPoller(sluice.Upstream{BaseURL: srv.URL, Load: &sluice.UpstreamLoad{Metrics: "vllm"}}, upstream.NewGate(upstream.GateConfig{Ceiling: 8}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if l, err := p.Read(t.Context()); err == nil {
			t.Errorf("got %+v, want an error naming vllm:num_requests_waiting", l)
		}
	})

	t.Run("key-not-sent-elsewhere", func(t *testing.T) {
		t.Parallel()
		auth := make(chan string, 1)
		srv := metricsServer(t, "vllm:num_requests_running 2\nvllm:num_requests_waiting 0\n", auth)
		up := sluice.Upstream{BaseURL: "http://127.0.0.1:1/v1", APIKey: "k", Load: &sluice.UpstreamLoad{Metrics: "vllm", URL: srv.URL + "/metrics"}}
		p, err := upstream.NewLoadPoller(up, upstream.NewGate(upstream.GateConfig{Ceiling: 8}), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Read(t.Context()); err != nil {
			t.Fatal(err)
		}
		if a := <-auth; a != "" {
			t.Errorf("got Authorization %q at another host, want none", a)
		}
	})

	t.Run("unknown-kind", func(t *testing.T) {
		t.Parallel()
		_, err := upstream.NewLoadPoller(sluice.Upstream{BaseURL: "http://a/v1", Load: &sluice.UpstreamLoad{Metrics: "tgi"}}, upstream.NewGate(upstream.GateConfig{Ceiling: 8}), nil)
		if err == nil {
			t.Error("got no error for metrics tgi")
		}
	})
}

// The simulator's vLLM gauges count every caller's requests, running and queued: here
// a "batch" and an "online" client, each with its own connections.
func TestLoadPollerReadsTheSimulatorsQueue(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{Latency: time.Hour, Capacity: 3})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	p, err := upstream.NewLoadPoller(sluice.Upstream{BaseURL: srv.URL + "/v1", Load: &sluice.UpstreamLoad{Metrics: "vllm"}}, upstream.NewGate(upstream.GateConfig{Ceiling: 8}), nil)
	if err != nil {
		t.Fatal(err)
	}
	send := func(ctx context.Context, n int) {
		c := &http.Client{Transport: &http.Transport{}}
		t.Cleanup(c.CloseIdleConnections)
		for range n {
			go func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/chat/completions",
					strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`))
				if resp, err := c.Do(req); err == nil {
					resp.Body.Close()
				}
			}()
		}
	}
	batch, stopBatch := context.WithCancel(t.Context())
	defer stopBatch()
	online, stopOnline := context.WithCancel(t.Context())
	defer stopOnline()
	send(batch, 4)
	send(online, 2)
	waitLoad(t, p, upstream.Load{Running: 3, Waiting: 3, CacheUsage: -1})
	stopOnline() // two leave, running or waiting: a waiting request takes a freed slot
	waitLoad(t, p, upstream.Load{Running: 3, Waiting: 1, CacheUsage: -1})
	stopBatch()
	waitLoad(t, p, upstream.Load{CacheUsage: -1})
}

// waitLoad reads p until it reads want, for at most 10 seconds.
func waitLoad(t *testing.T, p *upstream.LoadPoller, want upstream.Load) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := p.Read(t.Context())
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %+v (error %v) after 10s, want %+v", got, err, want)
		}
		time.Sleep(time.Millisecond) // polling, not waiting for a duration
	}
}

// Run hands each read to the gate.
func TestLoadPollerRun(t *testing.T) {
	t.Parallel()
	srv := metricsServer(t, "vllm:num_requests_running 8\nvllm:num_requests_waiting 3\n", nil)
	g := upstream.NewGate(upstream.GateConfig{Floor: 1, Ceiling: 8})
	for range 20 { // slow start to the ceiling
		g.Acquire(context.Background())
		g.Release(false, upstream.Success, time.Millisecond, 1, 0)
	}
	p, err := upstream.NewLoadPoller(sluice.Upstream{BaseURL: srv.URL + "/v1", Load: &sluice.UpstreamLoad{Metrics: "vllm", Interval: 10 * time.Millisecond, Headroom: 1}}, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for g.Limit() != 1 { // 8 slots less 11 others' requests less 1: the floor
		if time.Now().After(deadline) {
			t.Fatalf("limit %d after 10s, want it down to the floor 1", g.Limit())
		}
		time.Sleep(time.Millisecond) // polling, not waiting for a duration
	}
}
