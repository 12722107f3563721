// Package blobtest is the conformance suite of sluice.Bucket: every adapter (the folder,
// memory, Azure Blob) runs Run from its tests, so they all keep one contract.
package blobtest

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice"
)

// Run runs the whole suite against buckets made by newBucket, one fresh bucket per
// subtest; the subtests run in parallel.
func Run(t *testing.T, newBucket func(t *testing.T) sluice.Bucket) {
	t.Helper()
	runBasics(t, newBucket)
	runAppendCompose(t, newBucket)
}

// runBasics covers Put, Get, GetRange and Delete.
func runBasics(t *testing.T, newBucket func(t *testing.T) sluice.Bucket) {
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

// runAppendCompose covers Append and Compose, the calls result segments and result
// files are made with.
func runAppendCompose(t *testing.T, newBucket func(t *testing.T) sluice.Bucket) {
	ctx := context.Background()
	get := func(t *testing.T, b sluice.Bucket, key string) string {
		t.Helper()
		rc, err := b.Get(ctx, key)
		if err != nil {
			t.Fatalf("get %s: %v", key, err)
		}
		defer rc.Close()
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(got)
	}
	mustAppend := func(t *testing.T, b sluice.Bucket, key string, off int64, p string) {
		t.Helper()
		if err := b.Append(ctx, key, off, []byte(p)); err != nil {
			t.Fatalf("append %q at %d to %s: %v", p, off, key, err)
		}
	}

	t.Run("Append", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		mustAppend(t, b, "seg/batch_1/a-0", 0, "one\n")
		mustAppend(t, b, "seg/batch_1/a-0", 4, "two\n")
		if got := get(t, b, "seg/batch_1/a-0"); got != "one\ntwo\n" {
			t.Fatalf("got %q, want %q", got, "one\ntwo\n")
		}
	})

	// An append that does not start at the object's end changes nothing, so a writer
	// that lost track of the size cannot interleave bytes.
	t.Run("Append/ErrConflict", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		mustAppend(t, b, "s", 0, "abc")
		for _, off := range []int64{0, 2, 4} {
			if err := b.Append(ctx, "s", off, []byte("x")); sluice.ErrorKind(err) != sluice.KindConflict {
				t.Errorf("append at %d: got %v, want kind conflict", off, err)
			}
		}
		if err := b.Append(ctx, "missing", 3, []byte("x")); sluice.ErrorKind(err) != sluice.KindConflict {
			t.Errorf("append at 3 to a missing object: got %v, want kind conflict", err)
		}
		if got := get(t, b, "s"); got != "abc" {
			t.Fatalf("got %q, want %q", got, "abc")
		}
	})

	t.Run("Compose", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		mustAppend(t, b, "seg/a", 0, "a1\na2\njunk")
		mustAppend(t, b, "seg/b", 0, "b1\n")
		n, err := b.Compose(ctx, "files/out", []sluice.Part{{Key: "seg/b", Offset: 0, Length: 3}, {Key: "seg/a", Offset: 0, Length: 6}})
		if err != nil || n != 9 {
			t.Fatalf("compose: got %d, %v; want 9, nil", n, err)
		}
		if got := get(t, b, "files/out"); got != "b1\na1\na2\n" {
			t.Fatalf("got %q, want %q", got, "b1\na1\na2\n")
		}
		// The new object stands alone: its parts can grow or go.
		mustAppend(t, b, "seg/a", 10, "more")
		if err := b.Delete(ctx, "seg/b"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, b, "files/out"); got != "b1\na1\na2\n" {
			t.Fatalf("after the parts changed: got %q, want %q", got, "b1\na1\na2\n")
		}
	})

	t.Run("Compose/Empty", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		if n, err := b.Compose(ctx, "files/none", nil); err != nil || n != 0 {
			t.Fatalf("compose: got %d, %v; want 0, nil", n, err)
		}
		if got := get(t, b, "files/none"); got != "" {
			t.Fatalf("got %q, want empty", got)
		}
	})

	// A whole object composed alone may be shared with the new one rather than copied;
	// either way the new object must not change: the old one no longer grows, and
	// deleting it leaves the new one whole.
	t.Run("Compose/Whole", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		mustAppend(t, b, "seg/w", 0, "w1\nw2\n")
		if n, err := b.Compose(ctx, "files/w", []sluice.Part{{Key: "seg/w", Offset: 0, Length: 6}}); err != nil || n != 6 {
			t.Fatalf("compose: got %d, %v; want 6, nil", n, err)
		}
		if err := b.Append(ctx, "seg/w", 6, []byte("late\n")); sluice.ErrorKind(err) != sluice.KindConflict {
			t.Errorf("append to a composed object: got %v, want kind conflict", err)
		}
		if err := b.Delete(ctx, "seg/w"); err != nil {
			t.Fatal(err)
		}
		if got := get(t, b, "files/w"); got != "w1\nw2\n" {
			t.Fatalf("got %q, want %q", got, "w1\nw2\n")
		}
		// The name is free again: a new object under it starts from nothing.
		mustAppend(t, b, "seg/w", 0, "new\n")
		if got := get(t, b, "files/w"); got != "w1\nw2\n" {
			t.Fatalf("after reusing the part's name: got %q, want %q", got, "w1\nw2\n")
		}
	})

	t.Run("Compose/Errors", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		mustAppend(t, b, "seg/e", 0, "abc")
		if _, err := b.Compose(ctx, "files/e", []sluice.Part{{Key: "seg/missing", Length: 1}}); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("missing part: got %v, want kind not_found", err)
		}
		if _, err := b.Compose(ctx, "files/e", []sluice.Part{{Key: "seg/e", Offset: 1, Length: 3}}); sluice.ErrorKind(err) != sluice.KindInvalid {
			t.Errorf("part past the end: got %v, want kind invalid", err)
		}
		if _, err := b.Get(ctx, "files/e"); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("after failed composes: got %v, want kind not_found", err)
		}
	})
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
