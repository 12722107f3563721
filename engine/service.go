package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
	"github.com/sluice-batch/sluice/tokens"
)

var _ sluice.Service = (*Engine)(nil)

// UploadFile implements sluice.Service. The bytes stream to the bucket while a second
// goroutine scans them and streams the line index to the bucket too, so the file is read
// once, on two cores, and neither it nor its index is ever held in memory.
func (e *Engine) UploadFile(ctx context.Context, up sluice.FileUpload) (*sluice.File, error) {
	if up.Purpose == "" {
		up.Purpose = sluice.PurposeBatch
	}
	f := &sluice.File{
		ID:        sluice.NewFileID(),
		Project:   sluice.ProjectName(up.Project),
		CreatedAt: e.now().UTC().Truncate(time.Second),
		Filename:  up.Filename,
		Purpose:   up.Purpose,
		Status:    sluice.FileStatusPending,
	}
	if err := e.store.CreateFile(ctx, f); err != nil {
		return nil, err
	}
	return e.ingest(ctx, f, up.Body, e.opts.MaxFileBytes)
}

// ingest stores (unless the file's bytes are in a blob: f.Source) and scans the bytes
// of the pending file f, at most limit of them, and marks it processed with its scan.
func (e *Engine) ingest(ctx context.Context, f *sluice.File, body io.Reader, limit int64) (*sluice.File, error) {
	// The bytes are stored once Put returns: from there on, finish the row even if the
	// client has gone away, or it would stay pending until the next start.
	bg := context.WithoutCancel(ctx)
	index := newIndexSink(bg, e.bucket, sluice.IndexKey(f.ID))
	count := newLineCounter(e.counterFor)
	// The scanner does not wait for the counts: its entries queue up for a goroutine that
	// takes each line's count, in line order, and adds the entry to the index. The queue
	// is bounded, and so is how far the counter runs ahead (see scanTee).
	var (
		entries   = make(chan indexItem, entryQueue)
		indexed   = make(chan struct{})
		indexErr  error       // the index's failure, set before failed
		failed    atomic.Bool // the index failed: the scan stops
		tokens    int64
		imageLine int
		bodyBad   []sluice.BatchError // lines whose body lacks what its endpoint needs
	)
	go func() {
		defer close(indexed)
		for it := range entries {
			if it.mark {
				count.forget(it.through)
				continue
			}
			en := it.entry
			c := count.wait(en.Line)
			switch {
			case failed.Load():
				continue
			case c.bad != nil:
				if len(bodyBad) < sluice.MaxBatchErrors {
					bodyBad = append(bodyBad, bodyProblem(en.Line, c.bad))
				}
				continue // the file is unusable: its index is dropped
			}
			en.Tokens = int(c.tokens)
			tokens += int64(en.Tokens)
			if c.images && imageLine == 0 {
				imageLine = en.Line
			}
			if err := index.add(en); err != nil {
				indexErr = err
				failed.Store(true)
			}
		}
	}()
	scan := jsonl.NewScanner(&jsonl.ScanOptions{MaxRequests: e.opts.MaxRequests, EntryFunc: func(en jsonl.Entry) error {
		if failed.Load() {
			return indexErr
		}
		entries <- indexItem{entry: en}
		return nil
	}})
	limited := &limitReader{r: body, n: limit}
	// After each chunk, the lines the scanner finished will not be asked for again.
	tee := newScanTee(limited, scan, count, func(lines int) { entries <- indexItem{mark: true, through: lines} })
	var (
		n   int64
		err error
	)
	if f.Source == "" {
		n, err = e.bucket.Put(ctx, sluice.FileKey(f.ID), tee)
	} else {
		n, err = io.CopyBuffer(io.Discard, tee, make([]byte, 1<<20))
	}
	sum, scanErr := tee.finish()
	close(entries)
	<-indexed
	if scanErr == nil && indexErr != nil {
		scanErr = indexErr
	}
	if err != nil {
		index.abort()
		_ = e.store.DeleteFile(bg, f.ID)
		if limited.over {
			return nil, sluice.Errorf(sluice.KindTooLarge, "The file is larger than the %d byte limit for batch input files.", limit).WithParam("file")
		}
		if sluice.ErrorKind(err) != sluice.KindInternal {
			return nil, err
		}
		return nil, fmt.Errorf("store upload %s: %w", f.ID, err)
	}
	sum.Problems = mergeProblems(sum.Problems, bodyBad)
	fs := &sluice.FileScan{Requests: sum.Requests, URL: sum.URL, Model: sum.Model, Problems: sum.Problems,
		URLLine: sum.URLLine, ModelLine: sum.ModelLine}
	if len(sum.Problems) == 0 && scanErr == nil {
		size, err := index.finish()
		if err != nil {
			return nil, e.failUpload(ctx, f.ID, err)
		}
		fs.Indexed, fs.IndexBytes, fs.FirstLine = true, size, index.first
		fs.Tokens, fs.Encoding, fs.ImageLine = tokens, count.encoding(), imageLine
	} else {
		index.abort()
		if scanErr != nil {
			return nil, e.failUpload(ctx, f.ID, scanErr)
		}
		fs.FirstLine = sum.Problems[0].Line
	}
	upd := sluice.FileUpdate{Bytes: &n, Status: sluice.Ptr(sluice.FileStatusProcessed), Scan: fs}
	done, err := e.store.UpdateFile(bg, f.ID, upd)
	if err != nil {
		return nil, e.failUpload(ctx, f.ID, err)
	}
	return done, nil
}

