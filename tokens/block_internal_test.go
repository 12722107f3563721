package tokens

import (
	"math/bits"
	"math/rand/v2"
	"testing"
)

// checkStarts checks the starts a block finds at i, a piece's start in s, against
// nextPiece's pieces.
func checkStarts(t *testing.T, sp splitter, s string, i int) {
	t.Helper()
	var cl classes
	if i+blockSize <= len(s) {
		cl = classify(s, i)
	} else {
		cl = classifyTail(s, i)
	}
	got := cl.starts(sp, len(s)-i)
	if got == 0 {
		return
	}
	known := 64 - bits.LeadingZeros64(got) // the starts below the highest are all known
	if i+known-1 == len(s) {
		got &^= 1 << (known - 1) // the end of the text
		known--
	}
	var want uint64
	for p := i; p < len(s) && p-i < known; {
		want |= 1 << (p - i)
		if s[p] == del {
			p++
			continue
		}
		p = nextPiece(sp, s, p)
	}
	if got != want&(1<<known-1) {
		t.Fatalf("split %d: %q at %d: got starts %064b, want %064b", sp, s[i:min(i+blockSize, len(s))], i, bits.Reverse64(got), bits.Reverse64(want&(1<<known-1)))
	}
}

// checkAllStarts checks the starts of blocks at every piece's start of s, in both
// splits that use blocks.
func checkAllStarts(t *testing.T, s string) {
	t.Helper()
	for _, sp := range []splitter{splitO200k, splitCl100k} {
		for i := 0; i < len(s); {
			checkStarts(t, sp, s, i)
			if s[i] == del {
				i++
			} else {
				i = nextPiece(sp, s, i)
			}
		}
	}
}

func TestBlockStarts(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"1234567 3.14159 -42", "Hello, world. Aa bB  cc   (dd) ..ee .f"} {
		checkAllStarts(t, s)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for range 3000 {
		s := genText(rng, 1+rng.IntN(300), false)
		checkAllStarts(t, s)
	}
}

// TestClassify checks the two ways to class a block against each other and against
// the class table, on every byte value in every place.
func TestClassify(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	var b [blockSize]byte
	for round := range 2000 {
		for k := range b {
			if round < 256 {
				b[k] = byte(round + k) // each byte value at each place
			} else {
				b[k] = byte(rng.IntN(256))
			}
		}
		var want classes
		for k, c := range b {
			bit := uint64(1) << k
			switch {
			case c == '\'' || c >= 0x80 || class[c] == 0 || c < ' ' && c != ' ':
				// in no class here: control characters, DEL, the apostrophe, 0x80 and up
			case class[c]&cLetter != 0:
				want.letter |= bit
				if class[c]&cUpper != 0 {
					want.upper |= bit
				}
			case class[c]&cDigit != 0:
				want.digit |= bit
			case c == ' ':
				want.space |= bit
			default:
				want.punct |= bit
			}
		}
		if got := classifyWords(b[:]); got != want {
			t.Fatalf("classifyWords(%q) = %+v, want %+v", b, got, want)
		}
		if haveAVX2 {
			if got := classify(b[:], 0); got != want {
				t.Fatalf("classify with AVX2 (%q) = %+v, want %+v", b, got, want)
			}
			if got := classify(string(b[:]), 0); got != want {
				t.Fatalf("classify with AVX2 (%q) = %+v, want %+v", b, got, want)
			}
		}
	}
}

// TestKey16 checks key16, and so last16, against pieceKeyOf at every place of a text.
func TestKey16(t *testing.T) {
	t.Parallel()
	p := newPieces()
	s := "abcdefghijklmnopqrstuvwxyz0123456789"
	for i := range len(s) {
		for n := 1; n <= 15 && i+n <= len(s); n++ {
			w0, w1 := key16(s, i, n)
			if k := pieceKeyOf(p, s, i, i+n); k != (pieceKey{w0, w1, 0, uint64(n)}) {
				t.Fatalf("%q: got %x %x, want %x", s[i:i+n], w0, w1, k)
			}
		}
	}
}

// FuzzBlockStarts checks the starts a block finds against nextPiece on ASCII text, at
// every piece's start.
func FuzzBlockStarts(f *testing.F) {
	for _, s := range []string{"Hello, world. It's  (done) 1234567 x", " a\n\tb  ..c ,d 3.14 ~~e", "aB Cd EFg hIJ"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		for i := range b {
			b[i] &= 0x7f
		}
		s = string(b)
		checkAllStarts(t, s)
	})
}
