package main

import (
	"expvar"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/debug"
	"time"
)

// Garbage collection defaults of `sluice serve`, chosen by measurement (BENCHMARKS.md):
// the hot path allocates a few kilobytes per line while its live heap is a few
// megabytes, so the runtime's default (collect when the heap doubles) collects hundreds
// of times per 100,000 lines. A higher GOGC collects a tenth as often; the soft memory
// limit keeps a large live heap (a scan of a million-line file) from growing five-fold
// before a collection. GOGC and GOMEMLIMIT in the environment take precedence, as
// for any Go program.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 128 << 20
)

// tuneGC applies the defaults above unless the environment sets its own.
func tuneGC(getenv func(string) string, logger *slog.Logger) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
		logger.Debug("garbage collection", "gogc", defaultGCPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
		logger.Debug("garbage collection", "memory_limit", defaultMemoryLimit)
	}
}

// spareProcs are the Ps `sluice serve` runs with beyond the runtime's default (one per
// CPU the process may use). The committer's fsyncs and SQLite's file writes block in
// the kernel for a millisecond or more while holding their P until the runtime's
// monitor takes it back; on a two-core machine that idles half the scheduler, and an
// API read waits behind it. Two more Ps let the kernel run another thread meanwhile:
// GET batch p99 under a full-speed batch went from 11.1 to 8.9 ms (medians of five
// runs, BENCHMARKS.md, P7), at no cost in throughput or CPU per line.
const spareProcs = 2

// defaultProcs is the runtime's GOMAXPROCS before tuneProcs changed it.
var defaultProcs = runtime.GOMAXPROCS(0)

// tuneProcs sets GOMAXPROCS to the default plus spareProcs unless the environment sets
// GOMAXPROCS.
func tuneProcs(getenv func(string) string, logger *slog.Logger) {
	if getenv("GOMAXPROCS") != "" {
		return
	}
	runtime.GOMAXPROCS(defaultProcs + spareProcs)
	logger.Debug("scheduler", "gomaxprocs", defaultProcs+spareProcs)
}

// startDebug serves the runtime's profiles (/debug/pprof/) and variables (/debug/vars,
// memstats included) on addr, for operators and the benchmarks. It is off unless
// --debug-addr is given, and should stay on a loopback address: profiles show internals.
func startDebug(addr string, stdout io.Writer) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.Handle("/debug/vars", expvar.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed at stop
	fmt.Fprintf(stdout, "debug endpoints at http://%s/debug/\n", ln.Addr())
	return func() { srv.Close() }, nil
}
