package jsonl_test

import (
	"strconv"
	"strings"
	"testing"

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

// scanned is what a scan found: its summary and the entries its EntryFunc received.
type scanned struct {
	*jsonl.Summary
	Entries []jsonl.Entry
}

// scan writes data to a new Scanner in chunks of the given size (0: all at once) and
// closes it.
func scan(tb testing.TB, data []byte, chunk int) scanned {
	tb.Helper()
	return scanMax(tb, data, chunk, 0)
}

// scanMax is scan with ScanOptions.MaxRequests set to maxRequests.
func scanMax(tb testing.TB, data []byte, chunk, maxRequests int) scanned {
	tb.Helper()
	var out scanned
	s := jsonl.NewScanner(&jsonl.ScanOptions{
		MaxRequests: maxRequests,
		EntryFunc: func(e jsonl.Entry) error {
			out.Entries = append(out.Entries, e)
			return nil
		},
	})
	if chunk <= 0 {
		chunk = len(data) + 1
	}
	for len(data) > 0 {
		n := min(chunk, len(data))
		if got, err := s.Write(data[:n]); got != n || err != nil {
			tb.Fatalf("got Write %d, %v, want %d, nil", got, err, n)
		}
		data = data[n:]
	}
	var err error
	if out.Summary, err = s.Close(); err != nil {
		tb.Fatalf("got Close error %v, want nil", err)
	}
	return out
}

// checkEntriesBeforeProblems fails unless every entry comes before the first problem
// and none before it is missing from a file with no problem.
func checkEntriesBeforeProblems(tb testing.TB, got scanned) {
	tb.Helper()
	if len(got.Problems) == 0 {
		if len(got.Entries) != got.Requests {
			tb.Fatalf("got %d entries for a clean file, want one per request, %d", len(got.Entries), got.Requests)
		}
		return
	}
	first := got.Problems[0].Line
	for _, e := range got.Entries {
		if e.Line >= first {
			tb.Fatalf("got entry %+v at or after the first problem, on line %d", e, first)
		}
	}
}
