// Package blob holds the adapters of the sluice.Bucket interface: a local folder (the
// embedded default) and memory (tests). Azure Blob Storage joins them in the scale-out
// wave; every adapter passes the same suite in blobtest_test.go.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sluice-batch/sluice"
)

// Dir is a Bucket kept in a local folder. A key is a relative slash-separated path.
// Put writes a temporary file, syncs it and renames it into place, so a key holds
// either its old bytes or all of the new ones, even across kill -9 or power loss.
type Dir struct {
	root string
}

var _ sluice.Bucket = (*Dir)(nil)

// OpenDir opens (creating if needed) a Bucket rooted at the folder root.
func OpenDir(root string) (*Dir, error) {
	if err := os.MkdirAll(filepath.Join(root, ".tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("open bucket dir: %w", err)
	}
	// Temporary files of Puts cut off by a crash are never renamed; drop them.
	tmps, _ := filepath.Glob(filepath.Join(root, ".tmp", "*"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
	return &Dir{root: root}, nil
}

func (d *Dir) path(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("bad key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." || part == ".tmp" {
			return "", fmt.Errorf("bad key %q", key)
		}
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

// Put implements sluice.Bucket.
func (d *Dir) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	dst, err := d.path(key)
	if err != nil {
		return 0, err
	}
	tmp, err := os.CreateTemp(filepath.Join(d.root, ".tmp"), "put-*")
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.MkdirAll(filepath.Dir(dst), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return n, nil
}

// Get implements sluice.Bucket.
func (d *Dir) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, translate(key, err)
	}
	return f, nil
}

// GetRange implements sluice.Bucket.
func (d *Dir) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, translate(key, err)
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
}

// Delete implements sluice.Bucket.
func (d *Dir) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func translate(key string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return sluice.Errorf(sluice.KindNotFound, "No content is stored for %s.", key).WithErr(err)
	}
	return fmt.Errorf("open %s: %w", key, err)
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
