package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

// finalize writes the output and error files of a batch whose lines are all done (final
// is StatusCompleted, or StatusExpired once expire gave the rest their results) or that
// was cancelled and has nothing in flight (StatusCancelled),
// then records the files and the final status in one transaction, then deletes the
// batch's segments and work records. Each file is its recorded extents concatenated in
// commit order by the bucket (Compose): no result line is read, parsed or re-encoded
// here. It can run again after a crash at any point: the file IDs are fixed before any
// byte is written, and a compose replaces the bytes whole.
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
	e.commit.forget(b.ID)
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
		n, err := e.composeResults(ctx, part.id, b.ID, part.succeeded)
		if err != nil {
			return fmt.Errorf("write %s file of %s: %w", part.name, b.ID, err)
		}
		files = append(files, &sluice.File{
			ID: part.id, Project: b.Project, Bytes: n, CreatedAt: now, ExpiresAt: expires, Purpose: sluice.PurposeBatchOutput,
			Filename: b.ID + "_" + part.name + ".jsonl", Status: sluice.FileStatusProcessed,
		})
	}
	if final == sluice.StatusCancelled && len(b.Errors) > 0 {
		// Stopped because its input could no longer be read (failInput): it failed.
		final = sluice.StatusFailed
	}
	upd := sluice.BatchUpdate{IfStatus: []sluice.Status{from}, Status: &final}
	if b.OutputFolder != "" && e.opts.Blobs != nil {
		out, errs, err := e.writeResultBlobs(ctx, b, files)
		if err != nil {
			return fmt.Errorf("write the results of %s to %s: %w", b.ID, b.OutputFolder, err)
		}
		upd.OutputBlob, upd.ErrorBlob = &out, &errs
	}
	switch final {
	case sluice.StatusCompleted:
		upd.CompletedAt = &now
	case sluice.StatusCancelled:
		upd.CancelledAt = &now
	case sluice.StatusFailed:
		upd.FailedAt = &now
	} // an expired batch's expired_at is when its window ended, set by markExpired
	b, err = e.store.FinishBatch(ctx, b.ID, files, upd)
	if err != nil {
		return err
	}
	written := time.Since(t0)
	// The result files hold every result now; the segments behind them can go.
	if err := e.deleteWork(ctx, b.ID); err != nil {
		e.log.WarnContext(ctx, "delete the work of a finished batch; a later sweep retries", "batch_id", b.ID, "err", err)
	}
	c := b.RequestCounts
	e.log.InfoContext(ctx, "batch "+string(final), "batch_id", b.ID, "completed", c.Completed, "failed", c.Failed, "total", c.Total,
		"finalize_ms", float64(written.Microseconds())/1000)
	return nil
}

// composeResults makes the file id of the batch's succeeded (or failed) result lines:
// its extents, runs back to back in one segment joined, in commit order.
func (e *Engine) composeResults(ctx context.Context, id, batchID string, succeeded bool) (int64, error) {
	var parts []sluice.Part
	err := e.store.EachExtent(ctx, batchID, succeeded, func(x sluice.Extent) error {
		if n := len(parts); n > 0 && parts[n-1].Key == x.Segment && parts[n-1].Offset+parts[n-1].Length == x.Offset {
			parts[n-1].Length += x.Length
			return nil
		}
		parts = append(parts, sluice.Part{Key: x.Segment, Offset: x.Offset, Length: x.Length})
		return nil
	})
	if err != nil {
		return 0, err
	}
	return e.bucket.Compose(ctx, sluice.FileKey(id), parts)
}

// deleteWork deletes a finished batch's segments, then its chunks, extents and segment
// records. The records go last, so a failure part way leaves them to find again.
func (e *Engine) deleteWork(ctx context.Context, batchID string) error {
	keys, err := e.store.FindSegments(ctx, batchID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := e.bucket.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete segment %s: %w", k, err)
		}
	}
	return e.store.DeleteWork(ctx, batchID)
}

// sweepLeftovers deletes the work a crash left behind between finishing a batch and
// deleting its work.
func (e *Engine) sweepLeftovers(ctx context.Context) error {
	ids, err := e.store.FindLeftoverWork(ctx, 100)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := e.deleteWork(ctx, id); err != nil {
			return err
		}
		e.log.InfoContext(ctx, "deleted the leftover work of a finished batch", "batch_id", id)
	}
	return nil
}

// expiredMessage is the message of the result of a line a batch's window ended before.
const expiredMessage = "This request was not run: the batch's completion window ended first."

// markExpired moves a batch whose completion window has ended, under WindowExpire,
// from in_progress to finalizing with expired_at set: dispatch stops, and once nothing
// of it is in flight anywhere, expire gives its unfinished lines their results.
func (e *Engine) markExpired(ctx context.Context, b *sluice.Batch) error {
	now := e.now().UTC()
	_, err := e.store.UpdateBatch(ctx, b.ID, sluice.BatchUpdate{IfStatus: []sluice.Status{sluice.StatusInProgress},
		Status: sluice.Ptr(sluice.StatusFinalizing), FinalizingAt: &now, ExpiredAt: &now})
	if sluice.ErrorKind(err) == sluice.KindConflict {
		return nil // moved on since the step looked
	}
	if err == nil {
		e.log.InfoContext(ctx, "batch window ended; expiring", "batch_id", b.ID, "expires_at", b.ExpiresAt)
	}
	return err
}

// expire ends a batch marked expired: every line without a result gets one in the
// error file, with the code batch_expired, committed as any result is (so a line that
// finished meanwhile keeps its own), then the batch is finalized as expired. It runs
// again safely after a crash at any point.
func (e *Engine) expire(ctx context.Context, b *sluice.Batch) error {
	r := &run{id: b.ID, indexKey: sluice.IndexKey(b.InputFileID)}
	ids := newIDSource()
	for {
		chunks, err := e.store.ClaimChunks(ctx, b.ID, e.opts.Owner, 64, e.now().Add(e.opts.LeaseDuration))
		if err != nil {
			return err
		}
		if len(chunks) == 0 {
			break
		}
		reqs, err := e.unfinished(ctx, r, chunks)
		if err != nil {
			e.releaseChunks(r, chunks)
			return err
		}
		key := fmt.Sprintf("segments/%s/%s-expired-%s-error.jsonl", b.ID, e.opts.Owner, ids.requestID()[len("batch_req_"):])
		if err := e.store.AddSegment(ctx, b.ID, key); err != nil {
			e.releaseChunks(r, chunks)
			return err
		}
		var buf []byte
		refs := make([]sluice.ResultRef, len(reqs))
		for i, q := range reqs {
			start := len(buf)
			buf = jsonl.AppendError(buf, ids.requestID(), q.CustomID, "batch_expired", expiredMessage)
			buf = append(buf, '\n')
			refs[i] = sluice.ResultRef{BatchID: b.ID, Chunk: q.Chunk, Index: q.Index, Segment: key,
				Offset: int64(start), Length: int64(len(buf) - start)}
		}
		if err := e.bucket.Append(ctx, key, 0, buf); err != nil {
			e.releaseChunks(r, chunks)
			return fmt.Errorf("write expired lines of %s: %w", b.ID, err)
		}
		if _, err := e.store.CommitResults(ctx, e.opts.Owner, refs); err != nil {
			e.releaseChunks(r, chunks)
			return err
		}
	}
	// A chunk another process holds is still in flight there: wait for its lease.
	if n, err := e.store.CountLeased(ctx, b.ID, e.now()); err != nil || n > 0 {
		return err
	}
	return e.finalize(ctx, b, sluice.StatusExpired)
}
