package httpapi

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	var b bucket
	steps := []struct {
		at   time.Duration // since t0
		want time.Duration // wait; 0: taken
	}{
		{0, 0}, {0, 0}, {0, 0}, // a full bucket: the burst of 3
		{0, 500 * time.Millisecond},                                         // empty: a token in 1/2 s at 2 a second
		{250 * time.Millisecond, 250 * time.Millisecond},                    // half a token there
		{500 * time.Millisecond, 0},                                         // one token
		{10 * time.Second, 0}, {10 * time.Second, 0}, {10 * time.Second, 0}, // refilled to the burst, no more
		{10 * time.Second, 500 * time.Millisecond},
	}
	for i, s := range steps {
		if got := b.take(t0.Add(s.at), 2, 3); got != s.want {
			t.Errorf("step %d at %s: got wait %s, want %s", i, s.at, got, s.want)
		}
	}
}

func TestCleanFilename(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"in.jsonl", "in.jsonl"},
		{"", ""},
		{`C:\Users\me\in.jsonl`, "in.jsonl"},
		{"a/b/in.jsonl", "in.jsonl"},
		{"données.jsonl", "données.jsonl"},
		{"tab\there.jsonl", ""},
		{"del\x7f.jsonl", ""},
		{"..", ""},
		{"dir/", ""},
	} {
		got, err := cleanFilename(tc.in)
		if got != tc.want || (err != nil) != (tc.want == "" && tc.in != "") {
			t.Errorf("cleanFilename(%q): got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
