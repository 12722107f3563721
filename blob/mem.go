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
	// sealed are objects composed whole into another; Append refuses them, as Dir does
	// its linked files, so adapters fail the same way.
	sealed map[string]bool
}

var _ sluice.Bucket = (*Mem)(nil)

// NewMem returns an empty in-memory Bucket.
func NewMem() *Mem { return &Mem{objs: make(map[string][]byte), sealed: make(map[string]bool)} }

// Put implements sluice.Bucket.
func (m *Mem) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	b, err := io.ReadAll(ctxReader{ctx, r})
	if err != nil {
		return 0, err
	}
	m.mu.Lock()
	m.objs[key] = b
	delete(m.sealed, key)
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
	delete(m.sealed, key)
	m.mu.Unlock()
	return nil
}

// Append implements sluice.Bucket.
func (m *Mem) Append(ctx context.Context, key string, offset int64, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	switch {
	case !ok && offset != 0:
		return sluice.Errorf(sluice.KindConflict, "The object %s is gone; it cannot grow.", key)
	case int64(len(b)) != offset:
		return sluice.Errorf(sluice.KindConflict, "The object %s holds %d bytes, not %d; it cannot grow from there.", key, len(b), offset)
	case m.sealed[key]:
		return sluice.Errorf(sluice.KindConflict, "The object %s was composed into another; it cannot grow.", key)
	}
	m.objs[key] = append(b, p...)
	return nil
}

// Compose implements sluice.Bucket.
func (m *Mem) Compose(ctx context.Context, key string, parts []sluice.Part) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []byte
	for _, p := range parts {
		b, ok := m.objs[p.Key]
		if !ok {
			return 0, sluice.Errorf(sluice.KindNotFound, "No content is stored for %s.", p.Key)
		}
		if p.Offset < 0 || p.Length < 0 || p.Offset+p.Length > int64(len(b)) {
			return 0, sluice.Errorf(sluice.KindInvalid, "The range %d+%d reaches past the %d bytes of %s.", p.Offset, p.Length, len(b), p.Key)
		}
		out = append(out, b[p.Offset:p.Offset+p.Length]...)
	}
	if len(parts) == 1 && parts[0].Offset == 0 && parts[0].Length == int64(len(m.objs[parts[0].Key])) {
		m.sealed[parts[0].Key] = true
	}
	m.objs[key] = out
	return int64(len(out)), nil
}
