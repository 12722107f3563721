package upstream

import (
	"context"
	"math"
	"math/bits"
	"sync"
	"time"
)

// Gate decides when a request may go to one upstream: at most Limit in flight, and
// none while the upstream is down but one probe at a time, with backoff, and none
// before the Retry-After (at most a minute) of a 429 or 503: a rate limit or a busy
// server applies to every request, not only the one it answered.
//
// Health. Failures that say nothing about the line (connection errors, timeouts, 5xx)
// in a row, with no success between, mark the upstream down after DownAfter of them.
// While it is down one caller at a time gets a probe slot, the wait between probes
// doubling from ProbeBase to ProbeMax; the probe's success brings it up.
//
// Limit. With Floor < Ceiling the limit adapts, AIMD with a latency signal, as TCP does
// with loss and as delay-based schemes do with queueing: it starts at Floor and grows
// by one per success ("slow start") until the first sign of congestion; from then on it
// grows by one per Limit successes (one per round trip) while latency stays within
// Tolerance of its floor, and shrinks: by Backoff on 429, 503 or a timeout, and by a
// tenth when latency rises past the tolerance, at most once per round trip each.
// Latency is compared within classes of answer length (output tokens by powers of
// two), each with its own floor, the smallest round trip seen in it: a long answer is
// slow without any congestion, and dividing by its length would instead make short
// answers look congested wherever a server's time does not grow with length. A floor
// drifts up toward what it sees over about a minute, by time and not by count, so that
// a server that became slower for good is not chased forever, while a congestion of a
// few seconds is not mistaken for the new normal. AIMD
// rather than a gradient scheme: it needs no estimate of the queue, converges to a fair
// share when several Sluice processes share an upstream, and its one decision per
// signal is easy to reason about and test. With Floor == Ceiling the limit is fixed.
//
// Load. Where the upstream reports its own queue (ObserveLoad, from its metrics), the
// limit also follows the server's slots: the server is full when more than MaxWaiting
// requests wait there (or its KV cache is used MaxCacheUsage or more), and then its
// slots are the requests it is running. From then on the limit is at most those slots
// less the others' requests there (running and waiting, less this gate's in flight)
// less Headroom: it steps down at once when others arrive, so that they do not queue
// behind the batch, and climbs back as above, one per round trip, as they leave. A
// server that has not been full for slotsMemory is measured again: the cap is
// dropped until it is full once more. Latency alone cannot tell a queue from a
// server that is merely busy, and so must either tolerate queueing or starve the
// batch; the server's own count can tell.
type Gate struct {
	cfg GateConfig
	now func() time.Time

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced when a waiter may proceed
	waiters  int           // callers waiting on changed
	inflight int
	limit    float64
	slowDone bool // slow start has ended

	// health
	fails     int
	down      bool
	probing   bool
	probeWait time.Duration
	nextProbe time.Time
	pauseTill time.Time // a 429's or 503's Retry-After: nothing is sent before it

	// latency, in seconds per (output token + 1)
	floors  [18]float64 // per class of answer length: the smallest round trip, drifting up
	ratio   float64     // EWMA of round trip over its class's floor
	lastObs time.Time
	rtt     float64 // EWMA of whole requests' time, seconds
	lastCut time.Time

	// load, from the upstream's metrics
	slots   float64   // the server's slots, seen when it was last full; 0: unknown
	fullAt  time.Time // when it was last full
	loadCap float64   // the most the limit may be now; 0: no cap
}

// GateConfig shapes a Gate. Zero fields take the defaults in brackets.
type GateConfig struct {
	Floor, Ceiling int           // the limit's bounds [1, Ceiling]; Ceiling at least 1
	DownAfter      int           // failures in a row that mark the upstream down [5]
	ProbeBase      time.Duration // first wait between probes [500ms]
	ProbeMax       time.Duration // longest wait between probes [30s]
	Tolerance      float64       // latency over its floor that is still no congestion [DefaultTolerance]
	Backoff        float64       // the limit's factor on overload [0.7]
	// With ObserveLoad: waiting requests at which the server counts as full [0], its
	// KV cache usage at which it does [0: not read], and slots left free for others [0].
	MaxWaiting    int
	MaxCacheUsage float64
	Headroom      int
	Now           func() time.Time
}

// Outcome is what one request through the gate came to.
type Outcome int

