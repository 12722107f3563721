package tokens

import (
	"math/bits"
	"unsafe"
)

// This file splits the common run of ASCII prose 64 bytes at a time. nextPiece finds
// one piece after another, each end found from the last, and most of its time goes to
// that chain and to branches on the kind of each piece, which the processor
// mispredicts. Here, the bytes of a block are classed into bitmasks, one bit a byte (32
// bytes an instruction with AVX2, eight to a word otherwise), and where pieces start
// follows from the masks with a few shifts and logical operations; the pieces are then
// looked up one after another, none waiting on the end of the one before.
//
// The masks handle letters, digits, spaces and the punctuation [^\s\p{L}\p{N}] but the
// apostrophe, control characters and DEL: in that alphabet the split is local (rules
// below). Any other byte (a newline, a tab, an apostrophe that may begin a
// contraction, DEL, a byte from 0x80) stops a block, and nextPiece takes the pieces
// around it.
//
// In the alphabet, o200k_base's and cl100k_base's split (see splitO200k) starts a
// piece at:
//
//   - a letter that no letter precedes, unless a space does, or one punctuation
//     character that neither punctuation nor a space precedes (that character starts
//     the piece: it is the word's optional prefix); in o200k_base also an upper-case
//     letter after a lower-case one;
//   - a digit that no digit precedes, and every third digit of a run after it;
//   - punctuation that no punctuation and no space precedes (after a space, the space
//     starts the piece: " ?[^\s\p{L}\p{N}]+");
//   - a space that no space precedes, and the last space of a run of spaces (\s+(?!\S)
//     leaves it to the piece that follows).
//
// Each rule looks at most one byte ahead (the last of a run of spaces), so a start is
// known once the byte after it is; at the end of the text, where a run of spaces is one
// piece, all are. The block's first byte is a piece's start, and the split regexps never
// look behind, so the rules read the bytes before it as none. TestBlockStarts and
// FuzzBlockStarts hold the rules to nextPiece's pieces.

// blockSize is the bytes a block classes at once: one bit each in a uint64.
const blockSize = 64

// classes of a block's bytes, one bit a byte, bit k for the block's byte k.
type classes struct {
	letter, upper, digit, space, punct uint64
}

// gather packs the high bits of w's eight bytes into the low eight bits of the result,
// byte k's into bit k.
func gather(w uint64) uint64 {
	return (w >> 7 & ones) * 0x0102040810204080 >> 56
}

// classify returns the classes of the block at s[i:i+blockSize], which must be in s.
func classify[T text](s T, i int) classes {
	s = s[i : i+blockSize]
	if haveAVX2 {
		letter, upper, digit, space, known := classifyAVX2(first(s))
		return classes{letter, upper, digit, space, known &^ letter &^ digit &^ space}
	}
	return classifyWords(s)
}

// first returns a pointer to the first byte of s, which is not empty, for assembly.
func first[T text](s T) *byte {
	switch v := any(s).(type) {
	case string:
		return unsafe.StringData(v)
	case []byte:
		return &v[0]
	}
	return nil
}

// classifyWords is classify eight bytes at a time, in a word each.
func classifyWords[T text](s T) classes {
	var c classes
	for k := 0; k < blockSize; k += 8 {
		w := load8(s, k)
		lower, upper := inRange(w, 'a', 'z'), inRange(w, 'A', 'Z')
		digit := inRange(w, '0', '9')
		space := inRange(w, ' ', ' ')
		// Punctuation is the rest of the printable bytes, less the apostrophe.
		punct := inRange(w, ' ', '~') &^ inRange(w, '\'', '\'') &^ lower &^ upper &^ digit &^ space
		c.letter |= gather(lower|upper) << k
		c.upper |= gather(upper) << k
		c.digit |= gather(digit) << k
		c.space |= gather(space) << k
		c.punct |= gather(punct) << k
	}
	return c
}

// classifyTail returns the classes of s[i:], shorter than a block: the bytes past the
// end are in no class.
func classifyTail[T text](s T, i int) classes {
	if len(s) >= blockSize {
		// The block that ends where s does, shifted.
		c, shift := classify(s, len(s)-blockSize), i-(len(s)-blockSize)
		return classes{c.letter >> shift, c.upper >> shift, c.digit >> shift, c.space >> shift, c.punct >> shift}
	}
	var buf [blockSize]byte
	copy(buf[:], s[i:]) // a zero byte is in no class
	return classify(buf[:], 0)
}

// clip puts the bytes from n on in no class.
func (c *classes) clip(n int) {
	keep := uint64(1)<<n - 1
	c.letter &= keep
	c.upper &= keep
	c.digit &= keep
	c.space &= keep
	c.punct &= keep
}

