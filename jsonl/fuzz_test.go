package jsonl_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

func FuzzScanner(f *testing.F) {
	f.Add([]byte(lines(good("a"), good("b"))))
	f.Add([]byte("\xEF\xBB\xBF" + good("a") + "\r\n\n" + good("b")))
	f.Add([]byte(lines(good("a"), good("a"), req("c", "/chat/completions", "gpt-4o"), req("d", "/v1/embeddings", "x"))))
	f.Add([]byte(lines(`{"custom_id":"a","method":"GET"}`, "[1]", "{", `{"custom\u005fid":"é","method":"POST","url":"/v1/responses","body":{"model":"m","stream":true}}`)))
	f.Add([]byte(""))
	f.Add([]byte("\xEF\xBB"))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole := scan(t, data, 0)
		for _, n := range []int{1, 7} {
			if diff := cmp.Diff(whole, scan(t, data, n)); diff != "" {
				t.Fatalf("chunks of %d bytes (-whole +chunked):\n%s", n, diff)
			}
		}
		if len(whole.Problems) > sluice.MaxBatchErrors {
			t.Fatalf("got %d problems, want at most %d", len(whole.Problems), sluice.MaxBatchErrors)
		}
		for i := 1; i < len(whole.Problems); i++ {
			if whole.Problems[i].Line <= whole.Problems[i-1].Line {
				t.Fatalf("got problem lines %d then %d, want increasing", whole.Problems[i-1].Line, whole.Problems[i].Line)
			}
		}
		checkEntriesBeforeProblems(t, whole)
		for _, e := range whole.Entries {
			if e.Offset < 0 || e.Offset+int64(e.Length) > int64(len(data)) {
				t.Fatalf("got entry %+v outside %d bytes", e, len(data))
			}
			line := data[e.Offset : e.Offset+int64(e.Length)]
			if bytes.IndexByte(line, '\n') >= 0 {
				t.Fatalf("got entry %+v holding a newline", e)
			}
			r, err := jsonl.ParseRequest(line)
			if err != nil {
				t.Fatalf("got error %v parsing entry %+v, want nil", err, e)
			}
			if r.CustomID != e.CustomID {
				t.Fatalf("got custom_id %q parsed, want %q", r.CustomID, e.CustomID)
			}
		}
	})
}

func FuzzSetModel(f *testing.F) {
	f.Add([]byte(`{"model":"a","messages":[{"model":"x"}]}`), "b")
	f.Add([]byte(` { "mod\u0065l" : "a" , "model" : 1 } `), "a")
	f.Add([]byte(`{}`), "模型")
	f.Add([]byte(`{"Model":"a"}`), "q\"\\\n")
	f.Add([]byte(`[{"model":"a"}]`), "b")
	f.Fuzz(func(t *testing.T, body []byte, model string) {
		out, err := jsonl.SetModel(body, model)
		trimmed := bytes.TrimLeft(body, " \t\r\n")
		isObject := json.Valid(body) && len(trimmed) > 0 && trimmed[0] == '{'
		if !isObject {
			if err == nil {
				t.Fatalf("got %q and nil error for %q, want an error", out, body)
			}
			return
		}
		if err != nil {
			t.Fatalf("got error %v, want nil", err)
		}
		if !json.Valid(out) {
			t.Fatalf("got invalid JSON %q from %q", out, body)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("got error %v decoding %q, want nil", err, out)
		}
		var got string
		if err := json.Unmarshal(m["model"], &got); err != nil {
			t.Fatalf("got model %s in %q, want a string: %v", m["model"], out, err)
		}
		if utf8.ValidString(model) && got != model {
			t.Fatalf("got model %q, want %q", got, model)
		}
	})
}

// FuzzDispatchBody checks that the hot path's parse never panics on any line, and that
// for a line holding a JSON object body its answer is that body with the model set.
func FuzzDispatchBody(f *testing.F) {
	f.Add([]byte(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"x","messages":[]}}`), "y")
	f.Add([]byte(`{"body":{}}`), "m")
	f.Add([]byte(`{"body":"str"`), "m")
	f.Fuzz(func(t *testing.T, line []byte, model string) {
		got, err := jsonl.DispatchBody(line, model)
		var l struct {
			Body json.RawMessage `json:"body"`
		}
		if err != nil || !json.Valid(line) || json.Unmarshal(line, &l) != nil || len(l.Body) == 0 || l.Body[0] != '{' {
			return
		}
		var b map[string]json.RawMessage
		if json.Unmarshal(got, &b) != nil {
			t.Fatalf("DispatchBody(%q) = %q, not a JSON object", line, got)
		}
	})
}

// FuzzValid checks the validator answers are checked with against json.Valid, on any
// bytes: newlines and carriage returns included, as answers have them.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":1}`, "{\n \"a\" : [1, 2.5e-3, true, null]\r\n}\n", `"x`, `[1,]`, ` `, ``, `01`, `-`, `{"a":"\u00e9\ud83d"}`, "\"\x01\"", `[[[[]]]]`, `{"a":1}{`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := jsonl.Valid(data), json.Valid(data); got != want {
			t.Fatalf("Valid(%q): got %t, want %t as json.Valid", data, got, want)
		}
	})
}
