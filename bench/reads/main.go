// Command reads measures how fast Sluice answers GET /v1/batches/{id} while a large
// batch runs, as a ratio to the same load on the same server against the same batch
// once it has completed and the server is idle, measured in the same run.
//
//	go build -o /tmp/sluice ./cmd/sluice && go run ./bench/reads -sluice /tmp/sluice -lines 100000 -rate 1000
//
// The load is open-loop: a ticker launches each request in its own goroutine at -rate
// requests a second, catching up on ticks it missed, so slow answers do not lower the
// offered rate. The busy run starts as soon as the batch is in_progress and ends when an
// answer says it has completed; the idle run lasts as long, at most -idle-max. It prints
// one markdown table row per run; every request's latency counts.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "reads:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		bin         = flag.String("sluice", "sluice", "path of the sluice binary")
		lines       = flag.Int("lines", 100000, "lines in the batch")
		rate        = flag.Float64("rate", 1000, "GET requests a second, open-loop")
		concurrency = flag.Int("concurrency", 64, "sluice's --upstream-concurrency")
		latency     = flag.String("latency", "0s", "simulator latency per request")
		idleMax     = flag.Duration("idle-max", 10*time.Second, "longest idle run")
		timeout     = flag.Duration("timeout", 30*time.Minute, "longest the batch may take")
		serveArgs   = flag.String("serve-args", "", "extra arguments for `sluice serve`, split on spaces")
		serveEnv    = flag.String("serve-env", "", "environment for `sluice serve` only, split on spaces, e.g. \"GOGC=800\"")
		verbose     = flag.Bool("v", false, "show the logs of sluice and the simulator")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *lines < 1 || *rate <= 0 || *idleMax <= 0 {
		return errors.New("-lines, -rate and -idle-max must be positive")
	}
	var stderr io.Writer = io.Discard
	if *verbose {
		stderr = os.Stderr
	}

	sim, err := harness.StartSim(*bin, *latency, stderr)
	if err != nil {
		return err
	}
	defer sim.Stop()
	child, err := harness.StartServe(harness.Serve{Bin: *bin, Upstream: sim.URL, Deployment: harness.Deployment,
		Concurrency: *concurrency, Args: strings.Fields(*serveArgs), Env: strings.Fields(*serveEnv), Stderr: stderr})
	if err != nil {
		return err
	}
	defer child.Stop()
	busy, idle, err := measure(child, *lines, *rate, *idleMax, *timeout)
	if err != nil {
		if exited := child.Exited(); exited != nil {
			err = fmt.Errorf("%w; %w", err, exited)
		}
		return err
	}

	fmt.Printf("| server | lines | s | offered req/s | achieved req/s | p50 ms | p99 ms | p99.9 ms | max ms | failed requests | p99 / idle p99 |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range []struct {
		name string
		l    *loadResult
	}{{"batch in progress", busy}, {"idle, batch completed", idle}} {
		fmt.Printf("| %s | %d | %.1f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %d | %.2f |\n",
			r.name, *lines, r.l.window.Seconds(), *rate, r.l.achieved(), ms(r.l.percentile(50)), ms(r.l.percentile(99)),
			ms(r.l.percentile(99.9)), ms(r.l.percentile(100)), r.l.failed, ms(r.l.percentile(99))/ms(idle.percentile(99)))
	}
	if busy.failed+idle.failed > 0 {
		return fmt.Errorf("%d requests failed; the first: %s", busy.failed+idle.failed, cmpOr(busy.firstErr, idle.firstErr))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// measure uploads and starts the batch, loads the server while it runs, waits for the
// server to go quiet, and loads it again.
func measure(child *harness.Child, lines int, rate float64, idleMax, timeout time.Duration) (busy, idle *loadResult, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cl := harness.NewClient(child.URL, 4)
	f, err := cl.Upload(ctx, "reads.jsonl", bytes.NewReader(harness.Requests(lines)))
	if err != nil {
		return nil, nil, err
	}
	if f, err = cl.WaitProcessed(ctx, f, 10*time.Millisecond); err != nil {
		return nil, nil, err
	}
	b, err := cl.CreateBatch(ctx, f.ID)
	if err != nil {
		return nil, nil, err
	}
	for b.Status == "validating" {
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("still validating after %s: %s", timeout, b.Describe())
		case <-time.After(10 * time.Millisecond):
		}
		if b, err = cl.Batch(ctx, b.ID); err != nil {
			return nil, nil, err
		}
	}
	if b.Terminal() {
		return nil, nil, fmt.Errorf("the batch ended before the load began (use more -lines): %s", b.Describe())
	}

	// Enough idle connections that answers slower than the interval never close one.
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}}
	defer hc.CloseIdleConnections()
	url := child.URL + "/v1/batches/" + b.ID
	exited := func() bool { return child.Exited() != nil }
	busy = load(ctx, hc, url, rate, 0, true, exited)
	if busy.status != "completed" {
		why := "the batch did not complete"
		if ctx.Err() != nil {
			why += " in " + timeout.String()
		}
		if b, err := cl.Batch(context.Background(), b.ID); err == nil {
			return nil, nil, fmt.Errorf("%s: %s", why, b.Describe())
		}
		return nil, nil, fmt.Errorf("%s: %s", why, cmpOr(busy.firstErr, busy.status))
	}
	// The batch reads completed before its rows are cleaned up; idle means after that.
	quiet := waitQuiet(child, 10*time.Second)
	fmt.Fprintf(os.Stderr, "batch in progress: %d requests in %.1fs; sluice quiet %.1fs after completing\n",
		busy.sent, busy.window.Seconds(), quiet.Seconds())
	idle = load(ctx, hc, url, rate, min(busy.window, idleMax), false, exited)
	fmt.Fprintf(os.Stderr, "idle: %d requests in %.1fs\n", idle.sent, idle.window.Seconds())
	return busy, idle, nil
}

