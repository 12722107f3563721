package engine

import (
	"fmt"
	"testing"
)

func TestGroupByPrefix(t *testing.T) {
	t.Parallel()
	mk := func(i int, system string) job {
		msgs := `{"role":"user","content":"q"}`
		if system != "" {
			msgs = `{"role":"system","content":"` + system + `"},` + msgs
		}
		return job{req: line{Index: i}, line: []byte(`{"custom_id":"` + fmt.Sprint(i) + `","body":{"messages":[` + msgs + `]}}`)}
	}
	order := func(jobs []job) string {
		s := ""
		for _, j := range jobs {
			s += fmt.Sprint(j.req.Index)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		systems []string
		want    string
	}{
		{"interleaved", []string{"a", "b", "c", "a", "b", "c", "a"}, "0361425"},
		{"one prefix", []string{"a", "a", "a", "a"}, "0123"},
		{"none shared", []string{"a", "b", "c", "d"}, "0123"},
		{"no system message groups with itself", []string{"", "a", "", "a"}, "0213"},
	} {
		var jobs []job
		for i, s := range tc.systems {
			jobs = append(jobs, mk(i, s))
		}
		if got := order(groupByPrefix(jobs)); got != tc.want {
			t.Errorf("%s: order %s, want %s", tc.name, got, tc.want)
		}
	}
}

// BenchmarkGroupByPrefix groups a claim of 256 chat lines of about 1 KB with one system
// message, as most batches are: the cost per line of finding the prefix.
func BenchmarkGroupByPrefix(b *testing.B) {
	jobs := make([]job, 256)
	for i := range jobs {
		jobs[i] = job{line: []byte(fmt.Sprintf(`{"custom_id":"line-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"%0900d"}]}}`, i, i))}
	}
	b.ReportAllocs()
	for b.Loop() {
		groupByPrefix(jobs)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(jobs)), "ns/line")
}