// indexItem is what the scanner hands the index: a request line's entry, or a mark
// that no entry for a line up to through follows.
type indexItem struct {
	entry   jsonl.Entry
	mark    bool
	through int
}

// failUpload marks a file whose upload could not be completed, and returns err.
func (e *Engine) failUpload(ctx context.Context, id string, err error) error {
	ctx = context.WithoutCancel(ctx)
	e.log.ErrorContext(ctx, "upload failed", "file_id", id, "err", err)
	_, _ = e.store.UpdateFile(ctx, id, sluice.FileUpdate{
		Status:        sluice.Ptr(sluice.FileStatusError),
		StatusDetails: sluice.Ptr("The upload could not be stored; upload the file again."),
	})
	return err
}

// limitReader fails a read past n bytes and remembers that it did.
type limitReader struct {
	r    io.Reader
	n    int64
	over bool
}

var errTooLarge = errors.New("upload over the size limit")

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		l.over = true
		return n, errTooLarge
	}
	return n, err
}

// DeleteFile implements sluice.Service.
func (e *Engine) DeleteFile(ctx context.Context, id string) error {
	if err := e.store.DeleteFile(ctx, id); err != nil {
		return err
	}
	// The row is gone, so the bytes are unreachable; a failure here leaves garbage only.
	for _, key := range []string{sluice.FileKey(id), sluice.IndexKey(id)} {
		if err := e.bucket.Delete(ctx, key); err != nil {
			e.log.WarnContext(ctx, "delete file bytes", "file_id", id, "err", err)
		}
	}
	return nil
}

