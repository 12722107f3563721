package httpapi

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

func TestParseBatchFilter(t *testing.T) {
	t.Parallel()
	p := sluice.Ptr[int64]
	for _, tc := range []struct {
		in       string
		want     sluice.BatchFilter
		possible bool
	}{
		{"", sluice.BatchFilter{}, true},
		{"status eq 'Completed'", sluice.BatchFilter{Status: []sluice.Status{sluice.StatusCompleted}}, true},
		{"created_at gt 100", sluice.BatchFilter{CreatedFrom: p(101)}, true},
		{"created_at ge 100 and created_at lt 200", sluice.BatchFilter{CreatedFrom: p(100), CreatedTo: p(199)}, true},
		{"created_at le 200 and created_at le 150 and created_at gt 10 and created_at ge 50", sluice.BatchFilter{CreatedFrom: p(50), CreatedTo: p(150)}, true},
		{"STATUS EQ 'in_progress' AND Created_At Gt 5", sluice.BatchFilter{Status: []sluice.Status{sluice.StatusInProgress}, CreatedFrom: p(6)}, true},
		{"status eq 'completed' and status eq 'failed'", sluice.BatchFilter{Status: []sluice.Status{sluice.StatusFailed}}, false},
	} {
		var got sluice.BatchFilter
		possible, err := parseBatchFilter(tc.in, &got)
		if err != nil || possible != tc.possible {
			t.Errorf("%q: got possible %t, err %v; want %t, nil", tc.in, possible, err, tc.possible)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.in, diff)
		}
	}
}

// A malformed filter is a 400 whose message points at the offending token.
func TestParseBatchFilterErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, at string }{
		{"garbage (", "character 1"},
		{"status eq 'done'", "character 11"},
		{"status ne 'completed'", "character 8"},
		{"status eq completed", "character 11"},
		{"created_at gt 'x'", "character 15"},
		{"created_at eq 5", "character 12"},
		{"created_at gt 5 or status eq 'failed'", "character 17"},
		{"created_at gt", "character 1"},
		{"status eq 'completed", "character 11"},
		{"created_at gt 1 and", "character 20"},
	} {
		var f sluice.BatchFilter
		_, err := parseBatchFilter(tc.in, &f)
		if sluice.ErrorKind(err) != sluice.KindInvalid || !strings.Contains(sluice.ErrorMessage(err), tc.at) {
			t.Errorf("%q: got %v, want an invalid error at %s", tc.in, err, tc.at)
		}
	}
}

func TestParseOrderBy(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]bool{"": false, "created_at": true, "created_at asc": true, "CREATED_AT DESC": false} {
		if got, err := parseOrderBy(in); err != nil || got != want {
			t.Errorf("%q: got %t, %v; want %t", in, got, err, want)
		}
	}
	for _, in := range []string{"id", "created_at up", "created_at asc desc"} {
		if _, err := parseOrderBy(in); sluice.ErrorKind(err) != sluice.KindInvalid {
			t.Errorf("%q: got %v, want invalid", in, err)
		}
	}
}

// The filter parser never panics, and what it accepts it accepts again unchanged.
func FuzzBatchFilter(f *testing.F) {
	for _, s := range []string{"status eq 'completed'", "created_at gt 5 and created_at lt 9", "status eq 'it''s'", "'", "and and", "created_at ge -3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var a, b sluice.BatchFilter
		p1, err1 := parseBatchFilter(s, &a)
		p2, err2 := parseBatchFilter(s, &b)
		if (err1 == nil) != (err2 == nil) || p1 != p2 || !cmp.Equal(a, b) {
			t.Fatalf("%q parsed two ways", s)
		}
		if err1 != nil && sluice.ErrorKind(err1) != sluice.KindInvalid {
			t.Fatalf("%q: error of kind %s", s, sluice.ErrorKind(err1))
		}
	})
}