// waitQuiet waits until the child has used under 5% of a core for 300 ms, at most max,
// and returns how long that took.
func waitQuiet(child *harness.Child, max time.Duration) time.Duration {
	t0 := time.Now()
	for time.Since(t0) < max {
		c0 := child.CPU()
		time.Sleep(300 * time.Millisecond)
		if child.CPU()-c0 < 0.015 {
			break
		}
	}
	return time.Since(t0)
}

// loadResult is what one run of load saw.
type loadResult struct {
	sent      int
	window    time.Duration   // from the first request sent to the last
	answered  time.Duration   // from the first request sent to the last answer
	latencies []time.Duration // of the answered requests, sorted
	failed    int
	firstErr  string
	status    string // the batch status in the last answer read, when watching
}

func (l *loadResult) percentile(p float64) time.Duration { return harness.Percentile(l.latencies, p) }

// achieved returns the answered requests per second.
func (l *loadResult) achieved() float64 {
	return float64(len(l.latencies)) / l.answered.Seconds()
}

// load sends GET url at rate requests a second, each in its own goroutine, for d, or
// with watch until an answer shows the batch in a terminal state; in any case until
// halt returns true. It returns once every request sent has been answered.
func load(ctx context.Context, hc *http.Client, url string, rate float64, d time.Duration, watch bool, halt func() bool) *loadResult {
	var (
		mu       sync.Mutex
		res      = &loadResult{}
		lastDone time.Time
		wg       sync.WaitGroup
	)
	ended := make(chan struct{})
	var endOnce sync.Once
	get := func() {
		defer wg.Done()
		t := time.Now()
		status, err := getBatch(ctx, hc, url, watch)
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if now.After(lastDone) {
			lastDone = now
		}
		if err != nil {
			if res.failed == 0 {
				res.firstErr = err.Error()
			}
			res.failed++
			return
		}
		res.latencies = append(res.latencies, now.Sub(t))
		// An answer sent before the end may arrive after it; the end stands.
		if watch && !terminal(res.status) {
			res.status = status
			if terminal(status) {
				endOnce.Do(func() { close(ended) })
			}
		}
	}

	tick := time.NewTicker(max(time.Duration(float64(time.Second)/rate), time.Millisecond))
	defer tick.Stop()
	start := time.Now()
send:
	for {
		elapsed := time.Since(start)
		if d > 0 && elapsed >= d || halt() {
			break
		}
		// Requests due by now, the first at once; missed ticks are made up here.
		for due := int(elapsed.Seconds()*rate) + 1; res.sent < due; res.sent++ {
			wg.Add(1)
			go get()
		}
		select {
		case <-tick.C:
		case <-ended:
			break send
		case <-ctx.Done():
			break send
		}
	}
	res.window = time.Since(start)
	wg.Wait()
	res.answered = lastDone.Sub(start)
	slices.Sort(res.latencies)
	return res
}

func terminal(status string) bool {
	switch status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

// getBatch sends one GET and reads the answer whole; with watch it returns the status.
func getBatch(ctx context.Context, hc *http.Client, url string, watch bool) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s %.200s", url, resp.Status, body)
	}
	if !watch {
		return "", nil
	}
	var b struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	return b.Status, nil
}
