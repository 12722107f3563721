package jsonl_test

import (
	"strconv"
	"strings"

	"github.com/sluice-batch/sluice/jsonl"
)

// req returns a request line with the given custom_id, url and model.
func req(id, url, model string) string {
	return `{"custom_id":` + strconv.Quote(id) + `,"method":"POST","url":` + strconv.Quote(url) +
		`,"body":{"model":` + strconv.Quote(model) +
		`,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hi."}],"max_tokens":16}}`
}

// good returns a valid chat request line with the given custom_id.
func good(id string) string { return req(id, "/v1/chat/completions", "gpt-4o") }

// lines joins lines with "\n" after each.
func lines(ls ...string) string {
	var b strings.Builder
	for _, l := range ls {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// scan writes data to a new Scanner in chunks of the given size (0: all at once) and
// closes it.
func scan(data []byte, chunk int) *jsonl.Summary {
	s := jsonl.NewScanner()
	if chunk <= 0 {
		chunk = len(data) + 1
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		_, _ = s.Write(data[:n])
		data = data[n:]
	}
	return s.Close()
}
