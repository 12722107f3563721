package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

// BatchResults implements sluice.Service. A batch's output (or error) lines are, while
// it runs, its extents in commit order, and once it has ended, its file, which is
// those same extents composed in the same order: so a byte offset into them means the
// same thing before and after the batch ends, and a reader can resume across the end.
func (e *Engine) BatchResults(ctx context.Context, id string, succeeded bool, offset int64) (io.ReadCloser, int64, error) {
	b, err := e.store.FindBatchByID(ctx, id)
	if err != nil {
		return nil, 0, err
	}
	if offset < 0 {
		return nil, 0, sluice.Errorf(sluice.KindInvalid, "The cursor's offsets must not be negative.").WithParam("cursor")
	}
	if b.Status.Terminal() {
		return e.fileResults(ctx, b, succeeded, offset)
	}
	var parts []sluice.Part
	var end int64
	err = e.store.EachExtent(ctx, id, succeeded, func(x sluice.Extent) error {
		end += x.Length
		if n := len(parts); n > 0 && parts[n-1].Key == x.Segment && parts[n-1].Offset+parts[n-1].Length == x.Offset {
			parts[n-1].Length += x.Length
			return nil
		}
		parts = append(parts, sluice.Part{Key: x.Segment, Offset: x.Offset, Length: x.Length})
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if offset >= end {
		return io.NopCloser(eofReader{}), max(offset, end), nil
	}
	return &extentReader{ctx: ctx, e: e, batchID: id, succeeded: succeeded, parts: parts, pos: offset, end: end}, end, nil
}

// fileResults reads an ended batch's output or error file from offset.
func (e *Engine) fileResults(ctx context.Context, b *sluice.Batch, succeeded bool, offset int64) (io.ReadCloser, int64, error) {
	fileID := b.ErrorFileID
	if succeeded {
		fileID = b.OutputFileID
	}
	if fileID == "" { // failed in validation: it has no results
		return io.NopCloser(eofReader{}), offset, nil
	}
	f, err := e.store.FindFileByID(ctx, fileID)
	if sluice.ErrorKind(err) == sluice.KindNotFound {
		return nil, 0, sluice.Errorf(sluice.KindNotFound, "The results of %s were in %s, which has been deleted.", b.ID, fileID)
	}
	if err != nil {
		return nil, 0, err
	}
	if offset >= f.Bytes {
		return io.NopCloser(eofReader{}), max(offset, f.Bytes), nil
	}
	rc, err := e.bucket.GetRange(ctx, sluice.FileKey(fileID), offset, f.Bytes-offset)
	if err != nil {
		return nil, 0, err
	}
	return rc, f.Bytes, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// extentReader reads a running batch's result lines from its segments, part after
// part. Should the batch end meanwhile and its segments go, it goes on from the file
// the batch ended with, at the same offset.
type extentReader struct {
	ctx       context.Context
	e         *Engine
	batchID   string
	succeeded bool
	parts     []sluice.Part
	pos, end  int64 // pos counts from the start of all parts
	skipped   int64 // bytes of parts[0:] already passed over
	cur       io.ReadCloser
}

func (r *extentReader) Read(p []byte) (int, error) {
	for {
		if r.pos >= r.end {
			return 0, io.EOF
		}
		if r.cur == nil {
			if err := r.open(); err != nil {
				return 0, err
			}
		}
		n, err := r.cur.Read(p[:min(int64(len(p)), r.end-r.pos)])
		r.pos += int64(n)
		if errors.Is(err, io.EOF) {
			r.cur.Close()
			r.cur, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

// open opens the part that holds r.pos, or the ended batch's file from r.pos.
func (r *extentReader) open() error {
	for len(r.parts) > 0 && r.skipped+r.parts[0].Length <= r.pos {
		r.skipped += r.parts[0].Length
		r.parts = r.parts[1:]
	}
	if len(r.parts) > 0 {
		p := r.parts[0]
		in := r.pos - r.skipped
		rc, err := r.e.bucket.GetRange(r.ctx, p.Key, p.Offset+in, min(p.Length-in, r.end-r.pos))
		if err == nil {
			r.cur = rc
			return nil
		}
		if sluice.ErrorKind(err) != sluice.KindNotFound {
			return err
		}
	}
	// The segment is gone: the batch has ended and its file holds these bytes.
	b, err := r.e.store.FindBatchByID(r.ctx, r.batchID)
	if err != nil {
		return err
	}
	if !b.Status.Terminal() {
		return fmt.Errorf("results of %s: a segment is missing while the batch is %s", r.batchID, b.Status)
	}
	rc, _, err := r.e.fileResults(r.ctx, b, r.succeeded, r.pos)
	if err != nil {
		return err
	}
	r.cur, r.parts = rc, nil
	return nil
}

func (r *extentReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// RetryBatch implements sluice.Service: a new batch of the lines of an ended batch that
// did not succeed, read from its input file in their order, with the same endpoint,
// metadata (plus retry_of) and settings.
func (e *Engine) RetryBatch(ctx context.Context, id string, which sluice.RetryLines) (*sluice.Batch, *sluice.Admission, error) {
	b, err := e.store.FindBatchByID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	switch {
	case !b.Status.Terminal():
		return nil, nil, sluice.Errorf(sluice.KindConflict, "The batch %s is %s; retry it once it has ended, or cancel it first.", id, b.Status)
	case b.OutputFileID == "":
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The batch %s failed before any line ran: fix its input and create a new batch.", id)
	}
	switch which {
	case "", sluice.RetryFailed, sluice.RetryUnfinished:
	default:
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "Invalid value for 'lines': %q. Use 'failed', 'unfinished', or neither for both.", which).WithParam("lines")
	}
	meta := maps.Clone(b.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	meta["retry_of"] = b.ID
	if err := validateMetadata(meta); err != nil {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The batch's metadata has no room for retry_of: %s", sluice.ErrorMessage(err)).WithParam("metadata")
	}
	done, err := e.customIDs(ctx, b.OutputFileID)
	if err != nil {
		return nil, nil, err
	}
	var failed map[string]bool
	if which != "" {
		if failed, err = e.customIDs(ctx, b.ErrorFileID); err != nil {
			return nil, nil, err
		}
	}
	want := func(id string) bool {
		switch which {
		case sluice.RetryFailed:
			return failed[id]
		case sluice.RetryUnfinished:
			return !done[id] && !failed[id]
		}
		return !done[id]
	}
	_, in, err := e.FileContent(ctx, b.InputFileID)
	if sluice.ErrorKind(err) == sluice.KindNotFound {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The input file %s of %s has been deleted; nothing to retry from.", b.InputFileID, id)
	}
	if err != nil {
		return nil, nil, err
	}
	pr, pw := io.Pipe()
	picked := 0
	go func() {
		defer in.Close()
		br := bufio.NewReaderSize(in, 256<<10)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				if cid, ok := lineCustomID(line); ok && want(cid) {
					picked++
					if len(line) > 0 && line[len(line)-1] != '\n' {
						line = append(line, '\n')
					}
					if _, werr := pw.Write(line); werr != nil {
						return
					}
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				pw.CloseWithError(err)
				return
			}
		}
	}()
	f, err := e.UploadFile(ctx, sluice.FileUpload{Project: b.Project, Filename: b.ID + "_retry.jsonl", Purpose: sluice.PurposeBatch, Body: pr})
	pr.Close()
	if err != nil {
		return nil, nil, err
	}
	if picked == 0 {
		_ = e.DeleteFile(context.WithoutCancel(ctx), f.ID)
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The batch %s has no lines to retry.", id)
	}
	nb, a, err := e.CreateBatch(ctx, sluice.BatchCreate{Project: b.Project, InputFileID: f.ID, Endpoint: b.Endpoint, CompletionWindow: b.CompletionWindow,
		Metadata: meta, OutputExpiresAfter: b.OutputExpiresAfter, WindowPolicy: b.WindowPolicy})
	if err != nil {
		_ = e.DeleteFile(context.WithoutCancel(ctx), f.ID)
		return nil, a, err
	}
	return nb, a, nil
}

// customIDs returns the custom_ids of a result file's lines.
func (e *Engine) customIDs(ctx context.Context, fileID string) (map[string]bool, error) {
	ids := make(map[string]bool)
	if fileID == "" {
		return ids, nil
	}
	_, rc, err := e.FileContent(ctx, fileID)
	if sluice.ErrorKind(err) == sluice.KindNotFound {
		return nil, sluice.Errorf(sluice.KindInvalid, "The result file %s has been deleted; without it the lines to retry are not known.", fileID)
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	for {
		line, err := br.ReadBytes('\n')
		if cid, ok := lineCustomID(line); ok {
			ids[cid] = true
		}
		if errors.Is(err, io.EOF) {
			return ids, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// lineCustomID returns the custom_id of a request or result line.
func lineCustomID(line []byte) (string, bool) {
	var id string
	if json.Unmarshal(jsonl.Field(line, "custom_id"), &id) != nil || id == "" {
		return "", false
	}
	return id, true
}
