package main

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

// window is a span of the run, e.g. an attack.
type window struct{ start, end time.Time }

func (w window) has(t time.Time) bool {
	return !w.start.IsZero() && !t.Before(w.start) && !t.After(w.end)
}

// tail returns w lengthened by d.
func (w window) tail(d time.Duration) window {
	if w.start.IsZero() {
		return w
	}
	return window{w.start, w.end.Add(d)}
}

func (w window) overlaps(from, to time.Time) bool {
	return !w.start.IsZero() && !to.Before(w.start) && !from.After(w.end)
}

// row is one line of the report's table of checks.
type row struct {
	id, name, saw string
	ok            bool
	goal          bool // a goal, reported; not a check that fails the run
	allowed       bool // failed, but -allow names it
}

// report is everything a run saw.
type report struct {
	start                time.Time
	batchID              string
	batchStart, batchEnd time.Time
	serveArgs            []string
	final                batchView
	after                *harness.Batch
	kills                []float64 // the progress at which each kill was due
	selfExits            []string
	lives                []life
	fd, slow             window

	polls, probes        []sample
	probeErrs            []string
	uploads              []upload
	fdPeak, fdPeakAttack int
	idle                 *idleAttack
	slowResults          []slowResult
	results              *results
	acct                 *accounting
	simStats             *simStats
	simErr               error
	logs                 logCounts

	loadStart, loadEnd string // the machine's load averages

	allow  map[string]bool // ids of checks whose failure does not fail the run
	rows   []row
	failed []string
	lat    []latRow
}

// latRow is the latency of one kind of request in one phase of the run.
type latRow struct {
	who, phase string
	n, errs    int
	sorted     []time.Duration
}

// check records a check. A failed one fails the run unless its id is in -allow.
func (r *report) check(id, name string, ok bool, format string, args ...any) {
	x := row{id: id, name: name, saw: fmt.Sprintf(format, args...), ok: ok, allowed: !ok && r.allow[id]}
	r.rows = append(r.rows, x)
	if !ok && !x.allowed {
		r.failed = append(r.failed, id)
	}
}

// goal records a goal: reported, never failing the run.
func (r *report) goal(id, name string, ok bool, format string, args ...any) {
	r.rows = append(r.rows, row{id: id, name: name, saw: fmt.Sprintf(format, args...), ok: ok, goal: true})
}

