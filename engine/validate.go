package engine

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

// validate checks a batch against what the upload scan recorded and the configured
// deployments, then adds one chunk per ChunkLines lines and starts it, or fails it with
// every problem found and its line number. Nothing is written per line: a chunk's lines
// are found through the input file's line index when the chunk is claimed.
func (e *Engine) validate(ctx context.Context, b *sluice.Batch) error {
	f, err := e.store.FindFileByID(ctx, b.InputFileID)
	if sluice.ErrorKind(err) == sluice.KindNotFound {
		return e.fail(ctx, b, []sluice.BatchError{{Code: "invalid_request", Param: "input_file_id",
			Message: fmt.Sprintf("The input file %s no longer exists.", b.InputFileID)}})
	} else if err != nil {
		return err
	}
	if problems := e.checkInput(b.Endpoint, f); len(problems) > 0 {
		return e.fail(ctx, b, problems)
	}
	scan := f.Scan
	if !scan.Indexed {
		return fmt.Errorf("file %s has no line index", f.ID)
	}
	t0 := time.Now()
	if err := e.addChunks(ctx, b.ID, f.ID, scan); err != nil {
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

// addChunks adds the chunks of a batch from the directory of its input's line index.
func (e *Engine) addChunks(ctx context.Context, batchID, fileID string, scan *sluice.FileScan) error {
	blocks := jsonl.IndexBlocks(scan.Requests)
	size := jsonl.IndexDirectorySize(blocks)
	rc, err := e.bucket.GetRange(ctx, sluice.IndexKey(fileID), scan.IndexBytes-size, size)
	if err != nil {
		return fmt.Errorf("open index of %s: %w", fileID, err)
	}
	dir := make([]byte, size)
	_, err = io.ReadFull(rc, dir)
	rc.Close()
	if err != nil {
		return fmt.Errorf("read index of %s: %w", fileID, err)
	}
	refs, err := jsonl.ParseIndexDirectory(dir, scan.IndexBytes, blocks)
	if err != nil {
		return fmt.Errorf("read index of %s: %w", fileID, err)
	}
	chunks := make([]sluice.Chunk, len(refs))
	for i, r := range refs {
		chunks[i] = sluice.Chunk{
			BatchID: batchID, Number: i, Lines: min(sluice.ChunkLines, scan.Requests-i*sluice.ChunkLines),
			IndexOffset: r.Offset, IndexLength: r.Length,
		}
	}
	if err := e.store.AddChunks(ctx, batchID, chunks); err != nil {
		return fmt.Errorf("add chunks of %s: %w", batchID, err)
	}
	return nil
}

// checkInput returns what makes an input file unfit for a batch on endpoint: the
// problems its scan found, or a mismatch with the batch or the deployments.
func (e *Engine) checkInput(endpoint string, f *sluice.File) []sluice.BatchError {
	scan := f.Scan
	if scan == nil {
		return []sluice.BatchError{{Code: "invalid_request", Param: "input_file_id",
			Message: fmt.Sprintf("The file %s is not a batch input file.", f.ID)}}
	}
	if len(scan.Problems) > 0 {
		return e.withReference(scan)
	}
	want := jsonl.NormalizeEndpoint(endpoint)
	if jsonl.NormalizeEndpoint(scan.URL) != want {
		return []sluice.BatchError{{Code: "url_mismatch", Param: "url", Line: scan.FirstLine,
			Message: fmt.Sprintf("The request url %q does not match the batch endpoint %q.", scan.URL, endpoint)}}
	}
	d, ok := e.deps[scan.Model]
	if !ok {
		return []sluice.BatchError{{Code: "model_not_found", Param: "body.model", Line: scan.FirstLine,
			Message: fmt.Sprintf("The model %q names no batch deployment. Deployments: %s.", scan.Model, e.deploymentNames())}}
	}
	if !d.Serves(want) {
		return []sluice.BatchError{{Code: "invalid_request", Param: "url", Line: scan.FirstLine,
			Message: fmt.Sprintf("The deployment %s does not serve %s; it serves %s.", d.Name, want, strings.Join(d.Endpoints, ", "))}}
	}
	if scan.ImageLine > 0 && !slices.Contains(d.InputFormats, "image") {
		return []sluice.BatchError{{Code: "invalid_request", Param: "body.messages", Line: scan.ImageLine,
			Message: fmt.Sprintf("Line %d holds an image, but the deployment %s takes text only (input formats: %s).",
				scan.ImageLine, d.Name, strings.Join(d.InputFormats, ", "))}}
	}
	if scan.Indexed && scan.IndexBytes == 0 {
		return []sluice.BatchError{{Code: "invalid_request", Param: "input_file_id",
			Message: fmt.Sprintf("The file %s was uploaded to an earlier version of Sluice, whose line index this version cannot read; upload it again.", f.ID)}}
	}
	if scan.Encoding == "" && d.Quota.EnqueuedTokenLimit > 0 {
		return []sluice.BatchError{{Code: "invalid_request", Param: "input_file_id",
			Message: fmt.Sprintf("The file %s was uploaded to an earlier version of Sluice, which did not count its tokens, and the deployment %s has a token quota; upload it again.", f.ID, d.Name)}}
	}
	return nil
}

// withReference returns the scan's problems, and, when lines were found to differ from
// the file's first url or model and that url names no batch endpoint, or that model
// no deployment, a problem on the first line too: it is the one to fix, though the
// lines compared with it are the ones the scan reported.
func (e *Engine) withReference(scan *sluice.FileScan) []sluice.BatchError {
	has := func(code string) bool {
		return slices.ContainsFunc(scan.Problems, func(p sluice.BatchError) bool { return p.Code == code })
	}
	var lead []sluice.BatchError
	if has("url_mismatch") && scan.URLLine > 0 && jsonl.NormalizeEndpoint(scan.URL) == "" {
		lead = append(lead, sluice.BatchError{Code: "url_mismatch", Param: "url", Line: scan.URLLine,
			Message: fmt.Sprintf("Line %d has url %q, which is not a batch endpoint; the lines reported with url_mismatch were compared with it.",
				scan.URLLine, scan.URL)})
	}
	if _, ok := e.deps[scan.Model]; !ok && has("model_mismatch") && scan.ModelLine > 0 {
		lead = append(lead, sluice.BatchError{Code: "model_not_found", Param: "body.model", Line: scan.ModelLine,
			Message: fmt.Sprintf("Line %d has body.model %q, which names no batch deployment (deployments: %s); the lines reported with model_mismatch were compared with it.",
				scan.ModelLine, scan.Model, e.deploymentNames())})
	}
	if len(lead) == 0 {
		return scan.Problems
	}
	out := append(lead, scan.Problems...)
	slices.SortStableFunc(out, func(a, b sluice.BatchError) int { return a.Line - b.Line })
	return out[:min(len(out), sluice.MaxBatchErrors)]
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
