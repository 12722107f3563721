package upstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/upstream"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// tryAcquire takes a slot if one is free within a moment.
func tryAcquire(t *testing.T, g *upstream.Gate) (probe, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	probe, err := g.Acquire(ctx)
	return probe, err == nil
}

func TestGateFixedLimit(t *testing.T) {
	t.Parallel()
	g := upstream.NewGate(upstream.GateConfig{Ceiling: 2})
	for i := range 2 {
		if _, ok := tryAcquire(t, g); !ok {
			t.Fatalf("slot %d: refused under the limit", i)
		}
	}
	if _, ok := tryAcquire(t, g); ok {
		t.Fatal("a third slot with a limit of 2")
	}
	done := make(chan bool)
	go func() {
		_, err := g.Acquire(context.Background())
		done <- err == nil
	}()
	g.Release(false, upstream.Success, 10*time.Millisecond, 5, 0)
	if !<-done {
		t.Fatal("a waiter did not get the released slot")
	}
	if g.Limit() != 2 || g.Adaptive() {
		t.Errorf("limit %d adaptive %t, want a fixed 2", g.Limit(), g.Adaptive())
	}
}

// Failures in a row bring the upstream down; then only one probe at a time goes, the
// wait between probes doubling, and a probe's success brings it up for everyone.
func TestGateDownAndProbe(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	g := upstream.NewGate(upstream.GateConfig{Ceiling: 8, DownAfter: 3, ProbeBase: time.Second, ProbeMax: 4 * time.Second, Now: clock.Now})
	// A line's own refusals and overload are not failures of the upstream.
	for _, o := range []upstream.Outcome{upstream.Refused, upstream.Overloaded, upstream.Failed, upstream.Failed, upstream.Success} {
		g.Acquire(context.Background())
		g.Release(false, o, time.Millisecond, 0, 0)
	}
	if g.Down() {
		t.Fatal("down after failures with a success between")
	}
	for range 3 {
		g.Acquire(context.Background())
		g.Release(false, upstream.Failed, time.Millisecond, 0, 0)
	}
	if !g.Down() {
		t.Fatal("not down after 3 failures in a row")
	}
	if _, ok := tryAcquire(t, g); ok {
		t.Fatal("a slot while down before the probe is due")
	}
	clock.Add(time.Second)
	probe, ok := tryAcquire(t, g)
	if !ok || !probe {
		t.Fatalf("after the probe wait: got probe %t ok %t, want a probe", probe, ok)
	}
	if _, ok := tryAcquire(t, g); ok {
		t.Fatal("a second slot while the probe is out")
	}
	g.Release(true, upstream.Failed, time.Millisecond, 0, 0)
	clock.Add(time.Second)
	if _, ok := tryAcquire(t, g); ok {
		t.Fatal("a probe 1s after a failed probe; the wait should have doubled to 2s")
	}
	clock.Add(time.Second)
	probe, ok = tryAcquire(t, g)
	if !ok || !probe {
		t.Fatal("no probe after the doubled wait")
	}
	var wg sync.WaitGroup
	got := make(chan bool, 4)
	for range 4 {
		wg.Go(func() {
			p, err := g.Acquire(context.Background())
			got <- err == nil && !p
		})
	}
	g.Release(true, upstream.Success, time.Millisecond, 1, 0)
	wg.Wait()
	close(got)
	for ok := range got {
		if !ok {
			t.Error("a waiter did not get a plain slot once the probe succeeded")
		}
	}
	if g.Down() {
		t.Error("still down after a successful probe")
	}
}

// A 503 with Retry-After pauses every send until then.
func TestGateRetryAfterPauses(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	g := upstream.NewGate(upstream.GateConfig{Ceiling: 4, Now: clock.Now})
	g.Acquire(context.Background())
	g.Release(false, upstream.Overloaded, time.Millisecond, 0, 5*time.Second)
	if _, ok := tryAcquire(t, g); ok {
		t.Fatal("a slot during the Retry-After pause")
	}
	clock.Add(5 * time.Second)
	if _, ok := tryAcquire(t, g); !ok {
		t.Fatal("no slot after the pause")
	}
}

