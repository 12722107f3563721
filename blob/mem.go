package blob

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/sluice-batch/sluice"
)

// Mem is a Bucket held in memory, for tests.
type Mem struct {
	mu   sync.Mutex
	objs map[string][]byte
}

var _ sluice.Bucket = (*Mem)(nil)

// NewMem returns an empty in-memory Bucket.
func NewMem() *Mem { return &Mem{objs: make(map[string][]byte)} }

// Put implements sluice.Bucket.
func (m *Mem) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	b, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	m.objs[key] = b
	m.mu.Unlock()
	return int64(len(b)), nil
}

func (m *Mem) get(key string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, sluice.Errorf(sluice.KindNotFound, "No content is stored for %s.", key)
	}
	return b, nil
}

// Get implements sluice.Bucket.
func (m *Mem) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	b, err := m.get(key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// GetRange implements sluice.Bucket.
func (m *Mem) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	b, err := m.get(key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.NewSectionReader(bytes.NewReader(b), offset, length)), nil
}

// Delete implements sluice.Bucket.
func (m *Mem) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	delete(m.objs, key)
	m.mu.Unlock()
	return nil
}
