package tokens

import (
	"hash/maphash"
	"math/rand/v2"
	"sync/atomic"
)

// Piece table sizing. A Counter's table has 1<<pieceBits buckets of two 32-byte slots,
// a cache line each: 2 MiB, allocated once, holding no pointers, so it never grows and
// the garbage collector never scans it. Measured on Node.js's and Vim's manuals (3.5
// and 9.4 MB, with 22,000 and 57,000 distinct pieces of more than a byte): read a
// second time, 99% and 97% of their pieces are found.
const (
	pieceBits = 15
	maxInline = 24 // the longest piece a slot holds byte for byte; longer ones by hash
)

// A slot's meta word: a version, bumped by each write, whose top bit is set while a
// write is under way; the piece's tag; its count.
const (
	busy      = 1 << 63
	countBits = 24
	countMask = 1<<countBits - 1
	tagShift  = countBits
	tagHashed = 0xff // the tag of a piece longer than maxInline; others are their length
	verShift  = 32
	verMask   = 1<<31 - 1
)

// pieces caches the token counts of pieces, keyed by the pieces themselves, in a
// two-way set-associative table: a piece may sit in either slot of its bucket, and a
// new piece takes the bucket's empty slot, or else a slot picked at random. It is safe
// for concurrent use without locks: each slot is a sequence lock of atomic words, so a
// lookup never waits and never allocates, reading a slot that is being written as a
// miss, and a write gives up on a slot that another write holds.
type pieces struct {
	seed         uint64
	seed1, seed2 maphash.Seed
	buckets      [][2]slot
	words        *words // see words.get
}

// wordBits sizes the table of short pieces: 1<<wordBits entries of 16 bytes, 256 KiB,
// which stays in a core's second-level cache beside the text.
const wordBits = 14

// wordEntry is a short piece and its count: the piece's second word in k1 with the
// count in its top byte, and its first in k0 mixed with a check of k1 (see words).
type wordEntry struct{ k0, k1 atomic.Uint64 }

type slot struct {
	meta       atomic.Uint64
	k0, k1, k2 atomic.Uint64
}

// pieceKey is a piece as a slot holds it: up to maxInline bytes, little-endian and
// padded with zeros, tagged with their number; or a longer piece's 128-bit hash (two
// maphash sums with independent random seeds) and length, tagged tagHashed. Its words
// are fields, not an array, so that it is passed in registers.
type pieceKey struct{ w0, w1, w2, tag uint64 }

func newPieces() *pieces {
	return &pieces{
		seed:    rand.Uint64(),
		seed1:   maphash.MakeSeed(),
		seed2:   maphash.MakeSeed(),
		buckets: make([][2]slot, 1<<pieceBits),
		words:   &words{seed: rand.Uint64()},
	}
}

// Most pieces of prose are of at most fifteen bytes: a word with its space, a run of
// punctuation, a group of digits. Such a piece, as two little-endian words of its bytes,
// the rest zero (shortWord's words, or a block's pieces, which hold no zero byte), is
// its own key, and its count fits in the second word's top byte: an entry of two atomic
// words holds it whole, so a lookup is two loads and one comparison, with no version to
// check. The table is direct-mapped; a piece that misses goes on to the buckets, so a
// collision costs only time.
//
// The two words of an entry are written one after the other, so a lookup may read them
// from two different writes. The first is then a check of the second: it holds the
// piece's first eight bytes xor a hash of the second, seeded at random, and a lookup
// whose two halves do not agree is a miss. Two halves from different writes that agree
// by chance, and name the piece looked up, take a hash collision of 64 bits at the
// moment of two writes to one entry racing a read.

// words is the table of short pieces.
type words struct {
	seed    uint64
	entries [1 << wordBits]wordEntry
}

// get returns the count cached for the short piece w0, w1.
func (t *words) get(w0, w1 uint64) (int, bool) {
	e := &t.entries[t.index(w0, w1)]
	k1 := e.k1.Load()
	return int(k1 >> 56), (k1<<8)^(w1<<8)|e.k0.Load()^w0^t.check(k1) == 0 // one comparison, one branch
}

