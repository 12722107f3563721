// Command interference is benchmark P5: what a Sluice batch does to online traffic on
// an inference server they share. The simulator runs its shared-capacity model
// (`sluice sim --capacity C --slowdown S ...`): C slots for every caller, a FIFO queue
// beyond them, and generation that slows as more requests are served. An online load
// (`sluice sim load`, Poisson arrivals) at -online of the server's capacity is sent to
// it alone first, then again, with the same seed and so the same requests at the same
// offsets, while a Sluice batch runs against the same simulator.
//
//	go build -o /tmp/sluice ./cmd/sluice && go run ./bench/interference -sluice /tmp/sluice
//
// Reported per simulator slowdown and gate setting:
//
//   - capacity: the simulator's most lines a second, measured first with 2C closed-loop
//     workers sending the same kind of request (and the model's figure beside it);
//   - the online rate, -online times the capacity, and its p50 and p99 latency alone
//     and with the batch, and the ratio of the p99s (goal: at most 1.15);
//   - the batch's lines a second while the online load runs, counted by the simulator
//     (its completions less the online ones), and their share of the capacity the
//     online load leaves: batch / (capacity − online rate) (goal: at least 0.8);
//   - the simulator's mean running and waiting requests over the window (sampled every
//     50 ms), and the online load's mean in flight (Little's law), whose difference is
//     the batch's.
//
// Sluice is configured with a config file whose one upstream is the simulator:
// "adaptive" sets min_concurrency 1 and max_concurrency C, so the gate's limit adapts;
// "fixed" sets max_concurrency C only. The batch starts first and runs -warmup before
// the online load starts, so the gate has settled; it has more lines than the window
// can finish, and sluice is stopped at the end of the window. Every request, online and
// batch, asks for -max-tokens tokens and gets them (the simulator runs with a large
// --max-tokens, so no answer ends early), so they cost the same.
//
// With -upstream the server is a real one instead (its base URL, with /v1; -model names
// its model), such as the Ollama that scripts/ollama.sh starts; -capacity is then only
// the ceiling of the adaptive and fixed modes, and half the workers of the capacity
// probe. The online load goes straight to the server. A real server has
// no /stats: the batch's rate is read from the batch's own counts, the server is given
// a second to drain between steps, and its running and waiting requests are not known.
//
//	OLLAMA_NUM_PARALLEL=2 bash scripts/ollama.sh sh -c 'go run ./bench/interference -sluice /tmp/sluice -upstream $OLLAMA_URL/v1 -model $OLLAMA_MODEL -capacity 2 -modes adaptive:16,fixed:2 -max-tokens 16 -duration 60s'
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "interference:", err)
		os.Exit(1)
	}
}

type config struct {
	bin       string
	upstream  string // a real server's base URL; "" runs the simulator
	model     string // the model the real server is sent
	capacity  int
	latency   time.Duration
	tps       float64
	maxTokens int
	online    float64
	duration  time.Duration
	warmup    time.Duration
	probe     time.Duration
	lines     int
	seed      int64
	load      string // the load block of mode metrics
	stderr    io.Writer
}