const (
	// Idle: the slot was taken but no request was sent.
	Idle Outcome = iota
	// Success: a 2xx answer.
	Success
	// Refused: an answer that is the line's own (4xx other than 408 and 429).
	Refused
	// Overloaded: 429, or 503 (the server is busy, not down).
	Overloaded
	// Failed: a connection error, a timeout, 408 or another 5xx.
	Failed
	// TimedOut: the request ran out of time: congestion as well as failure.
	TimedOut
)

// DefaultTolerance is the latency tolerance of a gate whose config sets none.
const DefaultTolerance = 2.0

// NewGate returns a gate; see GateConfig for the defaults.
func NewGate(cfg GateConfig) *Gate {
	cfg.Ceiling = max(cfg.Ceiling, 1)
	if cfg.Floor <= 0 || cfg.Floor > cfg.Ceiling {
		cfg.Floor = cfg.Ceiling
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 5
	}
	if cfg.ProbeBase <= 0 {
		cfg.ProbeBase = 500 * time.Millisecond
	}
	if cfg.ProbeMax <= 0 {
		cfg.ProbeMax = 30 * time.Second
	}
	if cfg.Tolerance <= 1 {
		cfg.Tolerance = DefaultTolerance
	}
	if cfg.Backoff <= 0 || cfg.Backoff >= 1 {
		cfg.Backoff = 0.7
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Gate{cfg: cfg, now: cfg.Now, changed: make(chan struct{}), limit: float64(cfg.Floor), probeWait: cfg.ProbeBase}
}

// Adaptive reports whether the limit adapts.
func (g *Gate) Adaptive() bool { return g.cfg.Floor < g.cfg.Ceiling }

// Limit returns the current limit.
func (g *Gate) Limit() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return int(g.limit)
}

// Down reports whether the upstream is down.
func (g *Gate) Down() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.down
}

// Healthy reports whether the upstream is up and its last failure, if the last answer
// was one, stands alone: a failure then is likely the request's own, not the
// upstream's.
func (g *Gate) Healthy() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.down && g.fails <= 1
}

// InFlight returns how many slots are taken.
func (g *Gate) InFlight() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inflight
}

// Acquire takes a slot, waiting while the limit is reached, the upstream is down (but
// for a probe, when one is due and none is out) or paused by a Retry-After. probe says
// the slot is the down upstream's probe. It fails only when ctx ends.
func (g *Gate) Acquire(ctx context.Context) (probe bool, err error) {
	for {
		g.mu.Lock()
		now := g.now()
		var wait time.Duration
		switch {
		case now.Before(g.pauseTill):
			wait = g.pauseTill.Sub(now)
		case g.down && !g.probing && !now.Before(g.nextProbe):
			g.probing = true
			g.inflight++
			g.mu.Unlock()
			return true, nil
		case g.down:
			if !g.probing {
				wait = g.nextProbe.Sub(now)
			}
		case g.inflight < int(g.limit):
			g.inflight++
			g.mu.Unlock()
			return false, nil
		}
		ch := g.changed
		g.waiters++
		g.mu.Unlock()
		err := waitFor(ctx, ch, wait)
		g.mu.Lock()
		g.waiters--
		g.mu.Unlock()
		if err != nil {
			return false, err
		}
	}
}

// waitFor waits until ch is closed, d has passed (when positive), or ctx ends.
func waitFor(ctx context.Context, ch <-chan struct{}, d time.Duration) error {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
	case <-timer:
	}
	return nil
}

// wake lets every waiter look again. mu is held.
func (g *Gate) wake() {
	if g.waiters == 0 {
		return // the common case: no one waits, nothing to allocate
	}
	close(g.changed)
	g.changed = make(chan struct{})
}

