// Command replicas measures scale-out: lines/s of one batch on 1 and on 3 `sluice
// serve` replicas sharing a PostgreSQL database and an Azure Blob container, when the
// upstream is the bottleneck. Each replica has a `sluice sim` of its own with a fixed
// capacity (--capacity slots, --latency each, no generation time, no slowdown) and
// sends to it with max_concurrency equal to the slots, so N replicas can do at most
// N × slots / latency lines a second, and the ratio of 3 replicas to 1 says how much of
// that the shared store, the shared bucket and the hand-over of work let through.
//
//	bash scripts/postgres.sh bash scripts/azurite.sh go run ./bench/replicas -sluice /tmp/sluice
//
// It reads the database URL from SLUICE_TEST_POSTGRES and the Azurite connection
// string from SLUICE_TEST_AZURITE, which those scripts set (bench/replicas.sh runs it
// under both). Each round gets a fresh schema and a fresh container, which are
// dropped after it. The batch is uploaded through the first replica and created
// through the last; the clock runs from the upload's first byte until the result
// files are read to the end and hold each custom_id once. Each simulator's /stats is
// sampled while the batch runs, which shows how the lines split between replicas,
// when each replica sent its first and last request, how full its slots were, and how
// many upstream calls there were for how many lines.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/jackc/pgx/v5"

	"github.com/sluice-batch/sluice/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(1)
	}
}

type config struct {
	bin      string
	dsn      string // the database; each round makes a schema in it
	conn     string // the Azurite connection string
	lines    int
	slots    int
	latency  time.Duration
	poll     time.Duration
	sample   time.Duration
	timeout  time.Duration
	engine   string // YAML under engine:, e.g. "lease_duration: 30s"
	simArgs  []string
	stderr   io.Writer
	logLevel string
}

