package tokens

import (
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"testing"
)

func TestPieceKey(t *testing.T) {
	t.Parallel()
	p := newPieces()
	text := "Summarise item 123 of the catalogue, please!\x00\x00 " + strings.Repeat("antidisestablishment", 3)
	keys := map[pieceKey]string{}
	for i := range len(text) {
		for j := i + 1; j <= len(text); j++ {
			piece := text[i:j]
			k := pieceKeyOf(p, text, i, j)
			// Alone, the piece has no bytes after it to load with it.
			for _, other := range []pieceKey{pieceKeyOf(p, piece, 0, len(piece)), pieceKeyOf(p, []byte(text), i, j)} {
				if other != k {
					t.Fatalf("%q: got the keys %v and %v", piece, k, other)
				}
			}
			if prev, ok := keys[k]; ok && prev != piece {
				t.Fatalf("%q and %q have the same key %v", prev, piece, k)
			}
			keys[k] = piece
		}
	}
}

func TestPieces(t *testing.T) {
	t.Parallel()
	p := newPieces()
	key := func(s string) pieceKey { return pieceKeyOf(p, s, 0, len(s)) }
	long := strings.Repeat("=", 80)
	for _, tc := range []struct {
		piece string
		n     int
	}{{" the", 1}, {"a", 1}, {"a\x00", 2}, {" catalogue", 2}, {long, 3}, {long + "=", 4}, {strings.Repeat("x", maxInline), 5}} {
		p.put(key(tc.piece), tc.n)
		if n, ok := p.get(key(tc.piece)); !ok || n != tc.n {
			t.Errorf("%q: got %d, %v, want %d, true", tc.piece, n, ok, tc.n)
		}
	}
	for _, s := range []string{"the", " the ", "a\x00\x00", strings.Repeat("=", 79), strings.Repeat("x", maxInline-1)} {
		if n, ok := p.get(key(s)); ok {
			t.Errorf("%q: got %d, true, want a miss", s, n)
		}
	}
	p.put(key(" the"), 7)
	if n, ok := p.get(key(" the")); !ok || n != 7 {
		t.Errorf("after a second put: got %d, %v, want 7, true", n, ok)
	}
	p.put(key("big"), countMask+1)
	if n, ok := p.get(key("big")); ok {
		t.Errorf("a count that does not fit: got %d, true, want a miss", n)
	}
}

// TestWords checks the table of short pieces: a word's own count comes back, a word
// that shares its slot is a miss and never another's count, an entry torn between two
// writes is a miss, and more words than slots only displace each other.
func TestWords(t *testing.T) {
	t.Parallel()
	p := newPieces()
	wordOf := func(s string) uint64 {
		_, w, _ := shortWord(splitO200k, s+"........", 0)
		return w
	}
	the, an := wordOf(" the"), wordOf("an")
	if the == 0 || an == 0 {
		t.Fatal("shortWord took neither piece as a short word")
	}
	p.words.put(the, 0, 1)
	p.words.put(an, 0, 1)
	if n, ok := p.words.get(the, 0); !ok || n != 1 {
		t.Errorf(`" the": got %d, %v, want 1, true`, n, ok)
	}
	if n, ok := p.words.get(wordOf(" then"), 0); ok {
		t.Errorf(`" then", never put: got %d, true, want a miss`, n)
	}
	p.words.put(an, 0, 256) // does not fit beside the word
	if n, ok := p.words.get(an, 0); !ok || n != 1 {
		t.Errorf(`"an" after a count too big to keep: got %d, %v, want the old 1, true`, n, ok)
	}
	// A word of more than eight bytes: its second word is part of the key.
	long0, long1 := key16(" catalogues......", 0, 11)
	p.words.put(long0, long1, 3)
	if n, ok := p.words.get(long0, long1); !ok || n != 3 {
		t.Errorf(`" catalogues": got %d, %v, want 3, true`, n, ok)
	}
	if n, ok := p.words.get(key16(" catalogued......", 0, 11)); ok {
		t.Errorf(`" catalogued", never put: got %d, true, want a miss`, n)
	}
	// An entry whose halves come from two writes, as a lookup racing them may read it,
	// is a miss for both pieces.
	e := &p.words.entries[p.words.index(long0, long1)]
	e.k1.Store(long1 | 4<<56) // the same piece with another count, its first half not rewritten
	if n, ok := p.words.get(long0, long1); ok {
		t.Errorf("torn entry: got %d, true, want a miss", n)
	}
	// Every 2- to 4-letter lower-case word, far more than the slots: each lookup is the
	// word's own count (its length here) or a miss.
	var all []uint64
	for n, words := 2, 26*26; n <= 4; n, words = n+1, words*26 {
		for i := range words {
			b := make([]byte, n)
			for j, k := 0, i; j < n; j, k = j+1, k/26 {
				b[j] = 'a' + byte(k%26)
			}
			all = append(all, wordOf(string(b)))
		}
	}
	for _, w := range all {
		p.words.put(w, 0, bits.Len64(w)/8+1)
	}
	hits := 0
	for _, w := range all {
		n, ok := p.words.get(w, 0)
		if ok && n != bits.Len64(w)/8+1 {
			t.Fatalf("word %x: got %d, want %d", w, n, bits.Len64(w)/8+1)
		}
		if ok {
			hits++
		}
	}
	if hits == 0 || hits > 1<<wordBits {
		t.Errorf("%d of %d words found, want some and at most the %d slots", hits, len(all), 1<<wordBits)
	}
}

// TestPiecesConcurrent puts and gets overlapping pieces from many goroutines, each
// with its own count, so a torn read shows as a wrong count; run it with -race.
func TestPiecesConcurrent(t *testing.T) {
	t.Parallel()
	p := newPieces()
	count := func(i int) int { return i%1000 + 1 }
	keys := make([]pieceKey, 1<<(pieceBits+2)) // more than fit, so slots change hands
	for i := range keys {
		s := fmt.Sprintf(" w%d", i)
		if i%8 == 0 {
			s = strings.Repeat(s, 10) // hashed
		}
		keys[i] = pieceKeyOf(p, s, 0, len(s))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Go(func() {
			for k := range 100_000 {
				i := (k*7919 + g*104729) % len(keys)
				if n, ok := p.get(keys[i]); ok && n != count(i) {
					errs <- fmt.Errorf("key %d: got %d, want %d", i, n, count(i))
					return
				}
				p.put(keys[i], count(i))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestCountNoAllocs is not parallel: AllocsPerRun counts the allocations of every
// goroutine.
func TestCountNoAllocs(t *testing.T) {
	c, err := New("o200k_base")
	if err != nil {
		t.Fatal(err)
	}
	s := "Summarise item 123 of the catalogue:\n\tit's \"DONE\" -- see a/b//c.  " + strings.Repeat("=", 40)
	b := []byte(s)
	countText(c, s) // fill the piece table
	for _, tc := range []struct {
		name  string
		count func() int
	}{
		{"string", func() int { return countText(c, s) }},
		{"bytes", func() int { return countText(c, b) }},
		{"text", func() int { return c.Text(s) }},
		{"count", func() int { return c.count(b) }},
	} {
		if allocs := testing.AllocsPerRun(100, func() { tc.count() }); allocs != 0 {
			t.Errorf("%s: got %v allocations a count, want 0", tc.name, allocs)
		}
	}
}
