// Command chaos runs a large batch through `sluice serve` while killing it with SIGKILL
// at random moments, against a simulator that fails, throttles, hangs and resets, with
// 1,000 pollers, uploads and two attacks on the API going on, and then checks what
// came out (issue 20, item 5):
//
//	go run ./test/chaos -lines 20000 -kills 20
//
// One `sluice sim` is the upstream, behind a counting proxy that records every call
// with the line it carries (each line's user message is marked "[req-N]") and the
// sluice process that sent it. `sluice serve` runs on one data folder and one port;
// after each kill it is started again on both. Meanwhile pollers GET the batch, an
// uploader sends small files and reads them back, a probe GETs the batch every 100 ms,
// and, once each, thousands of idle keep-alive connections and a crowd of slow request
// bodies press on the server.
//
// It checks one result per custom_id across the output and error files, that each
// result is what the simulator answered that line's last call, that calls beyond the
// attempt budget stay within the lines in flight at the kills, that retries respect
// Retry-After and the backoff, the API's latency under the pollers, and that the
// server kept answering during the attacks. It prints its figures as markdown and
// exits non-zero when a check fails. Logs and the probe's record stay in -out.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
}

// deployment is the deployment the request lines name.
const deployment = "chaos"

// options are the command's flags.
type options struct {
	bin          string
	lines, kills int
	concurrency  int
	latency      time.Duration
	failRate     float64
	limitRate    float64
	hangRate     float64
	resetRate    float64
	retryAfter   time.Duration
	maxAttempts  int
	backoffBase  time.Duration
	backoffMax   time.Duration
	reqTimeout   time.Duration
	pollers      int
	pollerKeys   int
	pollEvery    time.Duration
	rateLimit    float64
	idleConns    int
	slowBodies   int
	attackTime   time.Duration
	stallTimeout time.Duration
	uploadEvery  time.Duration
	seed         uint64
	out          string
	timeout      time.Duration
	serveArgs    string
	p99Goal      time.Duration
	allow        string
}

