package tokens

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/dlclark/regexp2/v2"
)

// MustCounters returns a Counter for each encoding.
func MustCounters(tb testing.TB) []*Counter {
	tb.Helper()
	var cs []*Counter
	for _, e := range encodings {
		c, err := New(e)
		if err != nil {
			tb.Fatal(err)
		}
		cs = append(cs, c)
	}
	return cs
}

// splitText returns the segments of s, and the pieces of its ASCII segments, as the
// Counter splits them: ASCII pieces, then each segment that is not ASCII whole.
func splitText(tb testing.TB, c *Counter, s string) []string {
	tb.Helper()
	var parts []string
	for s != "" {
		k, ascii := nextSegment(c.split, s)
		if k <= 0 || k > len(s) {
			tb.Fatalf("%q: got a segment of %d bytes", s, k)
		}
		seg := s[:k]
		s = s[k:]
		if !ascii {
			if nonASCII(seg) < 0 {
				tb.Fatalf("%q: got the ASCII segment %q as not ASCII", s, seg)
			}
			parts = append(parts, seg)
			continue
		}
		if q := nonASCII(seg); q >= 0 {
			tb.Fatalf("%q: got the segment %q as ASCII", s, seg)
		}
		for i := 0; i < len(seg); {
			if seg[i] == del {
				i++
				continue
			}
			j := nextPiece(c.split, seg, i)
			if j <= i || j > len(seg) {
				tb.Fatalf("%q: got a piece from %d to %d", seg, i, j)
			}
			parts = append(parts, seg[i:j])
			i = j
		}
	}
	return parts
}

// splitRegexps are the library's split regexps (codec/*_base.go in
// github.com/tiktoken-go/tokenizer v0.10.0). Compiled with the same options, they get
// the engines the library's package registered for them, which are the ones it runs.
var splitRegexps = map[splitter]*regexp2.Regexp{
	splitO200k:  regexp2.MustCompile(`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`, regexp2.None),
	splitCl100k: regexp2.MustCompile(`(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`, regexp2.None),
	splitP50k:   regexp2.MustCompile(`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`, regexp2.None),
}

// libSplit returns the pieces the library's regexp splits s into.
func libSplit(tb testing.TB, sp splitter, s string) []string {
	tb.Helper()
	var pieces []string
	m, err := splitRegexps[sp].FindStringMatch(s)
	for ; m != nil && err == nil; m, err = splitRegexps[sp].FindNextMatch(m) {
		pieces = append(pieces, m.String())
	}
	if err != nil {
		tb.Fatal(err)
	}
	return pieces
}

// checkText checks that c counts s as the library does, as a string and as bytes; that
// c splits the ASCII segments of s into the library's pieces of s, and the others into
// runs of them; and that each of those pieces, split alone, is the one piece, so the
// library counts it alone as it does in s.
func checkText(tb testing.TB, c *Counter, s string) {
	tb.Helper()
	want, err := c.codec.Count(s)
	if err != nil {
		tb.Fatal(err)
	}
	if got := c.Text(s); got != want {
		tb.Errorf("%s: Text(%q): got %d, want %d", c.name, s, got, want)
	}
	if got := countText(c, []byte(s)); got != want {
		tb.Errorf("%s: count(%q): got %d, want %d", c.name, s, got, want)
	}
	var pieces []string
	for _, p := range splitText(tb, c, s) {
		if nonASCII(p) >= 0 {
			pieces = append(pieces, libSplit(tb, c.split, p)...)
			continue
		}
		if alone := libSplit(tb, c.split, p); !slices.Equal(alone, []string{p}) {
			tb.Errorf("%s: %q: the piece %q splits into %q", c.name, s, p, alone)
		}
		pieces = append(pieces, p)
	}
	if lib := libSplit(tb, c.split, s); !slices.Equal(pieces, lib) {
		tb.Errorf("%s: %q: got the pieces %q, want %q", c.name, s, pieces, lib)
	}
}

