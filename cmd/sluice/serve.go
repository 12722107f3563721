package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob/azure"
	"github.com/sluice-batch/sluice/engine"
	"github.com/sluice-batch/sluice/httpapi"
	"github.com/sluice-batch/sluice/postgres"
	"github.com/sluice-batch/sluice/sim"
	"github.com/sluice-batch/sluice/sqlite"
	"github.com/sluice-batch/sluice/upstream"
)

// defaultDeployment is the deployment served by the built-in simulator when nothing
// else is configured.
const defaultDeployment = "gpt-4o-mini"

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		addr        = fs.String("addr", envOr(getenv, "SLUICE_ADDR", "127.0.0.1:8080"), "address to listen on (SLUICE_ADDR)")
		dataDir     = fs.String("data", envOr(getenv, "SLUICE_DATA", "./sluice-data"), "folder for the database and file contents (SLUICE_DATA)")
		dbURL       = fs.String("db", getenv("SLUICE_DATABASE_URL"), "keep the database in PostgreSQL at this postgres:// URL instead of SQLite in the data folder, shared by every replica; needs --blob (SLUICE_DATABASE_URL)")
		blobLoc     = fs.String("blob", getenv("SLUICE_BLOB"), "keep file contents and results in azblob://CONTAINER[/PREFIX] (credentials in AZURE_STORAGE_CONNECTION_STRING) or file:///PATH instead of the data folder (SLUICE_BLOB)")
		configPath  = fs.String("config", getenv("SLUICE_CONFIG"), "YAML config: api keys, projects, deployments, upstreams (SLUICE_CONFIG)")
		upstreamURL = fs.String("upstream", "", "base URL of one OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1")
		depName     = fs.String("deployment", "", "deployment name served by --upstream (what body.model names)")
		upModel     = fs.String("upstream-model", "", "model name sent to --upstream; default the deployment name")
		upKey       = fs.String("upstream-key", "", "API key sent to --upstream; the process list shows it: prefer --upstream-key-file or SLUICE_UPSTREAM_KEY")
		upKeyFile   = fs.String("upstream-key-file", getenv("SLUICE_UPSTREAM_KEY_FILE"), "file holding the API key sent to --upstream, e.g. a mounted secret (SLUICE_UPSTREAM_KEY_FILE)")
		upConc      = fs.Int("upstream-concurrency", 64, "requests in flight to --upstream at most")
		simLatency  = fs.Duration("sim-latency", 20*time.Millisecond, "latency of the built-in simulator, when it serves the default deployment")
		logLevel    = fs.String("log-level", "info", "debug, info, warn or error")
		cancelGrace = fs.Duration("cancel-grace", 0, "how long in-flight lines of a cancelled batch may finish (default 30s)")
		maxUpload   = fs.Int64("max-upload-bytes", sluice.MaxFileBytes, "largest input file accepted")
		maxFiles    = fs.Int("max-files", httpapi.DefaultMaxFiles, "files kept without an expiry, output files included; -1 for no limit")
		maxExpiring = fs.Int("max-expiring-files", httpapi.DefaultMaxExpiringFiles, "files kept with an expiry, output files included; -1 for no limit")
		maxRequests = fs.Int("max-requests", sluice.MaxRequests, "most request lines in one input file")
		debugAddr   = fs.String("debug-addr", getenv("SLUICE_DEBUG_ADDR"), "serve /debug/pprof/ and /debug/vars here, e.g. 127.0.0.1:6060; off by default (SLUICE_DEBUG_ADDR)")

		// Limits and timeouts (docs/architecture.md, "Limits and timeouts").
		headerTimeout = fs.Duration("read-header-timeout", 10*time.Second, "a request's headers must arrive within this")
		idleTimeout   = fs.Duration("idle-timeout", 2*time.Minute, "a kept-alive connection idle this long is closed")
		stallTimeout  = fs.Duration("stall-timeout", httpapi.DefaultStallTimeout, "a request body or response moving under --min-rate over this long, or stopped this long, is cut off; negative for never")
		minRate       = fs.Int64("min-rate", httpapi.DefaultMinRate, "bytes a second a request body or response must average over --stall-timeout; negative for any")
		maxConns      = fs.Int("max-conns", defaultMaxConns, "open connections at most (kept under the open-file limit); at the limit the longest idle one is closed")
		maxUploads    = fs.Int("max-uploads", httpapi.DefaultMaxUploads, "uploads (files, parts, completions, imports, retries) running at once; more get 429; negative for no limit")
		maxUploadsKey = fs.Int("max-uploads-per-key", httpapi.DefaultMaxUploadsPerKey, "uploads running at once with one API key; negative for no limit")
		rateLimit     = fs.Float64("rate-limit", httpapi.DefaultRate, "requests a second one API key may send on average; more get 429 with Retry-After; negative for no limit")
		rateBurst     = fs.Int("rate-burst", 0, "requests one API key may send at once; default twice --rate-limit")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if path := getenv("SLUICE_CPUPROFILE"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	tuneGC(getenv, logger)
	tuneProcs(getenv, logger)
	if *debugAddr != "" {
		stopDebug, err := startDebug(*debugAddr, stdout)
		if err != nil {
			return err
		}
		defer stopDebug()
	}

	cfg := &Config{}
	if *configPath != "" {
		c, err := loadConfig(*configPath, getenv)
		if err != nil {
			return err
		}
		cfg = c
	}
	if *upstreamURL != "" || *depName != "" {
		if *upstreamURL == "" || *depName == "" {
			return errors.New("--upstream and --deployment go together")
		}
		if err := checkBaseURL(*upstreamURL); err != nil {
			return fmt.Errorf("--upstream: %w", err)
		}
		key, err := upstreamKey(*upKey, *upKeyFile, getenv)
		if err != nil {
			return err
		}
		cfg.Deployments = append(cfg.Deployments, DeploymentConfig{Name: *depName, Type: "global", Upstreams: []UpstreamConfig{{
			BaseURL: *upstreamURL, Model: *upModel, APIKey: key, MaxConcurrency: *upConc,
		}}})
		if err := cfg.Validate(); err != nil {
			return err
		}
	}
	if k := getenv("SLUICE_API_KEYS"); k != "" {
		for _, key := range strings.Split(k, ",") {
			if key = strings.TrimSpace(key); key != "" {
				cfg.APIKeys = append(cfg.APIKeys, key)
			}
		}
	}
	keys := cfg.Keys()
	open := len(keys) == 0 && len(cfg.APIKeys) == 0

	conns, err := connLimit(*maxConns, logger)
	if err != nil {
		return err
	}
	tcp, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ln := httpapi.LimitListener(tcp, conns)
	defer ln.Close()
	if open {
		if !isLoopback(ln.Addr()) {
			return fmt.Errorf("no API key is configured and %s is reachable from other machines: set SLUICE_API_KEYS or api_keys in --config, or listen on 127.0.0.1", *addr)
		}
		logger.Warn("no API key configured: the API is open to anyone on this machine")
	}

	// The simulator stands in for an upstream when none is configured. It is served over
	// loopback HTTP like any upstream, so the engine's path is the same as in production.
	if len(cfg.Deployments) == 0 {
		simURL, stopSim, err := startSim(sim.Options{Latency: *simLatency})
		if err != nil {
			return err
		}
		defer stopSim()
		cfg.Deployments = []DeploymentConfig{{Name: defaultDeployment, Type: "global",
			EnqueuedTokenLimit: TokenLimit{Default: true}, DynamicQuota: true,
			Upstreams: []UpstreamConfig{{BaseURL: simURL, MaxConcurrency: 64}}}}
		logger.Info("no upstream configured: deployment " + defaultDeployment + " is served by the built-in simulator")
	}

	store, closeStore, err := openStore(ctx, *dbURL, *blobLoc, *dataDir, logger)
	if err != nil {
		return err
	}
	defer closeStore()
	bucket, err := openBucket(ctx, *blobLoc, *dataDir, getenv, logger)
	if err != nil {
		return err
	}
	blobs, err := openBlobs(cfg.StorageAccounts, logger)
	if err != nil {
		return err
	}
	ec := cfg.Engine
	// What the API and the engine treat as a fault of their own storage, which passes.
	fault := sluice.Faults(sluice.StorageFault, sqlite.Fault, postgres.Fault, azure.Fault)
	eng, err := engine.New(store, bucket, cfg.domain(), &engine.Options{
		Fault:  fault,
		Blobs:  blobs,
		Logger: logger, MaxAttempts: ec.MaxAttempts, CancelGrace: max(ec.CancelGrace, *cancelGrace),
		RequestTimeout: ec.RequestTimeout, TimeoutFactor: ec.TimeoutFactor, MinRequestTimeout: ec.MinRequestTimeout, ConnectTimeout: ec.ConnectTimeout,
		LeaseDuration: ec.LeaseDuration, BackoffBase: ec.BackoffBase, BackoffMax: ec.BackoffMax, MaxFileBytes: *maxUpload,
		MaxRequests: *maxRequests, OutageBudget: ec.OutageBudget, Shared: *dbURL != "", Projects: cfg.projectLimits(),
	})
	if err != nil {
		return err
	}
	if err := eng.Start(ctx); err != nil {
		return err
	}
	api := httpapi.NewServer(store, eng, &httpapi.Options{APIKeys: cfg.APIKeys, Keys: keys, Fault: fault, Ready: eng.Ready, Logger: logger, Deployments: eng.Configured(),
		MaxFiles: *maxFiles, MaxExpiringFiles: *maxExpiring, Limits: httpapi.Limits{
			MaxUploadBytes: *maxUpload, MaxUploads: *maxUploads, MaxUploadsPerKey: *maxUploadsKey,
			Rate: *rateLimit, Burst: *rateBurst, StallTimeout: *stallTimeout, MinRate: *minRate,
		}})
	// No ReadTimeout or WriteTimeout: a 200 MB upload or download on a slow link may
	// take hours. The API cuts off a body or response that stalls instead (--stall-timeout).
	srv := &http.Server{Handler: api, ReadHeaderTimeout: *headerTimeout, IdleTimeout: *idleTimeout, ConnState: ln.ConnState,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	if *dbURL != "" {
		fmt.Fprintf(stdout, "sluice %s listening on %s (database %s)\n", Version, url, upstream.Redact(*dbURL))
	} else {
		fmt.Fprintf(stdout, "sluice %s listening on %s (data in %s)\n", Version, url, *dataDir)
	}
	if *blobLoc != "" {
		fmt.Fprintf(stdout, "  files and results in %s\n", upstream.Redact(*blobLoc))
	}
	for _, d := range cfg.domain() {
		fmt.Fprintf(stdout, "  deployment %s -> %s\n", d.Name, upstream.Redact(d.Upstreams[0].BaseURL))
	}
	keyHeader := ""
	if !open {
		keyHeader = ` -H "api-key: $KEY"`
	}
	fmt.Fprintf(stdout, "try: curl%s -F purpose=batch -F file=@test.jsonl '%s/openai/files?api-version=2024-10-21'\n", keyHeader, url)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-served:
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	ectx, cancel2 := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel2()
	if err := eng.Stop(ectx); err != nil {
		logger.Warn("engine stop cut in-flight lines short; they will be sent again", "err", err)
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// upstreamKey returns the key for --upstream: --upstream-key, else the content of
// --upstream-key-file (or SLUICE_UPSTREAM_KEY_FILE), else SLUICE_UPSTREAM_KEY. The flag
// is the last resort: every user of the machine sees it in the process list.
func upstreamKey(flagKey, file string, getenv func(string) string) (string, error) {
	switch {
	case flagKey != "" && file != "":
		return "", errors.New("give --upstream-key or --upstream-key-file, not both")
	case flagKey != "":
		return flagKey, nil
	case file != "":
		key, err := readKeyFile(file)
		if err != nil {
			return "", fmt.Errorf("--upstream-key-file: %w", err)
		}
		return key, nil
	}
	return getenv("SLUICE_UPSTREAM_KEY"), nil
}

// defaultMaxConns is --max-conns' default.
const defaultMaxConns = 4096

// reservedFiles are the file descriptors kept out of --max-conns for the data folder,
// the database and the upstreams' connections.
const reservedFiles = 256

// connLimit returns the open connections to allow: n, but less when the process's
// open-file limit would not leave reservedFiles besides (Go raises the soft limit to
// the hard one at start).
func connLimit(n int, logger *slog.Logger) (int, error) {
	if n <= 0 {
		return 0, fmt.Errorf("--max-conns %d: want at least 1", n)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		return n, nil // no limit to speak of
	}
	if room := int64(rl.Cur) - reservedFiles; int64(n) > room {
		m := int(max(room, 16))
		logger.Warn("--max-conns lowered to fit the open-file limit", "max_conns", m, "open_file_limit", rl.Cur)
		return m, nil
	}
	return n, nil
}

func envOr(getenv func(string) string, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// openStore opens the store: PostgreSQL at dbURL, shared by replicas, or SQLite in the
// data folder, which it locks for this process alone.
func openStore(ctx context.Context, dbURL, blobLoc, dataDir string, logger *slog.Logger) (sluice.Store, func(), error) {
	if dbURL != "" {
		if !strings.HasPrefix(dbURL, "postgres://") && !strings.HasPrefix(dbURL, "postgresql://") {
			return nil, nil, fmt.Errorf("--db %s: want a postgres:// URL", upstream.Redact(dbURL))
		}
		if blobLoc == "" {
			return nil, nil, errors.New("--db: replicas share their files too: give --blob azblob://CONTAINER[/PREFIX] (or file:///PATH on a shared disk)")
		}
		store, err := postgres.Open(ctx, dbURL, &postgres.Options{Logger: logger})
		if err != nil {
			return nil, nil, fmt.Errorf("--db %s: %w", upstream.Redact(dbURL), err)
		}
		return store, func() { store.Close() }, nil
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("data folder: %w", err)
	}
	unlock, err := lockDir(dataDir)
	if err != nil {
		return nil, nil, err
	}
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "sluice.db"), &sqlite.Options{Logger: logger})
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return store, func() { store.Close(); unlock() }, nil
}

// lockDir takes an exclusive lock on the data folder: the embedded store has one
// process, and a second one would corrupt nothing but would fight over leases.
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock data folder: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("the data folder %s is in use by another sluice process", dir)
	}
	return func() { f.Close() }, nil
}

// startSim serves the simulator on a free loopback port and returns its base URL.
func startSim(opts sim.Options) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("start simulator: %w", err)
	}
	srv := &http.Server{Handler: sim.New(opts), ReadHeaderTimeout: 30 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed at stop
	return "http://" + ln.Addr().String() + "/v1", func() { srv.Close() }, nil
}

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "address to listen on")
	var opts sim.Options
	opts.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sim.New(opts), ReadHeaderTimeout: 30 * time.Second}
	fmt.Fprintf(stdout, "sluice sim listening on http://%s/v1\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	case err := <-served:
		return err
	}
}

var _ sluice.Service = (*engine.Engine)(nil)

// startCPUProfile writes a CPU profile of the whole run to path (SLUICE_CPUPROFILE), for
// finding where the hot path spends its time under the benchmarks.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
