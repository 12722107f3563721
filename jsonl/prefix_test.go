package jsonl

import "testing"

func TestPromptPrefix(t *testing.T) {
	t.Parallel()
	sys := `{"role":"system","content":"You are terse."}`
	dev := `{"role": "developer", "content": [{"type":"text","text":"Answer in French."}]}`
	for _, tc := range []struct {
		name, line, want string
	}{
		{"system", `{"custom_id":"a","body":{"model":"m","messages":[` + sys + `,{"role":"user","content":"hi"}]}}`, `[` + sys},
		{"system and developer", `{"custom_id":"a","body":{"messages":[ ` + sys + ` , ` + dev + `, {"role":"user","content":"hi"}],"model":"m"}}`, `[ ` + sys + ` , ` + dev},
		{"user first", `{"body":{"messages":[{"role":"user","content":"hi"},` + sys + `]}}`, ""},
		{"only system", `{"body":{"messages":[` + sys + `]}}`, `[` + sys},
		{"responses", `{"body":{"model":"m","instructions":"Be brief.","input":"hi"}}`, `"Be brief."`},
		{"completions", `{"body":{"model":"m","prompt":"Once upon"}}`, ""},
		{"no body", `{"custom_id":"a"}`, ""},
		{"malformed", `{"body":{"messages":[{"role":"system","content":"x"`, ""},
		{"messages not an array", `{"body":{"messages":"x"}}`, ""},
		{"not an object", `[1,2]`, ""},
	} {
		if got := string(PromptPrefix([]byte(tc.line))); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func FuzzPromptPrefix(f *testing.F) {
	f.Add([]byte(`{"body":{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"}]}}`))
	f.Add([]byte(`{"body":{"instructions":"i"}}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		p := PromptPrefix(line) // must not panic
		if len(p) > len(line) {
			t.Fatalf("prefix longer than the line")
		}
	})
}
