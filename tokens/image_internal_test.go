package tokens

import "testing"

func TestImageTokens(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		w, h int
		low  bool
		want int
	}{
		{"low-ignores-size", 4096, 4096, true, 85},
		{"unknown-is-1024-square", 0, 0, false, 765},
		{"1024-square", 1024, 1024, false, 765},
		{"2048x4096", 2048, 4096, false, 1105},
		{"4096x2048", 4096, 2048, false, 1105},
		{"512-square-one-tile", 512, 512, false, 255},
		{"513-wide-two-tiles", 513, 512, false, 425},
		{"tiny-never-upscaled", 10, 10, false, 255},
		{"768x1024", 768, 1024, false, 765},
		{"4000x3000", 4000, 3000, false, 765},
		{"1600x900", 1600, 900, false, 1105},
		{"very-thin", 100000, 10, false, 85 + 170*4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := imageTokens(tc.w, tc.h, tc.low); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}
