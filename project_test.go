package sluice

import "testing"

func TestCallerSees(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c       Caller
		project string
		want    bool
	}{
		{Caller{Project: "a", Role: RoleUser}, "a", true},
		{Caller{Project: "a", Role: RoleUser}, "b", false},
		{Caller{Project: "a", Role: RoleAdmin}, "b", true},
		{Caller{Role: RoleUser}, "", true},
		{Caller{Role: RoleUser}, DefaultProject, true},
		{Caller{Project: DefaultProject, Role: RoleUser}, "", true},
		{Caller{Role: RoleUser}, "a", false},
	} {
		if got := tc.c.Sees(tc.project); got != tc.want {
			t.Errorf("%+v sees %q: %t, want %t", tc.c, tc.project, got, tc.want)
		}
	}
}

func TestAdmitLimitsFits(t *testing.T) {
	t.Parallel()
	lim := AdmitLimits{Deployment: 100, Project: ProjectLimits{EnqueuedTokens: 50, Batches: 2}}
	for _, tc := range []struct {
		held   AdmitResult
		tokens int64
		want   bool
	}{
		{AdmitResult{}, 50, true},
		{AdmitResult{}, 51, false},                                // the project's tokens
		{AdmitResult{Held: 60, ProjectTokens: 0}, 41, false},      // the deployment's
		{AdmitResult{Held: 60, ProjectTokens: 10}, 40, true},      // both at their limits
		{AdmitResult{ProjectBatches: 1}, 0, true},                 // the second batch
		{AdmitResult{ProjectBatches: 2}, 0, false},                // a third
		{AdmitResult{Held: 1 << 40, ProjectBatches: 9}, 0, false}, // nothing fits past a limit
	} {
		if got := lim.Fits(tc.held, tc.tokens); got != tc.want {
			t.Errorf("%+v + %d: fits %t, want %t", tc.held, tc.tokens, got, tc.want)
		}
	}
	if !(AdmitLimits{}).Fits(AdmitResult{Held: 1 << 40, ProjectTokens: 1 << 40, ProjectBatches: 1 << 20}, 1<<40) {
		t.Error("no limits refused a batch")
	}
}
