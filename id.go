package sluice

import (
	"crypto/rand"
	"encoding/hex"
)

// NewFileID returns a new file ID, "file-" and 32 hex digits.
func NewFileID() string { return "file-" + randomHex(16) }

// NewBatchID returns a new batch ID, "batch_" and a random UUID.
func NewBatchID() string { return "batch_" + uuid() }

// NewRequestID returns a new ID for one result line, "batch_req_" and 32 hex digits.
func NewRequestID() string { return "batch_req_" + randomHex(16) }

// NewOwnerID returns a new ID for a worker process that holds leases.
func NewOwnerID() string { return "owner-" + randomHex(8) }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand.Read panics rather than return an error
	return hex.EncodeToString(b)
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
