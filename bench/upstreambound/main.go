// Command upstreambound is benchmark P4: Sluice against an upstream that is the
// bottleneck. The simulator serves -slots requests at once, each for -latency (its
// shared-capacity model with no slowdown: `sluice sim --capacity 64 --latency 50ms`),
// so no client can do better than slots / latency lines a second: 64 / 50 ms = 1,280.
// Sluice's rate is reported as a ratio to that ideal, beside a plain HTTP client with
// as many workers against the same simulator process.
//
//	go build -o /tmp/sluice ./cmd/sluice && go run ./bench/upstreambound -sluice /tmp/sluice
//
// Sluice is configured with a config file whose one upstream is the simulator, with
// max_concurrency equal to the slots: "fixed" sets only that, "adaptive" also sets
// min_concurrency 1, so the gate's limit starts at 1 and must find the ceiling itself.
// Each round starts a fresh `sluice serve` on a fresh data folder, and the clock runs
// from the first byte of the upload until the result files are read to the end and
// hold each custom_id exactly once; the time from in_progress to completed is
// reported too. Medians of -rounds. It prints one markdown table. The simulator's
// answers are 5 to 16 tokens long unless -sim-args says otherwise ("--max-tokens
// 100000" makes every answer as long as its max_tokens, 16): the time of a request
// does not depend on its length, which the adaptive gate's latency signal notices.
//
// With -upstream the batch goes to a real server instead (its base URL, with /v1; -model
// names its model, which every request is sent with), such as the Ollama that
// scripts/ollama.sh starts. Its capacity is not known beforehand: the plain client
// with -slots workers measures it in each round, and Sluice is reported as a ratio to
// that.
//
//	OLLAMA_NUM_PARALLEL=2 bash scripts/ollama.sh sh -c 'go run ./bench/upstreambound -sluice /tmp/sluice -upstream $OLLAMA_URL/v1 -model $OLLAMA_MODEL -slots 8 -lines 600'
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
		fmt.Fprintln(os.Stderr, "upstreambound:", err)
		os.Exit(1)
	}
}

type config struct {
	bin      string
	upstream string // a real server's base URL; "" starts the simulator
	model    string // the model the upstream is sent
	lines    int
	slots    int
	latency  time.Duration
	poll     time.Duration
	timeout  time.Duration
	stderr   io.Writer
}