func run() error {
	var (
		cfg      config
		rounds   = flag.Int("rounds", 1, "rounds of each replica count, alternating; medians are reported")
		counts   = flag.String("replicas", "1,3", "replica counts to measure, comma-separated; the ratio is the last to the first")
		simArgs  = flag.String("sim-args", "", "extra arguments for each `sluice sim`, split on spaces")
		verbose  = flag.Bool("v", false, "show the logs of sluice and the simulators")
		logLevel = flag.String("log-level", "warn", "sluice's log level, with -v")
	)
	flag.StringVar(&cfg.bin, "sluice", "sluice", "path of the sluice binary")
	flag.StringVar(&cfg.dsn, "db", os.Getenv("SLUICE_TEST_POSTGRES"), "PostgreSQL URL; a schema is made in it per round")
	flag.StringVar(&cfg.conn, "azure", os.Getenv("SLUICE_TEST_AZURITE"), "Azure Blob connection string; a container is made per round")
	flag.IntVar(&cfg.lines, "lines", 24000, "lines in the batch")
	flag.IntVar(&cfg.slots, "slots", 32, "each simulator's capacity, and its replica's max_concurrency")
	flag.DurationVar(&cfg.latency, "latency", 100*time.Millisecond, "each simulator's time per request")
	flag.DurationVar(&cfg.poll, "poll", 50*time.Millisecond, "interval between polls of the file and batch")
	flag.DurationVar(&cfg.sample, "sample", 100*time.Millisecond, "interval between samples of each simulator's /stats")
	flag.DurationVar(&cfg.timeout, "timeout", 15*time.Minute, "longest a round may take")
	flag.StringVar(&cfg.engine, "engine", "", "YAML for the config's engine section, e.g. \"lease_duration: 30s\"")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if cfg.dsn == "" || cfg.conn == "" {
		return errors.New("-db and -azure are needed (or SLUICE_TEST_POSTGRES and SLUICE_TEST_AZURITE): run under bench/replicas.sh")
	}
	if *rounds < 1 || cfg.lines < 1 || cfg.slots < 1 || cfg.latency <= 0 || cfg.poll <= 0 || cfg.sample <= 0 {
		return errors.New("-rounds, -lines, -slots, -latency, -poll and -sample must be positive")
	}
	ns, err := parseCounts(*counts)
	if err != nil {
		return err
	}
	cfg.simArgs = strings.Fields(*simArgs)
	cfg.stderr = io.Discard
	cfg.logLevel = "warn"
	if *verbose {
		cfg.stderr = os.Stderr
		cfg.logLevel = *logLevel
	}

	input := harness.Requests(cfg.lines)
	runs := map[int][]result{}
	for r := range *rounds {
		for _, n := range ns {
			res, err := round(cfg, n, input)
			if err != nil {
				return fmt.Errorf("round %d, %d replicas: %w", r+1, n, err)
			}
			runs[n] = append(runs[n], res)
			fmt.Fprintf(os.Stderr, "round %d: %s\n", r+1, res.describe(cfg))
		}
	}

	fmt.Printf("| replicas | lines | each: slots × latency | ideal lines/s | lines/s, upload to download | / ideal | lines/s, in_progress to completed | / ideal | upstream calls (repeats) | lines per replica |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|\n")
	medians := map[int]result{}
	for _, n := range ns {
		totals := make([]float64, len(runs[n]))
		for i, r := range runs[n] {
			totals[i] = r.rate(r.total)
		}
		m := runs[n][harness.MedianIndex(totals)]
		medians[n] = m
		ideal := idealRate(n, cfg.slots, cfg.latency)
		fmt.Printf("| %d | %d | %d × %s | %.0f | %.0f | %.3f | %.0f | %.3f | %d (%d) | %s |\n",
			n, cfg.lines, cfg.slots, cfg.latency, ideal, m.rate(m.total), m.rate(m.total)/ideal,
			m.rate(m.dispatch), m.rate(m.dispatch)/ideal, m.calls(), m.calls()-int64(cfg.lines), m.split())
	}
	if len(ns) > 1 {
		first, last := medians[ns[0]], medians[ns[len(ns)-1]]
		fmt.Printf("\n%d replicas / %d: **%.2f×** upload to download, %.2f× in_progress to completed (ideal %.2f×)\n",
			ns[len(ns)-1], ns[0], last.rate(last.total)/first.rate(first.total),
			last.rate(last.dispatch)/first.rate(first.dispatch), float64(ns[len(ns)-1])/float64(ns[0]))
	}
	fmt.Printf("\nCores used, upload to download (CPU seconds over the time), in the median round:\n\n")
	fmt.Printf("| replicas | sluice, all replicas | simulators | PostgreSQL | Azurite | bench | sum | machine at nice ≤ 0, in_progress to completed (+ niced) |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|\n")
	for _, n := range ns {
		m := medians[n]
		fmt.Printf("| %d | %s | %.2f (+%.2f) |\n", n, m.use.cores(m.total), m.busyCores, m.nicedCores)
	}
	fmt.Printf("\nPer replica, in the median round (times from in_progress):\n\n")
	fmt.Printf("| replicas | replica | lines sent | first request s | last request s | slots busy, in_progress to its last request | sluice CPU s |\n")
	fmt.Printf("|---|---|---|---|---|---|---|\n")
	for _, n := range ns {
		m := medians[n]
		for i, s := range m.sims {
			fmt.Printf("| %d | %d | %d | %.2f | %.2f | %.3f | %.1f |\n", n, i, s.requests, s.first.Seconds(), s.last.Seconds(), s.busy, m.cpu[i])
		}
	}
	return nil
}

