package engine

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-batch/sluice/tokens"
)

// countFile runs content through a lineCounter in chunks cut at random places and
// returns the count of every physical line, asked for in order.
func countFile(t *testing.T, c *tokens.Counter, content string, seed uint64) []int {
	t.Helper()
	lc := newLineCounter(func(string) *tokens.Counter { return c })
	rng := rand.New(rand.NewPCG(seed, seed))
	lines := strings.Count(content, "\n")
	if !strings.HasSuffix(content, "\n") && content != "" {
		lines++
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for p := []byte(content); len(p) > 0; {
			n := min(len(p), 1+rng.IntN(300))
			ch := &sharedChunk{buf: bytes.Clone(p[:n])}
			ch.refs.Add(1)
			lc.add(ch)
			ch.refs.Wait()
			p = p[n:]
		}
		lc.close()
	})
	got := make([]int, lines)
	for i := range got {
		got[i] = int(lc.wait(i + 1).tokens)
	}
	wg.Wait()
	return got
}

// Every line gets the count of its own bytes, whatever the chunk boundaries: blank
// lines, a BOM, CRLF endings, a line that is not JSON and a last line without a newline
// included.
func TestLineCounterCountsEveryLine(t *testing.T) {
	t.Parallel()
	c, err := tokens.New("")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range 700 {
		switch {
		case i%50 == 7:
			lines = append(lines, "")
		case i%97 == 3:
			lines = append(lines, "{not json")
		default:
			lines = append(lines, fmt.Sprintf(`{"custom_id":"c%d","method":"POST","url":"/v1/chat/completions","body":{"model":"dep","messages":[{"role":"user","content":%q}]}}`,
				i, strings.Repeat("word ", i%40)+fmt.Sprint(i)))
		}
	}
	for _, tc := range []struct {
		name    string
		content string
		strip   func(string) string
	}{
		{"lf", strings.Join(lines, "\n") + "\n", nil},
		{"crlf and bom", "\xef\xbb\xbf" + strings.Join(lines, "\r\n") + "\r\n", func(s string) string { return strings.TrimSuffix(s, "\r") }},
		{"no final newline", strings.Join(lines, "\n"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := countFile(t, c, tc.content, 1)
			if len(got) != len(lines) {
				t.Fatalf("got %d counts, want %d", len(got), len(lines))
			}
			for i, line := range lines {
				want := countLine(c, []byte(line))
				if (line == "" || strings.HasPrefix(line, "{not")) && want != 0 {
					t.Fatalf("line %d: the reference counts %d for a line that is not a request", i+1, want)
				}
				if got[i] != want {
					t.Errorf("line %d: got %d, want %d", i+1, got[i], want)
				}
			}
		})
	}
}

// A line longer than maxCountedLine is not held: it is estimated from its length.
func TestLineCounterEstimatesHugeLines(t *testing.T) {
	t.Parallel()
	c, err := tokens.New("")
	if err != nil {
		t.Fatal(err)
	}
	huge := `{"custom_id":"big","method":"POST","url":"/v1/chat/completions","body":{"model":"dep","messages":[{"role":"user","content":"` +
		strings.Repeat("a", maxCountedLine) + `"}]}}`
	small := `{"custom_id":"s","method":"POST","url":"/v1/chat/completions","body":{"model":"dep","messages":[{"role":"user","content":"hi"}]}}`
	lc := newLineCounter(func(string) *tokens.Counter { return c })
	go func() {
		for _, p := range []string{small + "\n", huge[:1<<20], huge[1<<20:] + "\n" + small} {
			ch := &sharedChunk{buf: []byte(p)}
			ch.refs.Add(1)
			lc.add(ch)
			ch.refs.Wait()
		}
		lc.close()
	}()
	want := []int{countLine(c, []byte(small)), len(huge) / 4, countLine(c, []byte(small))}
	for i, w := range want {
		if got := int(lc.wait(i + 1).tokens); got != w {
			t.Errorf("line %d: got %d, want %d", i+1, got, w)
		}
	}
}

// The counter picks the encoding from the first request line's model.
func TestLineCounterPicksByModel(t *testing.T) {
	t.Parallel()
	cl, err := tokens.New("cl100k_base")
	if err != nil {
		t.Fatal(err)
	}
	o2, err := tokens.New("o200k_base")
	if err != nil {
		t.Fatal(err)
	}
	var asked []string
	lc := newLineCounter(func(model string) *tokens.Counter {
		asked = append(asked, model)
		if model == "old" {
			return cl
		}
		return o2
	})
	ch := &sharedChunk{buf: []byte("\n  \n" + `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"old","messages":[]}}` + "\n")}
	ch.refs.Add(1)
	lc.add(ch)
	lc.close()
	ch.refs.Wait()
	lc.wait(3)
	if lc.encoding() != "cl100k_base" || len(asked) != 1 || asked[0] != "old" {
		t.Errorf("got encoding %q after asking for %q, want cl100k_base for model old", lc.encoding(), asked)
	}
}

// The remembered url stands in only for the same bytes: each field gets the endpoint
// that decoding it alone gives.
func TestEndpointsRemembersTheLastURL(t *testing.T) {
	t.Parallel()
	var urls endpoints
	for i, raw := range []string{
		`"/v1/chat/completions"`, `"/v1/chat/completions"`, `"/chat/completions"`,
		`"/v1/embeddings"`, `"\/v1\/embeddings"`, `"/v1/nothing"`, `"/v1/nothing"`, `12`, ``,
		`"/v1/responses"`, `"/v1/chat/completions"`,
	} {
		got, want := urls.of([]byte(raw)), (*endpoints)(nil).of([]byte(raw))
		if got != want {
			t.Errorf("field %d, %s: got %q, want %q", i, raw, got, want)
		}
		if i == 0 && want != "/v1/chat/completions" {
			t.Fatalf("the reference gives %q for %s", want, raw)
		}
	}
}

// The counts of lines no one asks for go once the scan is past them: a file of blank
// lines, or of lines after the scan's first problem, holds no count per line.
func TestLineCounterForgetsLinesPassed(t *testing.T) {
	t.Parallel()
	c, err := tokens.New("")
	if err != nil {
		t.Fatal(err)
	}
	lc := newLineCounter(func(string) *tokens.Counter { return c })
	chunk := bytes.Repeat([]byte("\n"), 256<<10)
	lines, most := 0, 0
	for range 16 { // 4 Mi lines
		ch := &sharedChunk{buf: chunk}
		ch.refs.Add(1)
		lc.add(ch)
		ch.refs.Wait()
		lines += len(chunk)
		lc.forget(lines)
		lc.mu.Lock()
		most = max(most, cap(lc.counts))
		lc.mu.Unlock()
	}
	last := &sharedChunk{buf: []byte(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}`)}
	last.refs.Add(1)
	lc.add(last)
	lc.close()
	if got := lc.wait(lines + 1); got.tokens == 0 {
		t.Errorf("the last line, after %d blank ones, counts 0", lines)
	}
	lc.mu.Lock()
	most = max(most, cap(lc.counts))
	lc.mu.Unlock()
	if most > 1<<19 { // a chunk's lines or two, where all 4 Mi were held
		t.Errorf("the counter held room for %d counts at once for %d lines no one asked for", most, lines)
	}
}