// The adaptive limit starts at its floor, grows to its ceiling while latency stays
// flat, and shrinks on overload and when latency rises, never past its bounds.
func TestGateAdaptiveLimit(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	g := upstream.NewGate(upstream.GateConfig{Floor: 2, Ceiling: 32, Now: clock.Now})
	if g.Limit() != 2 || !g.Adaptive() {
		t.Fatalf("start: limit %d, want the floor 2", g.Limit())
	}
	ok := func(rtt time.Duration) {
		g.Acquire(context.Background())
		g.Release(false, upstream.Success, rtt, 10, 0)
		clock.Add(rtt)
	}
	for range 40 {
		ok(50 * time.Millisecond)
	}
	if g.Limit() != 32 {
		t.Fatalf("after 40 fast successes: limit %d, want the ceiling 32", g.Limit())
	}
	g.Acquire(context.Background())
	g.Release(false, upstream.Overloaded, 50*time.Millisecond, 0, 0)
	if got := g.Limit(); got != 22 { // 32 * 0.7
		t.Fatalf("after a 429: limit %d, want 22", got)
	}
	g.Acquire(context.Background())
	g.Release(false, upstream.Overloaded, 50*time.Millisecond, 0, 0)
	if got := g.Limit(); got != 22 {
		t.Fatalf("a second 429 in the same round trip: limit %d, want 22 still", got)
	}
	// Latency per token rising well past its floor: the limit comes down.
	for range 200 {
		ok(400 * time.Millisecond)
	}
	if got := g.Limit(); got >= 22 || got < 2 {
		t.Fatalf("under rising latency: limit %d, want below 22 and at least the floor", got)
	}
	for range 50 {
		g.Acquire(context.Background())
		g.Release(false, upstream.Overloaded, time.Second, 0, 0)
		clock.Add(time.Second)
	}
	if got := g.Limit(); got != 2 {
		t.Fatalf("after many 429s: limit %d, want the floor 2", got)
	}
}

// Answers of different lengths are compared within their length class: a server
// whose time does not grow with length (short answers not slower per token), and one
// whose long answers take long, are no congestion, and the limit grows to its ceiling.
func TestGateLatencyByAnswerLength(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		rtt  func(tokens int) time.Duration
	}{
		{"flat", func(int) time.Duration { return 50 * time.Millisecond }},
		{"proportional", func(tokens int) time.Duration { return time.Duration(10+tokens) * time.Millisecond }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
			g := upstream.NewGate(upstream.GateConfig{Floor: 1, Ceiling: 64, Now: clock.Now})
			for i := range 3000 {
				tokens := []int{5, 16, 300, 9, 1000}[i%5]
				g.Acquire(context.Background())
				g.Release(false, upstream.Success, tc.rtt(tokens), tokens, 0)
				clock.Add(time.Millisecond)
			}
			if got := g.Limit(); got != 64 {
				t.Errorf("limit %d after 3,000 answers at an unchanging pace, want the ceiling 64", got)
			}
		})
	}
}

// hold takes n slots of g and returns a func that gives them back as successes.
func hold(t *testing.T, g *upstream.Gate, n int) (release func()) {
	t.Helper()
	for i := range n {
		if _, ok := tryAcquire(t, g); !ok {
			t.Fatalf("slot %d of %d: refused", i+1, n)
		}
	}
	return func() {
		for range n {
			g.Release(false, upstream.Success, 50*time.Millisecond, 10, 0)
		}
	}
}

