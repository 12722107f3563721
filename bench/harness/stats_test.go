package harness_test

import (
	"testing"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i+1) * time.Millisecond
		}
		return s
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{name: "empty", sorted: nil, p: 50, want: 0},
		{name: "one", sorted: ms(1), p: 99.9, want: time.Millisecond},
		{name: "median-of-ten", sorted: ms(10), p: 50, want: 5 * time.Millisecond},
		{name: "p99-of-hundred", sorted: ms(100), p: 99, want: 99 * time.Millisecond},
		{name: "p99.9-of-thousand", sorted: ms(1000), p: 99.9, want: 999 * time.Millisecond},
		{name: "p99.9-of-hundred-is-max", sorted: ms(100), p: 99.9, want: 100 * time.Millisecond},
		{name: "p100-is-max", sorted: ms(7), p: 100, want: 7 * time.Millisecond},
		{name: "p99-of-ten-rounds-up", sorted: ms(10), p: 99, want: 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := harness.Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	t.Parallel()
	xs := []float64{3, 1, 2, 5}
	if got, want := harness.Median(xs), 3.0; got != want {
		t.Errorf("Median: got %v, want %v", got, want)
	}
	if got, want := harness.MedianIndex(xs), 0; got != want {
		t.Errorf("MedianIndex: got %v, want %v", got, want)
	}
	if got, want := harness.MedianIndex(nil), -1; got != want {
		t.Errorf("MedianIndex(nil): got %v, want %v", got, want)
	}
}