// evaluate turns what the run saw into checks and figures.
func (r *report) evaluate(o options, tl timeline) {
	res, a := r.results, r.acct
	r.check("completed", "the batch completed, and reads completed after a kill that came right after", r.final.status == "completed" && r.after.Status == "completed",
		"%s, then %s", r.final.status, r.after.Status)
	r.check("kills", "kills", len(r.kills) == o.kills, "%d of %d during the batch, and 1 after it", len(r.kills), o.kills)
	r.check("one-result", "one result per custom_id, nothing lost", res.missing+res.dups+res.unknown+res.malformed == 0,
		"%d output + %d error lines for %d custom_ids; %d missing, %d twice, %d unknown, %d malformed",
		res.output, res.errors, o.lines, res.missing, res.dups, res.unknown, res.malformed)
	rc := r.after.RequestCounts
	r.check("counts", "request_counts agree with the files", rc.Total == o.lines && rc.Completed == res.output && rc.Failed == res.errors,
		"total %d, completed %d, failed %d", rc.Total, rc.Completed, rc.Failed)
	r.check("answers", "each result is what the simulator answered that line's last call", a.outputUnseen+a.errorUnseen+a.noCalls == 0,
		"%d output and %d error lines differ; %d results of lines never sent", a.outputUnseen, a.errorUnseen, a.noCalls)
	if s := r.simStats; s != nil {
		// A call a kill cut off may have been answered at the simulator a moment before:
		// the proxy saw its caller go first. Every other count is the same on both sides.
		b := a.byOutcome
		diffs := []int64{s.Completed - int64(b[outOK]), s.Faults.ServerError - int64(b[outFail]),
			s.Faults.RateLimited - int64(b[outBusy]), s.Faults.Reset - int64(b[outReset])}
		ok, answered := s.Requests == int64(a.calls), int64(0)
		for _, d := range diffs {
			ok = ok && d >= 0
			answered += d
		}
		ok = ok && answered <= int64(b[outKilled])
		r.check("proxy", "the proxy's counts are the simulator's (/stats)", ok,
			"simulator: %d requests, %d answered 200, %d 500, %d 429, %d reset, %d hung and %d cancelled; proxy: %d, %d, %d, %d, %d, %d unanswered (%d of them answered at the simulator as a kill cut them off)",
			s.Requests, s.Completed, s.Faults.ServerError, s.Faults.RateLimited, s.Faults.Reset, s.Faults.Hang, s.Canceled,
			a.calls, b[outOK], b[outFail], b[outBusy], b[outReset], b[outTimeout]+b[outKilled], answered)
	} else {
		r.goal("proxy", "the proxy's counts are the simulator's (/stats)", false, "not compared: %v", r.simErr)
	}
	r.check("error-status", "error lines have the simulator's status", a.errorUnseen == 0, "%s", kinds(res.errorKinds))
	r.check("error-attempts", "a line fails only after max_attempts failed calls", a.errorEarly == 0,
		"%d error lines with fewer than %d failed calls in their last process", a.errorEarly, o.maxAttempts)
	r.check("no-resend", "no line sent again by the process that got its 200", a.dupSameLife == 0, "%d", a.dupSameLife)
	r.check("attempts", "answers per line and process within max_attempts", a.overStrict == 0,
		"%d lines over; %d over when unanswered calls count too (those count only while the upstream is healthy)", a.overStrict, a.overSoft)
	bound := len(r.kills) * o.concurrency
	r.check("budget", "calls beyond the attempt budget <= kills x max_concurrency", a.beyond <= bound,
		"%d beyond (%d sent again after a 200 that a kill lost, %d after a call a kill cut off); bound %d x %d = %d",
		a.beyond, a.resentLost, a.resentCut, len(r.kills), o.concurrency, bound)
	maxCut := 0
	for _, ks := range a.perKill {
		maxCut = max(maxCut, ks.cut)
	}
	r.check("in-flight", "calls in flight at the simulator <= max_concurrency", a.maxInFlight <= o.concurrency && maxCut <= o.concurrency,
		"at most %d at once, %d cut off by one kill; max_concurrency %d", a.maxInFlight, maxCut, o.concurrency)
	r.check("retry-waits", "retries wait out Retry-After and the backoff", a.gap429Short+a.gapFailShort == 0 && a.noMark == 0,
		"shortest wait after a 429 %s (Retry-After %s), after a failure %s (backoff_base/2 %s); %d and %d shorter",
		a.gap429.Round(time.Millisecond), o.retryAfter, a.gapFail.Round(time.Millisecond), o.backoffBase/2, a.gap429Short, a.gapFailShort)
	r.check("no-crash", "no sluice process exited by itself or panicked", len(r.selfExits)+r.logs.panics == 0,
		"%d exits, %d panics", len(r.selfExits), r.logs.panics)
	r.check("fds", "no 'too many open files'", r.logs.tooManyOpen == 0, "%d log lines; sluice's open fds peaked at %d (%d during the fd attack)",
		r.logs.tooManyOpen, r.fdPeak, r.fdPeakAttack)

	// The API under load. A request that overlaps a kill window (kill until the next
	// process listens) is the kill's, not the API's.
	fd, slow := r.fd.tail(attackTail), r.slow.tail(attackTail)
	attack := func(s sample) bool { return fd.overlaps(s.at, s.at.Add(s.lat)) || slow.overlaps(s.at, s.at.Add(s.lat)) }
	phases := []struct {
		name string
		in   func(s sample) bool
	}{
		{"all, outside kill windows", func(s sample) bool { return true }},
		{"steady: no attack, 2 s or more after a restart", func(s sample) bool { return !attack(s) && !tl.afterStart(s.at, 2*time.Second) }},
		{"first 2 s after a restart", func(s sample) bool { return tl.afterStart(s.at, 2*time.Second) }},
		{"during the idle-connection attack and 2 s after", func(s sample) bool { return fd.overlaps(s.at, s.at.Add(s.lat)) }},
		{"during the slow-body attack and 2 s after", func(s sample) bool { return slow.overlaps(s.at, s.at.Add(s.lat)) }},
	}
	for _, who := range []struct {
		name    string
		samples []sample
	}{{"pollers", r.polls}, {"probe", r.probes}} {
		for _, ph := range phases {
			lr := latRow{who: who.name, phase: ph.name}
			for _, s := range who.samples {
				if tl.down(s.at, s.at.Add(s.lat)) || !ph.in(s) {
					continue
				}
				lr.n++
				if s.status != 200 {
					lr.errs++
					continue
				}
				lr.sorted = append(lr.sorted, s.lat)
			}
			slices.Sort(lr.sorted)
			r.lat = append(r.lat, lr)
		}
	}
	steady, all := r.lat[1], r.lat[0]
	p99 := harness.Percentile(steady.sorted, 99)
	r.goal("p99", fmt.Sprintf("GET batch p99 under %d pollers <= %s", o.pollers, o.p99Goal), p99 <= o.p99Goal,
		"%s steady, %s over the whole run outside kill windows (%d requests)", ms(p99), ms(harness.Percentile(all.sorted, 99)), all.n)
	r.check("poller-errors", "pollers got answers outside kill windows", all.errs*1000 <= all.n,
		"%d of %d requests without a 200 (at most 1 in 1,000 allowed)", all.errs, all.n)
	probeAttack := latRow{}
	for _, l := range r.lat {
		if l.who == "probe" && strings.HasPrefix(l.phase, "during") {
			probeAttack.n += l.n
			probeAttack.errs += l.errs
			probeAttack.sorted = append(probeAttack.sorted, l.sorted...)
		}
	}
	slices.Sort(probeAttack.sorted)
	r.check("attack-probe", "the server answered during the attacks (probe every 100 ms)", probeAttack.errs == 0 && probeAttack.n > 0,
		"%d of %d probes answered 200, slowest %s", probeAttack.n-probeAttack.errs, probeAttack.n, ms(harness.Percentile(probeAttack.sorted, 100)))

	// The attacks themselves: every slow request ends by stall-timeout and a little
	// more, answered or not.
	limit := o.stallTimeout + 2*time.Second
	type slowKind struct {
		n, held int
		longest time.Duration
	}
	slowKinds := map[string]*slowKind{slowCreate: {}, slowUpload: {}, slowNoKey: {}}
	for _, s := range r.slowResults {
		if tl.down(s.start, s.end) {
			continue
		}
		k := slowKinds[s.kind]
		d := s.end.Sub(s.start)
		k.n++
		k.longest = max(k.longest, d)
		if d > limit {
			k.held++
		}
	}
	describe := func(kinds ...string) (string, int) {
		var parts []string
		held := 0
		for _, name := range kinds {
			k := slowKinds[name]
			held += k.held
			parts = append(parts, fmt.Sprintf("%s: %d, %d held longer, longest %s", name, k.n, k.held, k.longest.Round(100*time.Millisecond)))
		}
		return strings.Join(parts, "; "), held
	}
	saw, held := describe(slowCreate)
	r.check("slow-read", fmt.Sprintf("slow bodies the API reads end within --stall-timeout + 2 s (%s)", limit), held == 0, "%s", saw)
	saw, held = describe(slowUpload, slowNoKey)
	r.check("slow-refused", fmt.Sprintf("slow bodies the API refuses (401, 429) end within --stall-timeout + 2 s (%s)", limit), held == 0, "%s", saw)

	var ok, refused, cut, failed int
	var firstFail string
	for _, u := range r.uploads {
		switch {
		case u.result == "ok":
			ok++
		case u.result == "refused (429)":
			refused++
		case tl.down(u.at, u.end) && !strings.HasPrefix(u.result, "lost"):
			cut++
		default:
			failed++
			if firstFail == "" {
				firstFail = u.result
			}
		}
	}
	r.check("uploads", "uploads during the batch read back whole, also after the last restart", failed == 0 && ok > 0,
		"%d read back, %d refused (429), %d cut by kills, %d failed %s", ok, refused, cut, failed, firstFail)
}