// fuzzSeeds are FuzzTextMatchesLibrary's seed corpus.
var fuzzSeeds = []string{
	"",
	"The quick brown fox jumps over the lazy dog. Summarise item 123 of the catalogue.",
	"I'm sure you'll see they've said we'd go; it's DON'T, it'S, THEY'RE, We'Ll, I'M, 'sup, x'l, 're",
	"func main() {\n\tfmt.Println(\"hello\")\n\treturn x[i]+y/2 // done\n}\n",
	`{"model":"gpt-4o","messages":[{"role":"user","content":"Hi!"}],"max_tokens":256}`,
	"1234567 3.14159 -42 1e10 0x7f 2024-01-02T03:04:05Z 100,000,000",
	"a  b   c\t\td \t e\n\nf\r\ng\r\n\r\nh \n \n i\v\fj   \n   ",
	"!!! ?!. --- ... ;;; ''' \"\" ``` ~~~ ((( ))) [[ ]] {{ }} @#$%^&*_+=|\\<>",
	"a/b//c\n", "x!/\n/\ny", " /\r\n/ ", "HTTPServer XMLHttpRequest iPhone eBay McDonald's",
	"\x00\x01\x02 \x1b[31mred\x1b[0m \x1c\x1d\x1e\x1f a\x7fb \x7f\x7f \t\x7fz",
	"   ", "\n", " ", "\t", "'", "'s", "A", "a'", "x'Re", "ll'll'LL",
	"café naïve — “quoted” it’s 世界 👍🏽 ſ it'ſ", "ok \xff\xfe bytes \xe2\x80 cut", "Ünïcödé words mixed with ASCII words",
	"Straße ÉCOLE éCole ÉcoLE 3×4÷2 ×abc ÷ é's À'LL ÿ\n/é \xc3 \xc3( \xc3\xa9\xcc\x81", "Ça, c'est l'été à Zürich — ½ ¿qué?",
}

// FuzzTextMatchesLibrary checks that Counter counts any text as the library does, in
// every encoding, and that its split agrees with the library's; see checkText.
func FuzzTextMatchesLibrary(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	cs := MustCounters(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range cs {
			checkText(t, c, s)
		}
	})
}

// wordAtoms and atoms are the bits genText strings together: every class the split
// regexps know, and their edges.
var (
	wordAtoms = []string{
		"the", "of", "and", "catalogue", "Summarise", "Item", "HTML", "XMLParser", "iPhone", "aB", "Zz",
		"x", "Q", "antidisestablishmentarianism",
	}
	atoms = append(slices.Clip(wordAtoms),
		"'s", "'S", "'t", "'re", "'RE", "'Ve", "'m", "'ll", "'Ll", "'l", "'d", "'D", "'", "''", "'x", "n't", "N'T",
		"0", "7", "12", "123", "1234", "1234567", "3.14", "-42", "1,000",
		" ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\v", "\f", " \n", "\n ", "\n\n", " \n \n", "\t\n\t", "\r\n\r\n", "        ",
		".", ",", "!", "?", "...", "!!", "/", "//", "-", "--", "(", ")", "[", "]", "{", "}", "\"", ":", ";",
		"<|endoftext|>", "`", "~", "@", "#", "$", "%", "^", "&", "*", "_", "+", "=", "|", "\\", "<", ">",
		"\x00", "\x01", "\x08", "\x0e", "\x1b", "\x1c", "\x1f", "\x7f",
	)
)

// wideAtoms are the bits that are not ASCII, which genText adds now and then.
var wideAtoms = []string{"é", "’", "—", "世界", "👍🏽", "ſ", "\u00a0", "\u0085", "\u2028", "\xff", "\xe2\x80", "Ω", "ß"}

// latinAtoms are accented letters, Latin-1's symbols and spaces, and their neighbours:
// the wide text of most European languages, which genText adds more often than the
// other wide bits.
var latinAtoms = []string{"é", "É", "ß", "ÿ", "À", "Þ", "×", "÷", "ö", "Ö", "ç", "ñ", "café", "Éric", "naïve", "ÀÉÎ", "straße",
	"\u00bf", "\u00a0", "\u00b2", "é\u0301", "\xc3", "\xc3(", "ĀĐ"}