func run() error {
	var (
		cfg       config
		slowdowns = flag.String("slowdowns", "0.02,0", "simulator slowdowns to measure, comma-separated")
		modes     = flag.String("modes", "adaptive,fixed", "gate settings to measure, comma-separated: adaptive (min_concurrency 1, max_concurrency C), adaptive:N (1 to N), fixed (max_concurrency C), fixed:N (max_concurrency N)")
		verbose   = flag.Bool("v", false, "show the logs of sluice and the simulator")
	)
	flag.StringVar(&cfg.bin, "sluice", "sluice", "path of the sluice binary")
	flag.StringVar(&cfg.upstream, "upstream", "", "base URL (with /v1) of a real OpenAI-compatible server to use instead of the simulator")
	flag.StringVar(&cfg.model, "model", "", "with -upstream: the model to send it")
	flag.IntVar(&cfg.capacity, "capacity", 64, "the simulator's slots, and Sluice's max_concurrency")
	flag.DurationVar(&cfg.latency, "latency", 10*time.Millisecond, "the simulator's time to first token")
	flag.Float64Var(&cfg.tps, "tps", 1000, "the simulator's tokens a second for a request served alone")
	flag.IntVar(&cfg.maxTokens, "max-tokens", 32, "max_tokens of every request, online and batch")
	flag.Float64Var(&cfg.online, "online", 0.3, "the online load as a share of the simulator's capacity in requests a second")
	flag.DurationVar(&cfg.duration, "duration", 20*time.Second, "how long the online load runs, alone and with the batch")
	flag.DurationVar(&cfg.warmup, "warmup", 5*time.Second, "how long the batch runs before the online load starts")
	flag.DurationVar(&cfg.probe, "probe", 5*time.Second, "how long the capacity is measured")
	flag.IntVar(&cfg.lines, "lines", 60000, "lines in the batch: more than the window can finish")
	flag.Int64Var(&cfg.seed, "seed", 1, "seed of the online load")
	flag.StringVar(&cfg.load, "load", "{metrics: vllm}", "the upstream's load block in mode metrics, in YAML; -modes also takes metrics (adaptive, reading the simulator's vLLM gauges) and latency:T (adaptive, latency_tolerance T)")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if cfg.capacity < 1 || cfg.tps <= 0 || cfg.maxTokens < 1 || !(cfg.online > 0 && cfg.online < 1) || cfg.lines < 1 {
		return errors.New("-capacity, -tps, -max-tokens and -lines must be positive, and -online between 0 and 1")
	}
	cfg.stderr = io.Discard
	if *verbose {
		cfg.stderr = os.Stderr
	}
	var modeList []string
	for _, m := range strings.Split(*modes, ",") {
		if _, _, err := gate(baseMode(m), cfg.capacity); err != nil {
			return err
		}
		modeList = append(modeList, m)
	}
	if cfg.upstream != "" {
		if cfg.model == "" {
			return errors.New("-upstream needs -model")
		}
		cfg.upstream = strings.TrimRight(cfg.upstream, "/")
		rows, err := measureOn(cfg, cfg.upstream, cfg.model, nil, modeList)
		if err != nil {
			return err
		}
		fmt.Printf("| upstream | gate | capacity lines/s | online lines/s | online p50 ms alone → with batch | online p99 ms alone → with batch | **p99 ratio** | batch lines/s | capacity left lines/s | **share of it used** | online in flight (mean) |\n")
		fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, r := range rows {
			left := r.capacity - r.onlineRate
			fmt.Printf("| %s | %s | %.2f | %.2f | %.1f → %.1f | %.1f → %.1f | **%.2f** | %.2f | %.2f | **%.2f** | %.1f |\n",
				cfg.model, r.mode, r.capacity, r.onlineRate, r.alone.LatencyMS.P50, r.loaded.LatencyMS.P50,
				r.alone.LatencyMS.P99, r.loaded.LatencyMS.P99, r.loaded.LatencyMS.P99/r.alone.LatencyMS.P99,
				r.batchRate, left, r.batchRate/left, r.loaded.MeanInFlight)
		}
		return nil
	}
	var rows []row
	for _, sd := range strings.Split(*slowdowns, ",") {
		slowdown, err := strconv.ParseFloat(sd, 64)
		if err != nil || slowdown < 0 {
			return fmt.Errorf("-slowdowns: %q is not a number at least 0", sd)
		}
		r, err := measure(cfg, slowdown, modeList)
		if err != nil {
			return fmt.Errorf("slowdown %g: %w", slowdown, err)
		}
		rows = append(rows, r...)
	}
	fmt.Printf("| sim slowdown | gate | capacity lines/s (model) | online lines/s | online p50 ms alone → with batch | online p99 ms alone → with batch | **p99 ratio** | batch lines/s | capacity left lines/s | **share of it used** | sim running / waiting (mean) | in flight: online / batch (mean) |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		left := r.capacity - r.onlineRate
		fmt.Printf("| %g | %s | %.0f (%.0f) | %.0f | %.1f → %.1f | %.1f → %.1f | **%.2f** | %.0f | %.0f | **%.2f** | %.1f / %.1f | %.1f / %.1f |\n",
			r.slowdown, r.mode, r.capacity, r.model, r.onlineRate, r.alone.LatencyMS.P50, r.loaded.LatencyMS.P50,
			r.alone.LatencyMS.P99, r.loaded.LatencyMS.P99, r.loaded.LatencyMS.P99/r.alone.LatencyMS.P99,
			r.batchRate, left, r.batchRate/left, r.running, r.waiting, r.loaded.MeanInFlight, r.running+r.waiting-r.loaded.MeanInFlight)
	}
	return nil
}

// row is one measurement: a gate setting at a slowdown.
type row struct {
	slowdown         float64
	mode             string
	capacity, model  float64 // lines a second, measured and by the model
	onlineRate       float64 // online answers a second with the batch
	alone, loaded    *loadReport
	batchRate        float64
	running, waiting float64 // the simulator's, mean over the window
}

