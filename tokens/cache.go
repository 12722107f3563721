package tokens

import (
	"hash/maphash"
	"sync"
)

// Cache sizing. A generation of a shard holds at most shardEntries counts, and a shard
// keeps two generations, so a Counter caches at most cacheShards*2*shardEntries =
// 28,672 counts. Measured: about 0.8 MiB of maps when all are full (30 bytes an entry;
// 224 is 7/8 of a 256-slot table, where Go's maps are densest). Entries hold no
// pointers, so the garbage collector never scans them. It is small because counting a
// string piece by piece is fast too: it only needs to hold the text a batch repeats on
// every line or so, such as a system prompt, which the rotation keeps.
const (
	cacheShards  = 64
	shardEntries = 224
)

// What a cache key was computed from. Keys of different kinds never collide in practice
// because the kind is mixed into the second hash.
const (
	kindText   = iota // a string's decoded text
	kindTools         // the raw JSON of a tools or functions array
	kindSchema        // the raw JSON of a json_schema schema
)

// cacheKey is a 128-bit hash of the cached bytes: two maphash sums with independent
// random seeds. Two different strings share a key with probability about 2^-128 per
// pair, far below any other source of error here.
type cacheKey struct{ h1, h2 uint64 }

// cache maps hashes of strings to their token counts. It is safe for concurrent use.
// Each shard has a mutex and two generations: lookups that hit the old generation move
// the entry to the current one, and when the current one is full it becomes the old one
// and the old one is cleared for reuse. Hot entries, such as a system prompt repeated on
// every line, so survive any amount of unique text passing through.
type cache struct {
	seed1, seed2 maphash.Seed
	shards       [cacheShards]shard
}

type shard struct {
	mu       sync.Mutex
	cur, old map[cacheKey]int32
	_        [40]byte // keep shards on separate cache lines
}

func newCache() *cache {
	c := &cache{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].cur = make(map[cacheKey]int32)
		c.shards[i].old = make(map[cacheKey]int32)
	}
	return c
}

func (c *cache) key(kind uint64, b []byte) cacheKey {
	return cacheKey{maphash.Bytes(c.seed1, b), maphash.Bytes(c.seed2, b) ^ kind}
}

func (c *cache) keyString(kind uint64, s string) cacheKey {
	return cacheKey{maphash.String(c.seed1, s), maphash.String(c.seed2, s) ^ kind}
}

func (c *cache) shard(k cacheKey) *shard { return &c.shards[k.h1%cacheShards] }

// get returns the count cached under k.
func (c *cache) get(k cacheKey) (int, bool) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.cur[k]; ok {
		return int(n), true
	}
	n, ok := s.old[k]
	if ok {
		delete(s.old, k)
		s.put(k, n)
	}
	return int(n), ok
}

// put caches n under k.
func (c *cache) put(k cacheKey, n int) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.put(k, int32(min(n, 1<<31-1)))
}

func (s *shard) put(k cacheKey, n int32) {
	if _, ok := s.cur[k]; !ok && len(s.cur) >= shardEntries {
		s.cur, s.old = s.old, s.cur
		clear(s.cur)
	}
	s.cur[k] = n
}
