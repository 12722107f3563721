package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// put stores r under the blob name: one Put Blob when r ends within a block, otherwise
// blocks staged while r is read and committed when it ends.
func (b *Bucket) put(ctx context.Context, name string, r io.Reader) (int64, error) {
	bb := b.cont.NewBlockBlobClient(name)
	bp := b.bufs.Get().(*[]byte)
	n, err := io.ReadFull(ctxReader{ctx, r}, *bp)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		_, err = bb.Upload(ctx, streaming.NopCloser(bytes.NewReader((*bp)[:n])), nil)
		b.bufs.Put(bp)
		return int64(n), err
	}
	if err != nil {
		b.bufs.Put(bp)
		return 0, err
	}
	st := b.newStager(ctx)
	total := int64(0)
	for {
		cur, buf := bp, (*bp)[:n]
		total += int64(n)
		err = st.stage(func(ctx context.Context, id string) error {
			defer b.bufs.Put(cur)
			_, err := bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(buf)), nil)
			return err
		})
		if err != nil {
			b.bufs.Put(cur)
			break
		}
		bp = b.bufs.Get().(*[]byte)
		n, err = io.ReadFull(ctxReader{st.ctx, r}, *bp)
		if err == io.EOF {
			b.bufs.Put(bp)
			err = nil
			break
		}
		if err == io.ErrUnexpectedEOF {
			err = nil
		}
		if err != nil {
			b.bufs.Put(bp)
			break
		}
	}
	ids, werr := st.wait()
	if err == nil {
		err = werr
	} else if werr != nil && errors.Is(err, context.Canceled) {
		err = werr // the reader stopped because a block failed: that is the cause
	}
	if err != nil {
		// Nothing is committed: the staged blocks stay invisible and the service drops
		// them (at the next commit to the name, or after a week).
		return 0, err
	}
	if _, err := bb.CommitBlockList(ctx, ids, nil); err != nil {
		return 0, err
	}
	return total, nil
}

// stager stages the blocks of one block blob, a few at once, and keeps their IDs in
// order. After the first failure it stages nothing more, and its context is cancelled.
type stager struct {
	ctx    context.Context
	cancel context.CancelFunc
	sem    chan struct{}
	wg     sync.WaitGroup
	prefix string

	mu  sync.Mutex
	ids []string
	err error
}

func (b *Bucket) newStager(ctx context.Context) *stager {
	ctx, cancel := context.WithCancel(ctx)
	var r [8]byte
	_, _ = rand.Read(r[:])
	// Every block ID of one blob has the same length; a random prefix keeps another
	// writer's uncommitted blocks of the same name apart from these.
	return &stager{ctx: ctx, cancel: cancel, sem: make(chan struct{}, b.concurrency), prefix: hex.EncodeToString(r[:])}
}

// stage runs fn with the next block's ID once fewer than the stager's concurrency run.
// It returns the first failure so far, if any, and then does not run fn.
func (s *stager) stage(fn func(ctx context.Context, id string) error) error {
	select {
	case s.sem <- struct{}{}:
	case <-s.ctx.Done():
		return s.failure()
	}
	if err := s.failure(); err != nil {
		<-s.sem
		return err
	}
	s.mu.Lock()
	id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", s.prefix, len(s.ids)))
	s.ids = append(s.ids, id)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		if err := fn(s.ctx, id); err != nil {
			s.fail(err)
		}
	}()
	return nil
}

func (s *stager) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.cancel()
}

func (s *stager) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return s.ctx.Err()
}

// wait waits for the blocks staged and returns their IDs in order, or the first failure.
func (s *stager) wait() ([]string, error) {
	s.wg.Wait()
	defer s.cancel()
	if err := s.failure(); err != nil {
		return nil, err
	}
	return s.ids, nil
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
