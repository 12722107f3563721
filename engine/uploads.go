package engine

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/sluice-batch/sluice"
)

// CreateUpload implements sluice.Service.
func (e *Engine) CreateUpload(ctx context.Context, c sluice.UploadCreate) (*sluice.Upload, error) {
	switch {
	case c.Filename == "":
		return nil, sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'filename'.").WithParam("filename")
	case c.MimeType == "":
		return nil, sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'mime_type'.").WithParam("mime_type")
	case c.Bytes <= 0:
		return nil, sluice.Errorf(sluice.KindInvalid, "'bytes' must be the size of the file, a positive number of bytes.").WithParam("bytes")
	case c.Bytes > e.opts.MaxFileBytes:
		return nil, sluice.Errorf(sluice.KindInvalid, "'bytes' is %d, larger than the %d byte limit for batch input files.",
			c.Bytes, e.opts.MaxFileBytes).WithParam("bytes")
	}
	if c.TTL <= 0 {
		c.TTL = sluice.UploadTTLOpenAI
	}
	now := e.now().UTC().Truncate(time.Second)
	u := &sluice.Upload{
		ID: sluice.NewUploadID(), Project: sluice.ProjectName(c.Project), CreatedAt: now, ExpiresAt: now.Add(c.TTL),
		Filename: c.Filename, Purpose: sluice.PurposeBatch, Bytes: c.Bytes, MimeType: c.MimeType,
		Status: sluice.UploadPending, FileExpiresAfter: c.FileExpiresAfter,
	}
	if err := e.store.CreateUpload(ctx, u); err != nil {
		return nil, err
	}
	return u, nil
}

// pendingUpload returns the upload id if it can still change, and an error in the API's
// words otherwise.
func (e *Engine) pendingUpload(ctx context.Context, id, doing string) (*sluice.Upload, error) {
	u, err := e.store.FindUploadByID(ctx, id)
	if sluice.ErrorKind(err) == sluice.KindNotFound {
		return nil, sluice.Errorf(sluice.KindNotFound, "No upload with id %q; uploads are deleted once they expire.", id).WithParam("upload_id")
	}
	if err != nil {
		return nil, err
	}
	if s := u.StatusAt(e.now()); s != sluice.UploadPending {
		return nil, sluice.Errorf(sluice.KindConflict, "Cannot %s: the upload %s is %s.", doing, id, s)
	}
	return u, nil
}

// AddUploadPart implements sluice.Service. The part is recorded before its bytes are
// stored, so that whatever happens its object goes with the upload.
func (e *Engine) AddUploadPart(ctx context.Context, uploadID string, body io.Reader) (*sluice.UploadPart, error) {
	u, err := e.pendingUpload(ctx, uploadID, "add a part")
	if err != nil {
		return nil, err
	}
	p := &sluice.UploadPart{ID: sluice.NewPartID(), UploadID: u.ID, CreatedAt: e.now().UTC().Truncate(time.Second)}
	if err := e.store.AddUploadPart(ctx, p); err != nil {
		return nil, err
	}
	limit := min(int64(sluice.MaxPartBytes), u.Bytes)
	limited := &limitReader{r: body, n: limit}
	n, err := e.bucket.Put(ctx, sluice.UploadPartKey(u.ID, p.ID), limited)
	if err != nil {
		if limited.over {
			return nil, sluice.Errorf(sluice.KindTooLarge, "The part is larger than %d bytes, the most a part of this upload may hold.", limit).WithParam("data")
		}
		return nil, fmt.Errorf("store part %s of %s: %w", p.ID, u.ID, err)
	}
	if err := e.store.FinishUploadPart(ctx, u.ID, p.ID, n); err != nil {
		_ = e.bucket.Delete(context.WithoutCancel(ctx), sluice.UploadPartKey(u.ID, p.ID))
		if sluice.ErrorKind(err) == sluice.KindConflict {
			return nil, sluice.Errorf(sluice.KindInvalid, "%s", sluice.ErrorMessage(err)).WithParam("data")
		}
		return nil, err
	}
	p.Bytes = n
	return p, nil
}

