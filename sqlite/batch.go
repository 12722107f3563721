package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

const batchColumns = `id, endpoint, input_file_id, completion_window, status, deployment, model, input_tokens,
	usage_input, usage_cached, usage_output, usage_reasoning, usage_estimated, output_file_id,
	error_file_id, errors, metadata, total, completed, failed, output_expires_after, created_at,
	in_progress_at, expires_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at,
	window_policy, input_blob, output_folder, output_delimiter, output_blob, error_blob, project`

// notTerminal is the SQL list of the states whose batches hold quota.
const notTerminal = `('validating', 'in_progress', 'finalizing', 'cancelling')`

func scanBatch(row scanner) (*sluice.Batch, error) {
	var (
		b                   sluice.Batch
		errs, meta          sql.NullString
		created             int64
		inProgress, expires sql.NullInt64
		finalizing, done    sql.NullInt64
		failed, expired     sql.NullInt64
		cancelling, cancel  sql.NullInt64
	)
	u := &b.Usage
	err := row.Scan(&b.ID, &b.Endpoint, &b.InputFileID, &b.CompletionWindow, &b.Status, &b.Deployment,
		&b.Model, &b.InputTokens, &u.InputTokens, &u.CachedTokens, &u.OutputTokens, &u.ReasoningTokens,
		&u.EstimatedLines, &b.OutputFileID, &b.ErrorFileID, &errs, &meta, &b.RequestCounts.Total, &b.RequestCounts.Completed,
		&b.RequestCounts.Failed, &b.OutputExpiresAfter, &created, &inProgress, &expires, &finalizing, &done,
		&failed, &expired, &cancelling, &cancel, &b.WindowPolicy, &b.InputBlob, &b.OutputFolder, &b.OutputDelimiter,
		&b.OutputBlob, &b.ErrorBlob, &b.Project)
	if err != nil {
		return nil, err
	}
	if errs.Valid {
		if err := json.Unmarshal([]byte(errs.String), &b.Errors); err != nil {
			return nil, fmt.Errorf("decode errors of %s: %w", b.ID, err)
		}
	}
	if meta.Valid {
		if err := json.Unmarshal([]byte(meta.String), &b.Metadata); err != nil {
			return nil, fmt.Errorf("decode metadata of %s: %w", b.ID, err)
		}
	}
	b.CreatedAt = time.Unix(created, 0).UTC()
	b.InProgressAt, b.ExpiresAt, b.FinalizingAt = timePtr(inProgress), timePtr(expires), timePtr(finalizing)
	b.CompletedAt, b.FailedAt, b.ExpiredAt = timePtr(done), timePtr(failed), timePtr(expired)
	b.CancellingAt, b.CancelledAt = timePtr(cancelling), timePtr(cancel)
	return &b, nil
}

// CreateBatch implements sluice.Store.
func (s *Store) CreateBatch(ctx context.Context, b *sluice.Batch) error {
	_, err := s.AdmitBatch(ctx, b, sluice.AdmitLimits{})
	return err
}

