// Command throughput times Sluice's whole pipeline, from the first byte of the upload to
// the last byte of the downloaded results, as a ratio to a plain HTTP client that sends
// the same lines to the same simulator process with no persistence, measured in the
// same run. Sluice, the plain client (this process) and the simulator (`sluice sim`)
// are separate processes, so the machine's cores are shared the same way on both sides.
//
//	go build -o /tmp/sluice ./cmd/sluice && go run ./bench/throughput -sluice /tmp/sluice -lines 100000 -latency 0s
//
// It prints two markdown tables of one row each: the rates, CPU, memory and GC cycles,
// and the phases of the median Sluice round. bench/throughput.sh runs it at three
// simulator latencies and merges the rows.
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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

// config is what the flags set.
type config struct {
	bin         string
	lines       int
	concurrency int
	serveArgs   []string
	serveEnv    []string
	lineBytes   int
	allocs      bool
	poll        time.Duration
	timeout     time.Duration
	stderr      io.Writer // the children's logs; -v shows them
}

func run() error {
	var (
		cfg       config
		rounds    = flag.Int("rounds", 3, "measurements of each side; medians are reported")
		latency   = flag.String("latency", "0s", "simulator latency per request")
		serveEnv  = flag.String("serve-env", "", "environment for the measured `sluice serve` only, split on spaces, e.g. \"GOGC=200 GOMEMLIMIT=96MiB\"")
		serveArgs = flag.String("serve-args", "", "extra arguments for `sluice serve`, split on spaces, e.g. \"--max-upload-bytes 2000000000\"")
		cpuTable  = flag.Bool("cpu", false, "print CPU per line of each process, the simulator's too, instead of the two tables")
		verbose   = flag.Bool("v", false, "show the logs of sluice and the simulator, GC traces included")
	)
	flag.StringVar(&cfg.bin, "sluice", "sluice", "path of the sluice binary")
	flag.IntVar(&cfg.lines, "lines", 100000, "lines in the batch")
	flag.IntVar(&cfg.concurrency, "concurrency", 64, "requests in flight, for both the plain client and sluice's upstream")
	flag.IntVar(&cfg.lineBytes, "line-bytes", 0, "pad each request line to about this many bytes (0: short lines of about 250 bytes)")
	flag.BoolVar(&cfg.allocs, "allocs", false, "start sluice with --debug-addr and read memstats.Mallocs from its /debug/vars before and after each round, for allocations per line")
	flag.DurationVar(&cfg.poll, "poll", 10*time.Millisecond, "interval between polls of the file and batch")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Minute, "longest a sluice round may take")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *rounds < 1 || cfg.lines < 1 || cfg.concurrency < 1 {
		return errors.New("-rounds, -lines and -concurrency must be positive")
	}
	cfg.serveArgs = strings.Fields(*serveArgs)
	cfg.serveEnv = strings.Fields(*serveEnv)
	cfg.stderr = io.Discard
	if *verbose {
		cfg.stderr = os.Stderr
	}

	sim, err := harness.StartSim(cfg.bin, *latency, cfg.stderr)
	if err != nil {
		return err
	}
	defer sim.Stop()

	// Fail before the first measurement when sluice refuses -serve-args.
	probe, err := harness.StartServe(harness.Serve{Bin: cfg.bin, Upstream: sim.URL, Deployment: harness.Deployment,
		Concurrency: cfg.concurrency, Args: cfg.serveArgs, Stderr: cfg.stderr})
	if err != nil {
		return err
	}
	probe.Stop()

	input := harness.RequestsSized(cfg.lines, cfg.lineBytes)
	var plains []plainRun
	var runs []sluiceRun
	for r := range *rounds {
		p, err := plainClient(sim, input, cfg.concurrency)
		if err != nil {
			return fmt.Errorf("round %d: plain client: %w", r+1, err)
		}
		s, err := sluicePipeline(cfg, sim, input)
		if err != nil {
			return fmt.Errorf("round %d: sluice: %w", r+1, err)
		}
		n := float64(cfg.lines)
		fmt.Fprintf(os.Stderr, "round %d: plain %.2fs (%.0f lines/s, %.1f µs/line CPU); sluice %.2fs (%.0f lines/s) = upload %.2f + to in_progress %.2f + to completed %.2f + download %.2f; %.1f µs/line CPU, %.0f MiB, %d GCs, %d lines failed\n",
			r+1, p.elapsed.Seconds(), n/p.elapsed.Seconds(), p.cpu/n*1e6,
			s.total().Seconds(), n/s.total().Seconds(), s.upload.Seconds(), s.toInProgress.Seconds(), s.toCompleted.Seconds(), s.download.Seconds(),
			s.cpu/n*1e6, s.rss, s.gcs, s.failed)
		plains, runs = append(plains, p), append(runs, s)
	}
	if *cpuTable {
		printCPU(cfg, *latency, plains, runs)
		return nil
	}
	printTables(cfg, *latency, plains, runs)
	return nil
}