// genText returns a text of about n bytes of atoms, with a word or a space more often
// than the rest, and, if wide, now and then a bit that is not ASCII.
func genText(rng *rand.Rand, n int, wide bool) string {
	var sb strings.Builder
	for sb.Len() < n {
		switch r := rng.IntN(100); {
		case wide && r == 0:
			sb.WriteString(wideAtoms[rng.IntN(len(wideAtoms))])
		case wide && r < 6:
			sb.WriteString(latinAtoms[rng.IntN(len(latinAtoms))])
		case r < 30:
			sb.WriteString(wordAtoms[rng.IntN(len(wordAtoms))])
		case r < 55:
			sb.WriteByte(' ')
		default:
			sb.WriteString(atoms[rng.IntN(len(atoms))])
		}
	}
	return sb.String()
}

// TestTextMatchesLibraryCorpus checks, as FuzzTextMatchesLibrary does, a corpus of
// generated texts: mostly ASCII, a quarter with bits that are not ASCII.
func TestTextMatchesLibraryCorpus(t *testing.T) {
	t.Parallel()
	size := 1 << 20
	if testing.Short() {
		size = 64 << 10
	}
	for _, c := range MustCounters(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(1, 2))
			for done := 0; done < size; {
				s := genText(rng, rng.IntN(2000), rng.IntN(4) == 0)
				checkText(t, c, s)
				done += len(s)
			}
		})
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	cs := MustCounters(t)
	o200k, cl100k, p50k := cs[0], cs[1], cs[2]
	for _, tc := range []struct {
		name string
		c    *Counter
		text string
		want []string
	}{
		{"o200k-words", o200k, "Hello world, HTMLParser iPhone", []string{"Hello", " world", ",", " HTMLParser", " i", "Phone"}},
		{"o200k-contractions", o200k, "DON'T it'S we'Re 'sup x'l", []string{"DON'T", " it'S", " we'Re", " '", "sup", " x", "'l"}},
		{"o200k-digits", o200k, "1234567 a1", []string{"123", "456", "7", " a", "1"}},
		{"o200k-prefix", o200k, "\tfoo\vbar.baz\x00qux", []string{"\tfoo", "\vbar", ".baz", "\x00qux"}},
		{"o200k-punctuation", o200k, "a/b//c\n !?\n/x", []string{"a", "/b", "//", "c", "\n", " !?\n/", "x"}},
		{"o200k-spaces", o200k, "a   b\t \n  \n c  ", []string{"a", "  ", " b", "\t \n", "  \n", " c", "  "}},
		{"o200k-first-newline", o200k, "\n \n\n\r\nx", []string{"\n", " \n\n\r\n", "x"}},
		{"o200k-del", o200k, "a\x7fb \x7f!\x7f", []string{"a", "b", " ", "!"}},
		{"o200k-segments", o200k, "It is café time. Now go", []string{"It", " is", " café", " time", ".", " Now", " go"}},
		{"cl100k-contractions", cl100k, "DON'T it'S 'sup 're", []string{"DON", "'T", " it", "'S", " '", "sup", " '", "re"}},
		{"cl100k-words", cl100k, "HTMLParser iPhone\tfoo", []string{"HTMLParser", " iPhone", "\tfoo"}},
		{"cl100k-punctuation", cl100k, "a/b//c\n !?\n/x", []string{"a", "/b", "//", "c", "\n", " !?\n", "/x"}},
		{"cl100k-first-newline", cl100k, "\n \n\n", []string{"\n", " \n\n"}},
		{"p50k-contractions", p50k, "don't DON'T", []string{"don", "'t", " DON", "'", "T"}},
		{"p50k-runs", p50k, "ab 12345 !? \tx\n\ny  ", []string{"ab", " 12345", " !?", " ", "\t", "x", "\n", "\n", "y", "  "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := splitText(t, tc.c, tc.text); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			checkText(t, tc.c, tc.text)
		})
	}
}