// parseCounts reads a comma-separated list of positive replica counts.
func parseCounts(s string) ([]int, error) {
	var ns []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-replicas: %q is not a positive number", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

// idealRate is the most lines a second n replicas can get from simulators of slots
// slots each taking latency a request.
func idealRate(n, slots int, latency time.Duration) float64 {
	return float64(n*slots) / latency.Seconds()
}

// result is one round.
type result struct {
	lines      int
	started    time.Time     // when a poll first saw the batch in_progress
	total      time.Duration // the first byte of the upload to the last of the download
	validate   time.Duration // create to in_progress, as polls see it
	dispatch   time.Duration // in_progress to completed, as polls see it
	finalize   time.Duration // the last upstream request to completed
	sims       []simSummary  // one per replica
	cpu        []float64     // each sluice's CPU seconds, upload to download
	use        usage         // CPU seconds by component, upload to download
	busyCores  float64       // the machine's busy cores at nice 0 or below, in_progress to completed
	nicedCores float64       // and at a positive nice: other work on the machine
}

func (r result) rate(d time.Duration) float64 { return float64(r.lines) / d.Seconds() }

// calls returns the requests all simulators got.
func (r result) calls() int64 {
	var n int64
	for _, s := range r.sims {
		n += s.requests
	}
	return n
}

// split returns the requests each simulator got, as shares of all.
func (r result) split() string {
	all := r.calls()
	parts := make([]string, len(r.sims))
	for i, s := range r.sims {
		parts[i] = fmt.Sprintf("%d (%.2f)", s.requests, float64(s.requests)/float64(max(all, 1)))
	}
	return strings.Join(parts, ", ")
}

func (r result) describe(cfg config) string {
	n := len(r.sims)
	ideal := idealRate(n, cfg.slots, cfg.latency)
	s := fmt.Sprintf("%d replicas: %.2fs (%.0f lines/s, %.3f of ideal); create to in_progress %.2fs; in_progress to completed %.2fs (%.0f lines/s, %.3f of ideal); last request to completed %.2fs; %d upstream calls for %d lines; busy cores %.2f (+%.2f niced)",
		n, r.total.Seconds(), r.rate(r.total), r.rate(r.total)/ideal, r.validate.Seconds(), r.dispatch.Seconds(),
		r.rate(r.dispatch), r.rate(r.dispatch)/ideal, r.finalize.Seconds(), r.calls(), r.lines, r.busyCores, r.nicedCores)
	s += "\n  cores, upload to download: " + r.use.cores(r.total)
	for i, sm := range r.sims {
		s += fmt.Sprintf("\n  replica %d: %d requests, first at %.2fs, last at %.2fs, slots busy %.3f, sluice CPU %.1fs",
			i, sm.requests, sm.first.Seconds(), sm.last.Seconds(), sm.busy, r.cpu[i])
	}
	return s
}

// round runs the batch on n fresh replicas, each with a simulator of its own.
func round(cfg config, n int, input []byte) (result, error) {
	res := result{lines: cfg.lines}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.timeout)
	defer cancel()

	suffix := randomSuffix()
	schema := "bench_replicas_" + suffix
	if err := pgExec(ctx, cfg.dsn, "CREATE SCHEMA "+schema); err != nil {
		return res, err
	}
	defer func() {
		if err := pgExec(context.Background(), cfg.dsn, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			fmt.Fprintln(os.Stderr, "replicas: drop schema:", err)
		}
	}()
	dsn, err := withSearchPath(cfg.dsn, schema)
	if err != nil {
		return res, err
	}
	container := "bench-replicas-" + suffix
	defer deleteContainer(cfg.conn, container)

	dir, err := os.MkdirTemp("", "sluice-replicas-*")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)

	var sims, serves []*harness.Child
	defer func() {
		for _, c := range serves {
			c.Stop()
		}
		for _, c := range sims {
			c.Stop()
		}
	}()
	for i := range n {
		sim, err := harness.Start(cfg.bin, `sluice sim listening on (http://\S+)`, &harness.Options{Stderr: cfg.stderr},
			append([]string{"sim", "--addr", "127.0.0.1:0", "--capacity", strconv.Itoa(cfg.slots), "--latency", cfg.latency.String()},
				cfg.simArgs...)...)
		if err != nil {
			return res, err
		}
		sims = append(sims, sim)
		path := filepath.Join(dir, fmt.Sprintf("r%d.yaml", i))
		if err := os.WriteFile(path, []byte(configYAML(sim.URL, cfg.slots, cfg.engine)), 0o600); err != nil {
			return res, err
		}
		// One at a time: the first creates the tables.
		serve, err := harness.Start(cfg.bin, `listening on (http://\S+)`,
			&harness.Options{Env: []string{"AZURE_STORAGE_CONNECTION_STRING=" + cfg.conn}, Stderr: cfg.stderr},
			"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, fmt.Sprintf("r%d", i)), "--config", path,
			"--db", dsn, "--blob", "azblob://"+container, "--log-level", cfg.logLevel)
		if err != nil {
			return res, err
		}
		serves = append(serves, serve)
	}

	stack, err := findStack(cfg.dsn, cfg.conn)
	if err != nil {
		return res, err
	}
	meter := func() usage {
		u := stack.usage()
		for i := range serves {
			u.sluice = append(u.sluice, serves[i].CPU())
			u.sims += sims[i].CPU()
		}
		u.bench = harness.SelfCPU()
		return u
	}
	sampler := newSampler(sims, cfg.sample)
	defer sampler.stop()
	err = pipeline(ctx, cfg, serves, input, &res, meter)
	samples := sampler.stop()
	if err != nil {
		for _, c := range serves {
			if exited := c.Exited(); exited != nil {
				err = fmt.Errorf("%w; %w", err, exited)
			}
		}
		return res, err
	}
	for i, sim := range sims {
		var st simStats
		if err := getJSON(sim.URL+"/stats", &st); err != nil {
			return res, err
		}
		sm := summarize(samples[i], res.started, cfg.slots)
		sm.requests = st.Requests // the final count, after the last sample
		res.sims = append(res.sims, sm)
		res.cpu = append(res.cpu, res.use.sluice[i])
	}
	var last time.Duration
	for _, s := range res.sims {
		last = max(last, s.last)
	}
	res.finalize = res.dispatch - last
	return res, nil
}