// put caches n for the short piece w0, w1.
func (t *words) put(w0, w1 uint64, n int) {
	if n < 1<<8 {
		e := &t.entries[t.index(w0, w1)]
		k1 := w1 | uint64(n)<<56
		e.k0.Store(w0 ^ t.check(k1))
		e.k1.Store(k1)
	}
}

func (t *words) index(w0, w1 uint64) uint64 {
	return ((w0^t.seed)*0x9e3779b97f4a7c15 ^ w1*0xc2b2ae3d27d4eb4f) >> (64 - wordBits)
}

func (t *words) check(k1 uint64) uint64 {
	h := (k1 ^ t.seed) * 0xbf58476d1ce4e5b9
	return h ^ h>>29
}

// pieceKeyOf returns the key of the piece s[i:j].
func pieceKeyOf[T text](p *pieces, s T, i, j int) pieceKey {
	n := j - i
	if n > maxInline {
		return pieceKey{hash(p.seed1, s[i:j]), hash(p.seed2, s[i:j]), uint64(n), tagHashed}
	}
	if n <= 8 && i+8 <= len(s) { // most words: one load
		return pieceKey{load8(s, i) & (1<<(8*n) - 1), 0, 0, uint64(n)}
	}
	return pieceKey{word(s, i, n), word(s, i+8, n-8), word(s, i+16, n-16), uint64(n)}
}

// word returns the first n bytes of s[i:], at most 8, as a little-endian word.
func word[T text](s T, i, n int) uint64 {
	if n <= 0 {
		return 0
	}
	if i+8 <= len(s) {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if n < 8 {
			w &= 1<<(8*n) - 1
		}
		return w
	}
	var w uint64
	for b := range min(n, 8) {
		w |= uint64(s[i+b]) << (8 * b)
	}
	return w
}

func (p *pieces) bucket(k pieceKey) *[2]slot {
	h := k.w0*0x9e3779b97f4a7c15 ^ k.w1*0xc2b2ae3d27d4eb4f ^ k.w2*0x165667b19e3779f9 ^ k.tag ^ p.seed
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	return &p.buckets[h>>(64-pieceBits)]
}

// get returns the count cached for k.
func (p *pieces) get(k pieceKey) (int, bool) {
	b := p.bucket(k)
	if n, ok := b[0].get(k); ok {
		return n, true
	}
	return b[1].get(k)
}

func (s *slot) get(k pieceKey) (int, bool) {
	m := s.meta.Load()
	if m&busy != 0 || m>>tagShift&0xff != k.tag ||
		s.k0.Load() != k.w0 || s.k1.Load() != k.w1 || s.k2.Load() != k.w2 || s.meta.Load() != m {
		return 0, false
	}
	return int(m & countMask), true
}

// put caches n for k, unless another write holds the slot it picks or n does not fit.
func (p *pieces) put(k pieceKey, n int) {
	if n > countMask {
		return
	}
	b := p.bucket(k)
	var s *slot
	switch _, ok := b[0].get(k); {
	case ok || b[0].meta.Load() == 0:
		s = &b[0]
	case b[1].meta.Load() == 0:
		s = &b[1]
	default:
		if _, ok := b[1].get(k); ok || rand.Uint32()&1 == 1 {
			s = &b[1]
		} else {
			s = &b[0]
		}
	}
	s.write(s.meta.Load(), k.w0, k.w1, k.w2, k.tag, n)
}

// write stores a key and its tag and count in the slot if its meta word is still old
// and no other write holds it; it reports whether it did. n must fit in countMask.
func (s *slot) write(old, k0, k1, k2, tag uint64, n int) bool {
	if old&busy != 0 || !s.meta.CompareAndSwap(old, old|busy) {
		return false
	}
	s.k0.Store(k0)
	s.k1.Store(k1)
	s.k2.Store(k2)
	version := (old>>verShift + 1) & verMask
	s.meta.Store(version<<verShift | tag<<tagShift | uint64(n))
	return true
}

