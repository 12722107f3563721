package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-batch/sluice"
)

// committer turns the results of many workers into few writes: it takes what is
// waiting, up to CommitSize, appends each batch's result lines to that batch's segment
// for their outcome (one write and one sync per segment), then records in one store
// transaction which lines finished and where their bytes are. A result counts only once
// that transaction commits; bytes appended before a crash that were never recorded are
// ignored, and their lines run again. Under load groups grow; when idle a lone result
// commits alone, after CommitLinger.
//
// It also keeps the engine's side of chunk leases: a claimed chunk stays leased until
// each of its lines here is committed or abandoned; if any was abandoned (a stop, a
// cancel), the chunk is released so its unfinished lines can be claimed again at once.
type committer struct {
	e    *Engine
	in   chan item
	done chan struct{}
	quit chan struct{} // closed by a hard stop: stop retrying, drop what is left

	mu       sync.Mutex
	chunks   map[chunkKey]*chunkState
	segments map[segmentKey]*segment

	scratch []byte // one group's bytes for one segment; used by the loop alone
}

type chunkKey struct {
	batchID string
	chunk   int
}

type chunkState struct {
	outstanding int  // lines claimed here and not yet committed or abandoned
	abandoned   bool // a line was given up unsent
}

// segmentKey names the stream of result lines of one batch and outcome in this process.
type segmentKey struct {
	batchID   string
	succeeded bool
}

// segment is the object result lines of one stream are appended to now.
type segment struct {
	key     string
	seq     int   // the stream's segments so far, minus one
	size    int64 // bytes appended so far
	appends int
	ready   bool // recorded in the store
}

// Segments roll over to a new object past these, so that no object outgrows what an
// object store allows an append blob (50,000 appends).
const (
	maxSegmentBytes   = 4 << 30
	maxSegmentAppends = 40_000
)

type item struct {
	run     *run
	result  result
	release *line // set: this line was given up unsent; its chunk is released once settled
}

func newCommitter(e *Engine) *committer {
	return &committer{
		e: e, in: make(chan item, 4*e.opts.CommitSize), done: make(chan struct{}), quit: make(chan struct{}),
		chunks: make(map[chunkKey]*chunkState), segments: make(map[segmentKey]*segment),
	}
}

func (c *committer) start() { go c.loop() }

// stop commits what is queued and returns. Nothing may be added after it.
func (c *committer) stop() {
	close(c.in)
	<-c.done
}

// track records lines just claimed, before any of them can come back.
func (c *committer) track(reqs []line) {
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

// forget drops the segments of a batch, which is being finalized: whatever comes for it
// later goes to new segments, never to one the result files are made of.
func (c *committer) forget(batchID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ok := range []bool{true, false} {
		delete(c.segments, segmentKey{batchID, ok})
	}
}

// abandon gives up on what the store has not taken yet, at a hard stop when the store
// or the bucket is failing. Dropped results are as safe as a kill -9: their chunks stay
// leased until the lease runs out (or the next start releases them) and their lines are
// sent again.
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
		if it.release == nil {
			putLineBuf(it.result.out)
		}
	}
}

func (c *committer) add(r *run, res result) { c.put(item{run: r, result: res}) }

func (c *committer) release(r *run, req line) { c.put(item{run: r, release: &req}) }

