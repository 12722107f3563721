package engine

import (
	"testing"
	"time"

	"github.com/sluice-batch/sluice/upstream"
)

// An attempt's timeout is the upstream's pace for the line's tokens, doubled for each
// of the line's attempts that timed out, never past RequestTimeout.
func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	e := &Engine{opts: Options{RequestTimeout: 10 * time.Minute}}
	p := upstream.NewPace(upstream.PaceConfig{Factor: 4, Min: time.Second, Max: e.opts.RequestTimeout})
	if got := e.attemptTimeout(p, 100, 0); got != 10*time.Minute {
		t.Errorf("before any answer: got %s, want request_timeout", got)
	}
	for range upstream.PaceMinSamples {
		p.Observe(100*time.Millisecond, 10) // 10 ms a token
	}
	for _, tc := range []struct {
		name            string
		limit, timeouts int
		want            time.Duration
	}{
		{"first-attempt", 100, 0, 4 * time.Second},
		{"after-one-timeout", 100, 1, 8 * time.Second},
		{"after-three", 100, 3, 32 * time.Second},
		{"capped", 100, 30, 10 * time.Minute},
		{"floor-then-doubled", 1, 1, 2 * time.Second},
	} {
		if got := e.attemptTimeout(p, tc.limit, tc.timeouts); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}
