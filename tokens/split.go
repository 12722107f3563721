package tokens

import (
	"math/bits"
	"unicode"
	"unicode/utf8"
)

// This file splits ASCII text into the pieces the library's split regexps match, so that
// most text never reaches the regexp engine. The regexps are matched by code that
// regexp2cg generated (codec/regexp.gen.go in github.com/tiktoken-go/tokenizer v0.10.0),
// and what counts is what that code does, which differs from the regexps' meaning, and
// so from OpenAI's tiktoken, in two ways that the splitters below copy:
//
//   - Its ASCII bitmaps for [^\s\p{L}\p{N}] and [^\r\n\p{L}\p{N}] leave out DEL (0x7f).
//     DEL is then in no class at all: no alternative matches at a DEL, so the engine
//     skips it (it counts no tokens), and every run stops at one.
//   - \s*[\r\n]+ backtracks \s* to the first \r or \n of the whitespace run, not the
//     last: "\n \n" splits into "\n" and " \n".
//
// Everything else follows regexp2's semantics: leftmost-first alternation, greedy loops,
// \s is unicode.IsSpace (for ASCII: \t \n \v \f \r and space), \p{L} is A-Z and a-z,
// \p{Lu} A-Z, \p{Ll} a-z, \p{N} 0-9, and every other ASCII byte but DEL, control
// characters included, is in [^\s\p{L}\p{N}].

// text is what the splitters read: a string, or the bytes of a decoded JSON string.
type text interface{ string | []byte }

// splitter names an encoding's split regexp.
type splitter uint8

const (
	// splitO200k is o200k_base's:
	// [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
	// |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
	// |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
	splitO200k splitter = iota
	// splitCl100k is cl100k_base's: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+
	// |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
	splitCl100k
	// splitP50k is p50k_base's and r50k_base's:
	// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
	splitP50k
)

// del is the one ASCII byte that no alternative of a split regexp matches.
const del = 0x7f

// Classes of ASCII bytes, as the split regexps see them. Bytes from 0x80 and DEL have
// none.
const (
	cUpper  = 1 << iota // \p{Lu}
	cLower              // \p{Ll}
	cDigit              // \p{N}
	cSpace              // \s
	cOther              // [^\s\p{L}\p{N}]
	cPrefix             // [^\r\n\p{L}\p{N}]: the optional character before a word
	cLetter = cUpper | cLower
)

// class holds the classes of each byte.
var class = func() (t [256]uint8) {
	for b := range 0x80 {
		switch {
		case b == del: // none
		case 'A' <= b && b <= 'Z':
			t[b] = cUpper
		case 'a' <= b && b <= 'z':
			t[b] = cLower
		case '0' <= b && b <= '9':
			t[b] = cDigit
		case b == '\r' || b == '\n':
			t[b] = cSpace
		case b == ' ' || '\t' <= b && b <= '\f':
			t[b] = cSpace | cPrefix
		default:
			t[b] = cOther | cPrefix
		}
	}
	return t
}()

func is(b byte, c uint8) bool { return class[b]&c != 0 }

func isNewline(b byte) bool { return b == '\r' || b == '\n' }

// nextPiece returns the end of the piece of the ASCII text s that starts at i, where
// s[i] is not DEL.
func nextPiece[T text](sp splitter, s T, i int) int {
	switch sp {
	case splitO200k:
		return nextO200k(s, i)
	case splitCl100k:
		return nextCl100k(s, i)
	default:
		return nextP50k(s, i)
	}
}

func nextO200k[T text](s T, i int) int {
	n, c := len(s), class[s[i]]
	switch {
	case c&cLetter != 0 || c&cPrefix != 0 && i+1 < n && is(s[i+1], cLetter):
		// The two word alternatives: in ASCII, both match an optional prefix, the
		// upper-case letters, then the lower-case ones (one of the two runs not empty),
		// then a contraction.
		j := i
		if c&cLetter == 0 {
			j++
		}
		for j < n && is(s[j], cUpper) {
			j++
		}
		return contraction(s, lowerRun(s, j), true)
	case c&cDigit != 0:
		return digits(s, i, 3)
	case c&cOther != 0 || s[i] == ' ' && i+1 < n && is(s[i+1], cOther):
		j := others(s, i+1)
		for j < n && (isNewline(s[j]) || s[j] == '/') {
			j++
		}
		return j
	}
	return spaces(s, i, true)
}

func nextCl100k[T text](s T, i int) int {
	n, c := len(s), class[s[i]]
	if j := contraction(s, i, true); j > i {
		return j
	}
	switch {
	case c&cLetter != 0 || c&cPrefix != 0 && i+1 < n && is(s[i+1], cLetter):
		return letterRun(s, i+1)
	case c&cDigit != 0:
		return digits(s, i, 3)
	case c&cOther != 0 || s[i] == ' ' && i+1 < n && is(s[i+1], cOther):
		j := others(s, i+1)
		for j < n && isNewline(s[j]) {
			j++
		}
		return j
	}
	return spaces(s, i, true)
}