// configYAML is a replica's config: one deployment whose one upstream is its simulator.
func configYAML(simURL string, slots int, engine string) string {
	s := fmt.Sprintf(`deployments:
  - name: %s
    upstreams:
      - base_url: %s
        max_concurrency: %d
`, harness.Deployment, simURL, slots)
	if engine != "" {
		s += "engine:\n"
		for _, l := range strings.Split(engine, ";") {
			s += "  " + strings.TrimSpace(l) + "\n"
		}
	}
	return s
}

// pipeline uploads the input through the first replica, creates the batch through the
// last, polls the first until the batch ends, and downloads and checks the results.
func pipeline(ctx context.Context, cfg config, serves []*harness.Child, input []byte, res *result, meter func() usage) error {
	first := harness.NewClient(serves[0].URL, 4)
	defer first.HTTP.CloseIdleConnections()
	last := harness.NewClient(serves[len(serves)-1].URL, 4)
	defer last.HTTP.CloseIdleConnections()

	u0 := meter()
	t0 := time.Now()
	f, err := first.Upload(ctx, "bench.jsonl", bytes.NewReader(input))
	if err != nil {
		return err
	}
	if f, err = first.WaitProcessed(ctx, f, cfg.poll); err != nil {
		return err
	}
	tCreate := time.Now()
	b, err := last.CreateBatch(ctx, f.ID)
	if err != nil {
		return err
	}
	var cpu0 cpuTimes
	tick := time.NewTicker(cfg.poll)
	defer tick.Stop()
	for {
		if res.started.IsZero() && b.Status != "validating" {
			res.started = time.Now()
			cpu0 = readCPUTimes()
		}
		if b.Terminal() {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no end in %s: %s", cfg.timeout, b.Describe())
		case <-tick.C:
		}
		if b, err = first.Batch(ctx, b.ID); err != nil {
			return err
		}
	}
	tCompleted := time.Now()
	res.busyCores, res.nicedCores = readCPUTimes().coresSince(cpu0, runtime.NumCPU())
	if b.Status != "completed" || b.RequestCounts.Completed != cfg.lines {
		return fmt.Errorf("want every line completed: %s", b.Describe())
	}
	check := harness.NewIDCheck(cfg.lines)
	for _, id := range []*string{b.OutputFileID, b.ErrorFileID} {
		if id == nil {
			continue
		}
		if _, err := first.Content(ctx, *id, check); err != nil {
			return err
		}
		check.EndFile()
	}
	if err := check.Err(); err != nil {
		return fmt.Errorf("result files of %s: %w", b.ID, err)
	}
	res.total = time.Since(t0)
	res.use = meter().minus(u0)
	res.validate = res.started.Sub(tCreate)
	res.dispatch = tCompleted.Sub(res.started)
	return nil
}

// simStats is the part of a simulator's /stats the benchmark reads.
type simStats struct {
	Requests int64 `json:"requests"`
	Running  int64 `json:"running"`
}

// sample is one reading of a simulator's /stats.
type sample struct {
	at       time.Time
	requests int64
	running  int64
}

