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

const batchColumns = `id, endpoint, input_file_id, completion_window, status, deployment, output_file_id,
	error_file_id, errors, metadata, total, completed, failed, output_expires_after, created_at,
	in_progress_at, expires_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at`

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
	err := row.Scan(&b.ID, &b.Endpoint, &b.InputFileID, &b.CompletionWindow, &b.Status, &b.Deployment,
		&b.OutputFileID, &b.ErrorFileID, &errs, &meta, &b.RequestCounts.Total, &b.RequestCounts.Completed,
		&b.RequestCounts.Failed, &b.OutputExpiresAfter, &created, &inProgress, &expires, &finalizing, &done,
		&failed, &expired, &cancelling, &cancel)
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
	errs, err := jsonOrNull(b.Errors, b.Errors == nil)
	if err != nil {
		return err
	}
	meta, err := jsonOrNull(b.Metadata, b.Metadata == nil)
	if err != nil {
		return err
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO batches (`+batchColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.Endpoint, b.InputFileID, b.CompletionWindow, b.Status, b.Deployment, b.OutputFileID,
		b.ErrorFileID, errs, meta, b.RequestCounts.Total, b.RequestCounts.Completed, b.RequestCounts.Failed,
		b.OutputExpiresAfter, unix(b.CreatedAt), unixPtr(b.InProgressAt), unixPtr(b.ExpiresAt),
		unixPtr(b.FinalizingAt), unixPtr(b.CompletedAt), unixPtr(b.FailedAt), unixPtr(b.ExpiredAt),
		unixPtr(b.CancellingAt), unixPtr(b.CancelledAt))
	return interpret(err, "Batch", b.ID)
}

// FindBatchByID implements sluice.Store.
func (s *Store) FindBatchByID(ctx context.Context, id string) (*sluice.Batch, error) {
	b, err := scanBatch(s.r.QueryRowContext(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = ?`, id))
	return b, interpret(err, "Batch", id)
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
	if filter.After != "" {
		where = append(where, "seq < (SELECT seq FROM batches WHERE id = ?)")
		args = append(args, filter.After)
	}
	q := `SELECT ` + batchColumns + ` FROM batches`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq DESC"
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
	return b, interpret(tx.Commit(), "Batch", id)
}

// FinishBatch implements sluice.Store.
func (s *Store) FinishBatch(ctx context.Context, id string, files []*sluice.File, upd sluice.BatchUpdate) (*sluice.Batch, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("finish batch: %w", err)
	}
	defer tx.Rollback()
	for _, f := range files {
		_, err := tx.ExecContext(ctx, `INSERT INTO files (`+fileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
			f.ID, f.Bytes, unix(f.CreatedAt), unixPtr(f.ExpiresAt), f.Filename, f.Purpose, f.Status, f.StatusDetails)
		if err != nil {
			return nil, interpret(err, "File", f.ID)
		}
	}
	b, err := updateBatch(ctx, tx, id, upd)
	if err != nil {
		return b, err
	}
	return b, interpret(tx.Commit(), "Batch", id)
}

// --- request lines ---

// valuesList returns "(?, ?), (?, ?)" for rows rows of cols columns.
func valuesList(rows, cols int) string {
	one := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}

