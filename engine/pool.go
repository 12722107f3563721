package engine

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	mrand "math/rand/v2"
	"sync"
)

// maxKeptBuf is the largest buffer kept for reuse: a rare huge answer is not held on
// to for the rest of the run.
const maxKeptBuf = 1 << 20

// lineBufs holds result-line buffers. A line's buffer goes from a worker to the
// committer, which returns it once the line is in a segment, so the hot path
// allocates no result line in steady state.
var lineBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 2048)
	return &b
}}

func getLineBuf() *[]byte { return lineBufs.Get().(*[]byte) }

func putLineBuf(b *[]byte) {
	if b == nil || cap(*b) > maxKeptBuf {
		return
	}
	*b = (*b)[:0]
	lineBufs.Put(b)
}

// idSource mints the IDs of result lines, "batch_req_" and 32 hex digits, from a
// ChaCha8 stream seeded from the system's random source: as unpredictable as reading
// that source for each ID, without a system call per line. One source per worker.
type idSource struct {
	r *mrand.ChaCha8
}

func newIDSource() *idSource {
	var seed [32]byte
	_, _ = rand.Read(seed[:]) // never fails: crypto/rand.Read panics rather than return an error
	return &idSource{r: mrand.NewChaCha8(seed)}
}

func (s *idSource) requestID() string {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], s.r.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], s.r.Uint64())
	var out [len("batch_req_") + 32]byte
	copy(out[:], "batch_req_")
	hex.Encode(out[len("batch_req_"):], raw[:])
	return string(out[:])
}