// The server's own queue caps the limit: its slots (the requests running when some
// wait) less the others' requests less the headroom. The cap steps the limit down at
// once, and the limit climbs back, a round trip at a time, as the others leave.
func TestGateFollowsTheServersQueue(t *testing.T) {
	t.Parallel()
	setup := func(t *testing.T, cfg upstream.GateConfig) (*upstream.Gate, *fakeClock) {
		t.Helper()
		clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
		cfg.Now = clock.Now
		return upstream.NewGate(cfg), clock
	}
	// grow sends successes at a steady latency, one at a time.
	grow := func(g *upstream.Gate, clock *fakeClock, n int) {
		for range n {
			g.Acquire(context.Background())
			g.Release(false, upstream.Success, 50*time.Millisecond, 10, 0)
			clock.Add(time.Millisecond)
		}
	}

	t.Run("StepsDownForOthersAndClimbsBack", func(t *testing.T) {
		t.Parallel()
		g, clock := setup(t, upstream.GateConfig{Floor: 1, Ceiling: 64, Headroom: 4})
		grow(g, clock, 100)
		if got := g.Limit(); got != 64 {
			t.Fatalf("limit %d after slow start, want the ceiling 64", got)
		}
		// The batch fills the server alone: nothing waits, the slots are not known.
		release := hold(t, g, 64)
		g.ObserveLoad(upstream.Load{Running: 64, CacheUsage: -1})
		if got := g.Limit(); got != 64 {
			t.Fatalf("limit %d with the server full of the batch and no queue, want 64", got)
		}
		// Ten others arrive and queue: the server has 64 slots, the others 10.
		g.ObserveLoad(upstream.Load{Running: 64, Waiting: 10, CacheUsage: -1})
		if got := g.Limit(); got != 50 { // 64 - 10 - 4
			t.Fatalf("limit %d with 10 others waiting, want 64 - 10 - 4 = 50", got)
		}
		release()
		// The batch is down to 50; the others run, 14 of them now, none waits.
		release = hold(t, g, 50)
		g.ObserveLoad(upstream.Load{Running: 64, CacheUsage: -1})
		if got := g.Limit(); got != 46 { // 64 - 14 - 4
			t.Fatalf("limit %d with 14 others running, want 64 - 14 - 4 = 46", got)
		}
		release()
		// The others leave: the cap rises to 60, and the limit climbs to it, not past.
		g.ObserveLoad(upstream.Load{Running: 0, CacheUsage: -1})
		grow(g, clock, 100)
		if got := g.Limit(); got <= 46 || got >= 50 {
			t.Fatalf("limit %d after 100 successes, want a climb of one a round trip (about 46 successes) from 46", got)
		}
		grow(g, clock, 2000)
		if got := g.Limit(); got != 60 {
			t.Fatalf("limit %d once the others left, want 64 - 4 = 60", got)
		}
	})

	t.Run("OwnQueue", func(t *testing.T) {
		t.Parallel()
		// max_concurrency over the server's slots: only the batch's own requests wait.
		g, clock := setup(t, upstream.GateConfig{Floor: 1, Ceiling: 80, Headroom: 2})
		grow(g, clock, 200)
		release := hold(t, g, 80)
		defer release()
		g.ObserveLoad(upstream.Load{Running: 64, Waiting: 16, CacheUsage: -1})
		if got := g.Limit(); got != 62 {
			t.Fatalf("limit %d with only its own requests waiting, want the slots less the headroom, 62", got)
		}
	})

	t.Run("MaxWaiting", func(t *testing.T) {
		t.Parallel()
		g, clock := setup(t, upstream.GateConfig{Floor: 1, Ceiling: 64, MaxWaiting: 2})
		grow(g, clock, 100)
		release := hold(t, g, 60)
		defer release()
		g.ObserveLoad(upstream.Load{Running: 62, Waiting: 2, CacheUsage: -1})
		if got := g.Limit(); got != 64 {
			t.Fatalf("limit %d with 2 waiting and max_waiting 2, want 64", got)
		}
		g.ObserveLoad(upstream.Load{Running: 62, Waiting: 3, CacheUsage: -1})
		if got := g.Limit(); got != 57 { // 62 - (62 + 3 - 60)
			t.Fatalf("limit %d with 3 waiting, want 62 - 5 = 57", got)
		}
	})

	t.Run("CacheUsage", func(t *testing.T) {
		t.Parallel()
		g, clock := setup(t, upstream.GateConfig{Floor: 1, Ceiling: 64, MaxCacheUsage: 0.9})
		grow(g, clock, 100)
		release := hold(t, g, 30)
		defer release()
		g.ObserveLoad(upstream.Load{Running: 40, CacheUsage: 0.85})
		if got := g.Limit(); got != 64 {
			t.Fatalf("limit %d with the cache at 0.85 of 0.9, want 64", got)
		}
		g.ObserveLoad(upstream.Load{Running: 40, CacheUsage: 0.95})
		if got := g.Limit(); got != 30 { // 40 slots, 10 of them others'
			t.Fatalf("limit %d with the cache full at 40 running, 10 of them others', want 30", got)
		}
	})

	t.Run("FloorHolds", func(t *testing.T) {
		t.Parallel()
		g, clock := setup(t, upstream.GateConfig{Floor: 4, Ceiling: 64, Headroom: 8})
		grow(g, clock, 100)
		g.ObserveLoad(upstream.Load{Running: 64, Waiting: 100, CacheUsage: -1})
		if got := g.Limit(); got != 4 {
			t.Fatalf("limit %d under a long queue of others, want the floor 4", got)
		}
	})

	t.Run("Forgets", func(t *testing.T) {
		t.Parallel()
		g, clock := setup(t, upstream.GateConfig{Floor: 1, Ceiling: 64})
		grow(g, clock, 100)
		release := hold(t, g, 32)
		g.ObserveLoad(upstream.Load{Running: 32, Waiting: 1, CacheUsage: -1})
		release()
		if got := g.Limit(); got != 31 {
			t.Fatalf("limit %d, want the 32 slots less the one other waiting, 31", got)
		}
		// Not full for over a minute: the slots are measured again, and the limit
		// climbs past them.
		clock.Add(2 * time.Minute)
		g.ObserveLoad(upstream.Load{Running: 10, CacheUsage: -1})
		grow(g, clock, 3000)
		if got := g.Limit(); got != 64 {
			t.Fatalf("limit %d a while after the server was last full, want the ceiling 64", got)
		}
		// ForgetLoad drops the cap at once.
		g.ObserveLoad(upstream.Load{Running: 32, Waiting: 1, CacheUsage: -1})
		g.ForgetLoad()
		grow(g, clock, 3000)
		if got := g.Limit(); got != 64 {
			t.Fatalf("limit %d after ForgetLoad, want the ceiling 64", got)
		}
	})

	t.Run("FixedIgnoresLoad", func(t *testing.T) {
		t.Parallel()
		g, _ := setup(t, upstream.GateConfig{Ceiling: 16})
		g.ObserveLoad(upstream.Load{Running: 16, Waiting: 50, CacheUsage: -1})
		if got := g.Limit(); got != 16 {
			t.Fatalf("fixed limit %d under a queue, want 16", got)
		}
	})
}
