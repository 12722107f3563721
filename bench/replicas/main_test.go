package main

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []sample{
		{at: at(-100), requests: 0, running: 0}, // before in_progress: not in the mean
		{at: at(0), requests: 0, running: 0},
		{at: at(100), requests: 10, running: 8},
		{at: at(200), requests: 40, running: 8},
		{at: at(300), requests: 50, running: 0}, // the final count, first seen here
		{at: at(400), requests: 50, running: 0}, // after the last request: not in the mean
	}
	got := summarize(samples, t0, 8)
	want := simSummary{requests: 50, first: 100 * time.Millisecond, last: 300 * time.Millisecond, busy: 0.5}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := summarize(nil, t0, 8); got.first != -1 || got.requests != 0 {
		t.Errorf("no samples: got %+v, want first -1 and no requests", got)
	}
}

func TestParseCPULine(t *testing.T) {
	t.Parallel()
	//           user nice system idle iowait irq softirq steal guest guest_nice
	c0 := parseCPULine("cpu  100 50 20 800 30 0 0 0 40 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if want := (cpuTimes{busy: 120, niced: 50, total: 1000}); c0 != want {
		t.Fatalf("got %+v, want %+v", c0, want)
	}
	c1 := parseCPULine("cpu  200 100 20 1450 30 0 0 0 40 0\n")
	busy, niced := c1.coresSince(c0, 2)
	if busy != 0.25 || niced != 0.125 {
		t.Errorf("got %v busy and %v niced cores, want 0.25 and 0.125", busy, niced)
	}
	if got := parseCPULine("intr 1 2 3\n"); got != (cpuTimes{}) {
		t.Errorf("not a cpu line: got %+v, want zero", got)
	}
}

func TestWithSearchPath(t *testing.T) {
	t.Parallel()
	got, err := withSearchPath("postgres://postgres@127.0.0.1:5432/sluice_test?sslmode=disable", "bench_x")
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://postgres@127.0.0.1:5432/sluice_test?search_path=bench_x&sslmode=disable"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := withSearchPath("host=127.0.0.1 dbname=x", "bench_x"); err == nil {
		t.Error("a keyword/value DSN: got no error, want one")
	}
}

func TestParseCounts(t *testing.T) {
	t.Parallel()
	got, err := parseCounts("1, 3")
	if err != nil || len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Errorf("got %v, %v, want [1 3]", got, err)
	}
	for _, bad := range []string{"", "0", "1,x", "-2"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("%q: got no error, want one", bad)
		}
	}
}

func TestFindProcesses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		args     []string
		pg, azur bool
	}{
		{"postmaster", []string{"/usr/lib/postgresql/15/bin/postgres", "-D", "/tmp/d", "-c", "listen_addresses=127.0.0.1", "-p", "5433"}, true, false},
		{"postmaster-other-port", []string{"/usr/lib/postgresql/15/bin/postgres", "-p", "5434"}, false, false},
		{"backend", []string{"postgres: postgres sluice_test 127.0.0.1(4242) idle"}, false, false},
		{"azurite", []string{"node", "/w/scripts/azurite/node_modules/.bin/azurite-blob", "--blobHost", "127.0.0.1", "--blobPort", "10000"}, false, true},
		{"azurite-other-port", []string{"node", "/w/azurite-blob", "--blobPort", "10001"}, false, false},
		{"other-node", []string{"node", "server.js", "--blobPort", "10000"}, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := isPostmaster(tt.args, "5433"); got != tt.pg {
				t.Errorf("isPostmaster: got %v, want %v", got, tt.pg)
			}
			if got := isAzurite(tt.args, "10000"); got != tt.azur {
				t.Errorf("isAzurite: got %v, want %v", got, tt.azur)
			}
		})
	}
}
