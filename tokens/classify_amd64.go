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