// measure runs the simulator at one slowdown and each gate setting against it.
func measure(cfg config, slowdown float64, modes []string) ([]row, error) {
	sim, err := harness.Start(cfg.bin, `sluice sim listening on (http://\S+)`, &harness.Options{Stderr: cfg.stderr},
		"sim", "--addr", "127.0.0.1:0", "--capacity", strconv.Itoa(cfg.capacity), "--latency", cfg.latency.String(),
		"--tokens-per-second", strconv.FormatFloat(cfg.tps, 'g', -1, 64), "--slowdown", strconv.FormatFloat(slowdown, 'g', -1, 64),
		"--max-tokens", "100000")
	if err != nil {
		return nil, err
	}
	defer sim.Stop()

	// The model's capacity: C requests, each its latency plus its tokens at the speed
	// of a full server.
	full := cfg.tps / (1 + slowdown*float64(cfg.capacity-1))
	model := float64(cfg.capacity) / (cfg.latency.Seconds() + float64(cfg.maxTokens)/full)
	rows, err := measureOn(cfg, sim.URL, fmt.Sprintf("slowdown %g", slowdown), &model, modes)
	for i := range rows {
		rows[i].slowdown = slowdown
	}
	return rows, err
}

// measureOn measures each gate setting against the server at url, which label names in
// the log; model is the simulator's capacity by its model, nil for a real server.
func measureOn(cfg config, url, label string, model *float64, modes []string) ([]row, error) {
	capacity, err := probe(cfg, url)
	if err != nil {
		return nil, fmt.Errorf("capacity: %w", err)
	}
	rate := cfg.online * capacity
	if model != nil {
		fmt.Fprintf(os.Stderr, "%s: capacity %.0f lines/s measured, %.0f by the model; online load %.0f/s\n", label, capacity, *model, rate)
	} else {
		fmt.Fprintf(os.Stderr, "%s: capacity %.2f lines/s measured; online load %.2f/s\n", label, capacity, rate)
	}

	var rows []row
	for _, mode := range modes {
		if err := waitIdle(cfg, url); err != nil {
			return nil, err
		}
		alone, err := load(cfg, url, rate)
		if err != nil {
			return nil, fmt.Errorf("online load alone: %w", err)
		}
		if alone.OK != alone.Sent {
			return nil, fmt.Errorf("online load alone: %d of %d answered 2xx: %v %s", alone.OK, alone.Sent, alone.Statuses, alone.FirstError)
		}
		r, err := withBatch(cfg, url, mode, rate)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		r.mode, r.capacity, r.alone = mode, capacity, alone
		if model != nil {
			r.model = *model
		}
		fmt.Fprintf(os.Stderr, "%s, %s: online p99 %.1f ms alone, %.1f ms with the batch (%.2f); batch %.2f lines/s, %.2f of the %.2f left; sim running %.1f, waiting %.1f\n",
			label, mode, alone.LatencyMS.P99, r.loaded.LatencyMS.P99, r.loaded.LatencyMS.P99/alone.LatencyMS.P99,
			r.batchRate, r.batchRate/(capacity-r.onlineRate), capacity-r.onlineRate, r.running, r.waiting)
		rows = append(rows, r)
	}
	return rows, nil
}

// probe measures the simulator's capacity: lines a second with twice as many
// closed-loop workers as it has slots, so that every slot is always taken.
func probe(cfg config, simURL string) (float64, error) {
	workers := 2 * cfg.capacity
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: workers, MaxIdleConnsPerHost: workers}}
	defer hc.CloseIdleConnections()
	const fill = time.Second // the first second fills the queue; the count runs from then on
	ctx, cancel := context.WithTimeout(context.Background(), fill+cfg.probe)
	defer cancel()
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Probe %d of worker %d."}],"max_tokens":%d}`, cmp.Or(cfg.model, "probe"), i, w, cfg.maxTokens)
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, simURL+"/chat/completions", strings.NewReader(body))
				if err != nil {
					failed.Add(1)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		}()
	}
	time.Sleep(fill)
	n0, start := done.Load(), time.Now()
	<-ctx.Done()
	n := done.Load() - n0
	elapsed := time.Since(start)
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d probe requests failed", f)
	}
	return float64(n) / elapsed.Seconds(), waitIdle(cfg, simURL)
}

