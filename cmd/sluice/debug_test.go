package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

// tuneGC sets the defaults only where the environment says nothing. Not parallel: it
// changes the process's garbage collector.
func TestTuneGC(t *testing.T) {
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPercent)
		debug.SetMemoryLimit(oldLimit)
	})
	logger := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		name        string
		env         map[string]string
		wantPercent int
		wantLimit   int64
	}{
		{"defaults", nil, defaultGCPercent, defaultMemoryLimit},
		{"gogc-set", map[string]string{"GOGC": "150"}, 150, defaultMemoryLimit},
		{"memlimit-set", map[string]string{"GOMEMLIMIT": "1GiB"}, defaultGCPercent, 1 << 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The environment's values, as the runtime would have applied them at start.
			debug.SetGCPercent(150)
			debug.SetMemoryLimit(1 << 30)
			tuneGC(func(k string) string { return tc.env[k] }, logger)
			percent := debug.SetGCPercent(-1)
			debug.SetGCPercent(percent)
			if percent != tc.wantPercent {
				t.Errorf("GC percent: got %d, want %d", percent, tc.wantPercent)
			}
			if limit := debug.SetMemoryLimit(-1); limit != tc.wantLimit {
				t.Errorf("memory limit: got %d, want %d", limit, tc.wantLimit)
			}
		})
	}
}

// tuneProcs adds spare Ps to the runtime's default, however often a process starts a
// server, unless the environment sets GOMAXPROCS. Not parallel: it changes the
// process's scheduler.
func TestTuneProcs(t *testing.T) {
	old := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(old) })
	logger := slog.New(slog.DiscardHandler)
	for range 3 {
		tuneProcs(func(string) string { return "" }, logger)
	}
	if got := runtime.GOMAXPROCS(0); got != defaultProcs+spareProcs {
		t.Errorf("GOMAXPROCS %d, want %d", got, defaultProcs+spareProcs)
	}
	runtime.GOMAXPROCS(3)
	tuneProcs(func(k string) string { return map[string]string{"GOMAXPROCS": "3"}[k] }, logger)
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("with GOMAXPROCS=3 in the environment: %d", got)
	}
}

// --debug-addr serves the runtime's variables and profiles on an address of its own,
// printed on stdout; without it nothing is served there.
func TestDebugEndpoints(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	args := []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--debug-addr", "127.0.0.1:0"}
	go func() { done <- run(ctx, args, func(string) string { return "" }, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, stderr.String())
		}
	})
	debugRE := regexp.MustCompile(`debug endpoints at (http://\S+/debug/)`)
	var base string
	for deadline := time.Now().Add(30 * time.Second); base == "" && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := debugRE.FindStringSubmatch(stdout.String()); m != nil && listenRE.MatchString(stdout.String()) {
			base = m[1]
		}
	}
	if base == "" {
		t.Fatalf("no debug address printed:\n%s", stdout.String())
	}
	if strings.Index(stdout.String(), "debug endpoints") > strings.Index(stdout.String(), "listening on") {
		t.Errorf("the debug line comes after the listening line; tools wait for the latter:\n%s", stdout.String())
	}
	resp, err := http.Get(base + "vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vars struct {
		Memstats *struct{ Mallocs, NumGC uint64 } `json:"memstats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil || vars.Memstats == nil || vars.Memstats.Mallocs == 0 {
		t.Errorf("/debug/vars: got %+v, %v; want memstats", vars.Memstats, err)
	}
	resp, err = http.Get(base + "pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "goroutine profile") {
		t.Errorf("/debug/pprof/goroutine: got %d %.100s", resp.StatusCode, b)
	}
}

// --max-requests moves the limit on request lines: the line past it fails validation
// with too_many_tasks, and a file at the limit runs.
func TestMaxRequests(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil, "--max-requests", "5")
	over := c.mustCreateBatch(c.mustUpload(chatLines(6, "gpt-4o-mini")).ID, "/v1/chat/completions")
	over = c.waitBatch(over.ID, terminal)
	if over.Status != "failed" || over.Errors == nil || len(over.Errors.Data) != 1 ||
		over.Errors.Data[0].Code != "too_many_tasks" || over.Errors.Data[0].Line == nil || *over.Errors.Data[0].Line != 6 {
		t.Errorf("6 lines over a limit of 5: got %s %+v, want failed with too_many_tasks at line 6", over.Status, over.Errors)
	}
	at := c.mustCreateBatch(c.mustUpload(chatLines(5, "gpt-4o-mini")).ID, "/v1/chat/completions")
	if at = c.waitBatch(at.ID, terminal); at.Status != "completed" || at.RequestCounts.Completed != 5 {
		t.Errorf("5 lines at a limit of 5: got %s %+v, want completed", at.Status, at.RequestCounts)
	}
}
