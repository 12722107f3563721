package jsonl_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice/jsonl"
)

// referenceFields is what jsonl.ValidateLine must find in line, worked out with
// encoding/json alone. It walks objects with a json.Decoder's tokens, so a member
// that repeats, under any spelling of its name, is taken from its last occurrence.
func referenceFields(tb testing.TB, line []byte) jsonl.LineFields {
	tb.Helper()
	lf := jsonl.LineFields{Valid: json.Valid(line)}
	if !lf.Valid {
		return lf
	}
	lf.Root = bytes.TrimLeft(line, " \t\r\n")[0]
	if lf.Root != '{' {
		return lf
	}
	top := mustMembers(tb, line)
	lf.CustomID, lf.Method, lf.URL = referenceMember(tb, top["custom_id"]), referenceMember(tb, top["method"]), referenceMember(tb, top["url"])
	if raw, ok := top["method"]; ok && raw[0] != '"' {
		lf.Method.Raw = string(raw[:min(len(raw), 128)])
	}
	if body, ok := top["body"]; ok {
		lf.Body = body[0]
		if lf.Body == '{' {
			inner := mustMembers(tb, body)
			lf.Model = referenceMember(tb, inner["model"])
			if s, ok := inner["stream"]; ok {
				lf.Stream = s[0]
			}
			lf.BodyText = string(body)
		}
	}
	return lf
}

// mustMembers returns the members of the JSON object obj, the last of each name.
func mustMembers(tb testing.TB, obj []byte) map[string]json.RawMessage {
	tb.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		tb.Fatalf("got token %v, %v opening %q, want {", tok, err, obj)
	}
	out := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			tb.Fatalf("got key %v, %v in %q, want a string", tok, err, obj)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			tb.Fatalf("got error %v decoding member %q of %q, want nil", err, name, obj)
		}
		out[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		tb.Fatalf("got token %v, %v closing %q, want }", tok, err, obj)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		tb.Fatalf("got %v after the object %q, want io.EOF", err, obj)
	}
	return out
}

// referenceMember is what the validator must learn of a member with value raw.
func referenceMember(tb testing.TB, raw json.RawMessage) jsonl.Member {
	tb.Helper()
	if raw == nil {
		return jsonl.Member{}
	}
	m := jsonl.Member{Kind: raw[0]}
	if m.Kind == '"' {
		m.Len = len(raw) - 2
		if err := json.Unmarshal(raw, &m.Value); err != nil {
			tb.Fatalf("got error %v decoding %s, want nil", err, raw)
		}
	}
	return m
}

// validatorSeeds are lines for FuzzValidator and TestValidator.
var validatorSeeds = []string{
	good("a"),
	`{"custom\u005fid":"\u00e9\ud83d\ude00","\u006dethod":"P\u004fST","url":"\/v1\/x","body":{"mod\u0065l":"m","stre\u0061m":true}}`,
	`{"custom_id":"a","custom_id":7,"method":{"a":[1,2,{"b":"c"}]},"body":{"model":"x"},"body":[{"model":"y"}]}`,
	`{"body":{"model":"a","model":null,"stream":false,"stream":true,"x":{"model":"inner"}}}`,
	`{"body":{"model":"a"},"body":{"stream":true}}`,
	"{\"custom_id\":\"\xff\xfe\",\"url\":\"a\xc3\",\"method\":-0.5e+7}",
	` [ {"custom_id":"a"} , 1 , -0 , 1.5e3, true, false, null, "s" ] `,
	"\t\r 42 \r",
	`{"method":123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890}`,
	`{"a":{"custom_id":"nested"},"method":true,"url":null}`,
	`{"custom_id":"\u0000\b\f\n\r\t\"\\\/"}`,
	`{"custom_id":"a"`, `{"custom_id":"a",}`, `{,}`, `[1,]`, `01`, `1.`, `-`, `1e`, `1e+`, `tru`, `nul`, `"\x"`, `"\u12g4"`,
	"\"a\x1fb\"", "{}x", "{}{}", "", "  ", "\xef\xbb\xbf{}",
	"{\n\"custom_id\"\n:\n\"a\"\n}\n",
	"[\"a\nb\"]",
}

func TestValidator(t *testing.T) {
	t.Parallel()
	for _, line := range validatorSeeds {
		checkValidator(t, []byte(line))
	}
}

func FuzzValidator(f *testing.F) {
	for _, line := range validatorSeeds {
		f.Add([]byte(line))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		checkValidator(t, line)
	})
}

// checkValidator checks jsonl.ValidateLine against referenceFields on line: read
// whole, and, when line holds no newline, in pieces as the Scanner reads it.
func checkValidator(t *testing.T, line []byte) {
	t.Helper()
	want := referenceFields(t, line)
	if diff := cmp.Diff(want, jsonl.ValidateLine(line, 0)); diff != "" {
		t.Fatalf("ValidateLine(%q) whole (-want +got):\n%s", line, diff)
	}
	if bytes.IndexByte(line, '\n') >= 0 {
		return
	}
	want.BodyText = ""
	for _, n := range []int{1, 3, 8} {
		if diff := cmp.Diff(want, jsonl.ValidateLine(line, n)); diff != "" {
			t.Fatalf("ValidateLine(%q) in pieces of %d (-want +got):\n%s", line, n, diff)
		}
	}
}

func TestValidatorNesting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		depth int
	}{
		{"depth-1", 1},
		{"depth-9999", 9999},
		{"depth-10000", 10000},
		{"depth-10001", 10001},
		{"depth-20000", 20000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, open := range []string{"[", `{"a":`} {
				close := "]"
				if open != "[" {
					close = "}"
				}
				line := []byte(strings.Repeat(open, tc.depth) + "1" + strings.Repeat(close, tc.depth))
				want := tc.depth <= 10000
				if got := json.Valid(line); got != want {
					t.Fatalf("json.Valid at depth %d: got %v, want %v", tc.depth, got, want)
				}
				for _, chunk := range []int{0, 7} {
					if got := jsonl.ValidateLine(line, chunk).Valid; got != want {
						t.Errorf("%s nesting, depth %d, chunk %d: got valid %v, want %v", open, tc.depth, chunk, got, want)
					}
				}
			}
		})
	}
}