// CompleteUpload implements sluice.Service. The parts are read in the order given and
// go through the same streaming store and scan as a direct upload, checked against md5
// as they pass, so the file is never held in memory.
func (e *Engine) CompleteUpload(ctx context.Context, uploadID string, partIDs []string, sum string) (*sluice.Upload, *sluice.File, error) {
	u, err := e.pendingUpload(ctx, uploadID, "complete the upload")
	if err != nil {
		return nil, nil, err
	}
	var want []byte
	if sum != "" {
		if want = parseMD5(sum); want == nil {
			return nil, nil, sluice.Errorf(sluice.KindInvalid, "'md5' must be the MD5 checksum of the file, as 32 hex digits or in base64.").WithParam("md5")
		}
	}
	parts, err := e.store.FindUploadParts(ctx, u.ID)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[string]*sluice.UploadPart, len(parts))
	for _, p := range parts {
		byID[p.ID] = p
	}
	if len(partIDs) == 0 {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "'part_ids' must list the upload's parts in order.").WithParam("part_ids")
	}
	var total int64
	seen := make(map[string]bool, len(partIDs))
	for i, id := range partIDs {
		p := byID[id]
		switch {
		case p == nil:
			return nil, nil, sluice.Errorf(sluice.KindInvalid, "'part_ids[%d]': %q is not a part of the upload %s.", i, id, u.ID).WithParam("part_ids")
		case p.Bytes < 0:
			return nil, nil, sluice.Errorf(sluice.KindInvalid, "'part_ids[%d]': the part %s has not finished arriving.", i, id).WithParam("part_ids")
		case seen[id]:
			return nil, nil, sluice.Errorf(sluice.KindInvalid, "'part_ids[%d]': the part %s is listed twice.", i, id).WithParam("part_ids")
		}
		seen[id] = true
		total += p.Bytes
	}
	if total != u.Bytes {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The parts listed hold %d bytes; the upload was created for %d.", total, u.Bytes).WithParam("part_ids")
	}
	r := &partsReader{ctx: ctx, bucket: e.bucket, upload: u.ID, parts: partIDs, md5: md5.New(), want: want}
	defer r.close()
	f, err := e.UploadFile(ctx, sluice.FileUpload{Project: u.Project, Filename: u.Filename, Purpose: u.Purpose, Body: r})
	if err != nil {
		return nil, nil, err
	}
	bg := context.WithoutCancel(ctx)
	if u.FileExpiresAfter > 0 {
		if f, err = e.store.UpdateFile(bg, f.ID, sluice.FileUpdate{ExpiresAt: sluice.Ptr(f.CreatedAt.Add(time.Duration(u.FileExpiresAfter) * time.Second))}); err != nil {
			_ = e.DeleteFile(bg, f.ID)
			return nil, nil, err
		}
	}
	u, err = e.store.UpdateUpload(bg, u.ID, sluice.UploadUpdate{IfStatus: sluice.UploadPending,
		Status: sluice.Ptr(sluice.UploadCompleted), FileID: &f.ID})
	if err != nil {
		// Cancelled, or completed by another request, while the parts were read.
		_ = e.DeleteFile(bg, f.ID)
		if sluice.ErrorKind(err) == sluice.KindConflict {
			return nil, nil, sluice.Errorf(sluice.KindConflict, "Cannot complete the upload: %s", sluice.ErrorMessage(err))
		}
		return nil, nil, err
	}
	_ = e.deleteParts(bg, u.ID) // what is left goes with the upload at its expiry
	return u, f, nil
}

// CancelUpload implements sluice.Service.
func (e *Engine) CancelUpload(ctx context.Context, uploadID string) (*sluice.Upload, error) {
	if _, err := e.pendingUpload(ctx, uploadID, "cancel the upload"); err != nil {
		return nil, err
	}
	u, err := e.store.UpdateUpload(ctx, uploadID, sluice.UploadUpdate{IfStatus: sluice.UploadPending, Status: sluice.Ptr(sluice.UploadCancelled)})
	if err != nil {
		if sluice.ErrorKind(err) == sluice.KindConflict {
			return nil, sluice.Errorf(sluice.KindConflict, "Cannot cancel the upload: %s", sluice.ErrorMessage(err))
		}
		return nil, err
	}
	_ = e.deleteParts(context.WithoutCancel(ctx), u.ID)
	return u, nil
}

// deleteParts deletes the bytes of an upload's parts; their rows go with the upload.
// A failure leaves the bytes for the sweep.
func (e *Engine) deleteParts(ctx context.Context, uploadID string) error {
	parts, err := e.store.FindUploadParts(ctx, uploadID)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := e.bucket.Delete(ctx, sluice.UploadPartKey(uploadID, p.ID)); err != nil {
			return err
		}
	}
	return nil
}

// sweepUploads deletes the uploads past their expires_at, with their parts: those never
// completed, which have expired, and those done with.
func (e *Engine) sweepUploads(ctx context.Context, now time.Time) error {
	for {
		ups, err := e.store.FindUploads(ctx, now, 100)
		if err != nil {
			return err
		}
		for _, u := range ups {
			if err := e.deleteParts(ctx, u.ID); err != nil {
				return err
			}
			if err := e.store.DeleteUpload(ctx, u.ID); err != nil {
				return err
			}
			if u.Status == sluice.UploadPending {
				e.log.InfoContext(ctx, "upload expired", "upload_id", u.ID)
			}
		}
		if len(ups) < 100 {
			return nil
		}
	}
}

// parseMD5 reads an MD5 checksum written as 32 hex digits or in base64; nil if it is
// neither.
func parseMD5(s string) []byte {
	if b, err := hex.DecodeString(s); err == nil && len(b) == md5.Size {
		return b
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == md5.Size {
		return b
	}
	return nil
}

// partsReader reads an upload's parts one after another from the bucket, hashing what
// it reads; at the end, a checksum that does not match is an error rather than EOF, so
// that nothing is stored.
type partsReader struct {
	ctx    context.Context
	bucket sluice.Bucket
	upload string
	parts  []string
	cur    io.ReadCloser
	md5    hash.Hash
	want   []byte
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.cur == nil {
			if len(r.parts) == 0 {
				if r.want != nil && !bytes.Equal(r.md5.Sum(nil), r.want) {
					return 0, sluice.Errorf(sluice.KindInvalid, "The parts' MD5 checksum is %x, not the %x given: the file was not stored.",
						r.md5.Sum(nil), r.want).WithParam("md5")
				}
				return 0, io.EOF
			}
			rc, err := r.bucket.Get(r.ctx, sluice.UploadPartKey(r.upload, r.parts[0]))
			if err != nil {
				return 0, fmt.Errorf("read part %s: %w", r.parts[0], err)
			}
			r.cur, r.parts = rc, r.parts[1:]
		}
		n, err := r.cur.Read(p)
		r.md5.Write(p[:n])
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur = nil
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (r *partsReader) close() {
	if r.cur != nil {
		r.cur.Close()
	}
}
