package engine

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-batch/sluice"
)

// committer turns the results of many workers into few transactions: it takes what is
// waiting, up to CommitSize, and commits it at once. Under load groups grow; when idle
// a lone result commits alone, without waiting for company.
//
// It also keeps the engine's side of chunk leases: a claimed chunk stays leased until
// each of its lines here is committed or abandoned; if any was abandoned (a stop, a
// cancel), the chunk is released so its unfinished lines can be claimed again at once.
type committer struct {
	e    *Engine
	in   chan item
	done chan struct{}
	quit chan struct{} // closed by a hard stop: stop retrying, drop what is left

	mu     sync.Mutex
	chunks map[chunkKey]*chunkState
}

type chunkKey struct {
	batchID string
	chunk   int
}

type chunkState struct {
	outstanding int  // lines claimed here and not yet committed or abandoned
	abandoned   bool // a line was given up unsent
}

type item struct {
	run     *run
	result  sluice.Result
	release *sluice.Request // set: this line was given up unsent; its chunk is released once settled
}

func newCommitter(e *Engine) *committer {
	return &committer{
		e: e, in: make(chan item, 4*e.opts.CommitSize), done: make(chan struct{}), quit: make(chan struct{}),
		chunks: make(map[chunkKey]*chunkState),
	}
}

func (c *committer) start() { go c.loop() }

// stop commits what is queued and returns. Nothing may be added after it.
func (c *committer) stop() {
	close(c.in)
	<-c.done
}

// track records lines just claimed, before any of them can come back.
func (c *committer) track(reqs []sluice.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, q := range reqs {
		k := chunkKey{q.BatchID, q.Chunk}
		st := c.chunks[k]
		if st == nil {
			st = &chunkState{}
			c.chunks[k] = st
		}
		st.outstanding++
	}
}

// abandon gives up on what the store has not taken yet, at a hard stop when the store
// is failing. Dropped results are as safe as a kill -9: their chunks stay leased until
// the lease runs out (or the next start releases them) and their lines are sent again.
func (c *committer) abandon() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
}

func (c *committer) put(it item) {
	select {
	case c.in <- it:
	case <-c.quit:
	}
}

func (c *committer) add(r *run, res sluice.Result) { c.put(item{run: r, result: res}) }

func (c *committer) release(r *run, req sluice.Request) { c.put(item{run: r, release: &req}) }

func (c *committer) releaseAll(r *run, reqs []sluice.Request) {
	for _, q := range reqs {
		c.release(r, q)
	}
}

func (c *committer) loop() {
	defer close(c.done)
	max := c.e.opts.CommitSize
	linger := time.NewTimer(0)
	<-linger.C
	group := make([]item, 0, max)
	for it := range c.in {
		group = append(group[:0], it)
		// Take what is waiting; if that is a small group, give it CommitLinger to grow.
		// Every commit writes its pages to the log whatever its size, so at high rates a
		// few milliseconds of waiting cut the write volume many times over.
		linger.Reset(c.e.opts.CommitLinger)
		lingering := true
	fill:
		for len(group) < max {
			select {
			case it, ok := <-c.in:
				if !ok {
					break fill
				}
				group = append(group, it)
			default:
				if !lingering {
					break fill
				}
				select {
				case it, ok := <-c.in:
					if !ok {
						break fill
					}
					group = append(group, it)
				case <-linger.C:
					lingering = false
				}
			}
		}
		if lingering && !linger.Stop() {
			<-linger.C
		}
		c.flush(group)
	}
}

// flush commits one group, retrying until the store takes it: results held here are
// finished work, and dropping them would send their lines again. Then it releases the
// chunks this group left with nothing outstanding and a line abandoned.
func (c *committer) flush(group []item) {
	var results []sluice.Result
	for _, it := range group {
		if it.release == nil {
			results = append(results, it.result)
		}
	}
	if len(results) > 0 {
		c.retry(func() error {
			_, err := c.e.store.CommitResults(context.Background(), c.e.opts.Owner, results)
			return err
		})
	}
	var release []sluice.Request
	c.mu.Lock()
	for _, it := range group {
		k, abandoned := chunkKey{it.result.BatchID, it.result.Chunk}, false
		if it.release != nil {
			k, abandoned = chunkKey{it.release.BatchID, it.release.Chunk}, true
		}
		st := c.chunks[k]
		if st == nil {
			continue
		}
		st.abandoned = st.abandoned || abandoned
		if st.outstanding--; st.outstanding == 0 {
			if st.abandoned {
				release = append(release, sluice.Request{BatchID: k.batchID, Chunk: k.chunk})
			}
			delete(c.chunks, k)
		}
	}
	c.mu.Unlock()
	if len(release) > 0 {
		c.retry(func() error { return c.e.store.ReleaseRequests(context.Background(), c.e.opts.Owner, release) })
	}
	idle := false
	for _, it := range group {
		if it.run.inflight.Add(-1) == 0 {
			idle = true
		}
	}
	if idle {
		c.e.Notify()
	}
}

// retry runs fn until it succeeds, backing off, and reports true; the store being away
// must not lose finished work. Only a hard stop makes it give up and report false.
func (c *committer) retry(fn func() error) bool {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return true
		}
		c.e.log.Error("store write failed; retrying", "attempt", attempt, "err", err)
		t := time.NewTimer(min(time.Duration(attempt)*100*time.Millisecond, 5*time.Second))
		select {
		case <-c.quit:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
