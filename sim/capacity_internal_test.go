package sim

import (
	"testing"
	"time"
)

// poolBundle is a pool on a fake clock whose timer is recorded instead of set: the test
// moves the clock and calls tick itself.
type poolBundle struct {
	p    *pool
	now  time.Time
	wake time.Duration // the last timer the pool asked for; -1 for none
}

func setupPool(t *testing.T, slots, queueMax int, tps, slowdown float64) *poolBundle {
	t.Helper()
	b := &poolBundle{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), wake: -1}
	b.p = newPool(slots, queueMax, tps, slowdown)
	b.p.nowFunc = func() time.Time { return b.now }
	b.p.wakeFunc = func(d time.Duration) { b.wake = d }
	return b
}

// at moves the clock to d after its start and lets the pool end what is due.
func (b *poolBundle) at(d time.Duration) {
	b.now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(d)
	b.p.tick()
}

// enter enters a new ticket and returns it.
func (b *poolBundle) enter(t *testing.T) *ticket {
	t.Helper()
	tk := &ticket{ready: make(chan struct{})}
	if !b.p.enter(tk) {
		t.Fatal("enter: got a full queue, want a place")
	}
	return tk
}

// generate starts tk's generation of tokens.
func (b *poolBundle) generate(tk *ticket, tokens float64) {
	tk.done = make(chan struct{})
	b.p.generate(tk, tokens)
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func checkLoad(t *testing.T, p *pool, wantRunning, wantWaiting int) {
	t.Helper()
	if r, w, _ := p.load(); r != wantRunning || w != wantWaiting {
		t.Errorf("got %d running and %d waiting, want %d and %d", r, w, wantRunning, wantWaiting)
	}
}

// near reports whether d is within a microsecond of want.
func near(d, want time.Duration) bool { return d > want-time.Microsecond && d < want+time.Microsecond }

func TestPool(t *testing.T) {
	t.Parallel()

	t.Run("QueuesInOrder", func(t *testing.T) {
		t.Parallel()
		b := setupPool(t, 2, 0, 0, 0)
		a, c, d, e := b.enter(t), b.enter(t), b.enter(t), b.enter(t)
		if !closed(a.ready) || !closed(c.ready) || closed(d.ready) || closed(e.ready) {
			t.Fatal("want the first two to get slots at once and the others to wait")
		}
		checkLoad(t, b.p, 2, 2)
		b.p.leave(c)
		if !closed(d.ready) || closed(e.ready) {
			t.Fatal("after one slot came free: want the oldest waiting to take it, and only it")
		}
		b.p.leave(a)
		if !closed(e.ready) {
			t.Fatal("after another: want the last to take it")
		}
		checkLoad(t, b.p, 2, 0)
		if _, _, maxWaiting := b.p.load(); maxWaiting != 2 {
			t.Errorf("got max waiting %d, want 2", maxWaiting)
		}
	})

	t.Run("NoOneOvertakesTheQueue", func(t *testing.T) {
		t.Parallel()
		b := setupPool(t, 1, 0, 0, 0)
		a, c := b.enter(t), b.enter(t)
		b.p.leave(a)
		d := b.enter(t) // a slot is free only for a moment: c has it
		if !closed(c.ready) || closed(d.ready) {
			t.Fatal("want the waiting request to get the slot before a newcomer")
		}
	})

	t.Run("QueueLimit", func(t *testing.T) {
		t.Parallel()
		b := setupPool(t, 1, 1, 0, 0)
		b.enter(t)
		w := b.enter(t)
		if b.p.enter(&ticket{ready: make(chan struct{})}) {
			t.Fatal("got a place with one running and one waiting at QueueLimit 1, want a full queue")
		}
		checkLoad(t, b.p, 1, 1)
		b.p.leave(w) // a waiting request gives up its place
		checkLoad(t, b.p, 1, 0)
		b.enter(t)
		checkLoad(t, b.p, 1, 1)
	})

	t.Run("GenerationAlone", func(t *testing.T) {
		t.Parallel()
		b := setupPool(t, 4, 0, 10, 1) // 10 tokens a second alone
		a := b.enter(t)
		b.generate(a, 10)
		if b.wake != time.Second {
			t.Fatalf("got a wake-up in %v, want 1s for 10 tokens at 10/s", b.wake)
		}
		b.at(999 * time.Millisecond)
		if closed(a.done) {
			t.Fatal("done after 0.999s, want 1s")
		}
		b.at(time.Second)
		if !closed(a.done) {
			t.Fatal("not done after 1s")
		}
		checkLoad(t, b.p, 0, 0)
		if b.wake != -1 {
			t.Errorf("got a wake-up in %v with nothing generating, want none", b.wake)
		}
	})

	t.Run("SharedGenerationSlows", func(t *testing.T) {
		t.Parallel()
		// Slowdown 1: with two running each generates at half speed. a starts alone, b
		// joins at 0.5s when a has 5 tokens left: both go at 5/s, so a ends at 1.5s;
		// b has 5 left then and ends alone at 10/s, at 2s.
		b := setupPool(t, 4, 0, 10, 1)
		a := b.enter(t)
		b.generate(a, 10)
		b.at(500 * time.Millisecond)
		c := b.enter(t)
		b.generate(c, 10)
		if !near(b.wake, time.Second) {
			t.Fatalf("got a wake-up in %v, want 1s (a's 5 tokens at 5/s)", b.wake)
		}
		b.at(1500 * time.Millisecond)
		if !closed(a.done) || closed(c.done) {
			t.Fatal("at 1.5s: want a done and c not")
		}
		if !near(b.wake, 500*time.Millisecond) {
			t.Fatalf("got a wake-up in %v, want 0.5s (c's 5 tokens alone at 10/s)", b.wake)
		}
		b.at(2 * time.Second)
		if !closed(c.done) {
			t.Fatal("at 2s: want c done")
		}
	})

	t.Run("TimeToFirstTokenSlowsOthers", func(t *testing.T) {
		t.Parallel()
		// A request holding a slot in its latency counts as running.
		b := setupPool(t, 4, 0, 10, 0.5)
		a := b.enter(t)
		b.generate(a, 10)
		b.enter(t) // holds a slot, not generating
		if !near(b.wake, 1500*time.Millisecond) {
			t.Fatalf("got a wake-up in %v, want 1.5s (10 tokens at 10/1.5 a second)", b.wake)
		}
	})

	t.Run("SlotsFreedByGenerationAdmitTheQueue", func(t *testing.T) {
		t.Parallel()
		b := setupPool(t, 1, 0, 100, 0)
		a := b.enter(t)
		c := b.enter(t)
		b.generate(a, 50)
		b.at(500 * time.Millisecond)
		if !closed(a.done) || !closed(c.ready) {
			t.Fatal("want a done and c in its slot")
		}
		b.p.leave(a) // after its generation ended: nothing to give back
		checkLoad(t, b.p, 1, 0)
	})

	t.Run("LeavingMidGeneration", func(t *testing.T) {
		t.Parallel()
		b := setupPool(t, 2, 0, 10, 1)
		a, c := b.enter(t), b.enter(t)
		b.generate(a, 10)
		b.generate(c, 20)
		b.at(time.Second) // 5 tokens each at 5/s
		b.p.leave(a)
		if !near(b.wake, 1500*time.Millisecond) {
			t.Fatalf("got a wake-up in %v, want 1.5s (c's 15 tokens alone at 10/s)", b.wake)
		}
		checkLoad(t, b.p, 1, 0)
		b.at(2500 * time.Millisecond)
		if !closed(c.done) {
			t.Fatal("at 2.5s: want c done")
		}
	})
}