// loadReport is the part of `sluice sim load`'s report the benchmark reads.
type loadReport struct {
	Sent         int64            `json:"sent"`
	OK           int64            `json:"ok"`
	Statuses     map[string]int64 `json:"statuses"`
	MeanInFlight float64          `json:"mean_in_flight"`
	Duration     float64          `json:"duration_s"`
	FirstError   string           `json:"first_error"`
	LatencyMS    struct {
		P50, P95, P99, Max float64
	} `json:"latency_ms"`
}

// load runs `sluice sim load` against the simulator and returns its report.
func load(cfg config, simURL string, rate float64) (*loadReport, error) {
	cmd := exec.Command(cfg.bin, "sim", "load", "--url", simURL, "--rate", strconv.FormatFloat(rate, 'f', 3, 64),
		"--duration", cfg.duration.String(), "--seed", strconv.FormatInt(cfg.seed, 10), "--max-tokens", strconv.Itoa(cfg.maxTokens))
	if cfg.model != "" {
		cmd.Args = append(cmd.Args, "--model", cfg.model)
	}
	cmd.Stderr = cfg.stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("sluice sim load: %w", err)
	}
	var r loadReport
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("sluice sim load printed %q: %w", out, err)
	}
	return &r, nil
}

// simStats is the part of the simulator's GET /stats the benchmark reads.
type simStats struct {
	Completed int64 `json:"completed"`
	InFlight  int64 `json:"in_flight"`
	Running   int64 `json:"running"`
	Waiting   int64 `json:"waiting"`
}

func stats(simURL string) (simStats, error) {
	var st simStats
	resp, err := http.Get(simURL + "/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /stats: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// waitIdle waits until nothing is in flight at the simulator; a real server, which
// says nothing of it, is given a second (the requests of a stopped client are
// cancelled with their connections).
func waitIdle(cfg config, simURL string) error {
	if cfg.upstream != "" {
		time.Sleep(time.Second)
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := stats(simURL)
		if err != nil {
			return err
		}
		if st.InFlight == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the simulator still has %d requests in flight after 30s", st.InFlight)
		}
		time.Sleep(50 * time.Millisecond) // polling
	}
}

// withBatch starts sluice with the gate setting, starts the batch, and after the
// warm-up runs the online load beside it.
func withBatch(cfg config, simURL, mode string, rate float64) (row, error) {
	var r row
	lo, hi, err := gate(baseMode(mode), cfg.capacity)
	if err != nil {
		return r, err
	}
	up := fmt.Sprintf("max_concurrency: %d", hi)
	if lo < hi {
		up += fmt.Sprintf("\n        min_concurrency: %d", lo)
	}
	if cfg.model != "" {
		up += "\n        model: " + cfg.model
	}
	child, err := startServe(cfg.bin, fmt.Sprintf(`deployments:
  - name: %s
    upstreams:
      - base_url: %s
        %s
`, harness.Deployment, simURL, up+settings(mode, cfg.load)), cfg.stderr)
	if err != nil {
		return r, err
	}
	defer child.Stop()
	fail := func(err error) (row, error) {
		if exited := child.Exited(); exited != nil {
			err = fmt.Errorf("%w; %w", err, exited)
		}
		return r, err
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl := harness.NewClient(child.URL, 4)
	defer cl.HTTP.CloseIdleConnections()
	f, err := cl.Upload(ctx, "batch.jsonl", strings.NewReader(batchInput(cfg.lines, cfg.maxTokens)))
	if err != nil {
		return fail(err)
	}
	if f, err = cl.WaitProcessed(ctx, f, 20*time.Millisecond); err != nil {
		return fail(err)
	}
	b, err := cl.CreateBatch(ctx, f.ID)
	if err != nil {
		return fail(err)
	}
	for b.Status == "validating" {
		time.Sleep(20 * time.Millisecond) // polling
		if b, err = cl.Batch(ctx, b.ID); err != nil {
			return fail(err)
		}
	}
	if b.Status != "in_progress" {
		return fail(fmt.Errorf("want the batch in_progress: %s", b.Describe()))
	}
	time.Sleep(cfg.warmup) // the batch runs alone

	// A real server's completions are read from the batch; the simulator's from /stats.
	var before, after simStats
	done := func() (simStats, error) {
		if cfg.upstream == "" {
			return stats(simURL)
		}
		b, err := cl.Batch(ctx, b.ID)
		if err != nil {
			return simStats{}, err
		}
		return simStats{Completed: int64(b.RequestCounts.Completed)}, nil
	}
	if before, err = done(); err != nil {
		return fail(err)
	}
	var running, waiting, samples float64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		if cfg.upstream != "" {
			return
		}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if st, err := stats(simURL); err == nil {
				running, waiting, samples = running+float64(st.Running), waiting+float64(st.Waiting), samples+1
			}
		}
	}()
	t0 := time.Now()
	loaded, err := load(cfg, simURL, rate)
	elapsed := time.Since(t0)
	close(stop)
	<-sampled
	if err != nil {
		return fail(err)
	}
	if after, err = done(); err != nil {
		return fail(err)
	}
	if loaded.OK != loaded.Sent {
		return fail(fmt.Errorf("online load with the batch: %d of %d answered 2xx: %v %s", loaded.OK, loaded.Sent, loaded.Statuses, loaded.FirstError))
	}
	if b, err = cl.Batch(ctx, b.ID); err != nil {
		return fail(err)
	}
	if b.Status != "in_progress" {
		return fail(fmt.Errorf("the batch ended before the online load did (raise -lines): %s", b.Describe()))
	}
	r.loaded = loaded
	r.onlineRate = float64(loaded.OK) / loaded.Duration
	r.batchRate = float64(after.Completed-before.Completed) / elapsed.Seconds()
	if cfg.upstream == "" { // the simulator's count holds the online answers too
		r.batchRate -= float64(loaded.OK) / elapsed.Seconds()
	}
	if samples > 0 {
		r.running, r.waiting = running/samples, waiting/samples
	}
	return r, nil
}

