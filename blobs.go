package sluice

import (
	"context"
	"io"
)

// MaxBlobInputBytes is the largest input blob of a blob-mode batch, 1 GB.
const MaxBlobInputBytes = 1 << 30

// Blobs reads the inputs of blob-mode batches and writes their results, in the storage
// accounts the configuration lists and nowhere else. URLs are blob URLs, of either
// style: https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH, or the emulator's
// http://HOST:PORT/ACCOUNT/CONTAINER/PATH.
//
// A URL on an account that is not configured is refused with KindInvalid, naming the
// allowed accounts, before anything is sent. A blob the credential may not read, or
// that does not exist, is KindForbidden; a blob whose ETag is not the one given is
// KindConflict; storage that does not answer is KindUnavailable.
type Blobs interface {
	// Check refuses a URL that is not on a configured account.
	Check(url string) error
	// Stat returns the size and ETag of the blob at url.
	Stat(ctx context.Context, url string) (size int64, etag string, err error)
	// ReadRange opens length bytes of the blob at url from offset, if its ETag is
	// still etag.
	ReadRange(ctx context.Context, url string, offset, length int64, etag string) (io.ReadCloser, error)
	// Write stores what r yields as the blob at url, whole or not at all.
	Write(ctx context.Context, url string, r io.Reader) (int64, error)
}
