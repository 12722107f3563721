package upstream

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Pace learns how fast one upstream answers, from its recent successful answers, and
// says how long an attempt may run before it counts as hung (Timeout).
//
// An LLM call's time grows with the tokens it generates, so one fixed timeout is either
// far too long for a short answer (a hung request holds its slot for minutes) or too
// short for a long one. Pace keeps the last PaceWindow answers' time per output token
// and output tokens, and expects a request to take the per-token time's 90th
// percentile times its token limit (its max_tokens), or, when it names none, times the
// 99th percentile of the output tokens seen: a high quantile of each, because a
// timeout that cuts a sound answer costs an attempt and the work already done. The
// timeout is Factor times that, within [Min, Max]; until PaceMinSamples answers have
// been seen it is Max.
//
// The quantiles are recomputed every paceEvery answers, outside the lock, and read
// with atomics: Timeout costs a few loads, Observe a few stores under a mutex.
type Pace struct {
	cfg PaceConfig

	mu       sync.Mutex
	perToken [PaceWindow]float64 // seconds per output token, max(tokens, 1)
	tokens   [PaceWindow]float64
	next     int   // where the next answer goes in the ring
	seen     int64 // answers seen in all

	ready      atomic.Bool   // PaceMinSamples answers seen, and the quantiles computed
	known      chan struct{} // closed when ready first becomes true
	knownOnce  sync.Once
	perToken90 atomic.Uint64 // float64 bits: the per-token time's 90th percentile, seconds
	tokens99   atomic.Uint64 // float64 bits: the output tokens' 99th percentile
}

// PaceConfig shapes a Pace. Zero fields take the defaults in brackets.
type PaceConfig struct {
	Factor float64       // the timeout over the expected time [4]
	Min    time.Duration // the shortest timeout [1s]
	Max    time.Duration // the longest, and the timeout until the window has answers [10m]
}

const (
	// PaceWindow is how many recent answers a Pace keeps.
	PaceWindow = 256
	// PaceMinSamples is how many answers a Pace needs before it derives a timeout.
	PaceMinSamples = 32
	// paceEvery is how many answers pass between two computations of the quantiles.
	paceEvery = 32
)

// NewPace returns a Pace; see PaceConfig for the defaults.
func NewPace(cfg PaceConfig) *Pace {
	if cfg.Factor <= 0 {
		cfg.Factor = 4
	}
	if cfg.Min <= 0 {
		cfg.Min = time.Second
	}
	if cfg.Max <= 0 {
		cfg.Max = 10 * time.Minute
	}
	return &Pace{cfg: cfg, known: make(chan struct{})}
}

// Known returns a channel closed once the Pace derives timeouts (Timeout no longer
// returns Max for want of answers), so that an attempt sent before can be held to
// the timeout it would have had.
func (p *Pace) Known() <-chan struct{} { return p.known }

// Observe takes a successful answer's round trip and output tokens.
func (p *Pace) Observe(rtt time.Duration, tokens int) {
	if rtt <= 0 {
		return
	}
	t := float64(max(tokens, 0))
	p.mu.Lock()
	p.perToken[p.next] = rtt.Seconds() / max(t, 1)
	p.tokens[p.next] = t
	p.next = (p.next + 1) % PaceWindow
	p.seen++
	if p.seen < PaceMinSamples || p.seen%paceEvery != 0 {
		p.mu.Unlock()
		return
	}
	p.recompute() // unlocks
}

// recompute copies the window, unlocks mu, and computes the quantiles from the copy,
// so that other answers are not held up by the sort. Concurrent recomputations may
// store out of order; each is of a recent window.
func (p *Pace) recompute() {
	n := int(min(p.seen, PaceWindow))
	perToken, tokens := p.perToken, p.tokens
	p.mu.Unlock()
	p.perToken90.Store(math.Float64bits(quantile(perToken[:n], 0.90)))
	p.tokens99.Store(math.Float64bits(quantile(tokens[:n], 0.99)))
	p.ready.Store(true)
	p.knownOnce.Do(func() { close(p.known) })
}

// quantile sorts xs and returns its q-quantile (nearest rank).
func quantile(xs []float64, q float64) float64 {
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}

// Timeout returns how long an attempt of a request that may generate maxTokens tokens
// (0: it names no limit) may run: Factor times the expected time, within [Min, Max];
// Max until the window holds PaceMinSamples answers.
func (p *Pace) Timeout(maxTokens int) time.Duration {
	if !p.ready.Load() {
		return p.cfg.Max
	}
	n := float64(maxTokens)
	if maxTokens <= 0 {
		n = math.Float64frombits(p.tokens99.Load())
	}
	expected := math.Float64frombits(p.perToken90.Load()) * max(n, 1)
	d := p.cfg.Factor * expected * float64(time.Second)
	if d >= float64(p.cfg.Max) {
		return p.cfg.Max
	}
	return min(max(time.Duration(d), p.cfg.Min), p.cfg.Max)
}

// Expected returns the per-token time (90th percentile, seconds) and the output tokens
// (99th percentile) Timeout works from, and whether it has enough answers to.
func (p *Pace) Expected() (perToken, tokens float64, ok bool) {
	return math.Float64frombits(p.perToken90.Load()), math.Float64frombits(p.tokens99.Load()), p.ready.Load()
}
