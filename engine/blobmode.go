package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

// Blob mode: a batch whose input is a blob and whose results go to a folder of blobs,
// in the storage accounts the configuration lists (Options.Blobs). The input is scanned
// at create, streamed from the blob, into a file row that records the blob's URL and
// ETag but keeps no bytes (the index goes to the bucket as for any file); dispatch reads
// each chunk's lines from the blob with If-Match on that ETag, so a changed input fails
// the batch with input_modified rather than mixing two files. The result files are made
// in the bucket as for any batch and then written to the folder, before the batch says
// it has ended.

// Blob-mode error codes, as the Azure OpenAI product names them.
const (
	codeInputModified      = "input_modified"
	codeInputNoPermissions = "input_no_permissions"
)

// checkBlobMode checks a blob-mode create's parameters.
func (e *Engine) checkBlobMode(c sluice.BatchCreate) error {
	switch {
	case e.opts.Blobs == nil:
		return sluice.Errorf(sluice.KindInvalid, "This server has no storage accounts configured, so input_blob and output_folder cannot be used; upload the file and give input_file_id.").WithParam("input_blob")
	case c.InputFileID != "" && c.InputBlob != "":
		return sluice.Errorf(sluice.KindInvalid, "Give input_file_id or input_blob, not both.").WithParam("input_blob")
	case c.InputBlob == "" && c.InputFileID == "":
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'input_blob'.").WithParam("input_blob")
	case c.OutputFolder == "":
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'output_folder'. A batch with input_blob writes its results to output_folder.url.").WithParam("output_folder")
	case len(c.OutputDelimiter) > 1:
		return sluice.Errorf(sluice.KindInvalid, "'output_folder.delimiter' must be one character; the default is '/'.").WithParam("output_folder.delimiter")
	}
	if c.InputBlob != "" {
		if err := e.opts.Blobs.Check(c.InputBlob); err != nil {
			return paramOf(err, "input_blob")
		}
	}
	if err := e.opts.Blobs.Check(c.OutputFolder); err != nil {
		return paramOf(err, "output_folder.url")
	}
	return nil
}

func paramOf(err error, param string) error {
	var se *sluice.Error
	if errors.As(err, &se) && se.Param == "" {
		c := *se
		c.Param = param
		return &c
	}
	return err
}

// blobError says, in the product's words, what a blob's error means for a batch.
func blobError(err error, blobURL string) error {
	switch sluice.ErrorKind(err) {
	case sluice.KindForbidden, sluice.KindNotFound:
		return sluice.Errorf(sluice.KindInvalid, "The blob %s cannot be read: it does not exist, or the configured credential may not read it.", blobURL).
			WithParam("input_blob").WithCode(codeInputNoPermissions).WithErr(err)
	case sluice.KindConflict:
		return sluice.Errorf(sluice.KindInvalid, "The blob %s changed while the batch read it.", blobURL).
			WithParam("input_blob").WithCode(codeInputModified).WithErr(err)
	case sluice.KindUnavailable:
		return sluice.Errorf(sluice.KindUnavailable, "Blob storage did not answer for %s; retry later.", blobURL).WithErr(err)
	}
	return err
}

// ingestBlob creates the unlisted file of a blob-mode batch's input: the blob is read
// once, as a stream, and scanned and indexed as an upload is, up to 1 GB.
func (e *Engine) ingestBlob(ctx context.Context, blobURL, project string) (*sluice.File, error) {
	size, etag, err := e.opts.Blobs.Stat(ctx, blobURL)
	if err != nil {
		e.log.WarnContext(ctx, "input blob", "blob", blobURL, "err", err)
		return nil, blobError(err, blobURL)
	}
	if size > sluice.MaxBlobInputBytes {
		return nil, sluice.Errorf(sluice.KindInvalid, "The blob %s holds %d bytes, more than the %d an input blob may.", blobURL, size, int64(sluice.MaxBlobInputBytes)).WithParam("input_blob")
	}
	f := &sluice.File{ID: sluice.NewFileID(), Project: sluice.ProjectName(project), CreatedAt: e.now().UTC().Truncate(time.Second), Filename: blobName(blobURL),
		Purpose: sluice.PurposeBatch, Status: sluice.FileStatusPending, Source: blobURL, SourceETag: etag}
	if err := e.store.CreateFile(ctx, f); err != nil {
		return nil, err
	}
	rc, err := e.readSource(ctx, f, 0, size)
	if err != nil {
		_ = e.store.DeleteFile(context.WithoutCancel(ctx), f.ID)
		return nil, err
	}
	defer rc.Close()
	return e.ingest(ctx, f, rc, sluice.MaxBlobInputBytes)
}

