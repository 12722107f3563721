// Package blob holds the adapters of the sluice.Bucket interface: a local folder (the
// embedded default) and memory (tests). Azure Blob Storage is in blob/azure; every
// adapter passes the same suite, blobtest.Run.
package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"github.com/sluice-batch/sluice"
)

// Dir is a Bucket kept in a local folder. A key is a relative slash-separated path.
// Put writes a temporary file, syncs it and renames it into place, so a key holds
// either its old bytes or all of the new ones, even across kill -9 or power loss.
type Dir struct {
	root string
	// grow is held by Append from its size check to its sync, and by Compose's link
	// from its size check to the link, so no byte is appended to a file after it is
	// linked into a composed one.
	grow sync.Mutex
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
	w := &syncingWriter{f: tmp}
	bp := copyBufs.Get().(*[]byte)
	n, err := io.CopyBuffer(w, ctxReader{ctx, r}, *bp)
	copyBufs.Put(bp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.place(tmp.Name(), dst)
	}
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return n, nil
}

// copyBufs hold Put's copy buffers: large, so that a 200 MB upload is hundreds of
// writes, not thousands.
var copyBufs = sync.Pool{New: func() any {
	b := make([]byte, 1<<20)
	return &b
}}

// syncingWriter writes to a file and starts the write-back of every 8 MiB as it goes,
// so the disk works while the copy goes on and the sync at the end has little left.
type syncingWriter struct {
	f       *os.File
	written int64
	started int64 // bytes whose write-back was started
}

func (w *syncingWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.started >= 8<<20 {
		startWriteback(w.f, w.started, w.written-w.started)
		w.started = w.written
	}
	return n, err
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

// Append implements sluice.Bucket. The bytes are written at offset and synced before it
// returns; a new object's folder entry is synced too, so a power loss cannot lose a
// segment whose extents the store has recorded.
func (d *Dir) Append(ctx context.Context, key string, offset int64, p []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dst, err := d.path(key)
	if err != nil {
		return err
	}
	d.grow.Lock()
	defer d.grow.Unlock()
	flag := os.O_WRONLY
	if offset == 0 {
		flag |= os.O_CREATE
	}
	f, err := os.OpenFile(dst, flag, 0o600)
	if errors.Is(err, fs.ErrNotExist) && offset == 0 {
		if err = d.mkdirAll(filepath.Dir(dst)); err == nil {
			f, err = os.OpenFile(dst, flag, 0o600)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return sluice.Errorf(sluice.KindConflict, "The object %s is gone; it cannot grow.", key).WithErr(err)
	}
	if err != nil {
		return fmt.Errorf("append %s: %w", key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("append %s: %w", key, err)
	}
	if size := fi.Size(); size != offset {
		return sluice.Errorf(sluice.KindConflict, "The object %s holds %d bytes, not %d; it cannot grow from there.", key, size, offset)
	}
	if shared(fi) {
		return sluice.Errorf(sluice.KindConflict, "The object %s was composed into another; it cannot grow.", key)
	}
	if _, err := f.WriteAt(p, offset); err != nil {
		return fmt.Errorf("append %s: %w", key, err)
	}
	if err := fdatasync(f); err != nil {
		return fmt.Errorf("append %s: %w", key, err)
	}
	if offset == 0 {
		if err := syncDir(filepath.Dir(dst)); err != nil {
			return fmt.Errorf("append %s: %w", key, err)
		}
	}
	return nil
}

// Compose implements sluice.Bucket. When the parts are one whole object, the new key is
// a hard link to it: no byte is copied, and Append refuses to grow a linked object, so
// the new object cannot change. Otherwise the ranges are copied, in the kernel where it
// can (copy_file_range), synced, and renamed into place.
func (d *Dir) Compose(ctx context.Context, key string, parts []sluice.Part) (int64, error) {
	dst, err := d.path(key)
	if err != nil {
		return 0, err
	}
	if len(parts) == 1 {
		if n, ok, err := d.link(parts[0], dst); ok || err != nil {
			return n, err
		}
	}
	tmp, err := os.CreateTemp(filepath.Join(d.root, ".tmp"), "compose-*")
	if err != nil {
		return 0, fmt.Errorf("compose %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	var n int64
	for _, p := range parts {
		m, err := d.copyPart(ctx, tmp, p)
		n += m
		if err != nil {
			tmp.Close()
			return 0, err
		}
	}
	err = tmp.Sync()
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.place(tmp.Name(), dst)
	}
	if err != nil {
		return 0, fmt.Errorf("compose %s: %w", key, err)
	}
	return n, nil
}

// link makes dst a hard link to the object of p when p covers all of it, and reports
// whether it did.
func (d *Dir) link(p sluice.Part, dst string) (int64, bool, error) {
	src, err := d.path(p.Key)
	if err != nil {
		return 0, false, err
	}
	d.grow.Lock()
	defer d.grow.Unlock()
	fi, err := os.Stat(src)
	if err != nil {
		return 0, false, translate(p.Key, err)
	}
	if p.Offset != 0 || p.Length != fi.Size() || !canLink {
		return 0, false, nil
	}
	tmp := filepath.Join(d.root, ".tmp", "link-"+filepath.Base(dst)+"-"+randomSuffix())
	if err := os.Link(src, tmp); err != nil {
		return 0, false, nil // a folder that cannot link copies instead
	}
	err = d.place(tmp, dst)
	// When dst is already a link to the same file (a compose repeated after a crash),
	// the rename does nothing and leaves tmp; it goes either way.
	if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return 0, false, fmt.Errorf("compose %s: %w", p.Key, err)
	}
	return fi.Size(), true, nil
}

// place renames tmp to dst, creating dst's folder, and syncs the folder, so the new
// name survives a power loss.
func (d *Dir) place(tmp, dst string) error {
	if err := d.mkdirAll(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dst))
}

// copyPart appends the bytes of p to w.
func (d *Dir) copyPart(ctx context.Context, w *os.File, p sluice.Part) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	src, err := d.path(p.Key)
	if err != nil {
		return 0, err
	}
	f, err := os.Open(src)
	if err != nil {
		return 0, translate(p.Key, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("compose from %s: %w", p.Key, err)
	}
	if p.Offset < 0 || p.Length < 0 || p.Offset+p.Length > fi.Size() {
		return 0, sluice.Errorf(sluice.KindInvalid, "The range %d+%d reaches past the %d bytes of %s.", p.Offset, p.Length, fi.Size(), p.Key)
	}
	if _, err := f.Seek(p.Offset, io.SeekStart); err != nil {
		return 0, fmt.Errorf("compose from %s: %w", p.Key, err)
	}
	// A *os.File reading from an *io.LimitedReader of a *os.File copies in the kernel.
	n, err := w.ReadFrom(&io.LimitedReader{R: f, N: p.Length})
	if err == nil && n != p.Length {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, fmt.Errorf("compose from %s: %w", p.Key, err)
	}
	return n, nil
}

// mkdirAll creates dir and the folders above it that are missing, and syncs the folder
// above each one it creates, so that a new folder's name is as durable as its files.
func (d *Dir) mkdirAll(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir && len(parent) >= len(d.root) {
		if err := d.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// syncDir makes the entries of a folder durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && runtime.GOOS != "windows" {
		return err
	}
	return nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