// The hot path's statements, prepared once at Open: parsing them again for every group
// of results cost as much as running them.
const (
	sqlClaimChunks = `UPDATE chunks SET state = 1, owner = ?, lease_until = ?
		WHERE batch_id = ? AND chunk IN (SELECT chunk FROM chunks WHERE batch_id = ? AND (state = 0 OR (state = 1 AND lease_until < ?))
			ORDER BY chunk LIMIT ?)
		RETURNING chunk, first_line, last_line`
	sqlUnfinished = `SELECT r.line, r.custom_id, r.off, r.len FROM requests r
		WHERE r.batch_id = ? AND r.line BETWEEN ? AND ? AND r.chunk = ?
		AND NOT EXISTS (SELECT 1 FROM results x WHERE x.batch_id = r.batch_id AND x.line = r.line)
		ORDER BY r.line`
	sqlChunkDone = `UPDATE chunks SET state = 2, owner = NULL, lease_until = NULL, remaining = 0
		WHERE batch_id = ? AND chunk = ?`
	sqlHeld        = `SELECT 1 FROM chunks WHERE batch_id = ? AND chunk = ? AND state = 1 AND owner = ?`
	sqlChunkCounts = `UPDATE chunks SET remaining = remaining - ?,
			state = CASE WHEN remaining - ? <= 0 THEN 2 ELSE state END,
			owner = CASE WHEN remaining - ? <= 0 THEN NULL ELSE owner END
			WHERE batch_id = ? AND chunk = ?`
	sqlCountCompleted = `UPDATE batches SET completed = completed + ? WHERE id = ?`
	sqlCountFailed    = `UPDATE batches SET failed = failed + ? WHERE id = ?`
	sqlRelease        = `UPDATE chunks SET state = 0, owner = NULL, lease_until = NULL
			WHERE batch_id = ? AND chunk = ? AND state = 1 AND owner = ?`
	sqlAddChunk = `INSERT INTO chunks (batch_id, chunk, first_line, last_line, remaining) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (batch_id, chunk) DO NOTHING`

	insertResultsHead  = `INSERT INTO results (batch_id, line, succeeded, output) VALUES `
	insertResultsTail  = ` ON CONFLICT (batch_id, line) DO NOTHING`
	insertRequestsHead = `INSERT INTO requests (batch_id, line, chunk, custom_id, off, len) VALUES `
	insertRequestsTail = ` ON CONFLICT (batch_id, line) DO NOTHING`
)

// rowShapes are the row counts of the prepared multi-row inserts; a group of rows goes
// in as the fewest statements of these shapes.
var rowShapes = []int{64, 8, 1}

// hotStatements returns every statement Open prepares.
func hotStatements() []string {
	qs := []string{sqlClaimChunks, sqlUnfinished, sqlChunkDone, sqlHeld, sqlChunkCounts, sqlCountCompleted,
		sqlCountFailed, sqlRelease, sqlAddChunk}
	for _, n := range rowShapes {
		qs = append(qs, insertResultsHead+valuesList(n, 4)+insertResultsTail,
			insertRequestsHead+valuesList(n, 6)+insertRequestsTail)
	}
	return qs
}

// stmt returns q prepared for tx: the statement Open prepared, bound to tx.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, q string) *sql.Stmt {
	return tx.StmtContext(ctx, s.prepared[q])
}

// insertRows inserts rows of cols values each with the prepared shapes, and returns
// how many rows the statements reported inserted.
func (s *Store) insertRows(ctx context.Context, tx *sql.Tx, head, tail string, cols int, args []any) (int, error) {
	n := 0
	for len(args) > 0 {
		rows := len(args) / cols
		shape := 1
		for _, sh := range rowShapes {
			if rows >= sh {
				shape = sh
				break
			}
		}
		res, err := s.stmt(ctx, tx, head+valuesList(shape, cols)+tail).ExecContext(ctx, args[:shape*cols]...)
		if err != nil {
			return 0, err
		}
		m, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		n += int(m)
		args = args[shape*cols:]
	}
	return n, nil
}

