package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

// Load is what an upstream's metrics say it is doing, every caller's requests
// together.
type Load struct {
	Waiting float64 // requests queued for a place in the server's batch
	Running float64 // requests being served
	// CacheUsage is the share of the KV cache in use, from 0 to 1, or -1 when the
	// server does not report it.
	CacheUsage float64
}

// gauges names the metrics of one server kind: the first of each list that the
// endpoint reports is read.
type gauges struct {
	waiting, running, cache []string
}

// metricsKinds are the servers whose metrics Sluice reads. vLLM renamed its cache
// gauge in 0.10; both names are read.
var metricsKinds = map[string]gauges{
	"vllm": {
		waiting: []string{"vllm:num_requests_waiting"},
		running: []string{"vllm:num_requests_running"},
		cache:   []string{"vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"},
	},
	"sglang": {
		waiting: []string{"sglang:num_queue_reqs"},
		running: []string{"sglang:num_running_reqs"},
		cache:   []string{"sglang:token_usage"},
	},
}

// MetricsKinds lists the values UpstreamLoad.Metrics takes.
func MetricsKinds() []string { return []string{"sglang", "vllm"} }

// ParseMetrics reads Prometheus's text exposition format and returns, for each of
// names, the sum of its samples over every label set (a server may report a gauge
// per model); a name with no sample is not in the map. Comments, other metrics and
// timestamps are skipped. It fails on a line it cannot read, and on input over
// 16 MiB.
//
// A small parser rather than prometheus/common's expfmt: Sluice needs three gauges
// by exact name, and expfmt builds every family as a protobuf message, which brings
// the protobuf runtime and client_model into the binary for it.
func ParseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(io.LimitReader(r, 16<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		name, value, err := parseSample(line)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w", n, err)
		}
		if want[name] {
			out[name] += value
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// parseSample splits a sample line, `name{label="value",...} value [timestamp]`,
// into its name and value. Label values may hold escaped quotes and braces.
func parseSample(line []byte) (string, float64, error) {
	i := bytes.IndexAny(line, "{ \t")
	if i <= 0 {
		return "", 0, errors.New("no value after the name")
	}
	name := string(line[:i])
	rest := line[i:]
	if rest[0] == '{' {
		end, err := labelsEnd(rest)
		if err != nil {
			return "", 0, err
		}
		rest = rest[end:]
	}
	fields := bytes.Fields(rest)
	if len(fields) == 0 || len(fields) > 2 {
		return "", 0, fmt.Errorf("%s: want a value and an optional timestamp", name)
	}
	v, err := parseValue(string(fields[0]))
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", name, err)
	}
	return name, v, nil
}

// labelsEnd returns the index just past the '}' that closes the label set b opens.
func labelsEnd(b []byte) (int, error) {
	quoted := false
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case quoted && c == '\\':
			i++ // the escaped byte
		case c == '"':
			quoted = !quoted
		case !quoted && c == '}':
			return i + 1, nil
		}
	}
	return 0, errors.New("labels not closed")
}

// parseValue reads a sample value: a Go float, or Prometheus's Nan, +Inf, -Inf.
func parseValue(s string) (float64, error) {
	switch strings.ToLower(s) {
	case "nan":
		return math.NaN(), nil
	case "+inf", "inf":
		return math.Inf(1), nil
	case "-inf":
		return math.Inf(-1), nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q is not a number", s)
	}
	return v, nil
}

// MetricsURL returns where an upstream's metrics are read: load.URL when set, else
// /metrics at the root of the base URL's host, where vLLM and SGLang serve them.
func MetricsURL(up sluice.Upstream) string {
	if up.Load != nil && up.Load.URL != "" {
		return up.Load.URL
	}
	base, _ := splitUserinfo(up.BaseURL)
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/metrics"}).String()
}

// DefaultLoadInterval is how often an upstream's metrics are read unless its load
// says otherwise.
const DefaultLoadInterval = 250 * time.Millisecond

// LoadPoller reads an upstream's metrics every interval and hands its load to the
// upstream's gate.
type LoadPoller struct {
	gate     *Gate
	url      string
	header   http.Header
	kind     gauges
	interval time.Duration
	hc       *http.Client
	log      *slog.Logger
}