// perLine returns f of each run divided by the line count, scaled by unit.
func perLine[T any](runs []T, lines int, unit float64, f func(T) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = f(r) / float64(lines) * unit
	}
	return out
}

func printTables(cfg config, latency string, plains []plainRun, runs []sluiceRun) {
	n := cfg.lines
	plainRate := harness.Median(rates(n, plains, func(p plainRun) time.Duration { return p.elapsed }))
	sluiceRate := harness.Median(rates(n, runs, func(s sluiceRun) time.Duration { return s.total() }))
	plainCPU := harness.Median(perLine(plains, n, 1e6, func(p plainRun) float64 { return p.cpu }))
	sluiceCPU := harness.Median(perLine(runs, n, 1e6, func(s sluiceRun) float64 { return s.cpu }))
	rss := harness.Median(perLine(runs, 1, 1, func(s sluiceRun) float64 { return s.rss }))
	gcs := harness.Median(perLine(runs, n, 100000, func(s sluiceRun) float64 { return float64(s.gcs) }))
	allocs := "n/a"
	if cfg.allocs {
		allocs = fmt.Sprintf("%.0f", harness.Median(perLine(runs, n, 1, func(s sluiceRun) float64 { return float64(s.mallocs) })))
	}
	fmt.Printf("| lines | concurrency | sim latency | plain client lines/s | sluice lines/s, upload to download | ratio | plain client CPU µs/line | sluice CPU µs/line | CPU ratio | sluice peak RSS MiB | sluice GCs per 100k lines | sluice allocs/line |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d | %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f | %.0f | %.1f | %s |\n",
		n, cfg.concurrency, latency, plainRate, sluiceRate, sluiceRate/plainRate, plainCPU, sluiceCPU, sluiceCPU/plainCPU, rss, gcs, allocs)

	// The phases of one round, the median by total time, so they add up.
	totals := make([]float64, len(runs))
	for i, s := range runs {
		totals[i] = s.total().Seconds()
	}
	s := runs[harness.MedianIndex(totals)]
	plainS := harness.Median(perLine(plains, 1, 1, func(p plainRun) float64 { return p.elapsed.Seconds() }))
	share := func(d time.Duration) string {
		return fmt.Sprintf("%.2f (%.0f%%)", d.Seconds(), 100*d.Seconds()/s.total().Seconds())
	}
	fmt.Printf("\n| lines | sim latency | plain client s | sluice s, upload to download | sluice s / plain s | upload s | create → in_progress s | in_progress → completed s | download s |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %s | %.2f | %.2f | %.2f | %s | %s | %s | %s |\n",
		n, latency, plainS, s.total().Seconds(), s.total().Seconds()/plainS,
		share(s.upload), share(s.toInProgress), share(s.toCompleted), share(s.download))
}

// rates returns lines per second of each run.
func rates[T any](lines int, runs []T, elapsed func(T) time.Duration) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = float64(lines) / elapsed(r).Seconds()
	}
	return out
}

func printCPU(cfg config, latency string, plains []plainRun, runs []sluiceRun) {
	n := cfg.lines
	pc := harness.Median(perLine(plains, n, 1e6, func(p plainRun) float64 { return p.cpu }))
	ec := harness.Median(perLine(runs, n, 1e6, func(s sluiceRun) float64 { return s.cpu }))
	sp := harness.Median(perLine(plains, n, 1e6, func(p plainRun) float64 { return p.simCPU }))
	se := harness.Median(perLine(runs, n, 1e6, func(s sluiceRun) float64 { return s.simCPU }))
	fmt.Printf("| sim latency | plain client CPU µs/line | sluice CPU µs/line, upload to download | ratio | sim CPU µs/line (plain run) | sim CPU µs/line (sluice run) |\n")
	fmt.Printf("|---|---|---|---|---|---|\n")
	fmt.Printf("| %s | %.1f | %.1f | %.2f | %.1f | %.1f |\n", latency, pc, ec, ec/pc, sp, se)
}

// plainRun is one measurement of the plain client.
type plainRun struct {
	elapsed time.Duration
	cpu     float64 // CPU seconds of this process
	simCPU  float64 // CPU seconds of the simulator
}

// plainClient sends every line's body to the simulator with concurrency workers and
// reads each answer whole: the least any batch runner must do.
func plainClient(sim *harness.Child, input []byte, concurrency int) (plainRun, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency}}
	defer hc.CloseIdleConnections()
	lines := bytes.Split(bytes.TrimSpace(input), []byte("\n"))
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	self0, sim0 := harness.SelfCPU(), sim.CPU()
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
				resp, err := hc.Post(sim.URL+"/chat/completions", "application/json", bytes.NewReader(line.Body))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	p := plainRun{elapsed: time.Since(t0), cpu: harness.SelfCPU() - self0, simCPU: sim.CPU() - sim0}
	if f := failed.Load(); f > 0 {
		return p, fmt.Errorf("%d of %d requests failed", f, len(lines))
	}
	return p, nil
}