// AddRequests implements sluice.Store. Rows go in with one statement per 500.
func (s *Store) AddRequests(ctx context.Context, batchID string, reqs []sluice.Request) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	defer tx.Rollback()
	type span struct{ first, last, n int }
	chunks := make(map[int]*span)
	var order []int
	for _, r := range reqs {
		c := chunks[r.Chunk]
		if c == nil {
			c = &span{first: r.Line, last: r.Line}
			chunks[r.Chunk] = c
			order = append(order, r.Chunk)
		}
		c.first, c.last, c.n = min(c.first, r.Line), max(c.last, r.Line), c.n+1
	}
	args := make([]any, 0, 6*len(reqs))
	for _, r := range reqs {
		args = append(args, batchID, r.Line, r.Chunk, r.CustomID, r.Offset, r.Length)
	}
	if _, err := s.insertRows(ctx, tx, insertRequestsHead, insertRequestsTail, 6, args); err != nil {
		return fmt.Errorf("add requests of %s: %w", batchID, err)
	}
	for _, n := range order {
		c := chunks[n]
		if _, err := s.stmt(ctx, tx, sqlAddChunk).ExecContext(ctx, batchID, n, c.first, c.last, c.n); err != nil {
			return fmt.Errorf("add chunks of %s: %w", batchID, err)
		}
	}
	return tx.Commit()
}

