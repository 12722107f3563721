package sim

import (
	"math/rand/v2"
	"unicode"
	"unicode/utf8"
)

// CountTokens returns the number of tokens in s under the simulator's tokenizer, the one
// rule behind every usage figure the simulator reports:
//
//   - letters, digits and combining marks form runs, and a run is one token per four
//     characters, rounded up: "sluice" is two tokens, "a1" one;
//   - every other character that is not white space (punctuation, a symbol, an emoji, a
//     control character, or a byte that is not valid UTF-8) is one token on its own;
//   - white space separates runs and is not a token.
//
// It approximates OpenAI's tokenizers on English text, about four characters a token,
// without their vocabularies. Texts joined with white space count as the sum of their
// parts.
func CountTokens(s string) int {
	n, run := 0, 0
	for i := 0; i < len(s); {
		c := s[i]
		var class uint8
		if c < utf8.RuneSelf {
			class = asciiClass[c]
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			switch {
			case r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)):
				class = classWord
			case unicode.IsSpace(r):
				class = classSpace
			default:
				class = classSymbol
			}
		}
		switch class {
		case classWord:
			if run%4 == 0 {
				n++
			}
			run++
		case classSpace:
			run = 0
		default:
			n++
			run = 0
		}
	}
	return n
}

const (
	classSymbol uint8 = iota
	classWord
	classSpace
)

var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			t[c] = classWord
		case c == ' ', '\t' <= c && c <= '\r':
			t[c] = classSpace
		}
	}
	return t
}()

// words is the vocabulary of generated replies. Every word is lower-case ASCII letters
// of at most eight, so it is one or two tokens, writes to JSON without escaping, and a
// prefix of 4k letters of it is exactly k tokens.
var words = [...]string{
	"the", "a", "of", "and", "to", "in", "is", "it", "that", "for", "on", "with", "as", "at", "by", "from",
	"water", "river", "gate", "sluice", "stream", "flow", "channel", "basin", "quiet", "steady", "batch", "request",
	"answer", "model", "token", "signal", "morning", "evening", "light", "stone", "bridge", "lantern", "harbor", "field",
	"garden", "simple", "careful", "bright", "gentle", "swift", "patient", "ordinary", "measured", "distant", "returns", "carries",
	"holds", "opens", "closes", "waits", "moves", "settles", "turns", "rises", "falls", "keeps", "every", "each",
}

var wordTokens = func() (t [len(words)]int) {
	for i, w := range words {
		t[i] = CountTokens(w)
	}
	return t
}()

// generate appends to b a reply of at most budget tokens whose natural length, drawn
// from p, is between 5 and maxNatural tokens (maxNatural itself when it is below 5). It
// returns b, the tokens appended, and whether the budget cut the reply short.
func generate(b []byte, p *rand.PCG, budget, maxNatural int) ([]byte, int, bool) {
	natural := maxNatural
	if natural > 5 {
		natural = 5 + int(p.Uint64()%uint64(natural-4))
	}
	tokens, inSentence := 0, 0
	for {
		if inSentence >= 4 && p.Uint64()%5 == 0 { // end the sentence here
			if tokens+1 > budget {
				return b, tokens, true
			}
			b = append(b, '.')
			tokens++
			inSentence = 0
			if tokens+2 > natural { // no room for another word and its period
				return b, tokens, false
			}
			continue
		}
		i := p.Uint64() % uint64(len(words))
		w, wt := words[i], wordTokens[i]
		if tokens+wt+1 > natural { // the word and a closing period would overrun: stop
			if inSentence == 0 {
				return b, tokens, false
			}
			if tokens+1 > budget {
				return b, tokens, true
			}
			return append(b, '.'), tokens + 1, false
		}
		if tokens >= budget {
			return b, tokens, true
		}
		cut := tokens+wt > budget
		if cut {
			w = w[:4*(budget-tokens)]
		}
		if tokens > 0 {
			b = append(b, ' ')
		}
		start := len(b)
		b = append(b, w...)
		if inSentence == 0 {
			b[start] -= 'a' - 'A'
		}
		if cut {
			return b, budget, true
		}
		tokens += wt
		inSentence++
	}
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
	golden    = 0x9e3779b97f4a7c15
)

// fnvString folds s into the FNV-64a hash h.
func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// foldMessage folds a message of role and text into the FNV-64a hash h. Chat messages
// and Responses input items fold alike, so the same conversation gets the same reply on
// both routes.
func foldMessage(h uint64, role, text string) uint64 {
	h = fnvString(h, role)
	h = fnvString(h, "\x00")
	h = fnvString(h, text)
	return fnvString(h, "\xff")
}

// fnvUint64 folds the eight bytes of v into the FNV-64a hash h.
func fnvUint64(h, v uint64) uint64 {
	for range 8 {
		h ^= v & 0xff
		h *= fnvPrime
		v >>= 8
	}
	return h
}

// mix64 is the SplitMix64 finalizer: a bijection of uint64 with good avalanche.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// seedStream seeds p with stream i of the prompt hash h.
func seedStream(p *rand.PCG, h uint64, i int) {
	p.Seed(mix64(h), mix64(h^(uint64(i)+1)*golden))
}

// unit maps x to a float64 in [0,1).
func unit(x uint64) float64 { return float64(x>>11) * 0x1p-53 }
