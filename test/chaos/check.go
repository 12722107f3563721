package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// result is one line of the batch's output or error file.
type result struct {
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int    `json:"status_code"`
		RequestID  string `json:"request_id"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	inError bool // read from the error file
}

// results are the lines of the output and error files, by input line.
type results struct {
	byLine                   []*result
	output, errors           int
	dups, unknown, malformed int
	missing                  int
	examples                 []string
	errorKinds               map[string]int // "500", "timeout", ...
}

func (r *results) example(format string, args ...any) {
	if len(r.examples) < 8 {
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

// readResults reads the two files of a batch of n lines.
func readResults(n int, output, errs []byte) *results {
	r := &results{byLine: make([]*result, n), errorKinds: map[string]int{}}
	for _, f := range []struct {
		data    []byte
		inError bool
	}{{output, false}, {errs, true}} {
		sc := bufio.NewScanner(bytes.NewReader(f.data))
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			res := &result{inError: f.inError}
			if err := json.Unmarshal(sc.Bytes(), res); err != nil {
				r.malformed++
				r.example("malformed result line: %v", err)
				continue
			}
			if f.inError {
				r.errors++
			} else {
				r.output++
			}
			i, ok := lineNumber(res.CustomID, n)
			switch {
			case !ok:
				r.unknown++
				r.example("unknown custom_id %q", res.CustomID)
			case r.byLine[i] != nil:
				r.dups++
				r.example("custom_id %s has two results (error file: %v and %v)", res.CustomID, r.byLine[i].inError, f.inError)
			default:
				r.byLine[i] = res
			}
			if f.inError {
				switch {
				case res.Response != nil:
					r.errorKinds[strconv.Itoa(res.Response.StatusCode)]++
				case res.Error != nil:
					r.errorKinds[res.Error.Code]++
				default:
					r.errorKinds["neither response nor error"]++
				}
			}
		}
	}
	for i, res := range r.byLine {
		if res == nil {
			r.missing++
			r.example("custom_id req-%d has no result", i)
		}
	}
	return r
}

// lineNumber returns N of the custom_id req-N when it names one of n lines.
func lineNumber(id string, n int) (int, bool) {
	s, ok := strings.CutPrefix(id, "req-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= n || strconv.Itoa(i) != s {
		return 0, false
	}
	return i, true
}

// params are the settings the call accounting checks against.
type params struct {
	lines          int
	maxAttempts    int
	concurrency    int // the upstream's max_concurrency: the most lines one process has in flight
	retryAfter     time.Duration
	backoffBase    time.Duration
	requestTimeout time.Duration
}

// killStats are the lines sent again after one kill, by what their last call before it
// came to.
type killStats struct {
	inFlight int // the call was in flight at the kill (cut off)
	lost     int // answered 200 but the result was not yet committed
	waiting  int // a failure: the line was waiting for its retry
	cut      int // calls the kill cut off (in flight at it)
}

// accounting is what the calls the simulator got say about Sluice.
type accounting struct {
	calls     int
	byOutcome [outKilled + 1]int
	noMark    int // calls whose body named no line
	noCalls   int // lines with a result but no call

	// Every call but a line's first, by what came before it.
	retries       int // after a failure, same process
	retriesAcross int // after a failure, in an earlier process (the retry wait was cut by a kill)
	resentLost    int // after a 200 in an earlier process whose result was not committed
	resentCut     int // after a call a kill cut off
	dupSameLife   int // after a 200 in the same process: a line sent again without a kill
	perKill       map[int]*killStats

	// Attempts within one process, per line.
	overStrict int // 200s and 500s above max_attempts
	overSoft   int // 200s, 500s and unanswered calls above max_attempts (unanswered ones count only while the upstream is healthy)
	beyond     int // calls beyond the attempt budget, over the whole run

	maxInFlight     int // the most calls one process had at the simulator at once
	gap429, gapFail time.Duration
	gap429Short     int // retries sooner than Retry-After after a 429
	gapFailShort    int // retries sooner than backoff_base/2 after a failure

	// The result files against the calls.
	outputUnseen int // output lines whose request_id is not the last 200 of their line
	errorUnseen  int // error lines that are not what the line's last call got
	errorEarly   int // error lines of a line that had fewer than max_attempts failures in its last process
	examples     []string
}

func (a *accounting) example(format string, args ...any) {
	if len(a.examples) < 12 {
		a.examples = append(a.examples, fmt.Sprintf(format, args...))
	}
}

// classify marks the unanswered calls a kill cut off: those of a killed process that
// ended at or after its kill.
func classify(calls []call, tl timeline) {
	for i := range calls {
		c := &calls[i]
		if !c.gaveUp {
			continue
		}
		if k := tl.killOf(c.life); !k.IsZero() && !c.end.Before(k) {
			c.out = outKilled
		}
	}
}

// account checks the calls against the attempt budget and the result files.
func account(calls []call, res *results, p params, tl timeline) *accounting {
	a := &accounting{calls: len(calls), perKill: map[int]*killStats{}, gap429: -1, gapFail: -1}
	perLine := make([][]call, p.lines)
	for _, c := range calls {
		a.byOutcome[c.out]++
		if c.line < 0 || c.line >= p.lines {
			a.noMark++
			continue
		}
		perLine[c.line] = append(perLine[c.line], c)
	}
	a.maxInFlight = maxInFlight(calls, p, tl)
	kill := func(life int) *killStats {
		ks := a.perKill[life]
		if ks == nil {
			ks = &killStats{}
			a.perKill[life] = ks
		}
		return ks
	}
	for _, c := range calls {
		if c.out == outKilled {
			kill(c.life).cut++
		}
	}
	for line, cs := range perLine {
		slices.SortFunc(cs, func(x, y call) int { return x.start.Compare(y.start) })
		a.lineCalls(line, cs, p, kill)
		if res != nil {
			a.lineResult(line, cs, res.byLine[line], p)
		}
	}
	return a
}

// lineCalls accounts for the calls of one line, in the order they arrived.
func (a *accounting) lineCalls(line int, cs []call, p params, kill func(int) *killStats) {
	type counts struct{ ok, fail, noAnswer int }
	lives := map[int]*counts{}
	sawOK, budget := false, 0
	for i, c := range cs {
		n := lives[c.life]
		if n == nil {
			n = &counts{}
			lives[c.life] = n
		}
		switch c.out {
		case outOK:
			n.ok++
		case outFail, outOther:
			n.fail++
		case outReset, outTimeout:
			n.noAnswer++
		}
		switch {
		case sawOK:
			a.beyond++
		case c.out != outBusy:
			if budget++; budget > p.maxAttempts {
				a.beyond++
			}
		}
		if c.out == outOK {
			sawOK = true
		}
		if i == 0 {
			continue
		}
		prev := cs[i-1]
		gap := c.start.Sub(giveUp(prev, p))
		switch {
		case prev.life == c.life && prev.out == outOK:
			a.dupSameLife++
			a.example("req-%d was sent again %s after a 200, by the same process (life %d)", line, gap.Round(time.Millisecond), c.life)
		case prev.life == c.life:
			a.retries++
			if prev.out == outBusy {
				if a.gap429 < 0 || gap < a.gap429 {
					a.gap429 = gap
				}
				if gap < p.retryAfter-2*time.Millisecond {
					a.gap429Short++
					a.example("req-%d was retried %s after a 429 with Retry-After %s", line, gap.Round(time.Millisecond), p.retryAfter)
				}
			} else {
				if a.gapFail < 0 || gap < a.gapFail {
					a.gapFail = gap
				}
				if gap < p.backoffBase/2-5*time.Millisecond {
					a.gapFailShort++
					a.example("req-%d was retried %s after a %s; backoff_base is %s", line, gap.Round(time.Millisecond), prev.out, p.backoffBase)
				}
			}
		default:
			ks := kill(prev.life)
			switch prev.out {
			case outOK:
				a.resentLost++
				ks.lost++
			case outKilled:
				a.resentCut++
				ks.inFlight++
			default:
				a.retriesAcross++
				ks.waiting++
			}
		}
	}
	for life, n := range lives {
		if n.ok+n.fail > p.maxAttempts {
			a.overStrict++
			a.example("req-%d: %d answers (200 or 5xx) in life %d, max_attempts %d", line, n.ok+n.fail, life, p.maxAttempts)
		}
		if n.ok+n.fail+n.noAnswer > p.maxAttempts {
			a.overSoft++
		}
	}
}

// lineResult checks a line's result against the calls it made.
func (a *accounting) lineResult(line int, cs []call, r *result, p params) {
	if r == nil {
		return
	}
	if len(cs) == 0 {
		a.noCalls++
		a.example("req-%d has a result but the simulator never got it", line)
		return
	}
	last := cs[len(cs)-1]
	if !r.inError {
		if r.Response == nil || r.Response.StatusCode != 200 || last.out != outOK || r.Response.RequestID != last.requestID {
			a.outputUnseen++
			a.example("req-%d: the output line is not the answer of its last call (%s, %s)", line, last.out, last.requestID)
		}
		return
	}
	switch {
	case r.Response != nil:
		if !last.out.answered() || last.out == outOK || last.status != r.Response.StatusCode || last.requestID != r.Response.RequestID {
			a.errorUnseen++
			a.example("req-%d: the error line says %d %s, its last call got %s %d %s", line,
				r.Response.StatusCode, r.Response.RequestID, last.out, last.status, last.requestID)
		}
	case r.Error != nil:
		want := map[outcome]string{outReset: "connection_reset", outTimeout: "timeout"}[last.out]
		if want == "" || r.Error.Code != want {
			a.errorUnseen++
			a.example("req-%d: the error line says %s, its last call came to %s", line, r.Error.Code, last.out)
		}
	default:
		a.errorUnseen++
		a.example("req-%d: the error line has neither response nor error", line)
	}
	failures := 0
	for _, c := range cs {
		if c.life == last.life && c.out != outOK && c.out != outBusy && c.out != outKilled {
			failures++
		}
	}
	if failures < p.maxAttempts {
		a.errorEarly++
		a.example("req-%d failed after %d failed calls in its last life, max_attempts %d", line, failures, p.maxAttempts)
	}
}

// giveUp returns when sluice was done with a call: its end, but for a call sluice
// gave up on, at the latest its start and the request timeout. The proxy notices
// that the caller went away a little later, more so when the machine is busy.
func giveUp(c call, p params) time.Time {
	if e := c.start.Add(p.requestTimeout); c.out == outTimeout && e.Before(c.end) {
		return e
	}
	return c.end
}

// maxInFlight returns the most calls one process had at the simulator at once. A call
// sluice gave up on ends, for sluice, at its request timeout; one a kill cut off, at
// the kill.
func maxInFlight(calls []call, p params, tl timeline) int {
	type event struct {
		t     time.Time
		delta int
	}
	byLife := map[int][]event{}
	for _, c := range calls {
		end := giveUp(c, p)
		switch c.out {
		case outKilled:
			if k := tl.killOf(c.life); k.Before(end) {
				end = k
			}
		}
		byLife[c.life] = append(byLife[c.life], event{c.start, 1}, event{end, -1})
	}
	most := 0
	for _, ev := range byLife {
		slices.SortFunc(ev, func(x, y event) int {
			if c := x.t.Compare(y.t); c != 0 {
				return c
			}
			return x.delta - y.delta // ends first
		})
		n := 0
		for _, e := range ev {
			n += e.delta
			most = max(most, n)
		}
	}
	return most
}
