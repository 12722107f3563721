package main

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

// Lines that share a system message are sent together: with 32 system messages
// taking turns line by line and an upstream that keeps the last 8 prefixes, sending
// in input order would miss its cache on every line; grouped within each claim, most
// lines hit it.
func TestLinesSharingAPrefixGoTogether(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{PrefixCache: 8, Latency: 2 * time.Millisecond})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	c := MustRunMain(t, nil, "--upstream", ts.URL+"/v1", "--deployment", "gpt-4o-mini", "--upstream-concurrency", "4")
	const lines, prompts = 512, 32
	var b strings.Builder
	for i := range lines {
		system := fmt.Sprintf("You are assistant number %d. %s", i%prompts, strings.Repeat("Follow the house style. ", 20))
		fmt.Fprintf(&b, `{"custom_id":"line-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":%q},{"role":"user","content":"question %d"}]}}`+"\n", i, system, i)
	}
	f := c.mustUpload(b.String())
	done := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	if done.Status != "completed" || done.RequestCounts.Completed != lines {
		t.Fatalf("batch %s %+v", done.Status, done.RequestCounts)
	}
	st := s.Stats()
	if st.PrefixHits+st.PrefixMisses != lines {
		t.Fatalf("the simulator saw %d prefixes, want %d", st.PrefixHits+st.PrefixMisses, lines)
	}
	if st.PrefixHits < lines/2 {
		t.Errorf("%d of %d lines hit the prefix cache; grouped, most should", st.PrefixHits, lines)
	}
	t.Logf("prefix cache: %d hits, %d misses", st.PrefixHits, st.PrefixMisses)
}