func kinds(m map[string]int) string {
	if len(m) == 0 {
		return "no error lines"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%d x %s", m[k], k))
	}
	return strings.Join(parts, ", ")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// print writes the report as markdown.
func (r *report) print(w io.Writer, o options) {
	fmt.Fprintf(w, "### %d lines, %d kills (seed %d)\n\n", o.lines, o.kills, o.seed)
	fmt.Fprintf(w, "Command: `go run ./test/chaos %s`  \n", strings.Join(os.Args[1:], " "))
	fmt.Fprintf(w, "Machine: %s; %s; load average %s at the start, %s at the end.  \n",
		machine(), time.Now().Format("2006-01-02"), r.loadStart, r.loadEnd)
	fmt.Fprintf(w, "Simulator: latency %s, 500 %g, 429 %g (Retry-After %s), hang %g, reset %g. Engine: max_attempts %d, backoff %s to %s, request_timeout %s, max_concurrency %d.  \n",
		o.latency, o.failRate, o.limitRate, o.retryAfter, o.hangRate, o.resetRate, o.maxAttempts, o.backoffBase, o.backoffMax, o.reqTimeout, o.concurrency)
	fmt.Fprintf(w, "`sluice serve %s`  \n", strings.Join(r.serveArgs, " "))
	if r.batchEnd.IsZero() {
		fmt.Fprintf(w, "\nThe batch did not end.\n")
	}
	if len(r.lives) > 1 {
		var gaps []float64
		for i, l := range r.lives[:len(r.lives)-1] {
			gaps = append(gaps, r.lives[i+1].ready.Sub(l.kill).Seconds()*1000)
		}
		slices.Sort(gaps)
		fmt.Fprintf(w, "Batch: %.1f s from create to completed; %d processes; from a kill to the next process listening %.0f ms median, %.0f ms max.\n",
			r.batchEnd.Sub(r.batchStart).Seconds(), len(r.lives), harness.Median(gaps), gaps[len(gaps)-1])
	}
	if len(r.lives) > 1 {
		var kills []string
		for _, l := range r.lives[:len(r.lives)-1] {
			kills = append(kills, fmt.Sprintf("%.1f", l.kill.Sub(r.batchStart).Seconds()))
		}
		fmt.Fprintf(w, "Timeline, seconds from create: kills at %s; idle-connection attack %.1f to %.1f; slow-body attack %.1f to %.1f.\n",
			strings.Join(kills, ", "), r.fd.start.Sub(r.batchStart).Seconds(), r.fd.end.Sub(r.batchStart).Seconds(),
			r.slow.start.Sub(r.batchStart).Seconds(), r.slow.end.Sub(r.batchStart).Seconds())
	}
	if r.acct == nil {
		return
	}
	fmt.Fprintf(w, "\n| id | check | saw | |\n|---|---|---|---|\n")
	for _, x := range r.rows {
		mark := "ok"
		switch {
		case x.allowed:
			mark = "**FAILED** (allowed by -allow " + x.id + ")"
		case x.goal && !x.ok:
			mark = "goal not met"
		case x.goal:
			mark = "goal met"
		case !x.ok:
			mark = "**FAILED**"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", x.id, x.name, x.saw, mark)
	}

	a := r.acct
	fmt.Fprintf(w, "\nUpstream calls, as the counting proxy saw them: %d for %d lines (%.3f a line).\n\n", a.calls, o.lines, float64(a.calls)/float64(o.lines))
	fmt.Fprintf(w, "| outcome | calls |\n|---|---|\n")
	for oc := outOK; oc <= outKilled; oc++ {
		fmt.Fprintf(w, "| %s | %d |\n", oc, a.byOutcome[oc])
	}
	fmt.Fprintf(w, "\n| calls after a line's first, by what came before | calls |\n|---|---|\n")
	fmt.Fprintf(w, "| a failure, same process (a retry) | %d |\n", a.retries)
	fmt.Fprintf(w, "| a failure, in a killed process (its retry wait was cut) | %d |\n", a.retriesAcross)
	fmt.Fprintf(w, "| a call a kill cut off | %d |\n", a.resentCut)
	fmt.Fprintf(w, "| a 200 whose result a kill lost before it was committed | %d |\n", a.resentLost)
	fmt.Fprintf(w, "| a 200, same process (never allowed) | %d |\n", a.dupSameLife)
	if len(a.perKill) > 0 {
		fmt.Fprintf(w, "\nPer kill, lines sent again after it by the state they were in: ")
		var parts []string
		for _, life := range slices.Sorted(maps.Keys(a.perKill)) {
			ks := a.perKill[life]
			parts = append(parts, fmt.Sprintf("%d: %d in flight, %d answered, %d waiting", life+1, ks.inFlight, ks.lost, ks.waiting))
		}
		fmt.Fprintf(w, "%s.\n", strings.Join(parts, "; "))
	}

	fmt.Fprintf(w, "\n| requests | phase | sent | without 200 | p50 | p99 | p99.9 | max |\n|---|---|---|---|---|---|---|---|\n")
	for _, l := range r.lat {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s | %s | %s |\n", l.who, l.phase, l.n, l.errs,
			ms(harness.Percentile(l.sorted, 50)), ms(harness.Percentile(l.sorted, 99)),
			ms(harness.Percentile(l.sorted, 99.9)), ms(harness.Percentile(l.sorted, 100)))
	}

	if r.idle != nil {
		fmt.Fprintf(w, "\nIdle-connection attack (%s, %d connections held): %d opened, at most %d open at once, %d closed by the server, %d dials and %d requests failed.\n",
			r.fd.end.Sub(r.fd.start).Round(100*time.Millisecond), o.idleConns, r.idle.opened.Load(), r.idle.peak.Load(),
			r.idle.closedByServer.Load(), r.idle.dialFail.Load(), r.idle.reqFail.Load())
	}
	statuses := map[string]int{}
	for _, s := range r.slowResults {
		k := fmt.Sprintf("%s: %d %s", s.kind, s.status, s.code)
		if s.ours {
			k = s.kind + ": still open at the attack's end"
		}
		statuses[strings.TrimSpace(k)]++
	}
	fmt.Fprintf(w, "Slow-body attack (%s, %d at once, 16 bytes a second): %s.\n",
		r.slow.end.Sub(r.slow.start).Round(100*time.Millisecond), o.slowBodies, kinds(statuses))
	if len(r.logs.errors) > 0 {
		fmt.Fprintf(w, "\nsluice logged ERROR: %s.\n", kinds(r.logs.errors))
	}
	if len(a.examples) > 0 || len(r.results.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, e := range append(r.results.examples, a.examples...) {
			fmt.Fprintf(w, "- %s\n", e)
		}
	}
	if len(r.probeErrs) > 0 {
		fmt.Fprintf(w, "\nFirst probe errors (kill windows included): %s\n", strings.Join(r.probeErrs, "; "))
	}
	for _, e := range r.selfExits {
		fmt.Fprintf(w, "\nsluice exited by itself: %s\n", e)
	}
	fmt.Fprintln(w)
}

// writeProbes writes the probe's record: when each probe was sent, its latency and
// status, and what the run was doing.
func writeProbes(path string, probes []sample, tl timeline, r *report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "unix_ms,latency_ms,status,phase")
	for _, s := range probes {
		phase := "normal"
		switch {
		case tl.down(s.at, s.at.Add(s.lat)):
			phase = "kill"
		case r.fd.tail(attackTail).overlaps(s.at, s.at.Add(s.lat)):
			phase = "idle-attack"
		case r.slow.tail(attackTail).overlaps(s.at, s.at.Add(s.lat)):
			phase = "slow-attack"
		}
		fmt.Fprintf(bw, "%d,%.2f,%d,%s\n", s.at.UnixMilli(), float64(s.lat)/float64(time.Millisecond), s.status, phase)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeCalls writes every upstream call: the sluice process that sent it, its line,
// when it started and ended (ms from the batch's create) and what it came to.
func writeCalls(path string, calls []call, t0 time.Time) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "life,line,start_ms,end_ms,outcome,status,request_id")
	slices.SortFunc(calls, func(x, y call) int { return x.start.Compare(y.start) })
	for _, c := range calls {
		fmt.Fprintf(bw, "%d,%d,%d,%d,%s,%d,%s\n", c.life, c.line, c.start.Sub(t0).Milliseconds(), c.end.Sub(t0).Milliseconds(), c.out, c.status, c.requestID)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writePolls writes the pollers' latency second by second from the batch's create:
// requests, those without a 200, p50, p99 and max.
func writePolls(path string, polls []sample, t0 time.Time) error {
	bySecond := map[int64][]sample{}
	for _, s := range polls {
		sec := int64(s.at.Sub(t0) / time.Second)
		bySecond[sec] = append(bySecond[sec], s)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "second,requests,without_200,p50_ms,p99_ms,max_ms")
	for _, sec := range slices.Sorted(maps.Keys(bySecond)) {
		var lat []time.Duration
		errs := 0
		for _, s := range bySecond[sec] {
			if s.status != 200 {
				errs++
				continue
			}
			lat = append(lat, s.lat)
		}
		slices.Sort(lat)
		fmt.Fprintf(bw, "%d,%d,%d,%.1f,%.1f,%.1f\n", sec, len(bySecond[sec]), errs,
			msf(harness.Percentile(lat, 50)), msf(harness.Percentile(lat, 99)), msf(harness.Percentile(lat, 100)))
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