func run() error {
	var o options
	flag.StringVar(&o.bin, "sluice", "", "the sluice binary; default: build ./cmd/sluice into -out")
	flag.IntVar(&o.lines, "lines", 20000, "lines in the batch, each a distinct custom_id")
	flag.IntVar(&o.kills, "kills", 20, "kill -9s of sluice serve while the batch runs")
	flag.IntVar(&o.concurrency, "concurrency", 64, "the upstream's max_concurrency")
	flag.DurationVar(&o.latency, "latency", 100*time.Millisecond, "simulator latency per request")
	flag.Float64Var(&o.failRate, "fail-rate", 0.10, "share of calls the simulator answers 500")
	flag.Float64Var(&o.limitRate, "rate-limit-rate", 0.05, "share of calls the simulator answers 429 with Retry-After")
	flag.Float64Var(&o.hangRate, "hang-rate", 0.02, "share of calls the simulator never answers")
	flag.Float64Var(&o.resetRate, "reset-rate", 0.01, "share of calls whose connection the simulator resets")
	flag.DurationVar(&o.retryAfter, "retry-after", 500*time.Millisecond, "Retry-After of the simulator's 429s")
	flag.IntVar(&o.maxAttempts, "max-attempts", 3, "engine.max_attempts")
	flag.DurationVar(&o.backoffBase, "backoff-base", 200*time.Millisecond, "engine.backoff_base")
	flag.DurationVar(&o.backoffMax, "backoff-max", 2*time.Second, "engine.backoff_max")
	flag.DurationVar(&o.reqTimeout, "request-timeout", 2*time.Second, "engine.request_timeout: how long a hang holds a line")
	flag.IntVar(&o.pollers, "pollers", 1000, "concurrent clients polling GET /v1/batches/{id}")
	flag.IntVar(&o.pollerKeys, "poller-keys", 10, "API keys the pollers share out")
	flag.DurationVar(&o.pollEvery, "poll-every", time.Second, "each poller's interval")
	flag.Float64Var(&o.rateLimit, "rate-limit", 200, "sluice serve --rate-limit, per key")
	flag.IntVar(&o.idleConns, "idle-conns", 5000, "idle keep-alive connections of the fd-exhaustion attack")
	flag.IntVar(&o.slowBodies, "slow-bodies", 40, "slow request bodies at once in the slow-body attack")
	flag.DurationVar(&o.attackTime, "attack-time", 30*time.Second, "how long each attack lasts")
	flag.DurationVar(&o.stallTimeout, "stall-timeout", 5*time.Second, "sluice serve --stall-timeout")
	flag.DurationVar(&o.uploadEvery, "upload-every", 500*time.Millisecond, "pause between the uploader's small files")
	flag.Uint64Var(&o.seed, "seed", 0, "seed of the kill moments and the simulator's faults; 0 picks one")
	flag.StringVar(&o.out, "out", "", "folder for the logs, the probe's record and the data; default a temporary one, removed when every check passes")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "longest the run may take")
	flag.StringVar(&o.serveArgs, "serve-args", "", "more flags for sluice serve, split on spaces")
	flag.DurationVar(&o.p99Goal, "p99-goal", 50*time.Millisecond, "the API's p99 goal for GET batch under the pollers")
	flag.StringVar(&o.allow, "allow", "", "comma-separated ids of checks whose failure is reported but does not fail the run, e.g. a known bug's")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if o.lines < 100 || o.kills < 0 || o.pollers < 1 || o.pollerKeys < 1 || o.concurrency < 1 || o.maxAttempts < 1 {
		return errors.New("want -lines >= 100, -kills >= 0, and at least one poller, poller key, concurrency and attempt")
	}
	// The harness holds a connection per poller and per idle connection of the
	// attack, besides the slow ones and the proxy's.
	if need := uint64(o.pollers + o.idleConns + o.slowBodies + 4*o.concurrency + 512); fdLimit() < need {
		return fmt.Errorf("the open-file limit is %d; this run needs about %d: raise it (ulimit -n) or lower -pollers, -idle-conns or -slow-bodies", fdLimit(), need)
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	keep := o.out != ""
	if o.out == "" {
		dir, err := os.MkdirTemp("", "sluice-chaos-*")
		if err != nil {
			return err
		}
		o.out = dir
	} else if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "chaos: seed %d, logs in %s\n", o.seed, o.out)
	if o.bin == "" {
		o.bin = filepath.Join(o.out, "sluice")
		build := exec.Command("go", "build", "-o", o.bin, "github.com/sluice-batch/sluice/cmd/sluice")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build sluice: %w", err)
		}
	}
	rep, err := chaos(o)
	if rep != nil {
		rep.print(os.Stdout, o)
	}
	if err == nil && rep != nil && len(rep.failed) > 0 {
		err = fmt.Errorf("%d checks failed: %s", len(rep.failed), strings.Join(rep.failed, ", "))
	}
	if err != nil {
		return fmt.Errorf("%w (seed %d, logs in %s)", err, o.seed, o.out)
	}
	if !keep {
		os.RemoveAll(o.out)
	}
	return nil
}