// Release gives back a slot with what came of it: rtt is the request's time, tokens its
// output tokens (0 when unknown), retryAfter what the answer asked to wait.
func (g *Gate) Release(probe bool, o Outcome, rtt time.Duration, tokens int, retryAfter time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	defer g.wake()
	g.inflight--
	now := g.now()
	if probe {
		g.probing = false
	}
	switch o {
	case Idle:
		return
	case Success, Refused:
		// An answer: the upstream is up.
		if g.down {
			g.down, g.probeWait = false, g.cfg.ProbeBase
		}
		g.fails = 0
		if o == Success {
			if g.rtt == 0 {
				g.rtt = rtt.Seconds()
			} else {
				g.rtt += (rtt.Seconds() - g.rtt) * 0.1
			}
			g.observe(now, rtt.Seconds(), tokens)
		}
		return
	case Overloaded:
		g.fails = 0 // busy is not down
		if retryAfter > 0 {
			g.pauseTill = maxTime(g.pauseTill, now.Add(min(retryAfter, time.Minute)))
		}
		g.cut(now, g.cfg.Backoff)
		return
	case TimedOut:
		g.cut(now, g.cfg.Backoff)
	}
	// Failed or TimedOut: count toward down.
	g.fails++
	if g.down {
		if probe { // the probe failed: wait longer for the next
			g.probeWait = min(g.probeWait*2, g.cfg.ProbeMax)
			g.nextProbe = now.Add(g.probeWait)
		}
		return
	}
	if g.fails >= g.cfg.DownAfter {
		g.down = true
		g.nextProbe = now.Add(g.probeWait)
	}
}

// floorDrift is about how long a floor takes to rise to what it sees.
const floorDrift = time.Minute

// observe takes a success's round trip and output tokens, and grows the limit unless
// latency says the upstream queues.
func (g *Gate) observe(now time.Time, rtt float64, tokens int) {
	class := min(bits.Len(uint(max(tokens, 0))), len(g.floors)-1)
	f := &g.floors[class]
	switch {
	case *f == 0 || rtt < *f:
		*f = rtt
	case !g.lastObs.IsZero():
		*f += (rtt - *f) * min(1, now.Sub(g.lastObs).Seconds()/floorDrift.Seconds())
	}
	g.lastObs = now
	r := rtt / *f
	if g.ratio == 0 {
		g.ratio = r
	} else {
		g.ratio += (r - g.ratio) * 0.1
	}
	if !g.Adaptive() {
		return
	}
	if g.ratio > g.cfg.Tolerance {
		g.slowDone = true
		if now.Sub(g.lastCut) >= g.roundTrip() {
			g.lastCut = now
			g.limit = math.Max(float64(g.cfg.Floor), g.limit*0.9)
		}
		return
	}
	if !g.slowDone {
		g.limit++
	} else {
		g.limit += 1 / g.limit
	}
	g.limit = math.Min(g.limit, float64(g.cfg.Ceiling))
	if g.loadCap > 0 {
		g.limit = math.Min(g.limit, g.loadCap)
	}
}

// slotsMemory is how long the server's slots are trusted after it was last full.
const slotsMemory = time.Minute

// ObserveLoad takes the upstream's load as its metrics report it, and caps the limit
// at the server's slots less the others' requests less the headroom (see Gate).
func (g *Gate) ObserveLoad(l Load) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	full := l.Waiting > float64(g.cfg.MaxWaiting) || (g.cfg.MaxCacheUsage > 0 && l.CacheUsage >= g.cfg.MaxCacheUsage)
	switch {
	case full && l.Running > 0:
		g.slots, g.fullAt = l.Running, now
	case g.slots > 0 && now.Sub(g.fullAt) > slotsMemory:
		g.slots = 0 // measure again: the server may have grown
	case l.Running > g.slots && g.slots > 0:
		g.slots = l.Running
	}
	if g.slots == 0 || !g.Adaptive() {
		g.loadCap = 0
		return
	}
	others := max(0, l.Running+l.Waiting-float64(g.inflight))
	g.loadCap = max(float64(g.cfg.Floor), g.slots-others-float64(g.cfg.Headroom))
	if g.limit > g.loadCap {
		g.limit = g.loadCap
		g.slowDone = true
	}
}

// ForgetLoad drops what ObserveLoad learned, when the upstream's load can no longer
// be read: the limit then follows latency alone.
func (g *Gate) ForgetLoad() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.slots, g.loadCap = 0, 0
}

// cut shrinks the limit by factor, once per round trip.
func (g *Gate) cut(now time.Time, factor float64) {
	g.slowDone = true
	if !g.Adaptive() || now.Sub(g.lastCut) < g.roundTrip() {
		return
	}
	g.lastCut = now
	g.limit = math.Max(float64(g.cfg.Floor), g.limit*factor)
}

// roundTrip is the time one request takes now, at least 10 ms.
func (g *Gate) roundTrip() time.Duration {
	return max(10*time.Millisecond, time.Duration(g.rtt*float64(time.Second)))
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