func run() error {
	var (
		cfg     config
		rounds  = flag.Int("rounds", 3, "measurements of each side; medians are reported")
		modes   = flag.String("modes", "fixed,adaptive", "gate settings to measure, comma-separated: fixed (max_concurrency = slots) and adaptive (min_concurrency 1 too)")
		simArgs = flag.String("sim-args", "", "extra arguments for `sluice sim`, split on spaces, e.g. \"--max-tokens 100000\"")
		verbose = flag.Bool("v", false, "show the logs of sluice and the simulator")
	)
	flag.StringVar(&cfg.bin, "sluice", "sluice", "path of the sluice binary")
	flag.StringVar(&cfg.upstream, "upstream", "", "base URL (with /v1) of a real OpenAI-compatible server to use instead of the simulator")
	flag.StringVar(&cfg.model, "model", "", "with -upstream: the model to send it")
	flag.IntVar(&cfg.lines, "lines", 20000, "lines in the batch")
	flag.IntVar(&cfg.slots, "slots", 64, "the simulator's capacity, and Sluice's max_concurrency")
	flag.DurationVar(&cfg.latency, "latency", 50*time.Millisecond, "the simulator's time per request")
	flag.DurationVar(&cfg.poll, "poll", 10*time.Millisecond, "interval between polls of the file and batch")
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Minute, "longest a round may take")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *rounds < 1 || cfg.lines < 1 || cfg.slots < 1 || cfg.latency <= 0 {
		return errors.New("-rounds, -lines, -slots and -latency must be positive")
	}
	cfg.stderr = io.Discard
	if *verbose {
		cfg.stderr = os.Stderr
	}
	var modeList []string
	for _, m := range strings.Split(*modes, ",") {
		if m != "fixed" && m != "adaptive" && settings(m) == "" {
			return fmt.Errorf("-modes: %q is not fixed or adaptive", m)
		}
		modeList = append(modeList, m)
	}

	upURL := strings.TrimRight(cfg.upstream, "/")
	if upURL == "" {
		sim, err := harness.Start(cfg.bin, `sluice sim listening on (http://\S+)`, &harness.Options{Stderr: cfg.stderr},
			append([]string{"sim", "--addr", "127.0.0.1:0", "--capacity", strconv.Itoa(cfg.slots), "--latency", cfg.latency.String()},
				strings.Fields(*simArgs)...)...)
		if err != nil {
			return err
		}
		defer sim.Stop()
		upURL = sim.URL
	} else if cfg.model == "" {
		return errors.New("-upstream needs -model")
	}

	input := harness.Requests(cfg.lines)
	ideal := float64(cfg.slots) / cfg.latency.Seconds()
	var plain []float64
	runs := map[string][]sluiceRun{}
	for r := range *rounds {
		p, err := plainClient(upURL, cfg.model, input, cfg.slots)
		if err != nil {
			return fmt.Errorf("round %d: plain client: %w", r+1, err)
		}
		plain = append(plain, float64(cfg.lines)/p.Seconds())
		if cfg.upstream != "" {
			ideal = plain[r] // the server's capacity is what the plain client gets
		}
		fmt.Fprintf(os.Stderr, "round %d: plain %.2fs (%.1f lines/s, %.3f of ideal)\n", r+1, p.Seconds(), plain[r], plain[r]/ideal)
		for _, mode := range modeList {
			s, err := sluiceRound(cfg, upURL, mode, input)
			if err != nil {
				return fmt.Errorf("round %d: sluice %s: %w", r+1, mode, err)
			}
			runs[mode] = append(runs[mode], s)
			fmt.Fprintf(os.Stderr, "round %d: sluice %s %.2fs (%.0f lines/s, %.3f of ideal); in_progress to completed %.2fs (%.0f lines/s); sim max running %d, max waiting %d\n",
				r+1, mode, s.total.Seconds(), float64(cfg.lines)/s.total.Seconds(), float64(cfg.lines)/s.total.Seconds()/ideal,
				s.dispatch.Seconds(), float64(cfg.lines)/s.dispatch.Seconds(), s.maxRunning, s.maxWaiting)
		}
	}

	plainRate := harness.Median(plain)
	if cfg.upstream != "" {
		fmt.Printf("| lines | upstream | plain client lines/s (%d workers) | gate | sluice lines/s, upload to download | **sluice / plain** | sluice lines/s, in_progress to completed | dispatch / plain | the rounds (sluice / plain) |\n", cfg.slots)
		fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
		for _, mode := range modeList {
			total := harness.Median(rates(cfg.lines, runs[mode], func(s sluiceRun) time.Duration { return s.total }))
			dispatch := harness.Median(rates(cfg.lines, runs[mode], func(s sluiceRun) time.Duration { return s.dispatch }))
			var each []string
			for i, s := range runs[mode] {
				each = append(each, fmt.Sprintf("%.3f", float64(cfg.lines)/s.total.Seconds()/plain[i]))
			}
			fmt.Printf("| %d | %s | %.1f | %s | %.1f | **%.3f** | %.1f | %.3f | %s |\n",
				cfg.lines, cfg.model, plainRate, mode, total, total/plainRate, dispatch, dispatch/plainRate, strings.Join(each, ", "))
		}
		return nil
	}
	fmt.Printf("| lines | slots × latency | ideal lines/s | plain client lines/s | plain / ideal | gate | sluice lines/s, upload to download | **sluice / ideal** | sluice lines/s, in_progress to completed | dispatch / ideal |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, mode := range modeList {
		total := harness.Median(rates(cfg.lines, runs[mode], func(s sluiceRun) time.Duration { return s.total }))
		dispatch := harness.Median(rates(cfg.lines, runs[mode], func(s sluiceRun) time.Duration { return s.dispatch }))
		fmt.Printf("| %d | %d × %s | %.0f | %.0f | %.3f | %s | %.0f | **%.3f** | %.0f | %.3f |\n",
			cfg.lines, cfg.slots, cfg.latency, ideal, plainRate, plainRate/ideal, mode, total, total/ideal, dispatch, dispatch/ideal)
	}
	return nil
}

func rates(lines int, runs []sluiceRun, elapsed func(sluiceRun) time.Duration) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = float64(lines) / elapsed(r).Seconds()
	}
	return out
}

// plainClient sends every line's body to the simulator with concurrency workers and
// reads each answer whole; with a model, it sends that model instead of the line's.
func plainClient(simURL, model string, input []byte, concurrency int) (time.Duration, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency}}
	defer hc.CloseIdleConnections()
	lines := bytes.Split(bytes.TrimSpace(input), []byte("\n"))
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(lines)) {
					return
				}
				var line struct {
					Body json.RawMessage `json:"body"`
				}
				if json.Unmarshal(lines[i], &line) != nil {
					failed.Add(1)
					continue
				}
				if model != "" {
					line.Body = bytes.Replace(line.Body, []byte(`"model":"`+harness.Deployment+`"`), []byte(`"model":"`+model+`"`), 1)
				}
				resp, err := hc.Post(simURL+"/chat/completions", "application/json", bytes.NewReader(line.Body))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if f := failed.Load(); f > 0 {
		return elapsed, fmt.Errorf("%d of %d requests failed", f, len(lines))
	}
	return elapsed, nil
}