// countText returns the tokens of s: ASCII segments piece by piece, the others whole.
func countText[T text](c *Counter, s T) int {
	n := 0
	for i := 0; i < len(s); {
		k, ascii := nextSegment(c.split, s[i:])
		if ascii {
			n += countASCII(c, s, i, i+k)
		} else {
			n += countCached(c, s, i, i+k)
		}
		i += k
	}
	return n
}

// learnRun is how many pieces of a run of pieces not in the table are counted one by
// one and put in it; the library counts the rest of the run in one call, which saves
// it about a fifth of its time on text of words never seen before, such as random
// identifiers. A run that recurs is so learned learnRun pieces at a time. Split alone,
// a run is the same pieces: the split regexps never look back, and a piece that ends
// where a run ends ends there alone too.
const learnRun = 2

// countASCII returns the tokens of the ASCII text s[i:end], counted as if s ended at
// end: a block at a time where it can (see countBlocks), else piece by piece.
func countASCII[T text](c *Counter, s T, i, end int) int {
	n := 0
	for i < end {
		until := end
		if c.split != splitP50k {
			m, stop, resume, missed := countBlocks(c, s, i, end)
			if missed && stop == i {
				// The first piece after those counted one by one is not in the tables
				// either: a run of new words, which countPieces learns a few at a
				// time and counts the rest of in one call.
				resume = max(resume, min(i+4*blockSize, end))
			}
			n, i, until = n+m, stop, resume
		}
		m, j := countPieces(c, s[:end], i, until)
		n, i = n+m, j
	}
	return n
}

// countPieces returns the tokens of the ASCII text s from i, a piece's start, piece
// by piece until a piece ends at end or after, and where that piece ends.
func countPieces[T text](c *Counter, s T, i, end int) (int, int) {
	n := 0
	learned, run := 0, -1 // in the current run of misses: pieces learned, start of the rest
	for i < end {
		if s[i] != del {
			j, w, w1 := shortWord(c.split, s, i)
			if j < 0 {
				j = nextPiece(c.split, s, i)
			}
			if j-i == 1 {
				n++ // each byte is a token in every encoding
			} else {
				var k pieceKey
				m, ok := 0, false
				if w != 0 {
					m, ok = c.pieces.words.get(w, w1)
				}
				if !ok {
					k = pieceKey{w, w1, 0, uint64(j - i)}
					if w == 0 {
						k = pieceKeyOf(c.pieces, s, i, j)
					}
					if m, ok = c.pieces.get(k); ok && w != 0 {
						c.pieces.words.put(w, w1, m)
					}
				}
				switch {
				case ok:
					n += m
				case learned < learnRun:
					m = c.encode(string(s[i:j]))
					c.pieces.put(k, m)
					if w != 0 {
						c.pieces.words.put(w, w1, m)
					}
					n, learned = n+m, learned+1
					i = j
					continue
				default:
					if run < 0 {
						run = i
					}
					i = j
					continue
				}
			}
			// A piece that needs no library call ends the run of misses.
			if run >= 0 {
				n, run = n+c.encode(string(s[run:i])), -1
			}
			learned = 0
			i = j
			continue
		}
		if run >= 0 {
			n, run = n+c.encode(string(s[run:i])), -1
		}
		learned = 0
		i++ // a DEL, which the library skips
	}
	if run >= 0 {
		n += c.encode(string(s[run:i]))
	}
	return n, i
}

// countCached returns the tokens of s[i:j], a piece or a segment that is not ASCII,
// which the library counts alone as it does in its text: a piece split alone is the
// one piece, and a segment is cut where the split always cuts.
func countCached[T text](c *Counter, s T, i, j int) int {
	k := pieceKeyOf(c.pieces, s, i, j)
	if n, ok := c.pieces.get(k); ok {
		return n
	}
	n := c.encode(string(s[i:j]))
	c.pieces.put(k, n)
	return n
}
