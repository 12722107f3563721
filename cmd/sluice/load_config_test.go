package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-batch/sluice"
)

func TestConfigUpstreamLoad(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/c.yaml"
	writeFile(t, path, `deployments:
  - name: d
    upstreams:
      - base_url: http://a:8000/v1
        max_concurrency: 64
        load: {metrics: vllm}
      - base_url: http://b:8000/v1
        min_concurrency: 2
        max_concurrency: 32
        latency_tolerance: 1.5
        load: {metrics: sglang, url: 'http://b:9090/metrics', interval: 1s, max_waiting: 2, headroom: 0, max_cache_usage: 0.95}
      - base_url: http://c:8000/v1
`)
	c, err := loadConfig(path, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	want := []sluice.Upstream{
		{BaseURL: "http://a:8000/v1", MaxConcurrency: 64, Load: &sluice.UpstreamLoad{Metrics: "vllm", Headroom: 4}},
		{BaseURL: "http://b:8000/v1", MinConcurrency: 2, MaxConcurrency: 32, LatencyTolerance: 1.5,
			Load: &sluice.UpstreamLoad{Metrics: "sglang", URL: "http://b:9090/metrics", Interval: time.Second, MaxWaiting: 2, MaxCacheUsage: 0.95}},
		{BaseURL: "http://c:8000/v1"},
	}
	if diff := cmp.Diff(want, c.domain()[0].Upstreams); diff != "" {
		t.Errorf("upstreams (-want +got):\n%s", diff)
	}
}

func TestConfigUpstreamLoadErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, upstream, want string }{
		{"low-tolerance", "latency_tolerance: 0.9", "deployments[0].upstreams[0].latency_tolerance"},
		{"unknown-metrics", "load: {metrics: tgi}", "deployments[0].upstreams[0].load.metrics"},
		{"no-metrics", "load: {interval: 1s}", "deployments[0].upstreams[0].load.metrics"},
		{"bad-url", "load: {metrics: vllm, url: 'localhost:9090'}", "deployments[0].upstreams[0].load.url"},
		{"short-interval", "load: {metrics: vllm, interval: 1ms}", "deployments[0].upstreams[0].load.interval"},
		{"negative-headroom", "load: {metrics: vllm, headroom: -1}", "deployments[0].upstreams[0].load.headroom"},
		{"negative-max-waiting", "load: {metrics: vllm, max_waiting: -1}", "deployments[0].upstreams[0].load.max_waiting"},
		{"cache-over-one", "load: {metrics: vllm, max_cache_usage: 95}", "deployments[0].upstreams[0].load.max_cache_usage"},
		{"unknown-field", "load: {metrics: vllm, slots: 64}", "slots"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := t.TempDir() + "/c.yaml"
			writeFile(t, path, "deployments:\n  - name: d\n    upstreams:\n      - base_url: http://a/v1\n        "+tc.upstream+"\n")
			err := run(context.Background(), []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--config", path},
				func(string) string { return "" }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