// FileContent implements sluice.Service.
func (e *Engine) FileContent(ctx context.Context, id string) (*sluice.File, io.ReadCloser, error) {
	f, err := e.store.FindFileByID(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	switch f.Status {
	case sluice.FileStatusPending:
		return nil, nil, sluice.Errorf(sluice.KindConflict, "The file %s is still being uploaded.", id)
	case sluice.FileStatusError:
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The file %s has no content: %s", id, f.StatusDetails).WithParam("file_id")
	}
	if f.Source != "" {
		rc, err := e.readSource(ctx, f, 0, f.Bytes)
		if err != nil {
			return nil, nil, err
		}
		return f, rc, nil
	}
	rc, err := e.bucket.Get(ctx, sluice.FileKey(id))
	if err != nil {
		return nil, nil, err
	}
	return f, rc, nil
}

// CreateBatch implements sluice.Service. A batch whose input is fit for it is admitted
// against its deployment's quota in the same step as it is created; one whose input is
// not is created holding no tokens, and validation fails it with the problems.
func (e *Engine) CreateBatch(ctx context.Context, c sluice.BatchCreate) (*sluice.Batch, *sluice.Admission, error) {
	if c.InputBlob != "" || c.OutputFolder != "" {
		if err := e.checkBlobMode(c); err != nil {
			return nil, nil, err
		}
	}
	if c.InputFileID == "" && c.InputBlob == "" {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'input_file_id'.").WithParam("input_file_id")
	}
	if jsonl.NormalizeEndpoint(c.Endpoint) == "" {
		return nil, nil, sluice.Errorf(sluice.KindInvalid,
			"Invalid value for 'endpoint': %q. Supported values are %s, with or without the '/v1' prefix.", c.Endpoint, endpointList()).WithParam("endpoint")
	}
	if c.CompletionWindow == "" {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'completion_window'. The only supported value is '24h'.").WithParam("completion_window")
	}
	if c.CompletionWindow != sluice.CompletionWindow {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "Invalid value for 'completion_window': %q. The only supported value is '24h'.", c.CompletionWindow).WithParam("completion_window")
	}
	if err := validateMetadata(c.Metadata); err != nil {
		return nil, nil, err
	}
	if c.OutputExpiresAfter != 0 && (c.OutputExpiresAfter < sluice.MinFileExpiryOpenAI || c.OutputExpiresAfter > sluice.MaxFileExpiry) {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "'output_expires_after.seconds' must be from %d (1 hour) to %d (30 days).",
			sluice.MinFileExpiryOpenAI, sluice.MaxFileExpiry).WithParam("output_expires_after.seconds")
	}
	if c.InputBlob != "" {
		// Blob mode: the input is scanned now, from the blob, into a file that is not
		// listed; the batch reads its lines from the blob.
		src, err := e.ingestBlob(ctx, c.InputBlob, c.Project)
		if err != nil {
			return nil, nil, err
		}
		c.InputFileID = src.ID
		b, a, err := e.createBatch(ctx, c)
		if err != nil || b == nil {
			_ = e.DeleteFile(context.WithoutCancel(ctx), src.ID)
		}
		return b, a, err
	}
	return e.createBatch(ctx, c)
}