// AdmitBatch implements sluice.Store. The one writer connection makes the sum and the
// insert one step.
func (s *Store) AdmitBatch(ctx context.Context, b *sluice.Batch, lim sluice.AdmitLimits) (sluice.AdmitResult, error) {
	var res sluice.AdmitResult
	errs, err := jsonOrNull(b.Errors, b.Errors == nil)
	if err != nil {
		return res, err
	}
	meta, err := jsonOrNull(b.Metadata, b.Metadata == nil)
	if err != nil {
		return res, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("create batch: %w", err)
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `SELECT coalesce(sum(input_tokens), 0) FROM batches
		WHERE deployment = ? AND status IN `+notTerminal, b.Deployment).Scan(&res.Held)
	if err != nil {
		return res, fmt.Errorf("create batch: %w", err)
	}
	err = tx.QueryRowContext(ctx, `SELECT coalesce(sum(input_tokens), 0), count(*) FROM batches
		WHERE project = ? AND status IN `+notTerminal, b.Project).Scan(&res.ProjectTokens, &res.ProjectBatches)
	if err != nil {
		return res, fmt.Errorf("create batch: %w", err)
	}
	if !lim.Fits(res, b.InputTokens) {
		return res, nil
	}
	u := &b.Usage
	_, err = tx.ExecContext(ctx, `INSERT INTO batches (`+batchColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.Endpoint, b.InputFileID, b.CompletionWindow, b.Status, b.Deployment, b.Model, b.InputTokens,
		u.InputTokens, u.CachedTokens, u.OutputTokens, u.ReasoningTokens, u.EstimatedLines, b.OutputFileID,
		b.ErrorFileID, errs, meta, b.RequestCounts.Total, b.RequestCounts.Completed, b.RequestCounts.Failed,
		b.OutputExpiresAfter, unix(b.CreatedAt), unixPtr(b.InProgressAt), unixPtr(b.ExpiresAt),
		unixPtr(b.FinalizingAt), unixPtr(b.CompletedAt), unixPtr(b.FailedAt), unixPtr(b.ExpiredAt),
		unixPtr(b.CancellingAt), unixPtr(b.CancelledAt), b.WindowPolicy, b.InputBlob, b.OutputFolder, b.OutputDelimiter,
		b.OutputBlob, b.ErrorBlob, b.Project)
	if err != nil {
		return res, interpret(err, "Batch", b.ID)
	}
	if err := tx.Commit(); err != nil {
		return res, interpret(err, "Batch", b.ID)
	}
	res.Admitted = true
	if !b.Status.Terminal() {
		res.Held += b.InputTokens
		res.ProjectTokens += b.InputTokens
		res.ProjectBatches++
	}
	return res, nil
}

