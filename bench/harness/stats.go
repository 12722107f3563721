package harness

import (
	"math"
	"slices"
	"time"
)

// Median returns the middle value of xs (the upper one of an even count), or 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// MedianIndex returns the index in xs of its median value, as Median picks it, or -1.
func MedianIndex(xs []float64) int {
	if len(xs) == 0 {
		return -1
	}
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case xs[a] < xs[b]:
			return -1
		case xs[a] > xs[b]:
			return 1
		}
		return 0
	})
	return idx[len(idx)/2]
}

// Percentile returns the nearest-rank p-th percentile (0 < p <= 100) of sorted: the
// smallest value that at least p percent of the values are at or below. It returns 0
// for no values.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// The rank is ceil(p/100 × n), computed in integers so 99.9 of 1000 is exactly 999.
	rank := (int64(math.Round(p*1000))*int64(n) + 100_000 - 1) / 100_000
	rank = max(1, min(rank, int64(n)))
	return sorted[rank-1]
}
