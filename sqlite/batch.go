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

// rowsPerStatement bounds the rows one multi-row statement carries, well inside
// SQLite's limit on bound parameters.
const rowsPerStatement = 500

// valuesList returns "(?, ?), (?, ?)" for rows rows of cols columns.
func valuesList(rows, cols int) string {
	one := "(" + placeholders(cols) + ")"
	return strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}

// AddRequests implements sluice.Store. Rows go in with one statement per 500.
func (s *Store) AddRequests(ctx context.Context, batchID string, reqs []sluice.Request) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	defer tx.Rollback()
	for len(reqs) > 0 {
		chunk := reqs[:min(len(reqs), rowsPerStatement)]
		reqs = reqs[len(chunk):]
		args := make([]any, 0, 5*len(chunk))
		for _, r := range chunk {
			args = append(args, batchID, r.Line, r.CustomID, r.Offset, r.Length)
		}
		q := `INSERT INTO requests (batch_id, line, custom_id, off, len) VALUES ` + valuesList(len(chunk), 5) +
			` ON CONFLICT (batch_id, line) DO NOTHING`
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("add requests of %s: %w", batchID, err)
		}
	}
	return tx.Commit()
}

// ClaimRequests implements sluice.Store. Pending lines come through their partial
// index at a cost that does not grow with the batch; lines whose lease ran out are
// looked for only when too few pending ones are left, as that walks the whole batch.
func (s *Store) ClaimRequests(ctx context.Context, batchID, owner string, n int, until time.Time) ([]sluice.Request, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	defer tx.Rollback()
	out := make([]sluice.Request, 0, n)
	for pass := range 2 {
		if len(out) >= n {
			break
		}
		args := []any{owner, until.UnixMilli(), batchID, batchID}
		where := `state = 0`
		if pass == 1 {
			// Expired leases, but not the lines this claim just took (a lease given
			// already run out would match otherwise).
			where = `state = 1 AND lease_until < ?`
			args = append(args, s.now().UnixMilli())
			if len(out) > 0 {
				where += ` AND line NOT IN (` + placeholders(len(out)) + `)`
				for _, r := range out {
					args = append(args, r.Line)
				}
			}
		}
		args = append(args, n-len(out))
		rows, err := tx.QueryContext(ctx, `UPDATE requests SET state = 1, owner = ?, lease_until = ?
			WHERE batch_id = ? AND line IN (SELECT line FROM requests WHERE batch_id = ? AND `+where+` ORDER BY line LIMIT ?)
			RETURNING line, custom_id, off, len`, args...)
		if err != nil {
			return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
		}
		for rows.Next() {
			r := sluice.Request{BatchID: batchID}
			if err := rows.Scan(&r.Line, &r.CustomID, &r.Offset, &r.Length); err != nil {
				rows.Close()
				return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
			}
			out = append(out, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Line < out[j].Line })
	return out, nil
}

// ExtendLeases implements sluice.Store.
func (s *Store) ExtendLeases(ctx context.Context, owner string, until time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE requests SET lease_until = ? WHERE state = 1 AND owner = ?`, until.UnixMilli(), owner)
	if err != nil {
		return fmt.Errorf("extend leases: %w", err)
	}
	return nil
}

// ReleaseRequests implements sluice.Store.
func (s *Store) ReleaseRequests(ctx context.Context, owner string, reqs []sluice.Request) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("release requests: %w", err)
	}
	defer tx.Rollback()
	byBatch := make(map[string][]int)
	for _, r := range reqs {
		byBatch[r.BatchID] = append(byBatch[r.BatchID], r.Line)
	}
	for batchID, lines := range byBatch {
		for len(lines) > 0 {
			chunk := lines[:min(len(lines), rowsPerStatement)]
			lines = lines[len(chunk):]
			args := []any{batchID, owner}
			for _, l := range chunk {
				args = append(args, l)
			}
			_, err := tx.ExecContext(ctx, `UPDATE requests SET state = 0, owner = NULL, lease_until = NULL
				WHERE batch_id = ? AND state = 1 AND owner = ? AND line IN (`+placeholders(len(chunk))+`)`, args...)
			if err != nil {
				return fmt.Errorf("release requests of %s: %w", batchID, err)
			}
		}
	}
	return tx.Commit()
}

// CommitResults implements sluice.Store. Per batch and outcome, one UPDATE moves the
// lines this owner still holds out of the leased state and returns them; only their
// results are appended, with one INSERT per 500, and counted.
func (s *Store) CommitResults(ctx context.Context, owner string, results []sluice.Result) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	defer tx.Rollback()
	type key struct {
		batchID   string
		succeeded bool
	}
	groups := make(map[key][]*sluice.Result)
	for i := range results {
		r := &results[i]
		k := key{r.BatchID, r.Succeeded}
		groups[k] = append(groups[k], r)
	}
	stored := 0
	for k, rs := range groups {
		held, err := takeHeld(ctx, tx, k.batchID, owner, k.succeeded, rs)
		if err != nil {
			return 0, err
		}
		if err := appendResults(ctx, tx, held); err != nil {
			return 0, err
		}
		if len(held) == 0 {
			continue
		}
		col := "failed"
		if k.succeeded {
			col = "completed"
		}
		if _, err := tx.ExecContext(ctx, `UPDATE batches SET `+col+` = `+col+` + ? WHERE id = ?`, len(held), k.batchID); err != nil {
			return 0, fmt.Errorf("count results of %s: %w", k.batchID, err)
		}
		stored += len(held)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	return stored, nil
}

// takeHeld marks the lines of rs that owner still holds as done and returns their results.
func takeHeld(ctx context.Context, tx *sql.Tx, batchID, owner string, succeeded bool, rs []*sluice.Result) ([]*sluice.Result, error) {
	state := sluice.RequestFailed
	if succeeded {
		state = sluice.RequestSucceeded
	}
	isHeld := make(map[int]bool, len(rs))
	for todo := rs; len(todo) > 0; {
		chunk := todo[:min(len(todo), rowsPerStatement)]
		todo = todo[len(chunk):]
		args := []any{int(state), batchID, owner}
		for _, r := range chunk {
			args = append(args, r.Line)
		}
		rows, err := tx.QueryContext(ctx, `UPDATE requests SET state = ?, owner = NULL, lease_until = NULL
			WHERE batch_id = ? AND state = 1 AND owner = ? AND line IN (`+placeholders(len(chunk))+`) RETURNING line`, args...)
		if err != nil {
			return nil, fmt.Errorf("commit results of %s: %w", batchID, err)
		}
		for rows.Next() {
			var line int
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return nil, fmt.Errorf("commit results of %s: %w", batchID, err)
			}
			isHeld[line] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("commit results of %s: %w", batchID, err)
		}
	}
	held := make([]*sluice.Result, 0, len(isHeld))
	for _, r := range rs { // in the caller's order, which is the commit order
		if isHeld[r.Line] {
			held = append(held, r)
		}
	}
	return held, nil
}

func appendResults(ctx context.Context, tx *sql.Tx, rs []*sluice.Result) error {
	for len(rs) > 0 {
		chunk := rs[:min(len(rs), rowsPerStatement)]
		rs = rs[len(chunk):]
		args := make([]any, 0, 4*len(chunk))
		for _, r := range chunk {
			args = append(args, r.BatchID, r.Line, r.Succeeded, r.Output)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO results (batch_id, line, succeeded, output) VALUES `+valuesList(len(chunk), 4), args...); err != nil {
			return fmt.Errorf("append results: %w", err)
		}
	}
	return nil
}

// CountLeased implements sluice.Store.
func (s *Store) CountLeased(ctx context.Context, batchID string, now time.Time) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM requests WHERE batch_id = ? AND state = 1 AND lease_until >= ?`,
		batchID, now.UnixMilli()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count leased of %s: %w", batchID, err)
	}
	return n, nil
}

// EachResult implements sluice.Store.
func (s *Store) EachResult(ctx context.Context, batchID string, fn func(sluice.Result) error) error {
	rows, err := s.r.QueryContext(ctx, `SELECT line, succeeded, output FROM results WHERE batch_id = ? ORDER BY succeeded DESC, rowid`, batchID)
	if err != nil {
		return fmt.Errorf("read results of %s: %w", batchID, err)
	}
	defer rows.Close()
	for rows.Next() {
		r := sluice.Result{BatchID: batchID}
		if err := rows.Scan(&r.Line, &r.Succeeded, &r.Output); err != nil {
			return fmt.Errorf("read results of %s: %w", batchID, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