// createBatch is CreateBatch once its parameters are checked.
func (e *Engine) createBatch(ctx context.Context, c sluice.BatchCreate) (*sluice.Batch, *sluice.Admission, error) {
	f, err := e.store.FindFileByID(ctx, c.InputFileID)
	if err == nil && sluice.ProjectName(f.Project) != sluice.ProjectName(c.Project) {
		// Another project's file does not exist for this one.
		err = sluice.Errorf(sluice.KindNotFound, "No such File object: %s.", c.InputFileID)
	}
	if sluice.ErrorKind(err) == sluice.KindNotFound {
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "No such File object: %s.", c.InputFileID).WithParam("input_file_id").WithErr(err)
	} else if err != nil {
		return nil, nil, err
	}
	switch {
	case f.Purpose != sluice.PurposeBatch:
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The file %s has purpose %q; a batch needs a file uploaded with purpose 'batch'.", f.ID, f.Purpose).WithParam("input_file_id")
	case f.Status == sluice.FileStatusPending:
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The file %s is still being uploaded; retry when its status is 'processed'.", f.ID).WithParam("input_file_id")
	case f.Status == sluice.FileStatusError:
		return nil, nil, sluice.Errorf(sluice.KindInvalid, "The file %s could not be processed: %s", f.ID, f.StatusDetails).WithParam("input_file_id")
	}
	now := e.now().UTC().Truncate(time.Second)
	b := &sluice.Batch{
		ID:                 sluice.NewBatchID(),
		Project:            sluice.ProjectName(c.Project),
		Endpoint:           c.Endpoint,
		InputFileID:        c.InputFileID,
		CompletionWindow:   c.CompletionWindow,
		Status:             sluice.StatusValidating,
		Metadata:           c.Metadata,
		OutputExpiresAfter: c.OutputExpiresAfter,
		InputBlob:          c.InputBlob,
		OutputFolder:       c.OutputFolder,
		OutputDelimiter:    c.OutputDelimiter,
		CreatedAt:          now,
		ExpiresAt:          sluice.Ptr(now.Add(24 * time.Hour)),
	}
	if c.Deployment != "" && (f.Scan == nil || f.Scan.Model != c.Deployment) {
		model := ""
		if f.Scan != nil {
			model = f.Scan.Model
		}
		return nil, nil, sluice.Errorf(sluice.KindInvalid,
			"The batch was sent to deployment %q, but the lines of %s name %q; send it to that deployment, or without one.",
			c.Deployment, f.ID, model).WithParam("input_file_id").WithCode("model_mismatch")
	}
	problems := e.checkInput(c.Endpoint, f)
	var d *deployment
	if f.Scan != nil {
		d = e.deps[f.Scan.Model]
	}
	if d == nil {
		// No deployment to hold tokens of: validation fails the batch.
		if c.DryRun {
			return nil, &sluice.Admission{Problems: problems}, nil
		}
		if err := e.store.CreateBatch(ctx, b); err != nil {
			return nil, nil, err
		}
		e.Notify()
		return b, nil, nil
	}
	b.Deployment, b.Model = d.Name, d.ModelName()
	b.WindowPolicy = d.WindowPolicy
	if b.WindowPolicy == "" {
		b.WindowPolicy = c.WindowPolicy
	}
	if len(problems) == 0 {
		b.InputTokens = f.Scan.Tokens
	}
	pl := e.opts.Projects[b.Project]
	a := &sluice.Admission{Deployment: d.Name, Tokens: b.InputTokens, Limit: d.Quota.EnqueuedTokenLimit,
		Allowed: d.Quota.Limit(e.idle(d)), Problems: problems,
		Project: b.Project, ProjectTokenLimit: pl.EnqueuedTokens, ProjectBatchLimit: pl.Batches}
	if c.DryRun || len(problems) > 0 {
		held, err := e.store.EnqueuedTokens(ctx)
		if err != nil {
			return nil, nil, err
		}
		a.Enqueued = held[d.Name]
		if c.DryRun {
			if a.ProjectTokens, a.ProjectBatches, err = e.projectHolds(ctx, b.Project); err != nil {
				return nil, nil, err
			}
			lim := sluice.AdmitLimits{Deployment: a.Allowed, Project: pl}
			a.Admitted = len(problems) == 0 && lim.Fits(sluice.AdmitResult{Held: a.Enqueued, ProjectTokens: a.ProjectTokens, ProjectBatches: a.ProjectBatches}, a.Tokens)
			return nil, a, nil
		}
		// Validation fails the batch; it holds no tokens meanwhile.
		a.Problems = nil
		if err := e.store.CreateBatch(ctx, b); err != nil {
			return nil, nil, err
		}
		a.Admitted = true
		e.Notify()
		return b, a, nil
	}
	res, err := e.store.AdmitBatch(ctx, b, sluice.AdmitLimits{Deployment: a.Allowed, Project: pl})
	if err != nil {
		return nil, nil, err
	}
	a.Enqueued, a.Admitted = res.Held, res.Admitted
	a.ProjectTokens, a.ProjectBatches = res.ProjectTokens, res.ProjectBatches
	if !a.Admitted {
		return nil, a, refusal(a)
	}
	e.Notify()
	return b, a, nil
}

// refusal is the error of a batch that a's limits did not admit, naming the first
// limit it did not fit.
func refusal(a *sluice.Admission) error {
	switch {
	case a.Allowed > 0 && a.Enqueued+a.Tokens > a.Allowed:
		return sluice.Errorf(sluice.KindInvalid,
			"The batch needs %d enqueued tokens of deployment %s, which holds %d of its limit of %d, so %d are free. "+
				"Retry when running batches of the deployment have finished (with exponential backoff, e.g. 5 s, 10 s, 20 s), "+
				"or split the input into smaller files.",
			a.Tokens, a.Deployment, a.Enqueued, a.Allowed, max(0, a.Allowed-a.Enqueued)).WithCode("token_limit_exceeded").WithParam("input_file_id")
	case a.ProjectTokenLimit > 0 && a.ProjectTokens+a.Tokens > a.ProjectTokenLimit:
		return sluice.Errorf(sluice.KindInvalid,
			"The batch needs %d enqueued tokens; the batches of project %s hold %d of its limit of %d across deployments, so %d are free. "+
				"Retry when some of them have finished (with exponential backoff), or split the input into smaller files.",
			a.Tokens, a.Project, a.ProjectTokens, a.ProjectTokenLimit, max(0, a.ProjectTokenLimit-a.ProjectTokens)).WithCode("token_limit_exceeded").WithParam("input_file_id")
	default:
		return sluice.Errorf(sluice.KindRateLimited,
			"Project %s has %d batches that have not ended, its limit. Retry when one has ended (with exponential backoff), or cancel one.",
			a.Project, a.ProjectBatches).WithCode("batch_limit_exceeded")
	}
}