// EnqueuedTokens implements sluice.Store.
func (s *Store) EnqueuedTokens(ctx context.Context) (map[string]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT deployment, sum(input_tokens) FROM batches
		WHERE status IN `+notTerminal+` GROUP BY deployment`)
	if err != nil {
		return nil, fmt.Errorf("enqueued tokens: %w", err)
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var (
			dep string
			n   int64
		)
		if err := rows.Scan(&dep, &n); err != nil {
			return nil, fmt.Errorf("enqueued tokens: %w", err)
		}
		out[dep] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("enqueued tokens: %w", err)
	}
	return out, nil
}

// FindBatches implements sluice.Store.
func (s *Store) FindBatches(ctx context.Context, filter sluice.BatchFilter) ([]*sluice.Batch, bool, error) {
	var (
		where []string
		args  []any
	)
	if len(filter.Status) > 0 {
		where = append(where, "status IN ("+placeholders(len(filter.Status))+")")
		for _, st := range filter.Status {
			args = append(args, st)
		}
	}
	if filter.Project != "" {
		where = append(where, "project = ?")
		args = append(args, filter.Project)
	}
	if filter.Deployment != "" {
		where = append(where, "deployment = ?")
		args = append(args, filter.Deployment)
	}
	if filter.CreatedFrom != nil {
		where = append(where, "created_at >= ?")
		args = append(args, *filter.CreatedFrom)
	}
	if filter.CreatedTo != nil {
		where = append(where, "created_at <= ?")
		args = append(args, *filter.CreatedTo)
	}
	cmp, order := "<", " ORDER BY seq DESC"
	if filter.Asc {
		cmp, order = ">", " ORDER BY seq ASC"
	}
	if filter.After != "" {
		where = append(where, "seq "+cmp+" (SELECT seq FROM batches WHERE id = ?)")
		args = append(args, filter.After)
	}
	q := `SELECT ` + batchColumns + ` FROM batches`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += order
	if filter.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, filter.Limit+1)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("find batches: %w", err)
	}
	defer rows.Close()
	var out []*sluice.Batch
	for rows.Next() {
		b, err := scanBatch(rows)
		if err != nil {
			return nil, false, fmt.Errorf("find batches: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("find batches: %w", err)
	}
	more := filter.Limit > 0 && len(out) > filter.Limit
	if more {
		out = out[:filter.Limit]
	}
	return out, more, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// updateBatch applies upd inside tx and returns the batch as it then is.
func updateBatch(ctx context.Context, tx *sql.Tx, id string, upd sluice.BatchUpdate) (*sluice.Batch, error) {
	var (
		set  []string
		args []any
	)
	add := func(col string, v any) { set = append(set, col+" = ?"); args = append(args, v) }
	if upd.Status != nil {
		add("status", *upd.Status)
	}
	if upd.Deployment != nil {
		add("deployment", *upd.Deployment)
	}
	if upd.OutputFileID != nil {
		add("output_file_id", *upd.OutputFileID)
	}
	if upd.ErrorFileID != nil {
		add("error_file_id", *upd.ErrorFileID)
	}
	if upd.OutputBlob != nil {
		add("output_blob", *upd.OutputBlob)
	}
	if upd.ErrorBlob != nil {
		add("error_blob", *upd.ErrorBlob)
	}
	if upd.Errors != nil {
		b, err := json.Marshal(upd.Errors)
		if err != nil {
			return nil, err
		}
		add("errors", string(b))
	}
	if upd.Total != nil {
		add("total", *upd.Total)
	}
	for col, t := range map[string]*time.Time{
		"in_progress_at": upd.InProgressAt, "finalizing_at": upd.FinalizingAt, "completed_at": upd.CompletedAt,
		"failed_at": upd.FailedAt, "expired_at": upd.ExpiredAt, "cancelling_at": upd.CancellingAt,
		"cancelled_at": upd.CancelledAt,
	} {
		if t != nil {
			add(col, unix(*t))
		}
	}
	if len(set) == 0 {
		set = append(set, "id = id")
	}
	q := `UPDATE batches SET ` + strings.Join(set, ", ") + ` WHERE id = ?`
	args = append(args, id)
	if len(upd.IfStatus) > 0 {
		q += " AND status IN (" + placeholders(len(upd.IfStatus)) + ")"
		for _, st := range upd.IfStatus {
			args = append(args, st)
		}
	}
	res, err := tx.ExecContext(ctx, q, args...)
	if err != nil {
		return nil, interpret(err, "Batch", id)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, interpret(err, "Batch", id)
	}
	b, err := scanBatch(tx.QueryRowContext(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = ?`, id))
	if err != nil {
		return nil, interpret(err, "Batch", id)
	}
	if n == 0 {
		return b, sluice.Errorf(sluice.KindConflict, "The batch %s is %s, so it cannot be changed that way.", id, b.Status)
	}
	return b, nil
}

// UpdateBatch implements sluice.Store.
func (s *Store) UpdateBatch(ctx context.Context, id string, upd sluice.BatchUpdate) (*sluice.Batch, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("update batch: %w", err)
	}
	defer tx.Rollback()
	b, err := updateBatch(ctx, tx, id, upd)
	if err != nil {
		return b, err
	}
	return b, s.commitBatch(tx, b)
}

// commitBatch commits tx, which changed batch b to what it is now, and caches b.
func (s *Store) commitBatch(tx *sql.Tx, b *sluice.Batch) error {
	err := s.cache.commit(tx.Commit, func() { s.cache.put(b) }, b.ID)
	return interpret(err, "Batch", b.ID)
}

