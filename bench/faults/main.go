// Command faults measures what a batch goes through when its upstream fails (issue 19):
// an outage mid-batch, hung requests, a mix of faults, and a small batch created
// while a large one runs. It drives a built sluice and `sluice sim` from outside,
// as the other benchmarks do, and prints markdown table rows.
//
//	go run ./bench/faults -sluice /tmp/sluice -scenarios outage,hangs,faults,fairness
//	go run ./bench/faults -sluice /tmp/sluice -scenarios outage -outage 10m
//
// Scenarios:
//   - outage: the simulator is killed when the batch is a third done and started again
//     on the same port -outage later. The error file must be empty and the batch
//     complete; reported: the time after recovery to completion.
//   - hangs: the same batch against a fault-free simulator, then one that hangs on
//     -hang-rate of requests (2%), each on a fresh sluice; the ratio of the times from
//     create to completed (goal: at most 1.5).
//   - faults: 10% 500, 5% 429 with Retry-After, 2% hangs, 1% resets, through a counting
//     proxy: every custom_id once across the output and error files, each with the
//     status its line's last call got, and upstream calls per line.
//   - fairness: a -small-lines batch of another project created when a -big-lines
//     batch is a tenth done: its time from create to completed, and how far the big
//     batch got meanwhile. -same-project runs it with one project too.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