// starts returns the bits of the block's bytes that start a piece and whose start is
// known: up to the byte before the first byte in no class. Bit 0 is always set when
// the block's first byte is in a class. When the text ends within the block, rest
// bytes from its start (rest < blockSize), and every byte to the end has a class, all
// the starts are known, and bit rest is set too, for the end of the last piece.
func (c *classes) starts(sp splitter, rest int) uint64 {
	L, S, P, D := c.letter, c.space, c.punct, c.digit
	// Letters: the first of a run, and in o200k_base an upper-case letter after a
	// lower-case one; a run that a space or a lone punctuation character precedes starts
	// one byte earlier, at that character.
	runL := L &^ (L << 1)
	word := runL
	if sp == splitO200k {
		word |= c.upper & ((L &^ c.upper) << 1)
	}
	prefixed := runL & (S<<1 | P<<1&^(P<<2)&^(S<<2))
	word &^= prefixed // the prefix is a start by the rules below
	// Digits: the first of a run, then every third.
	d := D &^ (D << 1)
	for three := D & (D << 1) & (D << 2); ; {
		next := (d << 3) & three &^ d
		if next == 0 {
			break
		}
		d |= next
	}
	// Punctuation: the first of a run, unless a space precedes it.
	punct := P &^ (P << 1) &^ (S << 1)
	// Spaces: the first of a run, and the last, but at the end of the text, where the
	// run is one piece.
	first, last := S&^(S<<1), S&^(S>>1)
	all := word | d | punct | first
	end := bits.TrailingZeros64(^(L | S | P | D)) // the first byte in no class; 64 if none
	if rest < blockSize && end >= rest {
		return all | last&^(1<<(rest-1)) | 1<<rest
	}
	// Known: those before the byte before the first byte in no class.
	if end < 2 {
		return 0
	}
	return (all | last) & (1<<(end-1) - 1)
}

// countBlocks counts the pieces of the ASCII text s[i:end], i a piece's start, as if s
// ended at end, a block at a time, for as long as it knows them and finds their counts
// cached; it may read s past end. It returns the tokens, where it stopped (a piece's
// start), where the pieces it could not take end at the earliest (the caller counts
// them one by one until there, then calls it again), and whether it stopped at a piece
// whose count is not cached.
func countBlocks[T text](c *Counter, s T, i, end int) (n, stop, resume int, missed bool) {
	words := c.pieces.words
	for i < end {
		var cl classes
		if i+blockSize <= len(s) {
			cl = classify(s, i)
		} else {
			cl = classifyTail(s, i)
		}
		if rest := end - i; rest < blockSize {
			cl.clip(rest)
		}
		st := cl.starts(c.split, end-i)
		p := 0 // the start of the piece at hand
		for m := st &^ 1; m != 0; m &= m - 1 {
			q := bits.TrailingZeros64(m)
			// Most pieces are short and in the table of words: look there first, with
			// no call and no branch on the kind of piece, which the processor would
			// mispredict.
			if at, l := i+p, q-p; l <= 15 && len(s) >= 16 {
				var w0, w1 uint64
				if at+16 <= len(s) {
					w0, w1 = load8(s, at), load8(s, at+8)
				} else {
					w0, w1 = last16(s, at)
				}
				w0 &= 1<<(8*min(l, 8)) - 1
				w1 &= 1<<(8*max(l-8, 0)) - 1
				if k, ok := words.get(w0, w1); ok {
					n += k
					p = q
					continue
				}
			}
			k, ok := cachedPiece(c, s, i+p, i+q)
			if !ok {
				return n, i + p, i + q, true
			}
			n += k
			p = q
		}
		if i+p == end {
			return n, end, end, false
		}
		if unknown := bits.TrailingZeros64(^(cl.letter | cl.space | cl.punct | cl.digit)); unknown < blockSize {
			return n, i + p, min(i+unknown+1, end), false
		}
		if p == 0 {
			return n, i, i + 1, false // one piece runs past the block
		}
		i += p
	}
	return n, i, i, false
}

// cachedPiece returns the count cached for the piece s[i:j], which holds no zero byte,
// looking in the table of short words first: a piece of up to fifteen bytes found in
// the buckets is put there for the next time, as is a piece of one byte.
func cachedPiece[T text](c *Counter, s T, i, j int) (int, bool) {
	n := j - i
	if n > 15 {
		return c.pieces.get(pieceKeyOf(c.pieces, s, i, j))
	}
	var w0, w1 uint64
	if len(s) >= 16 {
		w0, w1 = key16(s, i, n)
	} else {
		w0, w1 = word(s, i, n), word(s, i+8, n-8)
	}
	if k, ok := c.pieces.words.get(w0, w1); ok {
		return k, true
	}
	k, ok := 1, true // each byte is a token in every encoding
	if n > 1 {
		k, ok = c.pieces.get(pieceKey{w0, w1, 0, uint64(n)})
	}
	if ok {
		c.pieces.words.put(w0, w1, k)
	}
	return k, ok
}

// key16 returns the n bytes of s from i, n <= 15, as two little-endian words, the rest
// zeros, as shortWord does. s has 16 bytes at least.
func key16[T text](s T, i, n int) (uint64, uint64) {
	var w0, w1 uint64
	if i+16 <= len(s) {
		w0, w1 = load8(s, i), load8(s, i+8)
	} else {
		w0, w1 = last16(s, i)
	}
	return w0 & (1<<(8*min(n, 8)) - 1), w1 & (1<<(8*max(n-8, 0)) - 1)
}

// last16 returns the bytes of s from i, within its last 16 bytes, as two little-endian
// words, the bytes past the end zeros: the last 16 bytes loaded, shifted into place.
func last16[T text](s T, i int) (uint64, uint64) {
	base := len(s) - 16
	lo, hi := load8(s, base), load8(s, base+8)
	shift := 8 * (i - base)
	if shift >= 64 {
		lo, hi, shift = hi, 0, shift-64
	}
	return lo>>shift | hi<<(64-shift), hi >> shift // hi<<64 is 0
}