// sluiceRun is one measurement of Sluice.
type sluiceRun struct {
	total      time.Duration // the first byte of the upload to the last of the download
	dispatch   time.Duration // in_progress to completed, as polls see it
	maxRunning int64         // the simulator's, since it started
	maxWaiting int64
}

// sluiceRound starts a fresh sluice configured for mode and runs the batch through it.
func sluiceRound(cfg config, simURL, mode string, input []byte) (sluiceRun, error) {
	up := fmt.Sprintf("max_concurrency: %d", cfg.slots)
	if mode == "adaptive" {
		up += "\n        min_concurrency: 1"
	}
	if cfg.model != "" {
		up += "\n        model: " + cfg.model
	}
	child, err := startServe(cfg.bin, fmt.Sprintf(`deployments:
  - name: %s
    upstreams:
      - base_url: %s
        %s
`, harness.Deployment, simURL, up+settings(mode)), cfg.stderr)
	if err != nil {
		return sluiceRun{}, err
	}
	defer child.Stop()
	s, err := pipeline(cfg, child.URL, input)
	if err != nil {
		if exited := child.Exited(); exited != nil {
			err = fmt.Errorf("%w; %w", err, exited)
		}
		return s, err
	}
	if cfg.upstream != "" {
		return s, nil // a real server has no /stats
	}
	var st struct {
		MaxInFlight int64 `json:"max_in_flight"`
		MaxWaiting  int64 `json:"max_waiting"`
	}
	if err := getJSON(simURL+"/stats", &st); err != nil {
		return s, err
	}
	s.maxRunning, s.maxWaiting = st.MaxInFlight, st.MaxWaiting
	return s, nil
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

// pipeline uploads the input, creates the batch, waits for it to complete, and
// downloads and checks the results.
func pipeline(cfg config, base string, input []byte) (sluiceRun, error) {
	var s sluiceRun
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	cl := harness.NewClient(base, 4)
	defer cl.HTTP.CloseIdleConnections()
	t0 := time.Now()
	f, err := cl.Upload(ctx, "bench.jsonl", bytes.NewReader(input))
	if err != nil {
		return s, err
	}
	if f, err = cl.WaitProcessed(ctx, f, cfg.poll); err != nil {
		return s, err
	}
	b, err := cl.CreateBatch(ctx, f.ID)
	if err != nil {
		return s, err
	}
	var tStarted time.Time
	tick := time.NewTicker(cfg.poll)
	defer tick.Stop()
	for {
		if tStarted.IsZero() && b.Status != "validating" {
			tStarted = time.Now()
		}
		if b.Terminal() {
			break
		}
		select {
		case <-ctx.Done():
			return s, fmt.Errorf("no end in %s: %s", cfg.timeout, b.Describe())
		case <-tick.C:
		}
		if b, err = cl.Batch(ctx, b.ID); err != nil {
			return s, err
		}
	}
	tCompleted := time.Now()
	if b.Status != "completed" || b.RequestCounts.Completed != cfg.lines {
		return s, fmt.Errorf("want every line completed: %s", b.Describe())
	}
	check := harness.NewIDCheck(cfg.lines)
	for _, id := range []*string{b.OutputFileID, b.ErrorFileID} {
		if id == nil {
			continue
		}
		if _, err := cl.Content(ctx, *id, check); err != nil {
			return s, err
		}
		check.EndFile()
	}
	if err := check.Err(); err != nil {
		return s, fmt.Errorf("result files of %s: %w", b.ID, err)
	}
	s.total = time.Since(t0)
	s.dispatch = tCompleted.Sub(tStarted)
	return s, nil
}

// getJSON decodes the answer to a GET of url into v.
func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// settings returns the upstream settings of the modes beyond fixed and adaptive, as
// YAML indented for the config: metrics (adaptive, reading the simulator's vLLM
// gauges) and latency:T (adaptive, with latency_tolerance T); "" for any other mode.
func settings(mode string) string {
	const adaptive = "\n        min_concurrency: 1"
	if t, ok := strings.CutPrefix(mode, "latency:"); ok {
		if v, err := strconv.ParseFloat(t, 64); err == nil && v > 1 {
			return adaptive + "\n        latency_tolerance: " + t
		}
	}
	if mode == "metrics" {
		return adaptive + "\n        load: {metrics: vllm}"
	}
	return ""
}