// chaos runs the whole thing and returns what it saw.
func chaos(o options) (*report, error) {
	rng := rand.New(rand.NewPCG(o.seed, o.seed^0x5eed))
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	rep := &report{start: time.Now(), allow: map[string]bool{}, loadStart: loadAvg()}
	for _, id := range strings.Split(o.allow, ",") {
		if id = strings.TrimSpace(id); id != "" {
			rep.allow[id] = true
		}
	}

	simLog, err := os.Create(filepath.Join(o.out, "sim.log"))
	if err != nil {
		return nil, err
	}
	defer simLog.Close()
	sim, err := harness.Start(o.bin, `sluice sim listening on (http://\S+)`, &harness.Options{Stderr: simLog},
		"sim", "--addr", "127.0.0.1:0", "--latency", o.latency.String(),
		"--fail-rate", ftoa(o.failRate), "--rate-limit-rate", ftoa(o.limitRate), "--retry-after", o.retryAfter.String(),
		"--hang-rate", ftoa(o.hangRate), "--reset-rate", ftoa(o.resetRate), "--seed", strconv.FormatInt(int64(o.seed>>1), 10))
	if err != nil {
		return nil, err
	}
	defer sim.Stop()

	srv := &server{bin: o.bin, logDir: o.out}
	px, err := startProxy(sim.URL, func() int { return int(srv.cur.Load()) })
	if err != nil {
		return nil, err
	}
	defer px.close()

	// Keys: one for the batch's owner, the probe, the uploader and the attacker each,
	// and the pollers'.
	keys := map[string]string{"owner": "chaos-owner", "probe": "chaos-probe", "upload": "chaos-upload", "attack": "chaos-attack"}
	var pollerKeys []string
	for i := range o.pollerKeys {
		pollerKeys = append(pollerKeys, fmt.Sprintf("chaos-poller-%d", i))
	}
	config := filepath.Join(o.out, "config.yaml")
	var cfg strings.Builder
	cfg.WriteString("api_keys:\n")
	for _, k := range append([]string{keys["owner"], keys["probe"], keys["upload"], keys["attack"]}, pollerKeys...) {
		fmt.Fprintf(&cfg, "  - %s\n", k)
	}
	fmt.Fprintf(&cfg, "deployments:\n  - name: %s\n    upstreams:\n      - base_url: %s\n        max_concurrency: %d\n",
		deployment, px.URL, o.concurrency)
	fmt.Fprintf(&cfg, "engine:\n  max_attempts: %d\n  backoff_base: %s\n  backoff_max: %s\n  request_timeout: %s\n",
		o.maxAttempts, o.backoffBase, o.backoffMax, o.reqTimeout)
	if err := os.WriteFile(config, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	base := "http://" + addr
	srv.args = append([]string{"--addr", addr, "--data", filepath.Join(o.out, "data"), "--config", config,
		"--rate-limit", ftoa(o.rateLimit), "--stall-timeout", o.stallTimeout.String(), "--max-files", "-1"},
		strings.Fields(o.serveArgs)...)
	rep.serveArgs = srv.args
	if err := srv.start(); err != nil {
		return nil, err
	}
	defer srv.stop()

	// The batch.
	owner := newClient(base, keys["owner"], 4, 5*time.Minute)
	f, err := owner.Upload(ctx, "chaos.jsonl", bytes.NewReader(requests(o.lines)))
	if err != nil {
		return nil, err
	}
	if f, err = owner.WaitProcessed(ctx, f, 50*time.Millisecond); err != nil {
		return nil, err
	}
	b, err := owner.CreateBatch(ctx, f.ID)
	if err != nil {
		return nil, err
	}
	rep.batchID = b.ID
	rep.batchStart = time.Now()

	// The load, until the batch ends.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	pr := newProbe(base, keys["probe"], b.ID)
	var loadWG sync.WaitGroup
	loadWG.Add(1)
	go func() { defer loadWG.Done(); pr.run(loadCtx, 100*time.Millisecond) }()
	polls := runPollers(loadCtx, base, b.ID, pollerKeys, o.pollers, o.pollEvery)
	up := &uploader{cl: newClient(base, keys["upload"], 4, time.Minute)}
	loadWG.Add(1)
	go func() { defer loadWG.Done(); up.run(loadCtx, o.uploadEvery, 50) }()
	fds := &fdSampler{}
	loadWG.Add(1)
	go func() { defer loadWG.Done(); fds.run(loadCtx, srv) }()

	// Kill moments: random points of the batch's progress, each followed by a random
	// wait; a kill due while the previous restart is still recent hits a process that
	// is recovering.
	fracs := make([]float64, o.kills)
	for i := range fracs {
		fracs[i] = 0.02 + 0.88*rng.Float64()
	}
	slices.Sort(fracs)
	idle := &idleAttack{addr: addr}
	slow := &slowAttack{addr: addr, key: keys["attack"]}
	var idleCtx, slowCtx context.Context
	var stops []context.CancelFunc // of the attacks
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var final batchView
	for {
		select {
		case <-ctx.Done():
			v := pr.view()
			return rep, fmt.Errorf("the batch did not end within -timeout %s: %s with %d+%d of %d", o.timeout, v.status, v.completed, v.failed, v.total)
		case <-tick.C:
		}
		if err := srv.exited(); err != nil {
			rep.selfExits = append(rep.selfExits, err.Error())
			if err := srv.start(); err != nil {
				return rep, err
			}
			continue
		}
		v := pr.view()
		if terminal(v.status) {
			final = v
			break
		}
		done := float64(v.completed+v.failed) / float64(max(v.total, 1))
		if v.total == 0 || v.status != "in_progress" {
			done = 0
		}
		now := time.Now()
		switch {
		case rep.fd.start.IsZero() && done >= 0.2:
			var stop context.CancelFunc
			idleCtx, stop = context.WithTimeout(loadCtx, o.attackTime)
			stops = append(stops, stop)
			rep.fd.start = now
			idle.wg.Add(o.idleConns)
			go idle.run(idleCtx, o.idleConns)
		case !rep.fd.start.IsZero() && rep.fd.end.IsZero() && idleCtx.Err() != nil:
			rep.fd.end = now
		case !rep.fd.end.IsZero() && rep.slow.start.IsZero() && done >= 0.45 && now.Sub(rep.fd.end) >= attackTail:
			var stop context.CancelFunc
			slowCtx, stop = context.WithTimeout(loadCtx, o.attackTime)
			stops = append(stops, stop)
			rep.slow.start = now
			slow.wg.Add(o.slowBodies)
			go slow.run(slowCtx, o.slowBodies)
		case !rep.slow.start.IsZero() && rep.slow.end.IsZero() && slowCtx.Err() != nil:
			rep.slow.end = now
		}
		// No kill cuts the slow-body attack short: each slow request gets the whole of
		// --stall-timeout and more to be cut off by a live server.
		slowRunning := !rep.slow.start.IsZero() && rep.slow.end.IsZero()
		if len(rep.kills) < len(fracs) && done >= fracs[len(rep.kills)] && !slowRunning {
			time.Sleep(time.Duration(rng.Int64N(int64(500 * time.Millisecond))))
			if v := pr.view(); terminal(v.status) {
				continue
			}
			if err := srv.kill(); err != nil {
				return rep, err
			}
			rep.kills = append(rep.kills, fracs[len(rep.kills)])
			time.Sleep(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
			if err := srv.start(); err != nil {
				return rep, err
			}
		}
	}
	rep.batchEnd = final.at
	rep.final = final
	for _, stop := range stops {
		stop()
	}
	idle.wg.Wait()
	slow.wg.Wait()
	now := time.Now()
	for _, w := range []*window{&rep.fd, &rep.slow} {
		if !w.start.IsZero() && w.end.IsZero() {
			w.end = now
		}
	}

	// The simulator's own counts, to hold the proxy's against.
	simStats, simErr := readSimStats(sim.URL)

	// One more kill right after the batch completed: what is finished stays finished.
	if err := srv.kill(); err != nil {
		return rep, err
	}
	if err := srv.start(); err != nil {
		return rep, err
	}
	time.Sleep(time.Second) // the probe and the pollers see the restarted server
	stopLoad()
	loadWG.Wait()
	rep.polls = polls.all()
	rep.probes = pr.samples
	rep.probeErrs = pr.errs
	rep.uploads = up.all()
	rep.fdPeak, rep.fdPeakAttack = fds.peaks(rep.fd)
	rep.idle = idle
	rep.slowResults = slow.all()

	// What came out.
	after, err := owner.Batch(context.Background(), b.ID)
	if err != nil {
		return rep, fmt.Errorf("read the batch after the last restart: %w", err)
	}
	rep.after = after
	var outBuf, errBuf bytes.Buffer
	if after.OutputFileID != nil {
		if _, err := owner.Content(context.Background(), *after.OutputFileID, &outBuf); err != nil {
			return rep, err
		}
	}
	if after.ErrorFileID != nil {
		if _, err := owner.Content(context.Background(), *after.ErrorFileID, &errBuf); err != nil {
			return rep, err
		}
	}
	rep.results = readResults(o.lines, outBuf.Bytes(), errBuf.Bytes())
	// Every upload that read back whole reads back whole after the last restart.
	for i, u := range rep.uploads {
		if u.result == "ok" {
			if err := up.verify(context.Background(), u.fileID, u.content); err != nil {
				rep.uploads[i].result = "lost after a restart: " + err.Error()
			}
		}
	}

	rep.lives = srv.history()
	tl := timeline{lives: rep.lives}
	calls := px.snapshot()
	classify(calls, tl)
	rep.acct = account(calls, rep.results, params{lines: o.lines, maxAttempts: o.maxAttempts, concurrency: o.concurrency,
		retryAfter: o.retryAfter, backoffBase: o.backoffBase, requestTimeout: o.reqTimeout}, tl)
	rep.simStats, rep.simErr = simStats, simErr
	rep.logs = scanLogs(o.out)
	if err := writePolls(filepath.Join(o.out, "polls.csv"), rep.polls, rep.batchStart); err != nil {
		return rep, err
	}
	if err := writeCalls(filepath.Join(o.out, "calls.csv"), calls, rep.batchStart); err != nil {
		return rep, err
	}
	if err := writeProbes(filepath.Join(o.out, "probes.csv"), rep.probes, tl, rep); err != nil {
		return rep, err
	}
	rep.loadEnd = loadAvg()
	rep.evaluate(o, tl)
	return rep, nil
}

// simStats are the counters the simulator serves at /stats.
type simStats struct {
	Requests  int64 `json:"requests"`
	Completed int64 `json:"completed"`
	Canceled  int64 `json:"canceled"`
	Faults    struct {
		ServerError int64 `json:"server_error"`
		RateLimited int64 `json:"rate_limited"`
		Hang        int64 `json:"hang"`
		Reset       int64 `json:"reset"`
	} `json:"faults"`
}

// readSimStats reads the simulator's counters; simURL is its /v1 base URL.
func readSimStats(simURL string) (*simStats, error) {
	var s simStats
	url := strings.TrimSuffix(simURL, "/v1") + "/stats"
	if _, err := getJSON(context.Background(), &http.Client{Timeout: 10 * time.Second}, url, &s); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return &s, nil
}

// attackTail is how long after an attack its effects are still its own: closing
// thousands of connections at once takes the server a while.
const attackTail = 2 * time.Second

func terminal(status string) bool {
	switch status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// requests returns n chat-completion request lines with the custom_ids req-0 …
// req-(n-1); each user message starts with its mark, [req-N], which the proxy reads.
func requests(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"%s","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"[req-%d] Summarise item %d of the catalogue in one sentence."}],"max_tokens":16}}`+"\n",
			i, deployment, i, i)
	}
	return b.Bytes()
}

// fdSampler reads sluice's open file descriptors four times a second.
type fdSampler struct {
	mu      sync.Mutex
	samples []fdSample
}

type fdSample struct {
	at time.Time
	n  int
}

func (s *fdSampler) run(ctx context.Context, srv *server) {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n := openFDs(srv.pid()); n >= 0 {
			s.mu.Lock()
			s.samples = append(s.samples, fdSample{time.Now(), n})
			s.mu.Unlock()
		}
	}
}