// TestRuns compares the word-at-a-time runs with a byte at a time, for every byte in
// every position of a run that spans three words, and at the end of the text.
func TestRuns(t *testing.T) {
	for _, tc := range []struct {
		name string
		fill byte
		run  func(string, int) int
		in   uint8 // the classes the run takes
	}{
		{"lower", 'q', lowerRun[string], cLower},
		{"letter", 'Q', letterRun[string], cLetter},
	} {
		for length := range 20 {
			for pos := range length {
				for b := range 256 {
					s := []byte(strings.Repeat(string(tc.fill), length))
					s[pos] = byte(b)
					for start := range min(pos+1, 3) {
						want := start
						for want < len(s) && class[s[want]]&tc.in != 0 {
							want++
						}
						if got := tc.run(string(s), start); got != want {
							t.Fatalf("%s(%q, %d) = %d, want %d", tc.name, s, start, got, want)
						}
					}
				}
			}
		}
	}
}

// TestSegmentCuts checks texts that put a byte from 0x80 beside each kind of cut and
// beside the places that look like one but are not, in every encoding.
func TestSegmentCuts(t *testing.T) {
	t.Parallel()
	texts := []string{
		"é.\n/x", "é.\n/\nx", "é.\n\n/x", "é\n\n x", "é\n\nx", "é\r\nA", "é\n\u0301a", "é\n1", "é\n\u3000x",
		"é \u3000x", "é \u00a0x", "é \u0085x", "é \x7fx", "é \xffx", "é  x", "é \tx", "x \u3000é", "x  \u3000é", "x   \u00a0é", "x \u0301é",
		"é,1", "é\x7f1", "é 1", "é  1", "é\t1", "é1", "²1", "é.²1", "x²1", "x,²1", "1,²", "é'1", "é's1",
		"東京 €1,250.00 x", "Kraków, 2026-11-02 10:45 #4471.\n\nSão Paulo", "a\n\n한국어 문장입니다. 1,000원\n",
	}
	for _, c := range MustCounters(t) {
		for _, s := range texts {
			checkText(t, c, s)
			checkText(t, c, "x "+s+" x")
		}
	}
}

// TestShortWord checks shortWord against nextPiece at every place of generated text:
// where it finds a word, it must be nextPiece's piece, and its word the piece's key.
func TestShortWord(t *testing.T) {
	t.Parallel()
	for _, c := range MustCounters(t) {
		rng := rand.New(rand.NewPCG(3, 4))
		found := 0
		for range 200 {
			s := genText(rng, 1+rng.IntN(400), false)
			for i := range len(s) {
				if s[i] == del {
					continue
				}
				j, w, w1 := shortWord(c.split, s, i)
				if j < 0 {
					continue
				}
				found++
				if want := nextPiece(c.split, s, i); j != want {
					t.Fatalf("%s: %q at %d: got the piece %q, want %q", c.name, s, i, s[i:j], s[i:want])
				}
				if k := pieceKeyOf(c.pieces, s, i, j); k != (pieceKey{w, w1, 0, uint64(j - i)}) {
					t.Fatalf("%s: %q at %d: got the key %x, want %x", c.name, s, i, w, k)
				}
			}
		}
		if (c.split == splitP50k) != (found == 0) {
			t.Errorf("%s: shortWord found %d words", c.name, found)
		}
	}
}

// TestNonASCII compares nonASCII with a byte at a time, for each byte from 0x80 at every
// place of texts that span up to three words or two blocks, as a string and as bytes.
func TestNonASCII(t *testing.T) {
	t.Parallel()
	for _, length := range blockLengths {
		for pos := -1; pos < length; pos++ {
			for _, b := range []byte{0x80, 0xc3, 0xff} {
				s := bytes.Repeat([]byte{'x'}, length)
				want := -1
				if pos >= 0 {
					s[pos], want = b, pos
				}
				if got := nonASCII(s); got != want {
					t.Fatalf("nonASCII(%q) = %d, want %d", s, got, want)
				}
				if got := nonASCII(string(s)); got != want {
					t.Fatalf("nonASCII(string %q) = %d, want %d", s, got, want)
				}
			}
		}
	}
}
