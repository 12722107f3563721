package jsonl

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestSpecial checks special, the eight-bytes-at-a-time test of the string scan,
// against the byte table it stands for: the first byte it marks must be the first
// byte that is not plain.
func TestSpecial(t *testing.T) {
	t.Parallel()
	check := func(b []byte) {
		t.Helper()
		want := 8
		for i, c := range b {
			if !plain[c] {
				want = i
				break
			}
		}
		got := 8
		if m := special(binary.LittleEndian.Uint64(b)); m != 0 {
			got = bits.TrailingZeros64(m) >> 3
		}
		if got != want {
			t.Fatalf("special(% x): got first special byte %d, want %d", b, got, want)
		}
	}
	// Bytes on either side of each boundary the bit tricks depend on.
	edges := []byte{0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7f, 0x80, 0x81, 0x9f, 0xa0, 0xa1, 0xdc, 0xe2, 0xfe, 0xff}
	b := make([]byte, 8)
	for _, fill := range edges {
		for k := range 8 {
			for c := range 256 {
				for i := range b {
					b[i] = fill
				}
				b[k] = byte(c)
				check(b)
				for _, d := range edges { // a second byte after the first
					for k2 := k + 1; k2 < 8; k2++ {
						b[k2] = d
						check(b)
						b[k2] = fill
					}
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200_000 {
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = edges[r.IntN(len(edges))]
			} else {
				b[i] = byte(r.Uint32())
			}
		}
		check(b)
	}
}
