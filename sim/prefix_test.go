package sim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPrefixCacheKeepsTheRecent(t *testing.T) {
	t.Parallel()
	c := newPrefixCache(2)
	for _, step := range []struct {
		h   uint64
		hit bool
	}{{1, false}, {2, false}, {1, true}, {3, false}, {2, false}, {1, false}, {2, true}} {
		if got := c.touch(step.h); got != step.hit {
			t.Errorf("touch %d: hit %t, want %t", step.h, got, step.hit)
		}
	}
}

// Requests that share their leading system message hit the cache after the first;
// a request without one counts as neither; the prefix is the system messages only.
func TestPrefixCacheCountsHits(t *testing.T) {
	t.Parallel()
	s := New(Options{PrefixCache: 4, Seed: 1})
	ts := httptest.NewServer(s)
	defer ts.Close()
	post := func(path, body string) {
		res, err := http.Post(ts.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("%s: %d", body, res.StatusCode)
		}
	}
	chat := func(system, user string) string {
		msgs := `{"role":"user","content":"` + user + `"}`
		if system != "" {
			msgs = `{"role":"system","content":"` + system + `"},` + msgs
		}
		return `{"model":"m","messages":[` + msgs + `]}`
	}
	post("/v1/chat/completions", chat("You are terse.", "one"))
	post("/v1/chat/completions", chat("You are terse.", "two"))
	post("/v1/chat/completions", chat("You are verbose.", "three"))
	post("/v1/chat/completions", chat("", "four"))
	post("/v1/responses", `{"model":"m","instructions":"Be brief.","input":"a"}`)
	post("/v1/responses", `{"model":"m","instructions":"Be brief.","input":"b"}`)
	st := s.Stats()
	if st.PrefixHits != 2 || st.PrefixMisses != 3 {
		t.Errorf("hits %d, misses %d; want 2 and 3", st.PrefixHits, st.PrefixMisses)
	}
}

func TestPrefixSavingValidated(t *testing.T) {
	t.Parallel()
	if err := (&Options{PrefixCache: 1, PrefixSaving: 1.5}).Validate(); err == nil || !strings.Contains(err.Error(), "PrefixSaving") {
		t.Errorf("got %v, want PrefixSaving named", err)
	}
	if err := (&Options{PrefixCache: -1}).Validate(); err == nil || !strings.Contains(err.Error(), "PrefixCache") {
		t.Errorf("got %v, want PrefixCache named", err)
	}
}
