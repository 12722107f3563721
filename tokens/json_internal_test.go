package tokens

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

var jsonSeeds = []string{
	``, ` `, `null`, `true`, `false`, `0`, `-0.5e+3`, `01`, `1.`, `.5`, `-`, `1e`, `"`, `"a`,
	`"plain"`, `"esc \" \\ \/ \b \f \n \r \t"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\udc00x"`,
	`"\ud800\u0041"`, `"\u12"`, `"\x"`, "\"tab\there\"", `"é"`, `[]`, `[1,]`, `[1 2]`, `{}`,
	`{"a":1,}`, `{"a" 1}`, `{1:2}`, `{"a":[{"b":null}]}`, `[[[[]]]]`, `{"a":1}x`, `nul`, `truex`,
	`{"\u0061":"b"}`, "\"\xff\"",
}

// FuzzReader checks that the reader accepts exactly what encoding/json accepts and
// decodes strings as it does.
func FuzzReader(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := reader{b: b}
		err := r.skip()
		if err == nil {
			err = r.end()
		}
		if valid := json.Valid(b); (err == nil) != valid {
			t.Fatalf("%q: reader error %v, json.Valid %v", b, err, valid)
		}
		if err != nil || !utf8.Valid(b) {
			return
		}
		r = reader{b: b}
		if r.peek() != '"' {
			return
		}
		got, err := r.str()
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		var want string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte(want)) {
			t.Errorf("%q: got %q, want %q", b, got, want)
		}
	})
}

func TestReaderDepth(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		depth int
		ok    bool
	}{
		{"at-limit", maxDepth, true},
		{"over-limit", maxDepth + 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := append(bytes.Repeat([]byte{'['}, tc.depth), bytes.Repeat([]byte{']'}, tc.depth)...)
			r := reader{b: b}
			if err := r.skip(); (err == nil) != tc.ok {
				t.Errorf("got error %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// blockLengths are lengths of text for the tests of a search a word or a block of 32 at
// a time: each length up to three words, and around one and two blocks.
var blockLengths = []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 31, 32, 33, 40, 63, 64, 65, 71}

// TestPlainEnd compares plainEnd with a byte at a time, for every byte at every place of
// runs that span up to three words or two blocks, after a byte that ends a run as well
// as after a plain one.
func TestPlainEnd(t *testing.T) {
	t.Parallel()
	for _, length := range blockLengths {
		for pos := range length {
			for b := range 256 {
				for _, before := range []byte{'a', '"', '\n'} {
					s := bytes.Repeat([]byte{'x'}, length)
					s[pos] = byte(b)
					if pos > 0 {
						s[pos-1] = before
					}
					for start := range min(pos+1, 3) {
						want := start
						for want < len(s) && s[want] != '"' && s[want] != '\\' && s[want] >= 0x20 {
							want++
						}
						if got := plainEnd(s, start); got != want {
							t.Fatalf("plainEnd(%q, %d) = %d, want %d", s, start, got, want)
						}
					}
				}
			}
		}
	}
}