func (c *committer) releaseAll(r *run, reqs []line) {
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
		// Every commit costs a sync and a transaction whatever its size, so at high rates
		// a few milliseconds of waiting cut the write volume many times over.
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

// flush stores one group, retrying until the bucket and the store take it: results held
// here are finished work, and dropping them would send their lines again. Then it
// releases the chunks this group left with nothing outstanding and a line abandoned.
func (c *committer) flush(group []item) {
	var refs []sluice.ResultRef
	// Results go to their segment in the order of the group, one stream at a time.
	var streams []segmentKey
	byStream := make(map[segmentKey][]*result)
	for i := range group {
		it := &group[i]
		if it.release != nil {
			continue
		}
		k := segmentKey{it.result.req.BatchID, it.result.succeeded}
		if _, ok := byStream[k]; !ok {
			streams = append(streams, k)
		}
		byStream[k] = append(byStream[k], &it.result)
	}
	for _, k := range streams {
		refs = c.appendStream(k, byStream[k], refs)
	}
	if len(refs) > 0 {
		c.retry(func() error {
			_, err := c.e.store.CommitResults(context.Background(), c.e.opts.Owner, refs)
			return err
		})
	}
	for i := range group {
		if group[i].release == nil {
			putLineBuf(group[i].result.out)
			group[i].result.out = nil
		}
	}
	release := make(map[string][]int)
	c.mu.Lock()
	for _, it := range group {
		q, abandoned := it.result.req, false
		if it.release != nil {
			q, abandoned = *it.release, true
		}
		k := chunkKey{q.BatchID, q.Chunk}
		st := c.chunks[k]
		if st == nil {
			continue
		}
		st.abandoned = st.abandoned || abandoned
		if st.outstanding--; st.outstanding == 0 {
			if st.abandoned {
				release[k.batchID] = append(release[k.batchID], k.chunk)
			}
			delete(c.chunks, k)
		}
	}
	c.mu.Unlock()
	for batchID, chunks := range release {
		c.retry(func() error { return c.e.store.ReleaseChunks(context.Background(), c.e.opts.Owner, batchID, chunks) })
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

// appendStream appends the result lines of one stream to its segment with one write,
// and returns refs with theirs added. A failed write goes to a new segment: after a
// failure the old one's size is not known for sure.
func (c *committer) appendStream(k segmentKey, rs []*result, refs []sluice.ResultRef) []sluice.ResultRef {
	c.scratch = c.scratch[:0]
	for _, r := range rs {
		c.scratch = append(c.scratch, *r.out...)
	}
	var seg *segment
	ok := c.retry(func() error {
		var err error
		if seg, err = c.segment(k, int64(len(c.scratch))); err != nil {
			return err
		}
		if err := c.e.bucket.Append(context.Background(), seg.key, seg.size, c.scratch); err != nil {
			c.roll(k, seg)
			return fmt.Errorf("append to %s: %w", seg.key, err)
		}
		return nil
	})
	if !ok {
		return refs
	}
	off := seg.size
	for _, r := range rs {
		n := int64(len(*r.out))
		refs = append(refs, sluice.ResultRef{
			BatchID: k.batchID, Chunk: r.req.Chunk, Index: r.req.Index, Succeeded: k.succeeded,
			Segment: seg.key, Offset: off, Length: n, Usage: r.usage,
		})
		off += n
	}
	seg.size = off
	seg.appends++
	return refs
}

// segment returns the segment a write of n bytes to stream k goes to, starting a new one
// (recorded in the store first) when there is none or the current one is full.
func (c *committer) segment(k segmentKey, n int64) (*segment, error) {
	c.mu.Lock()
	seg := c.segments[k]
	if seg != nil && seg.size > 0 && (seg.size+n > maxSegmentBytes || seg.appends >= maxSegmentAppends) {
		seg = &segment{seq: seg.seq + 1}
		seg.key = c.segmentName(k, seg.seq)
		c.segments[k] = seg
	}
	if seg == nil {
		seg = &segment{key: c.segmentName(k, 0)}
		c.segments[k] = seg
	}
	c.mu.Unlock()
	if !seg.ready {
		if err := c.e.store.AddSegment(context.Background(), k.batchID, seg.key); err != nil {
			return nil, err
		}
		seg.ready = true
	}
	return seg, nil
}

// roll moves stream k past seg to a new segment.
func (c *committer) roll(k segmentKey, seg *segment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur := c.segments[k]; cur == seg {
		next := &segment{seq: seg.seq + 1}
		next.key = c.segmentName(k, next.seq)
		c.segments[k] = next
	}
}

// segmentName is the bucket key of a segment: per batch, process, outcome and sequence.
func (c *committer) segmentName(k segmentKey, seq int) string {
	kind := "error"
	if k.succeeded {
		kind = "output"
	}
	return fmt.Sprintf("segments/%s/%s-%d-%s.jsonl", k.batchID, c.e.opts.Owner, seq, kind)
}

// retry runs fn until it succeeds, backing off, and reports true; the store or the
// bucket being away must not lose finished work. Only a hard stop makes it give up and
// report false.
func (c *committer) retry(fn func() error) bool {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			if attempt > 1 {
				c.e.faults.clear(c.e.log)
			}
			return true
		}
		if reason, ok := c.e.faults.note(c.e.opts.Fault, err, c.e.now()); ok {
			c.e.log.Warn("store write failed: "+reason+"; retrying with backoff", "attempt", attempt, "err", err)
		} else {
			c.e.log.Error("store write failed; retrying", "attempt", attempt, "err", err)
		}
		t := time.NewTimer(min(time.Duration(attempt)*100*time.Millisecond, 5*time.Second))
		select {
		case <-c.quit:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}
