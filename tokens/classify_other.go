//go:build !amd64

package tokens

const haveAVX2 = false

func classifyAVX2(*byte) (letter, upper, digit, space, known uint64) {
	panic("tokens: no AVX2 here")
}

func plainEndAVX2(*byte, int) int { panic("tokens: no AVX2 here") }

func nonASCIIAVX2(*byte, int) int { panic("tokens: no AVX2 here") }