type config struct {
	sluice      string
	scenarios   string
	lines       int
	latency     string
	tps         float64
	concurrency int
	outage      time.Duration
	hangRate    float64
	faultLines  int
	maxAttempts int
	bigLines    int
	smallLines  int
	sameProject bool
	wait        time.Duration
	serveArgs   string
	verbose     bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.sluice, "sluice", "", "path to a built sluice binary (required)")
	flag.StringVar(&cfg.scenarios, "scenarios", "outage,hangs,faults,fairness", "comma-separated: outage, hangs, faults, fairness")
	flag.IntVar(&cfg.lines, "lines", 20000, "lines of the outage and hangs batches")
	flag.StringVar(&cfg.latency, "latency", "50ms", "simulator latency before each answer")
	flag.Float64Var(&cfg.tps, "tokens-per-second", 200, "simulator generation speed (each line asks 16 tokens)")
	flag.IntVar(&cfg.concurrency, "concurrency", 64, "upstream max_concurrency")
	flag.DurationVar(&cfg.outage, "outage", time.Minute, "how long the simulator is down in the outage scenario")
	flag.Float64Var(&cfg.hangRate, "hang-rate", 0.02, "share of requests the simulator never answers in the hangs scenario")
	flag.IntVar(&cfg.faultLines, "fault-lines", 5000, "lines of the faults batch")
	flag.IntVar(&cfg.maxAttempts, "max-attempts", 3, "engine.max_attempts in the faults scenario (the others keep the default)")
	flag.IntVar(&cfg.bigLines, "big-lines", 100000, "lines of the large batch in the fairness scenario")
	flag.IntVar(&cfg.smallLines, "small-lines", 10, "lines of the small batch in the fairness scenario")
	flag.BoolVar(&cfg.sameProject, "same-project", false, "fairness: also run with both batches in one project")
	flag.DurationVar(&cfg.wait, "wait", 30*time.Minute, "how long a batch may take before the run fails")
	flag.StringVar(&cfg.serveArgs, "serve-args", "", "extra `sluice serve` arguments, space-separated")
	flag.BoolVar(&cfg.verbose, "v", false, "show sluice's and the simulator's logs on stderr")
	flag.Parse()
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	if cfg.sluice == "" {
		return errors.New("-sluice is required (go build -o /tmp/sluice ./cmd/sluice)")
	}
	for _, s := range strings.Split(cfg.scenarios, ",") {
		var err error
		switch strings.TrimSpace(s) {
		case "outage":
			err = outage(cfg)
		case "hangs":
			err = hangs(cfg)
		case "faults":
			err = faults(cfg)
		case "fairness":
			err = fairness(cfg, false)
			if err == nil && cfg.sameProject {
				err = fairness(cfg, true)
			}
		case "":
		default:
			err = fmt.Errorf("unknown scenario %q", s)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

func (cfg config) logs() io.Writer {
	if cfg.verbose {
		return os.Stderr
	}
	return nil
}

// simArgs are the simulator's flags common to every scenario.
func (cfg config) simArgs(addr string, extra ...string) []string {
	args := []string{"sim", "--addr", addr, "--latency", cfg.latency,
		"--tokens-per-second", strconv.FormatFloat(cfg.tps, 'f', -1, 64), "--seed", "19"}
	return append(args, extra...)
}

func startSim(cfg config, addr string, extra ...string) (*harness.Child, error) {
	return harness.Start(cfg.sluice, `sluice sim listening on (http://\S+)`, &harness.Options{Stderr: cfg.logs()},
		cfg.simArgs(addr, extra...)...)
}

// freeAddr returns a loopback address nothing listens on now, for a simulator that
// must come back on the same port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serve is a running `sluice serve` with its data folder.
type serve struct {
	*harness.Child
	dir string
}

func (s *serve) stop() {
	s.Stop()
	os.RemoveAll(s.dir)
}

// startServe starts sluice on a fresh data folder with one deployment whose one
// upstream is upstreamURL; engine and projects are YAML blocks (may be empty).
func startServe(cfg config, upstreamURL, engine, projects string) (*serve, error) {
	dir, err := os.MkdirTemp("", "sluice-faults-*")
	if err != nil {
		return nil, err
	}
	yaml := fmt.Sprintf("deployments:\n  - name: %s\n    upstreams:\n      - base_url: %s\n        max_concurrency: %d\n%s%s",
		harness.Deployment, upstreamURL, cfg.concurrency, engine, projects)
	path := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"), "--config", path, "--log-level", "info"}
	if cfg.serveArgs != "" {
		args = append(args, strings.Fields(cfg.serveArgs)...)
	}
	c, err := harness.Start(cfg.sluice, `listening on (http://\S+)`, &harness.Options{Stderr: cfg.logs()}, args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &serve{Child: c, dir: dir}, nil
}

// keyed is a transport that sends an API key with every request.
type keyed struct {
	key string
	rt  http.RoundTripper
}

func (k keyed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+k.key)
	return k.rt.RoundTrip(r)
}

func client(base, key string) *harness.Client {
	c := harness.NewClient(base, 8)
	if key != "" {
		c.HTTP.Transport = keyed{key: key, rt: c.HTTP.Transport}
	}
	return c
}

// submit uploads input and creates a batch of it.
func submit(ctx context.Context, c *harness.Client, input []byte) (*harness.Batch, time.Time, error) {
	f, err := c.Upload(ctx, "in.jsonl", bytes.NewReader(input))
	if err != nil {
		return nil, time.Time{}, err
	}
	if _, err := c.WaitProcessed(ctx, f, 20*time.Millisecond); err != nil {
		return nil, time.Time{}, err
	}
	created := time.Now()
	b, err := c.CreateBatch(ctx, f.ID)
	return b, created, err
}

// watch polls a batch every interval until it ends, calling each with every answer.
func watch(ctx context.Context, c *harness.Client, id string, interval time.Duration, each func(*harness.Batch)) (*harness.Batch, error) {
	for {
		b, err := c.Batch(ctx, id)
		if err != nil {
			return nil, err
		}
		if each != nil {
			each(b)
		}
		if b.Terminal() {
			if b.Status != "completed" {
				return b, fmt.Errorf("%s", b.Describe())
			}
			return b, nil
		}
		select {
		case <-ctx.Done():
			return b, fmt.Errorf("%s: %w", b.Describe(), ctx.Err())
		case <-time.After(interval):
		}
	}
}

// result is a line of a result file, as far as the checks read it.
type result struct {
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int `json:"status_code"`
	} `json:"response"`
	Error *struct {
		Code string `json:"code"`
	} `json:"error"`
}

// results reads a finished batch's output and error files, checks that they hold each
// custom_id of n lines once, and returns the error file's lines.
func results(ctx context.Context, c *harness.Client, b *harness.Batch, n int) (errs []result, err error) {
	check := harness.NewIDCheck(n)
	for i, id := range []*string{b.OutputFileID, b.ErrorFileID} {
		if id == nil || *id == "" {
			continue
		}
		var buf bytes.Buffer
		if _, err := c.Content(ctx, *id, io.MultiWriter(check, &buf)); err != nil {
			return nil, err
		}
		check.EndFile()
		if i == 1 {
			for _, l := range bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n")) {
				if len(l) == 0 {
					continue
				}
				var r result
				if err := json.Unmarshal(l, &r); err != nil {
					return nil, fmt.Errorf("error file line: %w", err)
				}
				errs = append(errs, r)
			}
		}
	}
	return errs, check.Err()
}