// sampler reads every simulator's /stats at a fixed interval.
type sampler struct {
	done    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once
	mu      sync.Mutex
	samples [][]sample
}

func newSampler(sims []*harness.Child, every time.Duration) *sampler {
	s := &sampler{done: make(chan struct{}), samples: make([][]sample, len(sims))}
	for i, sim := range sims {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				var st simStats
				if err := getJSON(sim.URL+"/stats", &st); err == nil {
					s.mu.Lock()
					s.samples[i] = append(s.samples[i], sample{at: time.Now(), requests: st.Requests, running: st.Running})
					s.mu.Unlock()
				}
				select {
				case <-s.done:
					return
				case <-t.C:
				}
			}
		}()
	}
	return s
}

// stop ends the sampling and returns the samples of each simulator.
func (s *sampler) stop() [][]sample {
	s.once.Do(func() { close(s.done) })
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.samples
}

// simSummary is what one simulator's samples say about its replica.
type simSummary struct {
	requests int64
	first    time.Duration // from in_progress to the first sample with a request; -1 if none
	last     time.Duration // from in_progress to the first sample at the final count
	busy     float64       // mean running / slots over the samples from in_progress to last
}

// summarize reads one simulator's samples, taken in order, against the time the batch
// went in_progress. A request is placed at the first sample that counts it, so times
// are late by up to one sampling interval.
func summarize(samples []sample, started time.Time, slots int) simSummary {
	sm := simSummary{first: -1}
	if len(samples) == 0 {
		return sm
	}
	final := samples[len(samples)-1].requests
	sm.requests = final
	lastAt := samples[len(samples)-1].at
	for _, s := range samples {
		if sm.first < 0 && s.requests > 0 {
			sm.first = s.at.Sub(started)
		}
		if s.requests == final {
			lastAt = s.at
			break
		}
	}
	sm.last = lastAt.Sub(started)
	var sum float64
	var n int
	for _, s := range samples {
		if s.at.Before(started) || s.at.After(lastAt) {
			continue
		}
		sum += float64(s.running)
		n++
	}
	if n > 0 && slots > 0 {
		sm.busy = sum / float64(n) / float64(slots)
	}
	return sm
}

// cpuTimes are the machine's CPU jiffies from /proc/stat: busy at nice 0 or below,
// busy at a positive nice, and all.
type cpuTimes struct{ busy, niced, total float64 }

// readCPUTimes reads the first line of /proc/stat; zero when it cannot.
func readCPUTimes() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	return parseCPULine(string(b))
}

// parseCPULine reads the aggregate "cpu" line of /proc/stat (user nice system idle
// iowait irq softirq steal guest guest_nice): idle and iowait are idle, nice is niced,
// the rest busy. Guest time is already inside user and nice, so it is left out.
func parseCPULine(stat string) cpuTimes {
	line, _, _ := strings.Cut(stat, "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return cpuTimes{}
	}
	var c cpuTimes
	for i, v := range f[1:min(len(f), 9)] {
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return cpuTimes{}
		}
		c.total += x
		switch i {
		case 1:
			c.niced += x
		case 3, 4:
		default:
			c.busy += x
		}
	}
	return c
}

// coresSince returns how many cores were busy on average between c0 and c, out of
// cores: at nice 0 or below (where this benchmark's processes run) and niced (other
// work on the machine, e.g. builds).
func (c cpuTimes) coresSince(c0 cpuTimes, cores int) (busy, niced float64) {
	dt := c.total - c0.total
	if dt <= 0 {
		return 0, 0
	}
	return (c.busy - c0.busy) / dt * float64(cores), (c.niced - c0.niced) / dt * float64(cores)
}

// withSearchPath returns the postgres:// URL dsn with its search_path set to schema.
func withSearchPath(dsn, schema string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", fmt.Errorf("-db %q is not a postgres:// URL", dsn)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// pgExec runs one statement on a connection of its own.
func pgExec(ctx context.Context, dsn, sql string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// deleteContainer deletes a round's container with its blobs; a container never made
// is no error worth a word.
func deleteContainer(conn, name string) {
	c, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicas: delete container:", err)
		return
	}
	_, _ = c.DeleteContainer(context.Background(), name, nil)
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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