// peaks returns the most descriptors seen, and the most during w.
func (s *fdSampler) peaks(w window) (all, during int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.samples {
		all = max(all, x.n)
		if w.has(x.at) {
			during = max(during, x.n)
		}
	}
	return all, during
}

// logCounts are what sluice's logs say, over every process.
type logCounts struct {
	lines       int
	errors      map[string]int // ERROR lines by message
	tooManyOpen int            // "too many open files"
	panics      int
}

// scanLogs reads sluice-*.log in dir.
func scanLogs(dir string) logCounts {
	lc := logCounts{errors: map[string]int{}}
	files, _ := filepath.Glob(filepath.Join(dir, "sluice-*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" {
				continue
			}
			lc.lines++
			if strings.Contains(line, "too many open files") {
				lc.tooManyOpen++
			}
			if strings.HasPrefix(line, "panic:") || strings.Contains(line, "goroutine ") && strings.Contains(line, "[running]") {
				lc.panics++
			}
			if strings.Contains(line, "level=ERROR") {
				msg := line
				if i := strings.Index(line, "msg="); i >= 0 {
					msg = line[i+4:]
					if strings.HasPrefix(msg, `"`) {
						if j := strings.Index(msg[1:], `"`); j >= 0 {
							msg = msg[1 : j+1]
						}
					} else if j := strings.IndexByte(msg, ' '); j >= 0 {
						msg = msg[:j]
					}
				}
				lc.errors[msg]++
			}
		}
	}
	return lc
}

// fdLimit returns the most files this process may open: the hard limit, to which
// the Go runtime raises the soft one at start.
func fdLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return math.MaxUint64 // unknown: let the run find out
	}
	return l.Cur
}

// loadAvg returns the machine's load averages over 1, 5 and 15 minutes, from /proc.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// machine describes where the run ran.
func machine() string {
	return fmt.Sprintf("%d cores, %s %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
