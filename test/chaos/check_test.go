package main

import (
	"testing"
	"time"
)

func TestLineOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{name: "marked", body: `{"messages":[{"role":"user","content":"[req-12] Summarise"}]}`, want: 12},
		{name: "first-mark-counts", body: `"[req-3] and [req-4]"`, want: 3},
		{name: "no-mark", body: `{"messages":[]}`, want: -1},
		{name: "not-a-number", body: `"[req-x1]"`, want: -1},
		{name: "unclosed", body: `"[req-7`, want: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := lineOf([]byte(tc.body)); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestAccount(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	// One kill, at 10 s: life 0 runs until then, life 1 listens from 10.2 s.
	tl := timeline{lives: []life{{start: t0, ready: t0, kill: at(10000)}, {start: at(10100), ready: at(10200)}}}
	p := params{lines: 1, maxAttempts: 3, concurrency: 4, retryAfter: time.Second, backoffBase: 200 * time.Millisecond, requestTimeout: 2 * time.Second}
	c := func(life, start, end int, out outcome, id string) call {
		status := map[outcome]int{outOK: 200, outFail: 500, outBusy: 429}[out]
		return call{line: 0, life: life, start: at(start), end: at(end), out: out, status: status, requestID: id}
	}
	output := func(id string) *results {
		r := &result{CustomID: "req-0"}
		r.Response = &struct {
			StatusCode int    `json:"status_code"`
			RequestID  string `json:"request_id"`
		}{200, id}
		return &results{byLine: []*result{r}}
	}
	failed := func(status int, id string) *results {
		res := output(id)
		res.byLine[0].Response.StatusCode = status
		res.byLine[0].inError = true
		return res
	}
	for _, tc := range []struct {
		name  string
		calls []call
		res   *results
		check func(t *testing.T, a *accounting)
	}{
		{
			name:  "one-answer",
			calls: []call{c(0, 0, 100, outOK, "a")},
			res:   output("a"),
			check: func(t *testing.T, a *accounting) {
				if a.retries+a.beyond+a.outputUnseen != 0 {
					t.Errorf("got retries %d, beyond %d, unseen %d, want none", a.retries, a.beyond, a.outputUnseen)
				}
			},
		},
		{
			name:  "retry-after-a-500",
			calls: []call{c(0, 0, 100, outFail, "a"), c(0, 250, 350, outOK, "b")},
			res:   output("b"),
			check: func(t *testing.T, a *accounting) {
				if a.retries != 1 || a.gapFailShort != 0 || a.gapFail != 150*time.Millisecond {
					t.Errorf("got %d retries, %d short, gap %s; want 1, 0, 150ms", a.retries, a.gapFailShort, a.gapFail)
				}
			},
		},
		{
			name:  "retry-sooner-than-retry-after",
			calls: []call{c(0, 0, 100, outBusy, "a"), c(0, 600, 700, outOK, "b")},
			res:   output("b"),
			check: func(t *testing.T, a *accounting) {
				if a.gap429Short != 1 {
					t.Errorf("got %d short waits after a 429, want 1", a.gap429Short)
				}
			},
		},
		{
			name:  "sent-again-by-the-same-process",
			calls: []call{c(0, 0, 100, outOK, "a"), c(0, 200, 300, outOK, "b")},
			res:   output("b"),
			check: func(t *testing.T, a *accounting) {
				if a.dupSameLife != 1 || a.beyond != 1 {
					t.Errorf("got %d duplicates, %d beyond, want 1, 1", a.dupSameLife, a.beyond)
				}
			},
		},
		{
			name:  "answer-lost-at-a-kill",
			calls: []call{c(0, 9900, 9990, outOK, "a"), c(1, 10300, 10400, outOK, "b")},
			res:   output("b"),
			check: func(t *testing.T, a *accounting) {
				if a.resentLost != 1 || a.beyond != 1 || a.perKill[0].lost != 1 || a.dupSameLife != 0 {
					t.Errorf("got lost %d, beyond %d, per kill %+v, dups %d; want 1, 1, lost 1, 0", a.resentLost, a.beyond, *a.perKill[0], a.dupSameLife)
				}
			},
		},
		{
			name: "call-cut-by-a-kill",
			calls: []call{
				{line: 0, life: 0, start: at(9950), end: at(10001), out: outTimeout, gaveUp: true},
				c(1, 10300, 10400, outOK, "b"),
			},
			res: output("b"),
			check: func(t *testing.T, a *accounting) {
				if a.resentCut != 1 || a.byOutcome[outKilled] != 1 || a.beyond != 0 || a.perKill[0].cut != 1 {
					t.Errorf("got resent %d, killed %d, beyond %d, per kill %+v; want 1, 1, 0, cut 1", a.resentCut, a.byOutcome[outKilled], a.beyond, *a.perKill[0])
				}
			},
		},
		{
			name: "a-hang-before-the-kill-is-a-timeout",
			calls: []call{
				{line: 0, life: 0, start: at(7000), end: at(9000), out: outTimeout, gaveUp: true},
				c(0, 9200, 9300, outOK, "b"),
			},
			res: output("b"),
			check: func(t *testing.T, a *accounting) {
				if a.byOutcome[outTimeout] != 1 || a.retries != 1 {
					t.Errorf("got %d timeouts, %d retries, want 1, 1", a.byOutcome[outTimeout], a.retries)
				}
			},
		},
		{
			name: "retry-after-a-timeout-noticed-late",
			calls: []call{
				// sluice gave up at 2 s and waited 150 ms; the proxy noticed at 2.1 s
				{line: 0, life: 0, start: at(0), end: at(2100), out: outTimeout, gaveUp: true},
				c(0, 2150, 2250, outOK, "b"),
			},
			res: output("b"),
			check: func(t *testing.T, a *accounting) {
				if a.gapFailShort != 0 || a.gapFail != 150*time.Millisecond {
					t.Errorf("got %d short waits, shortest %s; want 0, 150ms", a.gapFailShort, a.gapFail)
				}
			},
		},
		{
			name:  "over-max-attempts",
			calls: []call{c(0, 0, 100, outFail, "a"), c(0, 400, 500, outFail, "b"), c(0, 900, 1000, outFail, "c"), c(0, 2000, 2100, outFail, "d")},
			res:   failed(500, "d"),
			check: func(t *testing.T, a *accounting) {
				if a.overStrict != 1 || a.beyond != 1 {
					t.Errorf("got %d over, %d beyond, want 1, 1", a.overStrict, a.beyond)
				}
			},
		},
		{
			name:  "error-line-is-the-last-answer",
			calls: []call{c(0, 0, 100, outFail, "a"), c(0, 400, 500, outBusy, "b"), c(0, 1600, 1700, outFail, "c"), c(0, 2000, 2100, outFail, "d")},
			res:   failed(500, "d"),
			check: func(t *testing.T, a *accounting) {
				if a.errorUnseen+a.errorEarly+a.overStrict+a.beyond != 0 {
					t.Errorf("got unseen %d, early %d, over %d, beyond %d; want none", a.errorUnseen, a.errorEarly, a.overStrict, a.beyond)
				}
			},
		},
		{
			name:  "error-line-too-early",
			calls: []call{c(0, 0, 100, outFail, "a")},
			res:   failed(500, "a"),
			check: func(t *testing.T, a *accounting) {
				if a.errorEarly != 1 {
					t.Errorf("got %d early failures, want 1", a.errorEarly)
				}
			},
		},
		{
			name:  "error-line-not-the-simulators",
			calls: []call{c(0, 0, 100, outFail, "a"), c(0, 400, 500, outFail, "b"), c(0, 900, 1000, outFail, "c")},
			res:   failed(502, "c"),
			check: func(t *testing.T, a *accounting) {
				if a.errorUnseen != 1 {
					t.Errorf("got %d unseen error lines, want 1", a.errorUnseen)
				}
			},
		},
		{
			name:  "output-not-the-last-answer",
			calls: []call{c(0, 9900, 9990, outOK, "a"), c(1, 10300, 10400, outOK, "b")},
			res:   output("a"),
			check: func(t *testing.T, a *accounting) {
				if a.outputUnseen != 1 {
					t.Errorf("got %d unseen output lines, want 1", a.outputUnseen)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			calls := append([]call(nil), tc.calls...)
			classify(calls, tl)
			tc.check(t, account(calls, tc.res, p, tl))
		})
	}
}

func TestMaxInFlight(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tl := timeline{lives: []life{{start: t0, ready: t0}}}
	p := params{requestTimeout: time.Second}
	calls := []call{
		{life: 0, start: at(0), end: at(100), out: outOK},
		// sluice gave up at 1 s; the proxy noticed at 1.05 s, when the next call had begun
		{life: 0, start: at(0), end: at(1050), out: outTimeout, gaveUp: true},
		{life: 0, start: at(100), end: at(200), out: outOK},
		{life: 0, start: at(1000), end: at(1100), out: outOK},
		// another process's calls are its own
		{life: 1, start: at(0), end: at(2000), out: outOK},
	}
	if got := maxInFlight(calls, p, tl); got != 2 {
		t.Errorf("got %d, want 2", got)
	}
}

func TestTimelineDown(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tl := timeline{lives: []life{{start: t0, ready: t0, kill: at(1000)}, {start: at(1100), ready: at(1300)}}}
	for _, tc := range []struct {
		name     string
		from, to int
		want     bool
	}{
		{name: "before", from: 0, to: 999, want: false},
		{name: "across-the-kill", from: 900, to: 1001, want: true},
		{name: "while-starting", from: 1200, to: 1250, want: true},
		{name: "after-listening", from: 1301, to: 1400, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tl.down(at(tc.from), at(tc.to)); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