// outage runs a batch, kills the simulator a third of the way through, and starts it
// again on the same port after cfg.outage.
func outage(cfg config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.wait+cfg.outage)
	defer cancel()
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	sim, err := startSim(cfg, addr)
	if err != nil {
		return err
	}
	defer sim.Stop() // a no-op once killed
	var back *harness.Child
	defer func() {
		if back != nil {
			back.Stop()
		}
	}()
	srv, err := startServe(cfg, sim.URL, "", "")
	if err != nil {
		return err
	}
	defer srv.stop()
	c := client(srv.URL, "")
	b, created, err := submit(ctx, c, harness.Requests(cfg.lines))
	if err != nil {
		return err
	}
	var (
		downAt, upAt     time.Time
		doneAtDown       int
		doneAtUp         int
		restart          = make(chan *harness.Child, 1)
		firstAfterUp     time.Time
		restarted, cutAt bool
	)
	b, err = watch(ctx, c, b.ID, 50*time.Millisecond, func(b *harness.Batch) {
		done := b.RequestCounts.Completed + b.RequestCounts.Failed
		switch {
		case !cutAt && done >= cfg.lines/3:
			cutAt, downAt, doneAtDown = true, time.Now(), done
			sim.Kill()
			go func() {
				time.Sleep(cfg.outage)
				s, err := startSim(cfg, addr)
				if err != nil {
					fmt.Fprintln(os.Stderr, "restart the simulator:", err)
				}
				restart <- s
			}()
		case cutAt && !restarted:
			select {
			case back = <-restart:
				restarted, upAt, doneAtUp = true, time.Now(), done
			default:
			}
		case restarted && firstAfterUp.IsZero() && done > doneAtUp:
			firstAfterUp = time.Now()
		}
	})
	if err != nil {
		return err
	}
	completed := time.Now()
	errs, err := results(ctx, c, b, cfg.lines)
	if err != nil {
		return err
	}
	if !restarted {
		return errors.New("the batch completed before the simulator came back")
	}
	total := completed.Sub(created)
	fmt.Println("| outage | lines | down at | down for | lines done while down | first line after up | up → completed | create → completed | error lines |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	fmt.Printf("| %s | %d | %d done (%.1f s) | %.1f s | %d | %.1f s | %.1f s | %.1f s | **%d** |\n",
		cfg.outage, cfg.lines, doneAtDown, downAt.Sub(created).Seconds(), upAt.Sub(downAt).Seconds(), doneAtUp-doneAtDown,
		firstAfterUp.Sub(upAt).Seconds(), completed.Sub(upAt).Seconds(), total.Seconds(), len(errs))
	fmt.Println()
	if len(errs) > 0 {
		return fmt.Errorf("%d lines in the error file, the first %+v", len(errs), errs[0])
	}
	return nil
}

// hangs runs the same batch against a fault-free simulator and one that hangs.
func hangs(cfg config) error {
	type round struct {
		name  string
		extra []string
		took  time.Duration
		errs  int
		stats string
	}
	rounds := []round{{name: "fault-free"}, {name: fmt.Sprintf("%g%% hangs", cfg.hangRate*100),
		extra: []string{"--hang-rate", strconv.FormatFloat(cfg.hangRate, 'f', -1, 64)}}}
	for i := range rounds {
		r := &rounds[i]
		took, errs, stats, err := oneBatch(cfg, r.extra)
		if err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		r.took, r.errs, r.stats = took, errs, stats
		fmt.Fprintf(os.Stderr, "hangs: %s: %.2f s, %d error lines, simulator %s\n", r.name, took.Seconds(), errs, stats)
	}
	fmt.Println("| hangs | lines | fault-free: create → completed | with hangs | ratio (goal ≤ 1.5) | error lines | simulator with hangs |")
	fmt.Println("|---|---|---|---|---|---|---|")
	fmt.Printf("| %g%% | %d | %.1f s | %.1f s | **%.2f** | %d | %s |\n\n", cfg.hangRate*100, cfg.lines,
		rounds[0].took.Seconds(), rounds[1].took.Seconds(), rounds[1].took.Seconds()/rounds[0].took.Seconds(), rounds[1].errs, rounds[1].stats)
	return nil
}