// ClaimRequests implements sluice.Store.
func (s *Store) ClaimRequests(ctx context.Context, batchID, owner string, n int, until time.Time) ([]sluice.Request, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	defer tx.Rollback()
	want := max(1, (n+sluice.ChunkLines-1)/sluice.ChunkLines)
	rows, err := s.stmt(ctx, tx, sqlClaimChunks).QueryContext(ctx, owner, until.UnixMilli(), batchID, batchID, s.now().UnixMilli(), want)
	if err != nil {
		return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
	}
	type span struct{ chunk, first, last int }
	var spans []span
	for rows.Next() {
		var sp span
		if err := rows.Scan(&sp.chunk, &sp.first, &sp.last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
		}
		spans = append(spans, sp)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
	}
	var out []sluice.Request
	for _, sp := range spans {
		got, err := s.unfinished(ctx, tx, batchID, sp.chunk, sp.first, sp.last)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 { // every line has a result: the chunk is done
			if _, err := s.stmt(ctx, tx, sqlChunkDone).ExecContext(ctx, batchID, sp.chunk); err != nil {
				return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
			}
		}
		out = append(out, got...)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out, nil
}

// unfinished returns the lines of a chunk that have no result.
func (s *Store) unfinished(ctx context.Context, tx *sql.Tx, batchID string, chunk, first, last int) ([]sluice.Request, error) {
	rows, err := s.stmt(ctx, tx, sqlUnfinished).QueryContext(ctx, batchID, first, last, chunk)
	if err != nil {
		return nil, fmt.Errorf("read chunk %d of %s: %w", chunk, batchID, err)
	}
	defer rows.Close()
	var out []sluice.Request
	for rows.Next() {
		r := sluice.Request{BatchID: batchID, Chunk: chunk}
		if err := rows.Scan(&r.Line, &r.CustomID, &r.Offset, &r.Length); err != nil {
			return nil, fmt.Errorf("read chunk %d of %s: %w", chunk, batchID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read chunk %d of %s: %w", chunk, batchID, err)
	}
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

type chunkKey struct {
	batchID string
	chunk   int
}

// ReleaseRequests implements sluice.Store.
func (s *Store) ReleaseRequests(ctx context.Context, owner string, reqs []sluice.Request) error {
	seen := make(map[chunkKey]bool)
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("release requests: %w", err)
	}
	defer tx.Rollback()
	for _, r := range reqs {
		k := chunkKey{r.BatchID, r.Chunk}
		if seen[k] {
			continue
		}
		seen[k] = true
		_, err := s.stmt(ctx, tx, sqlRelease).ExecContext(ctx, r.BatchID, r.Chunk, owner)
		if err != nil {
			return fmt.Errorf("release chunk %d of %s: %w", r.Chunk, r.BatchID, err)
		}
	}
	return tx.Commit()
}

// CommitResults implements sluice.Store. Per chunk and outcome, one INSERT appends the
// results (skipping lines that have one), then the chunk and batch counters move by
// what it inserted.
func (s *Store) CommitResults(ctx context.Context, owner string, results []sluice.Result) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	defer tx.Rollback()
	type key struct {
		chunkKey
		succeeded bool
	}
	groups := make(map[key][]*sluice.Result)
	var order []key
	for i := range results {
		r := &results[i]
		k := key{chunkKey{r.BatchID, r.Chunk}, r.Succeeded}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	held := make(map[chunkKey]bool)
	stored := 0
	for _, k := range order {
		h, ok := held[k.chunkKey]
		if !ok {
			var one int
			err := s.stmt(ctx, tx, sqlHeld).QueryRowContext(ctx, k.batchID, k.chunk, owner).Scan(&one)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("commit results: %w", err)
			}
			h = err == nil
			held[k.chunkKey] = h
		}
		if !h {
			continue // the lease passed to another owner; its results will count
		}
		n, err := s.appendResults(ctx, tx, groups[k])
		if err != nil {
			return 0, err
		}
		if n == 0 {
			continue
		}
		if _, err := s.stmt(ctx, tx, sqlChunkCounts).ExecContext(ctx, n, n, n, k.batchID, k.chunk); err != nil {
			return 0, fmt.Errorf("count chunk results: %w", err)
		}
		count := sqlCountFailed
		if k.succeeded {
			count = sqlCountCompleted
		}
		if _, err := s.stmt(ctx, tx, count).ExecContext(ctx, n, k.batchID); err != nil {
			return 0, fmt.Errorf("count results of %s: %w", k.batchID, err)
		}
		stored += n
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	return stored, nil
}

// appendResults inserts results, skipping lines that have one, and returns how many
// it inserted.
func (s *Store) appendResults(ctx context.Context, tx *sql.Tx, rs []*sluice.Result) (int, error) {
	args := make([]any, 0, 4*len(rs))
	for _, r := range rs {
		args = append(args, r.BatchID, r.Line, r.Succeeded, r.Output)
	}
	n, err := s.insertRows(ctx, tx, insertResultsHead, insertResultsTail, 4, args)
	if err != nil {
		return 0, fmt.Errorf("append results: %w", err)
	}
	return n, nil
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

// EachResult implements sluice.Store.
func (s *Store) EachResult(ctx context.Context, batchID string, succeeded bool, fn func(sluice.Result) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT line, output FROM results WHERE batch_id = ? AND succeeded = ? ORDER BY line`,
		batchID, succeeded)
	if err != nil {
		return fmt.Errorf("read results of %s: %w", batchID, err)
	}
	defer rows.Close()
	for rows.Next() {
		r := sluice.Result{BatchID: batchID, Succeeded: succeeded}
		if err := rows.Scan(&r.Line, &r.Output); err != nil {
			return fmt.Errorf("read results of %s: %w", batchID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// purgeStep is how many rows one DeleteRequests transaction removes, so a large batch
// does not hold the one writer for long.
const purgeStep = 5000

// DeleteRequests implements sluice.Store.
func (s *Store) DeleteRequests(ctx context.Context, batchID string) error {
	for _, q := range []string{
		`DELETE FROM results WHERE rowid IN (SELECT rowid FROM results WHERE batch_id = ? LIMIT ?)`,
		`DELETE FROM requests WHERE batch_id = ? AND line IN (SELECT line FROM requests WHERE batch_id = ? LIMIT ?)`,
		`DELETE FROM chunks WHERE batch_id = ? AND chunk IN (SELECT chunk FROM chunks WHERE batch_id = ? LIMIT ?)`,
	} {
		for {
			args := []any{batchID, purgeStep}
			if strings.Count(q, "?") == 3 {
				args = []any{batchID, batchID, purgeStep}
			}
			res, err := s.w.ExecContext(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("delete requests of %s: %w", batchID, err)
			}
			if n, _ := res.RowsAffected(); n < purgeStep {
				break
			}
		}
	}
	return nil
}
