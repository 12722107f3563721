package tokens

import (
	"fmt"
	"sync"
	"testing"
)

// lookup is what Counter.count does with the cache: the kept count, or n, noted.
func lookup(c *cache, kind uint64, s string, n int) (int, bool) {
	e, got, ok := cached(c, kind, s)
	if ok {
		return got, true
	}
	keep(c, &e, s, n)
	return n, false
}

// TestCacheKeeps checks when a count is kept: not the first time a string is seen,
// the second; for its kind only; the same for its bytes and its string.
func TestCacheKeeps(t *testing.T) {
	t.Parallel()
	c := newCache()
	s := `[{"name":"f"}]`
	for i, want := range []bool{false, false, true, true} {
		if n, ok := lookup(c, kindText, s, 7); ok != want || n != 7 {
			t.Fatalf("sighting %d: got %d, %v, want 7, %v", i+1, n, ok, want)
		}
	}
	if e, n, ok := cached(c, kindText, []byte(s)); !ok || n != 7 || e.h1 == 0 {
		t.Errorf("the same bytes: got %d, %v, want 7, true", n, ok)
	}
	if _, n, ok := cached(c, kindTools, s); ok {
		t.Errorf("as tools: got %d, true, want a miss", n)
	}
	if _, n, ok := cached(c, kindText, s+" "); ok {
		t.Errorf("another string: got %d, true, want a miss", n)
	}
	// A count too big for a slot is never kept.
	big := "a string with a count too big to keep"
	for range 3 {
		if _, ok := lookup(c, kindText, big, countMask+1); ok {
			t.Fatal("a count too big to keep was kept")
		}
	}
}

// TestCacheHot checks that a count used on every line survives any number of strings
// seen once, as a batch's system prompt must, and that strings seen more often than
// there are slots take slots from one another, never giving another's count.
func TestCacheHot(t *testing.T) {
	t.Parallel()
	c := newCache()
	hot := "a system prompt seen on every line"
	lookup(c, kindText, hot, 42)
	lookup(c, kindText, hot, 42)
	for i := range 8 << cacheBits {
		lookup(c, kindText, fmt.Sprintf("unique %d", i), i)
		if n, ok := lookup(c, kindText, hot, 42); !ok || n != 42 {
			t.Fatalf("after %d strings seen once: got %d, %v for the hot string, want 42, true", i+1, n, ok)
		}
	}
	kept := 0
	for round := range 3 { // noted, kept, found
		for i := range 4 << cacheBits {
			s := fmt.Sprintf("twice %d", i)
			n, ok := lookup(c, kindText, s, len(s))
			if ok && n != len(s) {
				t.Fatalf("%q: got %d, want %d", s, n, len(s))
			}
			if ok && round == 2 {
				kept++
			}
		}
	}
	if kept == 0 {
		t.Error("no string seen twice was kept")
	}
}

// TestCacheConcurrent looks up and keeps overlapping strings from many goroutines,
// each string's count its length, so a torn read shows as a wrong count; run it with
// -race.
func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	c := newCache()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20000 {
				s := fmt.Sprintf("%0*d", 8+(i*7+g)%40, (i*31+g)%3000)
				if n, ok := lookup(c, kindText, s, len(s)); ok && n != len(s) {
					t.Errorf("%q: got %d, want %d", s, n, len(s))
					return
				}
			}
		})
	}
	wg.Wait()
}
