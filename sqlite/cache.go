package sqlite

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/sluice-batch/sluice"
)

// batchCache holds batch rows as last committed, so that FindBatchByID, which every
// client polls, is served from memory: a thousand polls a second against a running
// batch cost the database nothing, and each poll costs microseconds.
//
// It stays exact because this store is the only writer of its database (the data
// folder is locked) and every write of a batch row goes through it: each commit that
// changes a batch takes mu, commits, and applies the change to the cache before it
// lets go, in commit order, so the cache never shows what is not committed, and never
// misses what is. A miss reads the row under mu too, so no commit can slip between the
// read and the caching.
type batchCache struct {
	mu      sync.RWMutex
	batches map[string]*sluice.Batch
}

// maxCachedBatches bounds the cache; past it, it starts over.
const maxCachedBatches = 4096

func newBatchCache() *batchCache { return &batchCache{batches: make(map[string]*sluice.Batch)} }

// get returns a copy of the cached batch, or nil.
func (c *batchCache) get(id string) *sluice.Batch {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if b := c.batches[id]; b != nil {
		return cloneBatch(b)
	}
	return nil
}

// load returns the batch, reading it with read under the write lock when it is not
// cached, and caching it.
func (c *batchCache) load(id string, read func() (*sluice.Batch, error)) (*sluice.Batch, error) {
	if b := c.get(id); b != nil {
		return b, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.batches[id]; b != nil {
		return cloneBatch(b), nil
	}
	b, err := read()
	if err != nil {
		return nil, err
	}
	c.put(b)
	return cloneBatch(b), nil
}

// put caches b; mu must be held.
func (c *batchCache) put(b *sluice.Batch) {
	if len(c.batches) >= maxCachedBatches {
		clear(c.batches)
	}
	c.batches[b.ID] = cloneBatch(b)
}

// commit runs commit under the write lock and, when it succeeds, apply; when it fails
// the entries of ids are dropped, since what was committed is then not known.
func (c *batchCache) commit(commit func() error, apply func(), ids ...string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := commit(); err != nil {
		for _, id := range ids {
			delete(c.batches, id)
		}
		return err
	}
	apply()
	return nil
}

// count adds committed results to a cached batch; mu must be held.
func (c *batchCache) count(id string, completed, failed int, usage sluice.Usage) {
	if b := c.batches[id]; b != nil {
		b.RequestCounts.Completed += completed
		b.RequestCounts.Failed += failed
		b.Usage.Add(usage)
	}
}

func cloneBatch(b *sluice.Batch) *sluice.Batch {
	out := *b
	out.Errors = slices.Clone(b.Errors)
	out.Metadata = maps.Clone(b.Metadata)
	return &out
}

// FindBatchByID implements sluice.Store. The batch comes from the cache when it is there.
func (s *Store) FindBatchByID(ctx context.Context, id string) (*sluice.Batch, error) {
	b, err := s.cache.load(id, func() (*sluice.Batch, error) {
		b, err := scanBatch(s.findBatch.QueryRowContext(ctx, id))
		return b, interpret(err, "Batch", id)
	})
	return b, err
}
