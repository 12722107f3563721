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

// AddRequests implements sluice.Store.
func (s *Store) AddRequests(ctx context.Context, batchID string, reqs []sluice.Request) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO requests (batch_id, line, custom_id, off, len) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (batch_id, line) DO NOTHING`)
	if err != nil {
		return fmt.Errorf("add requests: %w", err)
	}
	defer stmt.Close()
	for _, r := range reqs {
		if _, err := stmt.ExecContext(ctx, batchID, r.Line, r.CustomID, r.Offset, r.Length); err != nil {
			return fmt.Errorf("add requests of %s: %w", batchID, err)
		}
	}
	return tx.Commit()
}

// ClaimRequests implements sluice.Store. It takes the lowest n lines among pending
// lines and lines whose lease ran out: each set is read in line order through the
// claim index (no sort of the whole batch), merged, then leased in one statement.
func (s *Store) ClaimRequests(ctx context.Context, batchID, owner string, n int, until time.Time) ([]sluice.Request, error) {
	now := s.now().UnixMilli()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim requests: %w", err)
	}
	defer tx.Rollback()
	type cand struct{ rowid, line int64 }
	var cands []cand
	for _, pick := range []struct {
		q    string
		args []any
	}{
		{`SELECT rowid, line FROM requests WHERE batch_id = ? AND state = 0 ORDER BY line LIMIT ?`, []any{batchID, n}},
		{`SELECT rowid, line FROM requests WHERE batch_id = ? AND state = 1 AND lease_until < ? ORDER BY line LIMIT ?`, []any{batchID, now, n}},
	} {
		rows, err := tx.QueryContext(ctx, pick.q, pick.args...)
		if err != nil {
			return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
		}
		for rows.Next() {
			var c cand
			if err := rows.Scan(&c.rowid, &c.line); err != nil {
				rows.Close()
				return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
			}
			cands = append(cands, c)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].line < cands[j].line })
	cands = cands[:min(n, len(cands))]
	args := []any{owner, until.UnixMilli()}
	for _, c := range cands {
		args = append(args, c.rowid)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE requests SET state = 1, owner = ?, lease_until = ?
		WHERE rowid IN (`+placeholders(len(cands))+`) RETURNING line, custom_id, off, len`, args...)
	if err != nil {
		return nil, fmt.Errorf("claim requests of %s: %w", batchID, err)
	}
	out := make([]sluice.Request, 0, len(cands))
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
	stmt, err := tx.PrepareContext(ctx, `UPDATE requests SET state = 0, owner = NULL, lease_until = NULL
		WHERE batch_id = ? AND line = ? AND state = 1 AND owner = ?`)
	if err != nil {
		return fmt.Errorf("release requests: %w", err)
	}
	defer stmt.Close()
	for _, r := range reqs {
		if _, err := stmt.ExecContext(ctx, r.BatchID, r.Line, owner); err != nil {
			return fmt.Errorf("release requests: %w", err)
		}
	}
	return tx.Commit()
}

// CommitResults implements sluice.Store.
func (s *Store) CommitResults(ctx context.Context, owner string, results []sluice.Result) (int, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `UPDATE requests SET state = ?, result = ?, owner = NULL, lease_until = NULL
		WHERE batch_id = ? AND line = ? AND state = 1 AND owner = ?`)
	if err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	defer stmt.Close()
	type counts struct{ ok, failed int }
	per := make(map[string]*counts)
	stored := 0
	for _, r := range results {
		state := sluice.RequestFailed
		if r.Succeeded {
			state = sluice.RequestSucceeded
		}
		res, err := stmt.ExecContext(ctx, int(state), r.Output, r.BatchID, r.Line, owner)
		if err != nil {
			return 0, fmt.Errorf("commit result %s line %d: %w", r.BatchID, r.Line, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			continue // the lease passed to another worker; its result will count
		}
		c := per[r.BatchID]
		if c == nil {
			c = &counts{}
			per[r.BatchID] = c
		}
		if r.Succeeded {
			c.ok++
		} else {
			c.failed++
		}
		stored++
	}
	for id, c := range per {
		if _, err := tx.ExecContext(ctx, `UPDATE batches SET completed = completed + ?, failed = failed + ? WHERE id = ?`, c.ok, c.failed, id); err != nil {
			return 0, fmt.Errorf("count results of %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	return stored, nil
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
	rows, err := s.r.QueryContext(ctx, `SELECT line, state, result FROM requests
		WHERE batch_id = ? AND state IN (2, 3) ORDER BY line`, batchID)
	if err != nil {
		return fmt.Errorf("read results of %s: %w", batchID, err)
	}
	defer rows.Close()
	for rows.Next() {
		r := sluice.Result{BatchID: batchID}
		var state int
		if err := rows.Scan(&r.Line, &state, &r.Output); err != nil {
			return fmt.Errorf("read results of %s: %w", batchID, err)
		}
		r.Succeeded = sluice.RequestState(state) == sluice.RequestSucceeded
		if err := fn(r); err != nil {
			return err
		}
	}
	return rows.Err()
}
