#include "textflag.h"

// RANGE sets the bits of MASK for the bytes of Y0 from LO to LO+SPAN, LO and SPAN
// being registers of broadcast bytes: a byte minus LO, wrapping, is at most SPAN.
#define RANGE(LO, SPAN, MASK) \
	VPSUBB LO, Y0, Y1; \
	VPMINUB SPAN, Y1, Y2; \
	VPCMPEQB Y1, Y2, Y2; \
	VPMOVMSKB Y2, MASK

#define BROADCAST(B, Y, X) \
	MOVL $B, AX; \
	VMOVD AX, X; \
	VPBROADCASTD X, Y

// CLASSIFY classes the 32 bytes at OFF(SI) into the masks of 32 bits LETTER, UPPER,
// DIGIT, SPACE, PRINT (' ' to '~') and APOS (the apostrophe).
#define CLASSIFY(OFF, LETTER, UPPER, DIGIT, SPACE, PRINT, APOS) \
	VMOVDQU OFF(SI), Y0; \
	VPOR Y8, Y0, Y3; \
	VPSUBB Y9, Y3, Y1; \
	VPMINUB Y10, Y1, Y2; \
	VPCMPEQB Y1, Y2, Y2; \
	VPMOVMSKB Y2, LETTER; \
	RANGE(Y11, Y10, UPPER); \
	RANGE(Y12, Y13, DIGIT); \
	VPCMPEQB Y8, Y0, Y2; \
	VPMOVMSKB Y2, SPACE; \
	RANGE(Y8, Y14, PRINT); \
	VPCMPEQB Y7, Y0, Y2; \
	VPMOVMSKB Y2, APOS

// func classifyAVX2(p *byte) (letter, upper, digit, space, known uint64)
TEXT ·classifyAVX2(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), SI
	BROADCAST(0x20202020, Y8, X8)   // ' ', and the bit that makes a letter lower-case
	BROADCAST(0x61616161, Y9, X9)   // 'a'
	BROADCAST(0x19191919, Y10, X10) // 25: 'z'-'a' and 'Z'-'A'
	BROADCAST(0x41414141, Y11, X11) // 'A'
	BROADCAST(0x30303030, Y12, X12) // '0'
	BROADCAST(0x09090909, Y13, X13) // 9: '9'-'0'
	BROADCAST(0x5e5e5e5e, Y14, X14) // 94: '~'-' '
	BROADCAST(0x27272727, Y7, X7)   // '\''
	CLASSIFY(32, AX, BX, CX, DX, DI, R13)
	SHLQ $32, AX
	SHLQ $32, BX
	SHLQ $32, CX
	SHLQ $32, DX
	SHLQ $32, DI
	SHLQ $32, R13
	CLASSIFY(0, R8, R9, R10, R11, R12, SI)
	ORQ  R8, AX
	ORQ  R9, BX
	ORQ  R10, CX
	ORQ  R11, DX
	ORQ  R12, DI
	ORQ  SI, R13
	NOTQ R13
	ANDQ R13, DI
	VZEROUPPER
	MOVQ AX, letter+8(FP)
	MOVQ BX, upper+16(FP)
	MOVQ CX, digit+24(FP)
	MOVQ DX, space+32(FP)
	MOVQ DI, known+40(FP)
	RET

// func plainEndAVX2(p *byte, n int) int
TEXT ·plainEndAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	ANDQ $-32, CX                   // whole blocks of 32 bytes
	BROADCAST(0x22222222, Y1, X1)   // '"'
	BROADCAST(0x5c5c5c5c, Y2, X2)   // '\\'
	BROADCAST(0x1f1f1f1f, Y3, X3)   // the last control character
	XORQ AX, AX

plainLoop:
	CMPQ AX, CX
	JGE  plainDone
	VMOVDQU (SI)(AX*1), Y0
	VPCMPEQB Y1, Y0, Y4
	VPCMPEQB Y2, Y0, Y5
	VPMINUB Y3, Y0, Y6
	VPCMPEQB Y0, Y6, Y6             // a byte at most 0x1f
	VPOR Y4, Y5, Y4
	VPOR Y4, Y6, Y4
	VPMOVMSKB Y4, DX
	TESTL DX, DX
	JNZ  plainFound
	ADDQ $32, AX
	JMP  plainLoop

plainFound:
	BSFL DX, DX
	ADDQ DX, AX

plainDone:
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET

// func nonASCIIAVX2(p *byte, n int) int
TEXT ·nonASCIIAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	ANDQ $-32, CX
	XORQ AX, AX

asciiLoop:
	CMPQ AX, CX
	JGE  asciiDone
	VMOVDQU (SI)(AX*1), Y0
	VPMOVMSKB Y0, DX                // the high bit of each byte
	TESTL DX, DX
	JNZ  asciiFound
	ADDQ $32, AX
	JMP  asciiLoop

asciiFound:
	BSFL DX, DX
	ADDQ DX, AX

asciiDone:
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET
