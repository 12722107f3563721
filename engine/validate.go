package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

// addChunk is how many request rows one validation transaction inserts: whole chunks,
// as the store wants every line of a chunk in one call.
const addChunk = 8 * sluice.ChunkLines

// validate checks a batch against what the upload scan recorded and the configured
// deployments, then writes one request row per line and starts it, or fails it with
// every problem found and its line number.
func (e *Engine) validate(ctx context.Context, b *sluice.Batch) error {
	f, err := e.store.FindFileByID(ctx, b.InputFileID)
	if sluice.ErrorKind(err) == sluice.KindNotFound {
		return e.fail(ctx, b, []sluice.BatchError{{Code: "invalid_request", Param: "input_file_id",
			Message: fmt.Sprintf("The input file %s no longer exists.", b.InputFileID)}})
	} else if err != nil {
		return err
	}
	scan := f.Scan
	if scan == nil {
		return e.fail(ctx, b, []sluice.BatchError{{Code: "invalid_request", Param: "input_file_id",
			Message: fmt.Sprintf("The file %s is not a batch input file.", f.ID)}})
	}
	if len(scan.Problems) > 0 {
		return e.fail(ctx, b, scan.Problems)
	}
	if want := jsonl.NormalizeEndpoint(b.Endpoint); jsonl.NormalizeEndpoint(scan.URL) != want {
		return e.fail(ctx, b, []sluice.BatchError{{Code: "url_mismatch", Param: "url", Line: scan.FirstLine,
			Message: fmt.Sprintf("The request url %q does not match the batch endpoint %q.", scan.URL, b.Endpoint)}})
	}
	if _, ok := e.deps[scan.Model]; !ok {
		return e.fail(ctx, b, []sluice.BatchError{{Code: "model_not_found", Param: "body.model", Line: scan.FirstLine,
			Message: fmt.Sprintf("The model %q names no batch deployment. Deployments: %s.", scan.Model, e.deploymentNames())}})
	}
	if !scan.Indexed {
		return fmt.Errorf("file %s has no line index", f.ID)
	}
	t0 := time.Now()
	if err := e.addRequests(ctx, b.ID, f.ID); err != nil {
		return err
	}
	now := e.now().UTC()
	_, err = e.store.UpdateBatch(ctx, b.ID, sluice.BatchUpdate{
		IfStatus:     []sluice.Status{sluice.StatusValidating},
		Status:       sluice.Ptr(sluice.StatusInProgress),
		Deployment:   &scan.Model,
		Total:        &scan.Requests,
		InProgressAt: &now,
	})
	if sluice.ErrorKind(err) == sluice.KindConflict {
		return nil // cancelled while validating; the cancel path takes it from here
	}
	if err == nil {
		e.log.InfoContext(ctx, "batch in progress", "batch_id", b.ID, "requests", scan.Requests, "deployment", scan.Model,
			"validate_ms", time.Since(t0).Milliseconds())
	}
	return err
}

// addRequests streams the file's line index into request rows, a chunk at a time.
func (e *Engine) addRequests(ctx context.Context, batchID, fileID string) error {
	rc, err := e.bucket.Get(ctx, sluice.IndexKey(fileID))
	if err != nil {
		return fmt.Errorf("open index of %s: %w", fileID, err)
	}
	defer rc.Close()
	chunk := make([]sluice.Request, 0, addChunk)
	flush := func() error {
		err := e.store.AddRequests(ctx, batchID, chunk)
		chunk = chunk[:0]
		return err
	}
	ordinal := 0
	err = jsonl.ReadIndex(rc, func(en jsonl.Entry) error {
		chunk = append(chunk, sluice.Request{BatchID: batchID, Chunk: ordinal / sluice.ChunkLines, Line: en.Line,
			CustomID: en.CustomID, Offset: en.Offset, Length: en.Length})
		ordinal++
		if len(chunk) == addChunk {
			return flush()
		}
		return nil
	})
	if err == nil && len(chunk) > 0 {
		err = flush()
	}
	if err != nil {
		return fmt.Errorf("add requests of %s: %w", batchID, err)
	}
	return nil
}

func (e *Engine) fail(ctx context.Context, b *sluice.Batch, problems []sluice.BatchError) error {
	now := e.now().UTC()
	_, err := e.store.UpdateBatch(ctx, b.ID, sluice.BatchUpdate{
		IfStatus: []sluice.Status{sluice.StatusValidating},
		Status:   sluice.Ptr(sluice.StatusFailed),
		Errors:   problems,
		FailedAt: &now,
	})
	if sluice.ErrorKind(err) == sluice.KindConflict {
		return nil
	}
	if err == nil {
		e.log.InfoContext(ctx, "batch failed validation", "batch_id", b.ID, "code", problems[0].Code, "line", problems[0].Line)
	}
	return err
}

func (e *Engine) deploymentNames() string {
	s := ""
	for name := range e.deps {
		if s != "" {
			s += ", "
		}
		s += name
	}
	return s
}