func nextP50k[T text](s T, i int) int {
	if j := contraction(s, i, false); j > i {
		return j
	}
	j := i
	if s[i] == ' ' {
		j++
	}
	if j < len(s) {
		// Each of " ?\p{L}+", " ?\p{N}+" and " ?[^\s\p{L}\p{N}]+" runs over one class.
		if c := class[s[j]] & (cLetter | cDigit | cOther); c != 0 {
			if c&cLetter != 0 {
				c = cLetter
			}
			for j < len(s) && is(s[j], c) {
				j++
			}
			return j
		}
	}
	return spaces(s, i, false)
}

// contraction returns the end of the contraction 's, 't, 're, 've, 'm, 'll or 'd at i,
// or i if there is none; fold makes it case-insensitive. (?i) also lets 's match the
// long s, U+017F, which ASCII text does not hold.
func contraction[T text](s T, i int, fold bool) int {
	if i+1 >= len(s) || s[i] != '\'' {
		return i
	}
	lower := func(b byte) byte {
		if fold {
			return b | 0x20 // exact here: only 'S' and 's' become 's', and so on
		}
		return b
	}
	switch lower(s[i+1]) {
	case 's', 't', 'm', 'd':
		return i + 2
	case 'r', 'v':
		if i+2 < len(s) && lower(s[i+2]) == 'e' {
			return i + 3
		}
	case 'l':
		if i+2 < len(s) && lower(s[i+2]) == 'l' {
			return i + 3
		}
	}
	return i
}

// digits returns the end of the run of at most max digits at i.
func digits[T text](s T, i, max int) int {
	j := i + 1
	for j < len(s) && j-i < max && is(s[j], cDigit) {
		j++
	}
	return j
}

// others returns the end of the run of [^\s\p{L}\p{N}] from i.
func others[T text](s T, i int) int {
	for i < len(s) && is(s[i], cOther) {
		i++
	}
	return i
}

// spaces returns the end of the whitespace piece at i. With newlines (the regexp has
// \s*[\r\n]+), that alternative comes first, ending (see the file comment) after the first run of \r and \n. Then
// \s+(?!\S) takes the run, less its last space when a non-space follows, and \s+ takes
// a lone space before a non-space.
func spaces[T text](s T, i int, newlines bool) int {
	e := i
	for e < len(s) && is(s[e], cSpace) {
		e++
	}
	if newlines {
		for j := i; j < e; j++ {
			if isNewline(s[j]) {
				for j < e && isNewline(s[j]) {
					j++
				}
				return j
			}
		}
	}
	if e == len(s) || e-i == 1 {
		return e
	}
	return e - 1
}

// nextSegment returns the length of the first segment of s and whether it is ASCII.
// Segments split s where sp's regexp always splits (see isCut), so each one can be
// counted on its own: a match that reaches a cut starts there, and whatever comes
// after it, matches before it end at it the same way the end of the text would end
// them. An ASCII segment ends at the last cut at or before the first byte from 0x80;
// the other segment, which holds that byte, ends at the next cut after it.
func nextSegment[T text](sp splitter, s T) (int, bool) {
	q := nonASCII(s)
	if q < 0 {
		return len(s), true
	}
	for p := q; p > 0; p-- {
		if mayCut(s, p) && isCut(sp, s, p) {
			return p, true
		}
	}
	for p := q + 1; p < len(s); p++ {
		if mayCut(s, p) && isCut(sp, s, p) {
			return p, false
		}
	}
	return len(s), false
}

// mayCut is isCut's first test, cheap enough to inline: a cut is before a space or a
// digit, or after a newline.
func mayCut[T text](s T, p int) bool {
	b := s[p]
	return b == ' ' || b-'0' < 10 || isNewline(s[p-1])
}

// isCut reports whether sp's regexp always splits s before s[p], p > 0, whatever
// precedes p, and whether s ends at p or goes on. It does:
//
//   - Before a space followed by a character that is not white space (nor DEL): no
//     match holds a space but at its start or in a run of white space, and a run that
//     a non-space follows ends before its last space, as \s+(?!\S) leaves it; ended
//     at p by the end of the text, the run is matched whole, to the same place.
//   - Before an ASCII digit after an ASCII byte that is not a digit, white space or
//     DEL: only the digit alternatives match digits, and they start no earlier.
//   - In o200k_base and cl100k_base, after \r or \n, before a character that is not
//     white space (nor DEL, nor, in o200k_base, the / that may end a run of
//     punctuation and newlines): a match that reaches the newline, \s*[\r\n]+ or a
//     run of punctuation, ends there with or without what follows; p50k_base's
//     \s+(?!\S) would leave the newline out when a non-space follows.
func isCut[T text](sp splitter, s T, p int) bool {
	b := s[p]
	if b == ' ' {
		return p+1 < len(s) && nonSpaceAt(s, p+1)
	}
	a := s[p-1]
	if class[b]&cDigit != 0 && a < 0x80 && a != del && class[a]&(cDigit|cSpace) == 0 {
		return true
	}
	return sp != splitP50k && isNewline(a) && (b != '/' || sp != splitO200k) && nonSpaceAt(s, p)
}

