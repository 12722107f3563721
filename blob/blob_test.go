package blob_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
)

// runBucketSuite is the contract every Bucket adapter passes.
func runBucketSuite(t *testing.T, newBucket func(t *testing.T) sluice.Bucket) {
	ctx := context.Background()
	read := func(t *testing.T, rc io.ReadCloser, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	t.Run("PutGet", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		n, err := b.Put(ctx, "files/a", strings.NewReader("hello world"))
		if err != nil || n != 11 {
			t.Fatalf("put: got %d, %v; want 11, nil", n, err)
		}
		rc, err := b.Get(ctx, "files/a")
		if got := read(t, rc, err); got != "hello world" {
			t.Fatalf("got %q, want %q", got, "hello world")
		}
		rc, err = b.GetRange(ctx, "files/a", 6, 5)
		if got := read(t, rc, err); got != "world" {
			t.Fatalf("range: got %q, want %q", got, "world")
		}
	})

	t.Run("FailedPutKeepsOldBytes", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		if _, err := b.Put(ctx, "k", strings.NewReader("old")); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("boom")
		_, err := b.Put(ctx, "k", io.MultiReader(strings.NewReader("new bytes"), errReader{boom}))
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want %v", err, boom)
		}
		rc, err := b.Get(ctx, "k")
		if got := read(t, rc, err); got != "old" {
			t.Fatalf("got %q, want %q", got, "old")
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		if _, err := b.Get(ctx, "missing"); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Fatalf("got %v, want kind not_found", err)
		}
		if err := b.Delete(ctx, "missing"); err != nil {
			t.Fatalf("delete missing: got %v, want nil", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		if _, err := b.Put(ctx, "d/x", strings.NewReader("x")); err != nil {
			t.Fatal(err)
		}
		if err := b.Delete(ctx, "d/x"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Get(ctx, "d/x"); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Fatalf("got %v, want kind not_found", err)
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestDir(t *testing.T) {
	t.Parallel()
	runBucketSuite(t, func(t *testing.T) sluice.Bucket {
		d, err := blob.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}

func TestDirRejectsEscapingKeys(t *testing.T) {
	t.Parallel()
	d, err := blob.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../x", "/etc/passwd", "a/../../b", "", ".tmp/x", `a\b`} {
		if _, err := d.Put(context.Background(), key, strings.NewReader("x")); err == nil {
			t.Errorf("put %q: got nil error, want one", key)
		}
	}
}

func TestMem(t *testing.T) {
	t.Parallel()
	runBucketSuite(t, func(t *testing.T) sluice.Bucket { return blob.NewMem() })
}
