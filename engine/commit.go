package engine

import (
	"context"
	"time"

	"github.com/sluice-batch/sluice"
)

// committer turns the results of many workers into few transactions: it takes what is
// waiting, up to CommitSize, and commits it at once. Under load groups grow; when idle
// a lone result commits alone, without waiting for company.
type committer struct {
	e    *Engine
	in   chan item
	done chan struct{}
}

type item struct {
	run     *run
	result  sluice.Result
	release *sluice.Request // set: release this line instead of committing a result
}

func newCommitter(e *Engine) *committer {
	return &committer{e: e, in: make(chan item, 4*e.opts.CommitSize), done: make(chan struct{})}
}

func (c *committer) start() { go c.loop() }

// stop commits what is queued and returns. Nothing may be added after it.
func (c *committer) stop() {
	close(c.in)
	<-c.done
}

func (c *committer) add(r *run, res sluice.Result) { c.in <- item{run: r, result: res} }

func (c *committer) release(r *run, req sluice.Request) { c.in <- item{run: r, release: &req} }

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
// finished work, and dropping them would send their lines again.
func (c *committer) flush(group []item) {
	var (
		results  []sluice.Result
		releases []sluice.Request
	)
	for _, it := range group {
		if it.release != nil {
			releases = append(releases, *it.release)
		} else {
			results = append(results, it.result)
		}
	}
	ctx := context.Background()
	for attempt := 1; ; attempt++ {
		var err error
		if len(results) > 0 {
			if _, err = c.e.store.CommitResults(ctx, c.e.opts.Owner, results); err == nil {
				results = nil
			}
		}
		if err == nil && len(releases) > 0 {
			if err = c.e.store.ReleaseRequests(ctx, c.e.opts.Owner, releases); err == nil {
				releases = nil
			}
		}
		if err == nil {
			break
		}
		c.e.log.ErrorContext(ctx, "commit results; retrying", "results", len(results), "releases", len(releases), "attempt", attempt, "err", err)
		time.Sleep(min(time.Duration(attempt)*100*time.Millisecond, 5*time.Second))
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