// nonSpaceAt reports whether the character at s[i] is neither white space, as
// unicode.IsSpace has it, nor DEL. A byte that does not begin valid UTF-8 is not
// white space: the regexps see U+FFFD there.
func nonSpaceAt[T text](s T, i int) bool {
	if b := s[i]; b < 0x80 {
		return b != del && class[b]&cSpace == 0
	}
	var r rune
	switch v := any(s[i:]).(type) {
	case string:
		r, _ = utf8.DecodeRuneInString(v)
	case []byte:
		r, _ = utf8.DecodeRune(v)
	}
	return !unicode.IsSpace(r)
}

// nonASCII returns the index of the first byte of s from 0x80, or -1.
func nonASCII[T text](s T) int {
	i := 0
	if n := len(s); haveAVX2 && n >= 32 {
		if i = nonASCIIAVX2(first(s), n); i < n&^31 {
			return i
		}
	}
	for ; i+8 <= len(s); i += 8 {
		if load8(s, i)&high != 0 {
			break
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= 0x80 {
			return i
		}
	}
	return -1
}

// Runs of letters are found eight bytes at a time: a word of prose is then one or two
// steps, where a byte at a time its end is a branch the processor mispredicts.
const (
	ones = 0x0101010101010101
	high = 0x8080808080808080
)

// load8 returns s[i:i+8], which must be in s, as a little-endian word.
func load8[T text](s T, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// inRange returns a word with the high bit set in each byte of w that is from lo to hi,
// both ASCII, and no other bit. Each byte's sums stay below 0x100, so none carries into
// the next.
func inRange(w uint64, lo, hi byte) uint64 {
	x := w &^ high
	atLeast := x + (0x80-uint64(lo))*ones
	over := x + (0x7f-uint64(hi))*ones
	return atLeast &^ over &^ w & high
}

// lowerRun returns the end of the run of a-z from i.
func lowerRun[T text](s T, i int) int {
	for ; i+8 <= len(s); i += 8 {
		if m := inRange(load8(s, i), 'a', 'z'); m != high {
			return i + bits.TrailingZeros64(^m&high)/8
		}
	}
	for i < len(s) && is(s[i], cLower) {
		i++
	}
	return i
}

// letterRun returns the end of the run of A-Z and a-z from i.
func letterRun[T text](s T, i int) int {
	for ; i+8 <= len(s); i += 8 {
		// Setting bit 5 maps A-Z onto a-z, and no other byte onto a letter.
		if m := inRange(load8(s, i)|0x20*ones, 'a', 'z'); m != high {
			return i + bits.TrailingZeros64(^m&high)/8
		}
	}
	for i < len(s) && is(s[i], cLetter) {
		i++
	}
	return i
}

// shortWord returns the end of the piece at i, and its bytes as two little-endian words,
// when it is a word of letters, with a space before it or not, that ends within the
// sixteen bytes from i: most pieces of prose. Otherwise it returns -1 and zeros, and
// the piece is nextPiece's to find. A word in o200k_base is upper-case letters then
// lower-case ones, so an upper-case letter after a lower-case one starts the next; in
// cl100k_base it is letters of either case. A word that an apostrophe follows is left
// to nextPiece, for the contractions; so is every piece in p50k_base and r50k_base.
// The second word is zero when the piece is shorter than eight bytes, and its top byte
// is always zero.
func shortWord[T text](sp splitter, s T, i int) (int, uint64, uint64) {
	if sp == splitP50k || i+8 > len(s) {
		return -1, 0, 0
	}
	w := load8(s, i)
	skip := uint64(0) // the bits of the bytes before the letters: the space, if any
	if byte(w) == ' ' {
		skip = 0xff
	}
	lower, upper := inRange(w, 'a', 'z')&^skip, inRange(w, 'A', 'Z')&^skip
	// The word ends at the first byte after the space that is not a letter (a bit past
	// the word when all are), or in o200k_base at the first upper-case letter after a
	// lower-case one.
	stop := ^(lower | upper) &^ skip & high
	if sp == splitO200k && lower != 0 {
		stop |= upper &^ (lower&-lower<<1 - 1)
	}
	end := bits.TrailingZeros64(stop) / 8 // 8 when stop is 0
	if end < 8 {
		if end == int(skip&1) || s[i+end] == '\'' {
			return -1, 0, 0
		}
		return i + end, w & (1<<(8*end) - 1), 0
	}
	// The first eight bytes are all in the word: it goes on in the next eight.
	if i+16 > len(s) {
		return -1, 0, 0
	}
	v := load8(s, i+8)
	lower2, upper2 := inRange(v, 'a', 'z'), inRange(v, 'A', 'Z')
	stop = ^(lower2 | upper2) & high
	if sp == splitO200k {
		if lower != 0 {
			stop |= upper2
		} else if lower2 != 0 {
			stop |= upper2 &^ (lower2&-lower2<<1 - 1)
		}
	}
	end = bits.TrailingZeros64(stop) / 8
	if end == 8 || s[i+8+end] == '\'' {
		return -1, 0, 0
	}
	return i + 8 + end, w, v & (1<<(8*end) - 1)
}
