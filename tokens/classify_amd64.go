package tokens

import "golang.org/x/sys/cpu"

// haveAVX2 says whether classifyAVX2 may run: the processor has AVX2 (and the
// operating system keeps its registers).
var haveAVX2 = cpu.X86.HasAVX2

// classifyAVX2 classes the 64 bytes at p, 32 at a time: the letters, the upper-case
// letters, the digits, the spaces, and the bytes in a class at all (printable ASCII
// but the apostrophe, space included), one bit a byte.
//
//go:noescape
func classifyAVX2(p *byte) (letter, upper, digit, space, known uint64)

// plainEndAVX2 returns the index of the first byte of p[:n] that is a quote, a
// backslash or a control character, looking at the whole blocks of 32 bytes only: n
// rounded down to 32 when there is none there.
//
//go:noescape
func plainEndAVX2(p *byte, n int) int

// nonASCIIAVX2 returns the index of the first byte of p[:n] from 0x80, looking at the
// whole blocks of 32 bytes only: n rounded down to 32 when there is none there.
//
//go:noescape
func nonASCIIAVX2(p *byte, n int) int