// NewLoadPoller returns a poller of up's metrics for g; up.Load must be set, with a
// Metrics kind of MetricsKinds. The upstream's key is sent only when the metrics come
// from the base URL's host. logger may be nil.
func NewLoadPoller(up sluice.Upstream, g *Gate, logger *slog.Logger) (*LoadPoller, error) {
	if up.Load == nil {
		return nil, errors.New("the upstream reads no load")
	}
	kind, ok := metricsKinds[up.Load.Metrics]
	if !ok {
		return nil, fmt.Errorf("metrics %q: want one of %s", up.Load.Metrics, strings.Join(MetricsKinds(), ", "))
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	p := &LoadPoller{gate: g, url: MetricsURL(up), kind: kind, interval: up.Load.Interval, log: logger, header: http.Header{}}
	if p.interval <= 0 {
		p.interval = DefaultLoadInterval
	}
	// A read that takes longer than a few intervals says nothing about now.
	p.hc = &http.Client{Timeout: max(time.Second, 4*p.interval)}
	c := NewClient(up, &http.Client{}) // for its base URL and header; its transport is not used
	if sameHost(p.url, c.base) {
		if a := c.header.Get("Authorization"); a != "" {
			p.header.Set("Authorization", a)
		}
	}
	return p, nil
}

func sameHost(a, b string) bool {
	ua, err1 := url.Parse(a)
	ub, err2 := url.Parse(b)
	return err1 == nil && err2 == nil && ua.Scheme == ub.Scheme && ua.Host == ub.Host
}

// lostAfter is how many reads in a row must fail before the gate forgets the load.
const lostAfter = 3

// Run reads the metrics until ctx ends. After lostAfter failed reads in a row the
// gate forgets the load, and the latency signal alone guides it until a read
// succeeds again; the change is logged each way, not every failure.
func (p *LoadPoller) Run(ctx context.Context) {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	fails := 0
	for {
		l, err := p.Read(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			fails++
			if fails == lostAfter {
				p.gate.ForgetLoad()
				p.log.WarnContext(ctx, "upstream load unknown; the latency signal alone guides the limit", "url", Redact(p.url), "err", err)
			}
		default:
			if fails >= lostAfter {
				p.log.InfoContext(ctx, "upstream load read again", "url", Redact(p.url))
			}
			fails = 0
			p.gate.ObserveLoad(l)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Read reads the metrics once.
func (p *LoadPoller) Read(ctx context.Context) (Load, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return Load{}, err
	}
	for k, v := range p.header {
		req.Header[k] = v
	}
	resp, err := p.hc.Do(req)
	if err != nil {
		return Load{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return Load{}, fmt.Errorf("GET metrics: %s", resp.Status)
	}
	names := append(append(append([]string(nil), p.kind.waiting...), p.kind.running...), p.kind.cache...)
	m, err := ParseMetrics(resp.Body, names...)
	if err != nil {
		return Load{}, err
	}
	return p.kind.load(m)
}

// load picks the gauges of a kind out of parsed metrics.
func (k gauges) load(m map[string]float64) (Load, error) {
	first := func(names []string) (float64, bool) {
		for _, n := range names {
			if v, ok := m[n]; ok {
				return v, true
			}
		}
		return 0, false
	}
	l := Load{CacheUsage: -1}
	var ok bool
	if l.Waiting, ok = first(k.waiting); !ok {
		return Load{}, fmt.Errorf("the metrics have no %s", k.waiting[0])
	}
	if l.Running, ok = first(k.running); !ok {
		return Load{}, fmt.Errorf("the metrics have no %s", k.running[0])
	}
	if c, ok := first(k.cache); ok {
		l.CacheUsage = c
	}
	if math.IsNaN(l.Waiting) || math.IsNaN(l.Running) || l.Waiting < 0 || l.Running < 0 {
		return Load{}, fmt.Errorf("the metrics say %g waiting and %g running", l.Waiting, l.Running)
	}
	return l, nil
}
