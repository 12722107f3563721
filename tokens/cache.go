package tokens

import (
	"hash/maphash"
	"math/rand/v2"
)

// cacheBits sizes the cache of whole strings: 1<<cacheBits buckets of two 32-byte slots,
// 512 KiB allocated once, holding no pointers, so the garbage collector never scans it.
// It is small because counting a string piece by piece is fast too: it only needs to
// hold the text a batch repeats on every line or so, such as a system prompt.
const cacheBits = 13

// What a cached count was computed from. The kind is mixed into the first hash, so the
// same bytes as text and as a tools array are two entries.
const (
	kindText   = iota // a string's decoded text
	kindTools         // the raw JSON of a tools or functions array
	kindSchema        // the raw JSON of a json_schema schema
)

// The tags of a cache slot.
const (
	tagSeen    = 1 // a string seen once and not kept: k0 is its first hash
	tagCounted = 2 // a string's count: k0 and k1 are its two hashes
)

// cache maps strings to their token counts by a 128-bit hash of their bytes (two
// maphash sums with independent random seeds: two different strings share a key with
// probability about 2^-128 a pair, far below any other source of error here), in a
// two-way set-associative table of the slots the piece table uses, so it is safe for
// concurrent use without locks.
//
// A string's count is kept the second time the string is seen: the first time, only
// its first hash is noted. Most strings of a batch are seen once (each line's own
// text), and for them a lookup costs one hash and one load, and noting them one
// write. A new string takes its bucket's empty slot, or else one noted but not
// counted, or else one at random: a count used on every line, such as a system
// prompt's, so survives any amount of text seen once, and is counted again twice at
// most after a collision.
type cache struct {
	seed1, seed2 maphash.Seed
	buckets      [][2]slot
}

func newCache() *cache {
	return &cache{seed1: maphash.MakeSeed(), seed2: maphash.MakeSeed(), buckets: make([][2]slot, 1<<cacheBits)}
}

// cacheEntry is what a lookup learned, for keep.
type cacheEntry struct {
	b      *[2]slot
	h1, h2 uint64 // h2 is 0 until computed
	seen   int    // the slot that noted the string, or -1
	meta   uint64 // that slot's meta word when read
}

// hash returns the maphash sum of s with seed.
func hash[T text](seed maphash.Seed, s T) uint64 {
	switch v := any(s).(type) {
	case string:
		return maphash.String(seed, v)
	case []byte:
		return maphash.Bytes(seed, v)
	}
	return 0
}

// cached returns the count kept for s of kind, if any, and what keep needs to note or
// keep the count of s.
func cached[T text](c *cache, kind uint64, s T) (cacheEntry, int, bool) {
	h1 := hash(c.seed1, s) ^ kind*0x9e3779b97f4a7c15
	e := cacheEntry{b: &c.buckets[h1>>(64-cacheBits)], h1: h1, seen: -1}
	for i := range e.b {
		sl := &e.b[i]
		m := sl.meta.Load()
		if m&busy != 0 || sl.k0.Load() != h1 {
			continue
		}
		switch m >> tagShift & 0xff {
		case tagCounted:
			if e.h2 == 0 {
				e.h2 = hash(c.seed2, s) | 1 // never 0, so 0 says "not computed"
			}
			if sl.k1.Load() == e.h2 && sl.meta.Load() == m {
				return e, int(m & countMask), true
			}
		case tagSeen:
			e.seen, e.meta = i, m
		}
	}
	return e, 0, false
}

// keep notes s, which cached did not find, with its count n: the first time it is
// seen, only that it was; the second time, its count.
func keep[T text](c *cache, e *cacheEntry, s T, n int) {
	if n > countMask {
		return
	}
	if e.seen >= 0 {
		if e.h2 == 0 {
			e.h2 = hash(c.seed2, s) | 1
		}
		e.b[e.seen].write(e.meta, e.h1, e.h2, 0, tagCounted, n)
		return
	}
	m0, m1 := e.b[0].meta.Load(), e.b[1].meta.Load()
	i := rand.IntN(2)
	switch {
	case m0 == 0:
		i = 0
	case m1 == 0:
		i = 1
	case m0>>tagShift&0xff == tagSeen:
		i = 0
	case m1>>tagShift&0xff == tagSeen:
		i = 1
	}
	e.b[i].write(e.b[i].meta.Load(), e.h1, 0, 0, tagSeen, 0)
}
