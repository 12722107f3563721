package engine_test

import (
	"context"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/engine"
	"github.com/sluice-batch/sluice/sqlite"
)

// readOnly is a bucket whose writes fail as on a read-only file system while ro is set.
type readOnly struct {
	sluice.Bucket
	ro atomic.Bool
}

func (b *readOnly) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if b.ro.Load() {
		return 0, &fs.PathError{Op: "open", Path: key, Err: syscall.EROFS}
	}
	return b.Bucket.Put(ctx, key, r)
}

// Ready probes the bucket with a write: a read-only one makes it unavailable, saying
// so; once writable again, ready, after the probe's answer has aged.
func TestReadyProbesTheBucket(t *testing.T) {
	t.Parallel()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	bucket := &readOnly{Bucket: blob.NewMem()}
	var now atomic.Int64
	now.Store(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC).UnixNano())
	eng, err := engine.New(store, bucket, nil, &engine.Options{NowFunc: func() time.Time { return time.Unix(0, now.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Ready(t.Context()); err != nil {
		t.Fatalf("ready on a writable bucket: %v", err)
	}
	bucket.ro.Store(true)
	if err := eng.Ready(t.Context()); err != nil {
		t.Errorf("a probe's answer stands for a second; got %v", err)
	}
	now.Add(int64(2 * time.Second))
	err = eng.Ready(t.Context())
	if sluice.ErrorKind(err) != sluice.KindUnavailable || !strings.Contains(sluice.ErrorMessage(err), "the data folder is read-only") {
		t.Errorf("read-only bucket: got %v, want unavailable saying the data folder is read-only", err)
	}
	bucket.ro.Store(false)
	now.Add(int64(2 * time.Second))
	if err := eng.Ready(t.Context()); err != nil {
		t.Errorf("writable again: %v", err)
	}
}
