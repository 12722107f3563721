package engine

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/sluice-batch/sluice"
)

// finalize writes the output and error files of a batch whose lines are all done (final
// is StatusCompleted) or that was cancelled and has nothing in flight (StatusCancelled),
// then records the files and the final status in one transaction. It can run again after
// a crash at any point: the file IDs are fixed before any byte is written, and a rewrite
// replaces the bytes whole.
func (e *Engine) finalize(ctx context.Context, b *sluice.Batch, final sluice.Status) error {
	b, err := e.store.FindBatchByID(ctx, b.ID)
	if err != nil {
		return err
	}
	from := sluice.StatusFinalizing
	if final == sluice.StatusCancelled {
		from = sluice.StatusCancelling
	}
	if b.Status != from && !(b.Status == sluice.StatusInProgress && final == sluice.StatusCompleted) {
		return nil // moved on since the step looked
	}
	if b.OutputFileID == "" || b.Status == sluice.StatusInProgress {
		upd := sluice.BatchUpdate{IfStatus: []sluice.Status{b.Status}}
		if b.OutputFileID == "" {
			upd.OutputFileID, upd.ErrorFileID = sluice.Ptr(sluice.NewFileID()), sluice.Ptr(sluice.NewFileID())
		}
		if b.Status == sluice.StatusInProgress {
			upd.Status, upd.FinalizingAt = sluice.Ptr(sluice.StatusFinalizing), sluice.Ptr(e.now().UTC())
		}
		if b, err = e.store.UpdateBatch(ctx, b.ID, upd); err != nil {
			return err
		}
	}
	t0 := time.Now()
	now := e.now().UTC().Truncate(time.Second)
	var expires *time.Time
	if b.OutputExpiresAfter > 0 {
		expires = sluice.Ptr(now.Add(time.Duration(b.OutputExpiresAfter) * time.Second))
	}
	var files []*sluice.File
	for _, part := range []struct {
		id, name  string
		succeeded bool
	}{{b.OutputFileID, "output", true}, {b.ErrorFileID, "error", false}} {
		n, err := e.writeResults(ctx, part.id, b.ID, part.succeeded)
		if err != nil {
			return fmt.Errorf("write %s file of %s: %w", part.name, b.ID, err)
		}
		files = append(files, &sluice.File{
			ID: part.id, Bytes: n, CreatedAt: now, ExpiresAt: expires, Purpose: sluice.PurposeBatchOutput,
			Filename: b.ID + "_" + part.name + ".jsonl", Status: sluice.FileStatusProcessed,
		})
	}
	upd := sluice.BatchUpdate{IfStatus: []sluice.Status{from}, Status: &final}
	if final == sluice.StatusCompleted {
		upd.CompletedAt = &now
	} else {
		upd.CancelledAt = &now
	}
	b, err = e.store.FinishBatch(ctx, b.ID, files, upd)
	if err != nil {
		return err
	}
	// The result files hold every result now; the rows behind them can go.
	if err := e.store.DeleteRequests(ctx, b.ID); err != nil {
		e.log.WarnContext(ctx, "delete the request rows of a finished batch", "batch_id", b.ID, "err", err)
	}
	c := b.RequestCounts
	e.log.InfoContext(ctx, "batch "+string(final), "batch_id", b.ID, "completed", c.Completed, "failed", c.Failed, "total", c.Total,
		"write_ms", time.Since(t0).Milliseconds())
	return nil
}

// writeResults streams the batch's succeeded (or failed) result lines into the file id.
// Memory holds one buffer, whatever the size of the batch.
func (e *Engine) writeResults(ctx context.Context, id, batchID string, succeeded bool) (int64, error) {
	pr, pw := io.Pipe()
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		err := e.store.EachResult(ctx, batchID, succeeded, func(r sluice.Result) error {
			if _, err := bw.Write(r.Output); err != nil {
				return err
			}
			return bw.WriteByte('\n')
		})
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	n, err := e.bucket.Put(ctx, sluice.FileKey(id), pr)
	pr.CloseWithError(io.ErrClosedPipe) // unblocks the writer if Put stopped early
	return n, err
}