// gate returns the min_concurrency and max_concurrency of a gate setting: adaptive
// (1 and capacity), adaptive:N (1 and N), fixed (capacity, capacity) or fixed:N (N, N).
func gate(mode string, capacity int) (lo, hi int, err error) {
	switch {
	case mode == "adaptive":
		return 1, capacity, nil
	case strings.HasPrefix(mode, "adaptive:"):
		n, err := strconv.Atoi(strings.TrimPrefix(mode, "adaptive:"))
		if err != nil || n < 2 {
			return 0, 0, fmt.Errorf("-modes: %q: want adaptive:N with N at least 2", mode)
		}
		return 1, n, nil
	case mode == "fixed":
		return capacity, capacity, nil
	case strings.HasPrefix(mode, "fixed:"):
		n, err := strconv.Atoi(strings.TrimPrefix(mode, "fixed:"))
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("-modes: %q: want fixed:N with N at least 1", mode)
		}
		return n, n, nil
	}
	return 0, 0, fmt.Errorf("-modes: %q is not adaptive, fixed or fixed:N", mode)
}

// batchInput is the batch: lines with a question each and max_tokens set.
func batchInput(n, maxTokens int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"%s","messages":[{"role":"user","content":"Batch item %d: describe it in a paragraph."}],"max_tokens":%d}}`+"\n",
			i, harness.Deployment, i, maxTokens)
	}
	return sb.String()
}

// startServe starts `sluice serve` with the config yaml on a fresh data folder; Stop
// removes both.
func startServe(bin, yaml string, stderr io.Writer) (*child, error) {
	dir, err := os.MkdirTemp("", "sluice-bench-*")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c, err := harness.Start(bin, `listening on (http://\S+)`, &harness.Options{Stderr: stderr},
		"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--config", path, "--log-level", "warn")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &child{Child: c, dir: dir}, nil
}

// child is a sluice serve with its temporary folder.
type child struct {
	*harness.Child
	dir string
}

func (c *child) Stop() {
	c.Child.Stop()
	os.RemoveAll(c.dir)
}

// baseMode is the gate setting whose concurrency bounds mode has: metrics and latency:T
// are fixed, made adaptive by settings.
func baseMode(mode string) string {
	if settings(mode, "") != "" {
		return "fixed"
	}
	return mode
}

// settings returns the upstream settings that mode adds, as YAML indented for the
// config: metrics, min_concurrency 1 and the load block; latency:T, min_concurrency 1
// and latency_tolerance T; "" for any other mode.
func settings(mode, load string) string {
	const adaptive = "\n        min_concurrency: 1"
	if t, ok := strings.CutPrefix(mode, "latency:"); ok {
		if v, err := strconv.ParseFloat(t, 64); err == nil && v > 1 {
			return adaptive + "\n        latency_tolerance: " + t
		}
	}
	if mode == "metrics" {
		return adaptive + "\n        load: " + load
	}
	return ""
}