// projectHolds returns the tokens a project's batches that are not terminal hold, and
// how many they are.
func (e *Engine) projectHolds(ctx context.Context, project string) (int64, int, error) {
	var (
		tokens int64
		n      int
		after  string
	)
	for {
		page, more, err := e.store.FindBatches(ctx, sluice.BatchFilter{Project: project, Status: []sluice.Status{sluice.StatusValidating, sluice.StatusInProgress, sluice.StatusFinalizing, sluice.StatusCancelling}, After: after, Limit: 1000})
		if err != nil {
			return 0, 0, err
		}
		for _, b := range page {
			tokens += b.InputTokens
			n++
		}
		if !more || len(page) == 0 {
			return tokens, n, nil
		}
		after = page[len(page)-1].ID
	}
}

func validateMetadata(m map[string]string) error {
	if len(m) > 16 {
		return sluice.Errorf(sluice.KindInvalid, "'metadata' has %d keys; at most 16 are allowed.", len(m)).WithParam("metadata")
	}
	for k, v := range m {
		if utf8.RuneCountInString(k) > 64 {
			return sluice.Errorf(sluice.KindInvalid, "The metadata key %q is longer than 64 characters.", k).WithParam("metadata")
		}
		if utf8.RuneCountInString(v) > 512 {
			return sluice.Errorf(sluice.KindInvalid, "The value of metadata key %q is longer than 512 characters.", k).WithParam("metadata")
		}
	}
	return nil
}

// CancelBatch implements sluice.Service.
func (e *Engine) CancelBatch(ctx context.Context, id string) (*sluice.Batch, error) {
	now := e.now().UTC()
	b, err := e.store.UpdateBatch(ctx, id, sluice.BatchUpdate{
		IfStatus:     []sluice.Status{sluice.StatusValidating, sluice.StatusInProgress},
		Status:       sluice.Ptr(sluice.StatusCancelling),
		CancellingAt: &now,
	})
	if sluice.ErrorKind(err) == sluice.KindConflict && b != nil {
		switch b.Status {
		case sluice.StatusCancelling, sluice.StatusCancelled:
			return b, nil // cancelling twice is not an error
		}
		return nil, sluice.Errorf(sluice.KindConflict, "Cannot cancel a batch with status '%s'.", b.Status)
	}
	if err != nil {
		return nil, err
	}
	e.Notify()
	return b, nil
}

// endpointList names the endpoints a batch may use, for messages: "'/v1/responses',
// ... and '/v1/videos'".
func endpointList() string {
	q := make([]string, len(sluice.Endpoints))
	for i, e := range sluice.Endpoints {
		q[i] = "'" + e + "'"
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

// bodyProblem is the problem of a line whose body misses a field its endpoint requires,
// or has one of the wrong type.
func bodyProblem(line int, fe *tokens.FieldError) sluice.BatchError {
	msg := fmt.Sprintf("Line %d has a body without '%s', which its endpoint requires.", line, fe.Path)
	if fe.Got != "" {
		msg = fmt.Sprintf("Line %d has a body whose '%s' is %s; it must be %s.", line, fe.Path, fe.Got, fe.Want)
	}
	param := "body." + fe.Path
	if i := strings.Index(param, "' or '"); i >= 0 {
		param = param[:i]
	}
	return sluice.BatchError{Code: "invalid_request", Message: msg, Param: param, Line: line}
}

// mergeProblems merges the scan's problems and the body problems, both in line order,
// into one list in line order, at most sluice.MaxBatchErrors long. Problems of the
// whole file (line 0) come last.
func mergeProblems(scan, body []sluice.BatchError) []sluice.BatchError {
	if len(body) == 0 {
		return scan
	}
	out := make([]sluice.BatchError, 0, min(len(scan)+len(body), sluice.MaxBatchErrors))
	for len(out) < sluice.MaxBatchErrors && (len(scan) > 0 || len(body) > 0) {
		if len(body) == 0 || len(scan) > 0 && scan[0].Line > 0 && scan[0].Line < body[0].Line {
			out, scan = append(out, scan[0]), scan[1:]
		} else {
			out, body = append(out, body[0]), body[1:]
		}
	}
	return out
}
