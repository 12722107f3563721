package engine

import (
	"testing"
	"time"
)

// A turn takes one batch of each project with lines to claim, its earliest deadline,
// projects by those deadlines; exhausted and stopping batches sit it out.
func TestTurns(t *testing.T) {
	t.Parallel()
	at := func(h int) time.Time { return time.Date(2026, 11, 30, h, 0, 0, 0, time.UTC) }
	mk := func(id, project string, h int) *run { return &run{id: id, project: project, deadline: at(h)} }
	a1, a2, a3 := mk("a1", "alpha", 5), mk("a2", "alpha", 3), mk("a3", "alpha", 3)
	b1 := mk("b1", "beta", 4)
	c1 := mk("c1", "gamma", 9)
	ids := func(rs []*run) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.id)
		}
		return out
	}
	check := func(name string, got []*run, want ...string) {
		t.Helper()
		g := ids(got)
		if len(g) != len(want) {
			t.Errorf("%s: got %v, want %v", name, g, want)
			return
		}
		for i := range g {
			if g[i] != want[i] {
				t.Errorf("%s: got %v, want %v", name, g, want)
				return
			}
		}
	}
	runs := []*run{a1, a2, a3, c1, b1}
	check("all", turns(runs), "a2", "b1", "c1") // a2 and a3 tie: the older (first activated) goes
	a2.exhausted.Store(true)
	check("a2 exhausted", turns(runs), "a3", "b1", "c1")
	a3.stopping.Store(true)
	check("a3 cancelled", turns(runs), "b1", "a1", "c1")
	b1.exhausted.Store(true)
	a1.exhausted.Store(true)
	check("only gamma", turns(runs), "c1")
	c1.exhausted.Store(true)
	check("none", turns(runs))
}