// sluiceRun is one measurement of the Sluice pipeline.
type sluiceRun struct {
	upload       time.Duration // first byte of the upload until the file is processed
	toInProgress time.Duration // the create call until a poll sees the batch past validating
	toCompleted  time.Duration // until a poll sees it completed
	download     time.Duration // the result files read to the end and checked
	cpu          float64       // sluice's CPU seconds over the four phases
	simCPU       float64       // the simulator's CPU seconds over the same time
	rss          float64       // sluice's peak resident set, MiB
	gcs          int64         // GC cycles of sluice over the four phases
	mallocs      int64         // heap allocations of sluice over the four phases, with -vars
	failed       int           // lines in the error file
}

func (s sluiceRun) total() time.Duration {
	return s.upload + s.toInProgress + s.toCompleted + s.download
}

// sluicePipeline starts sluice on a fresh data folder and times the pipeline a client
// sees: upload, create, the batch running, and the download of its results. Each phase
// ends when this process sees it end, polling every cfg.poll; the batch object's own
// timestamps are whole seconds, too coarse for this.
func sluicePipeline(cfg config, sim *harness.Child, input []byte) (sluiceRun, error) {
	child, err := harness.StartServe(harness.Serve{
		Bin: cfg.bin, Upstream: sim.URL, Deployment: harness.Deployment, Concurrency: cfg.concurrency,
		Args: serveArgs(cfg), Env: append([]string{"GODEBUG=gctrace=1"}, cfg.serveEnv...), Stderr: cfg.stderr,
	})
	if err != nil {
		return sluiceRun{}, err
	}
	defer child.Stop()
	s, err := pipeline(cfg, sim, child, input)
	if err != nil {
		if exited := child.Exited(); exited != nil {
			err = fmt.Errorf("%w; %w", err, exited)
		}
		return s, err
	}
	return s, nil
}

func pipeline(cfg config, sim, child *harness.Child, input []byte) (sluiceRun, error) {
	var s sluiceRun
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()
	cl := harness.NewClient(child.URL, 4)
	defer cl.HTTP.CloseIdleConnections()
	varsURL := child.StdoutMatch(`debug endpoints at (http://\S+/debug/)`) + "vars"
	var (
		m0  int64
		err error
	)
	if cfg.allocs {
		if m0, err = mallocs(ctx, cl.HTTP, varsURL); err != nil {
			return s, err
		}
	}

	gc0, cpu0, sim0 := child.GCs(), child.CPU(), sim.CPU()
	t0 := time.Now()
	f, err := cl.Upload(ctx, "bench.jsonl", bytes.NewReader(input))
	if err != nil {
		return s, err
	}
	if f, err = cl.WaitProcessed(ctx, f, cfg.poll); err != nil {
		return s, err
	}
	tUploaded := time.Now()

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
	if b.Status != "completed" {
		return s, errors.New(b.Describe())
	}
	if b.RequestCounts.Total != cfg.lines || b.RequestCounts.Completed+b.RequestCounts.Failed != cfg.lines {
		return s, fmt.Errorf("want %d lines done: %s", cfg.lines, b.Describe())
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
	tDownloaded := time.Now()
	s.cpu, s.simCPU, s.gcs = child.CPU()-cpu0, sim.CPU()-sim0, child.GCs()-gc0
	if err := check.Err(); err != nil {
		return s, fmt.Errorf("result files of %s: %w", b.ID, err)
	}
	if cfg.allocs {
		m1, err := mallocs(ctx, cl.HTTP, varsURL)
		if err != nil {
			return s, err
		}
		s.mallocs = m1 - m0
	}
	s.rss = child.PeakRSS()
	s.failed = b.RequestCounts.Failed
	s.upload = tUploaded.Sub(t0)
	s.toInProgress = tStarted.Sub(tUploaded)
	s.toCompleted = tCompleted.Sub(tStarted)
	s.download = tDownloaded.Sub(tCompleted)
	return s, nil
}

// serveArgs are the extra arguments of the measured `sluice serve`.
func serveArgs(cfg config) []string {
	if cfg.allocs {
		return append([]string{"--debug-addr", "127.0.0.1:0"}, cfg.serveArgs...)
	}
	return cfg.serveArgs
}

// mallocs reads memstats.Mallocs from an expvar page.
func mallocs(ctx context.Context, hc *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, fmt.Errorf("-allocs: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("-allocs: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("-allocs: GET %s: %s", url, resp.Status)
	}
	var v struct {
		Memstats *struct{ Mallocs int64 } `json:"memstats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, fmt.Errorf("-allocs: GET %s: %w", url, err)
	}
	if v.Memstats == nil {
		return 0, fmt.Errorf("-allocs: GET %s: no memstats", url)
	}
	return v.Memstats.Mallocs, nil
}