// FinishBatch implements sluice.Store.
func (s *Store) FinishBatch(ctx context.Context, id string, files []*sluice.File, upd sluice.BatchUpdate) (*sluice.Batch, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("finish batch: %w", err)
	}
	defer tx.Rollback()
	for _, f := range files {
		_, err := tx.ExecContext(ctx, `INSERT INTO files (`+fileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, '', '', ?)`,
			f.ID, f.Bytes, unix(f.CreatedAt), unixPtr(f.ExpiresAt), f.Filename, f.Purpose, f.Status, f.StatusDetails, f.Project)
		if err != nil {
			return nil, interpret(err, "File", f.ID)
		}
	}
	b, err := updateBatch(ctx, tx, id, upd)
	if err != nil {
		return b, err
	}
	return b, s.commitBatch(tx, b)
}

// --- chunks, results and segments ---

// The hot path's statements, prepared once at Open: parsing them again for every group
// of results cost as much as running them.
const (
	sqlClaimChunks = `UPDATE chunks SET state = 1, owner = ?, lease_until = ?
		WHERE batch_id = ? AND chunk IN (SELECT chunk FROM chunks WHERE batch_id = ? AND state < 2
			AND (state = 0 OR lease_until < ?) ORDER BY chunk LIMIT ?)
		RETURNING chunk, lines, done, index_off, index_len`
	sqlChunkForCommit = `SELECT state, owner, done, lines FROM chunks WHERE batch_id = ? AND chunk = ?`
	sqlChunkCommit    = `UPDATE chunks SET done = ?, remaining = ?,
			state = CASE WHEN ? = 0 THEN 2 ELSE state END,
			owner = CASE WHEN ? = 0 THEN NULL ELSE owner END,
			lease_until = CASE WHEN ? = 0 THEN NULL ELSE lease_until END
		WHERE batch_id = ? AND chunk = ?`
	sqlCounts = `UPDATE batches SET completed = completed + ?, failed = failed + ?,
		usage_input = usage_input + ?, usage_cached = usage_cached + ?, usage_output = usage_output + ?,
		usage_reasoning = usage_reasoning + ?, usage_estimated = usage_estimated + ? WHERE id = ?`
	sqlExtent  = `INSERT INTO extents (batch_id, succeeded, segment, off, len, lines) VALUES (?, ?, ?, ?, ?, ?)`
	sqlRelease = `UPDATE chunks SET state = 0, owner = NULL, lease_until = NULL
		WHERE batch_id = ? AND chunk = ? AND state = 1 AND owner = ?`
	sqlAddChunk = `INSERT INTO chunks (batch_id, chunk, lines, done, remaining, index_off, index_len)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (batch_id, chunk) DO NOTHING`
	sqlFindBatch = `SELECT ` + batchColumns + ` FROM batches WHERE id = ?`
)

// hotStatements returns every statement Open prepares on the writer.
func hotStatements() []string {
	return []string{sqlClaimChunks, sqlChunkForCommit, sqlChunkCommit, sqlCounts, sqlExtent, sqlRelease, sqlAddChunk}
}

// stmt returns q prepared for tx: the statement Open prepared, bound to tx.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	return tx.StmtContext(ctx, s.prepared[q])
}

// AddChunks implements sluice.Store.
func (s *Store) AddChunks(ctx context.Context, batchID string, chunks []sluice.Chunk) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add chunks: %w", err)
	}
	defer tx.Rollback()
	st := s.stmt(ctx, tx, sqlAddChunk)
	for _, c := range chunks {
		if c.Lines < 1 || c.Lines > sluice.ChunkLines {
			return fmt.Errorf("add chunk %d of %s: %d lines", c.Number, batchID, c.Lines)
		}
		var none sluice.Bitmap
		if _, err := st.ExecContext(ctx, batchID, c.Number, c.Lines, none[:], c.Lines, c.IndexOffset, c.IndexLength); err != nil {
			return fmt.Errorf("add chunk %d of %s: %w", c.Number, batchID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add chunks of %s: %w", batchID, err)
	}
	return nil
}

// ClaimChunks implements sluice.Store.
func (s *Store) ClaimChunks(ctx context.Context, batchID, owner string, n int, until time.Time) ([]sluice.Chunk, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim chunks: %w", err)
	}
	defer tx.Rollback()
	rows, err := s.stmt(ctx, tx, sqlClaimChunks).QueryContext(ctx, owner, until.UnixMilli(), batchID, batchID, s.now().UnixMilli(), max(1, n))
	if err != nil {
		return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
	}
	var out []sluice.Chunk
	for rows.Next() {
		c := sluice.Chunk{BatchID: batchID}
		var done []byte
		if err := rows.Scan(&c.Number, &c.Lines, &done, &c.IndexOffset, &c.IndexLength); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
		}
		copy(c.Done[:], done)
		out = append(out, c)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// ExtendLeases implements sluice.Store.
func (s *Store) ExtendLeases(ctx context.Context, owner string, until time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE chunks SET lease_until = ? WHERE state = 1 AND owner = ?`, until.UnixMilli(), owner)
	if err != nil {
		return fmt.Errorf("extend leases: %w", err)
	}
	return nil
}

// ReleaseChunks implements sluice.Store.
func (s *Store) ReleaseChunks(ctx context.Context, owner, batchID string, chunks []int) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("release chunks: %w", err)
	}
	defer tx.Rollback()
	st := s.stmt(ctx, tx, sqlRelease)
	for _, c := range chunks {
		if _, err := st.ExecContext(ctx, batchID, c, owner); err != nil {
			return fmt.Errorf("release chunk %d of %s: %w", c, batchID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("release chunks of %s: %w", batchID, err)
	}
	return nil
}

// AddSegment implements sluice.Store.
func (s *Store) AddSegment(ctx context.Context, batchID, key string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO segments (batch_id, key) VALUES (?, ?) ON CONFLICT DO NOTHING`, batchID, key)
	if err != nil {
		return fmt.Errorf("add segment %s: %w", key, err)
	}
	return nil
}

// chunkKey names a chunk of a batch.
type chunkKey struct {
	batchID string
	chunk   int
}

// heldChunk is a chunk as a commit sees it: nil when owner does not hold it.
type heldChunk struct {
	done  sluice.Bitmap
	lines int
	added int
}

// CommitResults implements sluice.Store. Each chunk is read once and written once per
// call; each run of accepted refs back to back in a segment is one extent row.
func (s *Store) CommitResults(ctx context.Context, owner string, refs []sluice.ResultRef) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	defer tx.Rollback()
	chunks := make(map[chunkKey]*heldChunk)
	var order []chunkKey
	read := s.stmt(ctx, tx, sqlChunkForCommit)
	type counts struct {
		completed, failed int
		usage             sluice.Usage
	}
	batches := make(map[string]*counts)
	var batchOrder []string
	var run sluice.ResultRef // the extent being built; Lines counted in runLines
	runLines := 0
	extent := s.stmt(ctx, tx, sqlExtent)
	flushRun := func() error {
		if runLines == 0 {
			return nil
		}
		_, err := extent.ExecContext(ctx, run.BatchID, run.Succeeded, run.Segment, run.Offset, run.Length, runLines)
		runLines = 0
		return err
	}
	stored := 0
	for _, r := range refs {
		k := chunkKey{r.BatchID, r.Chunk}
		hc, seen := chunks[k]
		if !seen {
			var (
				state int
				own   sql.NullString
				done  []byte
				lines int
			)
			err := read.QueryRowContext(ctx, r.BatchID, r.Chunk).Scan(&state, &own, &done, &lines)
			switch {
			case errors.Is(err, sql.ErrNoRows):
			case err != nil:
				return 0, fmt.Errorf("commit results: read chunk %d of %s: %w", r.Chunk, r.BatchID, err)
			case state == 1 && own.String == owner:
				hc = &heldChunk{lines: lines}
				copy(hc.done[:], done)
				order = append(order, k)
			}
			chunks[k] = hc
		}
		if hc == nil || r.Index < 0 || r.Index >= hc.lines || hc.done.Has(r.Index) {
			continue // not held (the lease passed to another owner), or answered already
		}
		hc.done.Set(r.Index)
		hc.added++
		c := batches[r.BatchID]
		if c == nil {
			c = &counts{}
			batches[r.BatchID] = c
			batchOrder = append(batchOrder, r.BatchID)
		}
		if r.Succeeded {
			c.completed++
		} else {
			c.failed++
		}
		c.usage.Add(r.Usage)
		stored++
		if runLines > 0 && run.BatchID == r.BatchID && run.Succeeded == r.Succeeded && run.Segment == r.Segment &&
			run.Offset+run.Length == r.Offset {
			run.Length += r.Length
			runLines++
			continue
		}
		if err := flushRun(); err != nil {
			return 0, fmt.Errorf("commit results: record extent: %w", err)
		}
		run, runLines = r, 1
	}
	if err := flushRun(); err != nil {
		return 0, fmt.Errorf("commit results: record extent: %w", err)
	}
	write := s.stmt(ctx, tx, sqlChunkCommit)
	for _, k := range order {
		hc := chunks[k]
		if hc.added == 0 {
			continue
		}
		remaining := hc.lines - hc.done.Count()
		if _, err := write.ExecContext(ctx, hc.done[:], remaining, remaining, remaining, remaining, k.batchID, k.chunk); err != nil {
			return 0, fmt.Errorf("commit results: chunk %d of %s: %w", k.chunk, k.batchID, err)
		}
	}
	count := s.stmt(ctx, tx, sqlCounts)
	for _, id := range batchOrder {
		c := batches[id]
		u := &c.usage
		if _, err := count.ExecContext(ctx, c.completed, c.failed, u.InputTokens, u.CachedTokens, u.OutputTokens,
			u.ReasoningTokens, u.EstimatedLines, id); err != nil {
			return 0, fmt.Errorf("commit results: count for %s: %w", id, err)
		}
	}
	err = s.cache.commit(tx.Commit, func() {
		for _, id := range batchOrder {
			c := batches[id]
			s.cache.count(id, c.completed, c.failed, c.usage)
		}
	}, batchOrder...)
	if err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	return stored, nil
}

// CountLeased implements sluice.Store.
func (s *Store) CountLeased(ctx context.Context, batchID string, now time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM chunks WHERE batch_id = ? AND state = 1 AND lease_until >= ?`,
		batchID, now.UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count leased of %s: %w", batchID, err)
	}
	return n, nil
}

// EachExtent implements sluice.Store.
func (s *Store) EachExtent(ctx context.Context, batchID string, succeeded bool, fn func(sluice.Extent) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT segment, off, len, lines FROM extents WHERE batch_id = ? AND succeeded = ? ORDER BY seq`,
		batchID, succeeded)
	if err != nil {
		return fmt.Errorf("read extents of %s: %w", batchID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var x sluice.Extent
		if err := rows.Scan(&x.Segment, &x.Offset, &x.Length, &x.Lines); err != nil {
			return fmt.Errorf("read extents of %s: %w", batchID, err)
		}
		if err := fn(x); err != nil {
			return err
		}
	}
	return rows.Err()
}

// FindSegments implements sluice.Store.
func (s *Store) FindSegments(ctx context.Context, batchID string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key FROM segments WHERE batch_id = ? ORDER BY key`, batchID)
	if err != nil {
		return nil, fmt.Errorf("find segments of %s: %w", batchID, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("find segments of %s: %w", batchID, err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteWork implements sluice.Store. A batch has one chunk row per 256 lines and one
// extent row per commit, so this is a few hundred rows for the largest batch the
// product allows; it goes in one transaction.
func (s *Store) DeleteWork(ctx context.Context, batchID string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete work: %w", err)
	}
	defer tx.Rollback()
	for _, table := range []string{"chunks", "extents", "segments"} {
		if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE batch_id = ?`, batchID); err != nil {
			return fmt.Errorf("delete work of %s: %w", batchID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete work of %s: %w", batchID, err)
	}
	return nil
}

// FindLeftoverWork implements sluice.Store.
func (s *Store) FindLeftoverWork(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM batches WHERE status IN ('completed', 'failed', 'expired', 'cancelled')
		AND (EXISTS (SELECT 1 FROM chunks c WHERE c.batch_id = batches.id)
			OR EXISTS (SELECT 1 FROM extents x WHERE x.batch_id = batches.id)
			OR EXISTS (SELECT 1 FROM segments g WHERE g.batch_id = batches.id))
		ORDER BY seq LIMIT ?`, max(1, limit))
	if err != nil {
		return nil, fmt.Errorf("find leftover work: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("find leftover work: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