// readSource opens bytes of a file whose bytes are in a blob, if the blob is unchanged.
func (e *Engine) readSource(ctx context.Context, f *sluice.File, offset, length int64) (io.ReadCloser, error) {
	if e.opts.Blobs == nil {
		return nil, sluice.Errorf(sluice.KindUnavailable, "The file %s is read from blob storage, which this server is no longer configured for.", f.ID)
	}
	rc, err := e.opts.Blobs.ReadRange(ctx, f.Source, offset, length, f.SourceETag)
	if err != nil {
		return nil, blobError(err, f.Source)
	}
	return rc, nil
}

// ImportFile implements sluice.Service.
func (e *Engine) ImportFile(ctx context.Context, blobURL, filename, project string) (*sluice.File, error) {
	if e.opts.Blobs == nil {
		return nil, sluice.Errorf(sluice.KindInvalid, "This server has no storage accounts configured to import from.").WithParam("content_url")
	}
	if err := e.opts.Blobs.Check(blobURL); err != nil {
		return nil, paramOf(err, "content_url")
	}
	size, etag, err := e.opts.Blobs.Stat(ctx, blobURL)
	if err != nil {
		return nil, paramOf(blobError(err, blobURL), "content_url")
	}
	rc, err := e.opts.Blobs.ReadRange(ctx, blobURL, 0, size, etag)
	if err != nil {
		return nil, paramOf(blobError(err, blobURL), "content_url")
	}
	defer rc.Close()
	if filename == "" {
		filename = blobName(blobURL)
	}
	return e.UploadFile(ctx, sluice.FileUpload{Project: project, Filename: filename, Purpose: sluice.PurposeBatch, Body: rc})
}

// blobName is the last segment of a blob URL's path.
func blobName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return path.Base(u.Path)
}

// resultBlobs returns the URLs of a blob-mode batch's results: {folder}/{batch id}/
// results.jsonl and errors.jsonl, joined with the folder's delimiter.
func resultBlobs(b *sluice.Batch) (output, errs string) {
	d := b.OutputDelimiter
	if d == "" {
		d = "/"
	}
	base := strings.TrimSuffix(b.OutputFolder, d) + d + b.ID + d
	return base + "results.jsonl", base + "errors.jsonl"
}

// writeResultBlobs writes a finished blob-mode batch's result files to its folder: the
// output always, the errors when there are any. Each is written whole or not at all.
func (e *Engine) writeResultBlobs(ctx context.Context, b *sluice.Batch, files []*sluice.File) (output, errs string, err error) {
	output, errs = resultBlobs(b)
	for i, target := range []string{output, errs} {
		f := files[i]
		if i == 1 && f.Bytes == 0 {
			continue // errors.jsonl is written only when a line failed
		}
		rc, err := e.bucket.Get(ctx, sluice.FileKey(f.ID))
		if err != nil {
			return "", "", err
		}
		_, err = e.opts.Blobs.Write(ctx, target, rc)
		rc.Close()
		if err != nil {
			return "", "", fmt.Errorf("write %s: %w", target, err)
		}
	}
	return output, errs, nil
}

// inputFailure returns the code of an error reading a batch's input that ends the
// batch (its blob changed, or may no longer be read), or "".
func inputFailure(err error) string {
	var se *sluice.Error
	if errors.As(err, &se) && (se.Code == codeInputModified || se.Code == codeInputNoPermissions) {
		return se.Code
	}
	return ""
}

// failInput ends a running batch whose input can no longer be read as it was: it stops
// as a cancel does, keeping the lines that finished, and ends as failed with the error.
func (e *Engine) failInput(ctx context.Context, batchID, code string, err error) {
	now := e.now().UTC()
	msg := sluice.ErrorMessage(err)
	_, uerr := e.store.UpdateBatch(context.WithoutCancel(ctx), batchID, sluice.BatchUpdate{
		IfStatus: []sluice.Status{sluice.StatusInProgress}, Status: sluice.Ptr(sluice.StatusCancelling), CancellingAt: &now,
		Errors: []sluice.BatchError{{Code: code, Message: msg, Param: "input_blob"}},
	})
	if uerr == nil {
		e.log.ErrorContext(ctx, "batch input can no longer be read; failing the batch", "batch_id", batchID, "code", code, "err", err)
		e.Notify()
	}
}
