package upstream_test

import (
	"testing"
	"time"

	"github.com/sluice-batch/sluice/upstream"
)

func TestPace(t *testing.T) {
	t.Parallel()
	cfg := upstream.PaceConfig{Factor: 4, Min: time.Second, Max: 10 * time.Minute}

	t.Run("MaxUntilEnoughAnswers", func(t *testing.T) {
		t.Parallel()
		p := upstream.NewPace(cfg)
		for range upstream.PaceMinSamples - 1 {
			p.Observe(100*time.Millisecond, 10)
		}
		if got := p.Timeout(10); got != cfg.Max {
			t.Errorf("after %d answers: got %s, want request_timeout %s", upstream.PaceMinSamples-1, got, cfg.Max)
		}
		p.Observe(100*time.Millisecond, 10)
		// 10 ms a token, 100 tokens: 1 s expected, 4 s timeout.
		if got := p.Timeout(100); got != 4*time.Second {
			t.Errorf("after %d answers: got %s, want 4s", upstream.PaceMinSamples, got)
		}
	})

	t.Run("HighQuantiles", func(t *testing.T) {
		t.Parallel()
		p := upstream.NewPace(cfg)
		// 90% of answers at 10 ms a token and 20 tokens, 10% at 30 ms a token and 200
		// tokens: the 90th percentile per token is 10 ms, the 99th of tokens 200.
		for i := range upstream.PaceWindow {
			if i%10 == 9 {
				p.Observe(6*time.Second, 200)
			} else {
				p.Observe(200*time.Millisecond, 20)
			}
		}
		perToken, tokens, ok := p.Expected()
		if !ok || !near(perToken, 0.010) || tokens != 200 {
			t.Fatalf("got %g s a token, %g tokens, %v; want 0.010, 200, true", perToken, tokens, ok)
		}
		for _, tc := range []struct {
			name      string
			maxTokens int
			want      time.Duration
		}{
			{"max-tokens", 1000, 40 * time.Second},
			{"no-max-tokens-uses-p99-tokens", 0, 8 * time.Second},
			{"floor", 5, time.Second},
			{"ceiling", 1 << 20, 10 * time.Minute},
		} {
			if got := p.Timeout(tc.maxTokens); !nearDuration(got, tc.want) {
				t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
			}
		}
	})

	t.Run("WindowForgetsOldAnswers", func(t *testing.T) {
		t.Parallel()
		p := upstream.NewPace(cfg)
		for range upstream.PaceWindow {
			p.Observe(10*time.Second, 10) // 1 s a token
		}
		for range upstream.PaceWindow {
			p.Observe(100*time.Millisecond, 10) // 10 ms a token
		}
		if got := p.Timeout(1000); !nearDuration(got, 40*time.Second) {
			t.Errorf("got %s, want 40s from the recent answers alone", got)
		}
	})

	t.Run("AnswerWithoutTokensCountsOne", func(t *testing.T) {
		t.Parallel()
		p := upstream.NewPace(cfg)
		for range upstream.PaceMinSamples {
			p.Observe(2*time.Second, 0)
		}
		if got := p.Timeout(3); got != 24*time.Second {
			t.Errorf("got %s, want 24s: 2 s a token (0 tokens count as 1), 3 tokens, factor 4", got)
		}
	})

	t.Run("MinAboveMax", func(t *testing.T) {
		t.Parallel()
		p := upstream.NewPace(upstream.PaceConfig{Min: time.Second, Max: 50 * time.Millisecond})
		for range upstream.PaceMinSamples {
			p.Observe(time.Millisecond, 1)
		}
		if got := p.Timeout(1); got != 50*time.Millisecond {
			t.Errorf("got %s, want the ceiling 50ms", got)
		}
	})
}

func near(got, want float64) bool { return got > want*0.999 && got < want*1.001 }

func nearDuration(got, want time.Duration) bool { return near(got.Seconds(), want.Seconds()) }