// oneBatch runs cfg.lines on a fresh simulator (with extra flags) and sluice.
func oneBatch(cfg config, extra []string) (time.Duration, int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.wait)
	defer cancel()
	sim, err := startSim(cfg, "127.0.0.1:0", extra...)
	if err != nil {
		return 0, 0, "", err
	}
	defer sim.Stop()
	srv, err := startServe(cfg, sim.URL, "", "")
	if err != nil {
		return 0, 0, "", err
	}
	defer srv.stop()
	c := client(srv.URL, "")
	b, created, err := submit(ctx, c, harness.Requests(cfg.lines))
	if err != nil {
		return 0, 0, "", err
	}
	if b, err = watch(ctx, c, b.ID, 20*time.Millisecond, nil); err != nil {
		return 0, 0, "", err
	}
	took := time.Since(created)
	errs, err := results(ctx, c, b, cfg.lines)
	if err != nil {
		return 0, 0, "", err
	}
	return took, len(errs), simStats(sim.URL), nil
}

// simStats reads the simulator's request and fault counts.
func simStats(simURL string) string {
	resp, err := http.Get(strings.TrimSuffix(simURL, "/v1") + "/stats")
	if err != nil {
		return "stats: " + err.Error()
	}
	defer resp.Body.Close()
	var s struct {
		Requests int64 `json:"requests"`
		Faults   struct {
			ServerError int64 `json:"server_error"`
			RateLimited int64 `json:"rate_limited"`
			Hang        int64 `json:"hang"`
			Reset       int64 `json:"reset"`
		} `json:"faults"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return "stats: " + err.Error()
	}
	return fmt.Sprintf("%d requests: %d 500, %d 429, %d hung, %d reset", s.Requests,
		s.Faults.ServerError, s.Faults.RateLimited, s.Faults.Hang, s.Faults.Reset)
}

// faults runs a batch against the fault mix through a counting proxy.
func faults(cfg config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.wait)
	defer cancel()
	sim, err := startSim(cfg, "127.0.0.1:0", "--fail-rate", "0.10", "--rate-limit-rate", "0.05", "--retry-after", "1s",
		"--hang-rate", "0.02", "--reset-rate", "0.01")
	if err != nil {
		return err
	}
	defer sim.Stop()
	p, err := startProxy(sim.URL, cfg.faultLines)
	if err != nil {
		return err
	}
	defer p.close()
	srv, err := startServe(cfg, p.url, fmt.Sprintf("engine:\n  max_attempts: %d\n", cfg.maxAttempts), "")
	if err != nil {
		return err
	}
	defer srv.stop()
	c := client(srv.URL, "")
	b, created, err := submit(ctx, c, harness.Requests(cfg.faultLines))
	if err != nil {
		return err
	}
	if b, err = watch(ctx, c, b.ID, 50*time.Millisecond, nil); err != nil {
		return err
	}
	took := time.Since(created)
	errs, err := results(ctx, c, b, cfg.faultLines)
	if err != nil {
		return err
	}
	// Each error line must say what its line's last call got; each line that failed
	// must have had max_attempts calls that failed as its own at least.
	p.mu.Lock()
	defer p.mu.Unlock()
	wrong, byStatus := 0, map[string]int{}
	var firstWrong string
	for _, r := range errs {
		i, err := strconv.Atoi(strings.TrimPrefix(r.CustomID, "req-"))
		if err != nil || i < 0 || i >= len(p.last) {
			return fmt.Errorf("error line for %q", r.CustomID)
		}
		got := "none"
		switch {
		case r.Response != nil:
			got = strconv.Itoa(r.Response.StatusCode)
		case r.Error != nil:
			got = r.Error.Code
		}
		byStatus[got]++
		want := p.last[i]
		if want == "hang" {
			want = "timeout"
		}
		if want == "reset" {
			want = "connection_reset"
		}
		if got != want || p.counted[i] < cfg.maxAttempts {
			if wrong == 0 {
				firstWrong = fmt.Sprintf("%s: error line says %s, its last call %s, %d calls that count", r.CustomID, got, p.last[i], p.counted[i])
			}
			wrong++
		}
	}
	okWrong := 0
	for i, l := range p.last {
		if l != "200" && !slices.ContainsFunc(errs, func(r result) bool { return r.CustomID == "req-"+strconv.Itoa(i) }) {
			okWrong++
		}
	}
	calls, most := 0, 0
	hist := map[int]int{}
	for _, n := range p.calls {
		calls += n
		most = max(most, n)
		hist[n]++
	}
	var keys []int
	for k := range hist {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var dist []string
	for _, k := range keys {
		dist = append(dist, fmt.Sprintf("%d: %d", k, hist[k]))
	}
	var statuses []string
	for k, v := range byStatus {
		statuses = append(statuses, fmt.Sprintf("%d × %s", v, k))
	}
	slices.Sort(statuses)
	fmt.Println("| faults | lines | create → completed | output | error lines (by status) | wrong status | calls per line: mean, max | lines by calls | proxy saw |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	fmt.Printf("| 10%% 500, 5%% 429 (Retry-After 1 s), 2%% hang, 1%% reset; max_attempts %d | %d | %.1f s | %d | %d (%s) | %d | %.2f, %d | %s | %s |\n\n",
		cfg.maxAttempts, cfg.faultLines, took.Seconds(), b.RequestCounts.Completed, len(errs), strings.Join(statuses, ", "),
		wrong+okWrong, float64(calls)/float64(cfg.faultLines), most, strings.Join(dist, ", "), p.summary())
	if wrong+okWrong > 0 {
		return fmt.Errorf("%d error lines and %d output lines disagree with their last call; first: %s", wrong, okWrong, firstWrong)
	}
	return nil
}

// fairness creates a small batch, of another project unless same, when a large one
// is a tenth done.
func fairness(cfg config, same bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.wait)
	defer cancel()
	sim, err := startSim(cfg, "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer sim.Stop()
	projects := "projects:\n  - name: big\n    api_keys: [key-big]\n  - name: small\n    api_keys: [key-small]\n"
	smallKey := "key-small"
	if same {
		projects = "projects:\n  - name: big\n    api_keys: [key-big, key-big2]\n"
		smallKey = "key-big2"
	}
	srv, err := startServe(cfg, sim.URL, "", projects+"api_keys: [key-admin]\n")
	if err != nil {
		return err
	}
	defer srv.stop()
	big, small := client(srv.URL, "key-big"), client(srv.URL, smallKey)
	bb, bigCreated, err := submit(ctx, big, harness.Requests(cfg.bigLines))
	if err != nil {
		return err
	}
	// The small batch's file is uploaded before, so its clock starts at the create.
	sf, err := small.Upload(ctx, "small.jsonl", bytes.NewReader(harness.Requests(cfg.smallLines)))
	if err != nil {
		return err
	}
	if _, err := small.WaitProcessed(ctx, sf, 20*time.Millisecond); err != nil {
		return err
	}
	var (
		mu                      sync.Mutex
		bigAtCreate, bigAtSmall int
		smallCreated, smallDone time.Time
		smallErr                error
		smallWG                 sync.WaitGroup
		launched                bool
		bigLast                 int
	)
	bb, err = watch(ctx, big, bb.ID, 50*time.Millisecond, func(b *harness.Batch) {
		done := b.RequestCounts.Completed + b.RequestCounts.Failed
		mu.Lock()
		defer mu.Unlock()
		bigLast = done
		if launched || done < cfg.bigLines/10 {
			return
		}
		launched, bigAtCreate = true, done
		smallWG.Add(1)
		go func() {
			defer smallWG.Done()
			created := time.Now()
			sb, err := small.CreateBatch(ctx, sf.ID)
			if err == nil {
				sb, err = watch(ctx, small, sb.ID, 20*time.Millisecond, nil)
			}
			mu.Lock()
			defer mu.Unlock()
			smallCreated, smallDone, smallErr, bigAtSmall = created, time.Now(), err, bigLast
			if err == nil {
				_, smallErr = results(ctx, small, sb, cfg.smallLines)
			}
		}()
	})
	bigDone := time.Now()
	smallWG.Wait()
	if err != nil {
		return err
	}
	if smallErr != nil {
		return fmt.Errorf("small batch: %w", smallErr)
	}
	if _, err := results(ctx, big, bb, cfg.bigLines); err != nil {
		return err
	}
	// The big batch's progress is polled every 50 ms: bigAtSmall is its count at the
	// poll before the small batch completed.
	rate := float64(cfg.bigLines) / bigDone.Sub(bigCreated).Seconds()
	who := "another project"
	if same {
		who = "the same project"
	}
	fmt.Println("| fairness | large batch | small batch | small: create → completed | large done meanwhile | large: create → completed | large's lines/s |")
	fmt.Println("|---|---|---|---|---|---|---|")
	fmt.Printf("| %s | %d lines | %d lines | **%.2f s** | %d lines (%d → %d) | %.1f s | %.0f |\n\n", who, cfg.bigLines, cfg.smallLines,
		smallDone.Sub(smallCreated).Seconds(), bigAtSmall-bigAtCreate, bigAtCreate, bigAtSmall, bigDone.Sub(bigCreated).Seconds(), rate)
	return nil
}
