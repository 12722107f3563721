package jsonl

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

func TestParseUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want sluice.Usage
		ok   bool
	}{
		{"chat", `{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}`,
			sluice.Usage{InputTokens: 12, OutputTokens: 5}, true},
		{"chat details", `{"usage":{"prompt_tokens":100,"completion_tokens":50,"prompt_tokens_details":{"cached_tokens":64},
			"completion_tokens_details":{"reasoning_tokens":20}}}`,
			sluice.Usage{InputTokens: 100, CachedTokens: 64, OutputTokens: 50, ReasoningTokens: 20}, true},
		{"responses", `{"object":"response","output":[],"usage":{"input_tokens":30,"input_tokens_details":{"cached_tokens":3},
			"output_tokens":9,"output_tokens_details":{"reasoning_tokens":4},"total_tokens":39}}`,
			sluice.Usage{InputTokens: 30, CachedTokens: 3, OutputTokens: 9, ReasoningTokens: 4}, true},
		{"embeddings", `{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}`,
			sluice.Usage{InputTokens: 8}, true},
		{"spaces", " {\n \"usage\" : {\"prompt_tokens\" : 1 , \"completion_tokens\":2}\n}\n", sluice.Usage{InputTokens: 1, OutputTokens: 2}, true},
		{"details past the totals are capped", `{"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9},
			"completion_tokens_details":{"reasoning_tokens":7}}}`, sluice.Usage{InputTokens: 5, CachedTokens: 5, OutputTokens: 1, ReasoningTokens: 1}, true},
		{"nested usage only", `{"choices":[{"usage":{"prompt_tokens":1}}],"data":{"usage":{"prompt_tokens":2}}}`, sluice.Usage{}, false},
		{"usage in a string", `{"content":"\"usage\":{\"prompt_tokens\":3}","n":1}`, sluice.Usage{}, false},
		{"usage after a tricky string", `{"content":"a \\\" } ] { \"usage\"","usage":{"prompt_tokens":4,"completion_tokens":0}}`,
			sluice.Usage{InputTokens: 4}, true},
		{"null usage", `{"usage":null}`, sluice.Usage{}, false},
		{"empty usage", `{"usage":{}}`, sluice.Usage{}, false},
		{"string counts", `{"usage":{"prompt_tokens":"12"}}`, sluice.Usage{}, false},
		{"negative counts", `{"usage":{"prompt_tokens":-1}}`, sluice.Usage{}, false},
		{"no usage", `{"id":"x"}`, sluice.Usage{}, false},
		{"not an object", `[{"usage":{"prompt_tokens":1}}]`, sluice.Usage{}, false},
		{"repeated usage takes the last", `{"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}}`, sluice.Usage{InputTokens: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := ParseUsage([]byte(tt.body))
			if ok != tt.ok {
				t.Errorf("got ok %t, want %t", ok, tt.ok)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
		})
	}
}

// topMember finds what encoding/json finds under a key of the top-level object.
func FuzzTopMember(f *testing.F) {
	for _, s := range []string{
		`{"usage":{"a":1}}`, `{"a":"usage","usage":[1,{"x":"}"}]}`, ` { "usage" : "x\"y" } `,
		`{"b":{"usage":1},"usage":true}`, `{"usage":1,"usage":2}`, `{}`, `{"a":[[[]]],"usage":-1.5e3}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) != nil || m == nil {
			return
		}
		want, ok := m["usage"]
		got := topMember(body, "usage")
		if !ok {
			if got != nil {
				t.Fatalf("%q: got %q, want nothing", body, got)
			}
			return
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			t.Fatalf("%q: got %q, want %q", body, got, want)
		}
	})
}

func BenchmarkParseUsage(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		string(bytes.Repeat([]byte("lorem ipsum "), 40)) + `"},"finish_reason":"stop"}],"usage":{"prompt_tokens":31,"completion_tokens":120,"total_tokens":151}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParseUsage(body); !ok {
			b.Fatal("no usage")
		}
	}
}

// TestFields checks Fields against Field, one name at a time: the last value of a
// repeated name, nested members ignored, escaped names matched, bad objects nil.
func TestFields(t *testing.T) {
	t.Parallel()
	names := []string{"url", "body", "absent"}
	for _, obj := range []string{
		`{"custom_id":"a","url":"/v1/chat/completions","body":{"url":"inner","body":1}}`,
		`{"body":{"x":[1,"}"]},"url":"/first","url":"/last"}`,
		` { "b\u006fdy" : "escaped" , "url":null } `,
		`{"body":`,
		`[1,2]`,
		``,
	} {
		values := [][]byte{[]byte("stale"), nil, []byte("stale")}
		Fields([]byte(obj), names, values)
		for i, name := range names {
			if want := Field([]byte(obj), name); !bytes.Equal(values[i], want) || (values[i] == nil) != (want == nil) {
				t.Errorf("%s: %s: got %q, want %q", obj, name, values[i], want)
			}
		}
	}
}
