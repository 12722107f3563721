package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-batch/sluice"
)

const batchColumns = `id, endpoint, input_file_id, completion_window, status, deployment, model, input_tokens,
	usage_input, usage_cached, usage_output, usage_reasoning, usage_estimated, output_file_id,
	error_file_id, errors, metadata, total, completed, failed, output_expires_after, created_at,
	in_progress_at, expires_at, finalizing_at, completed_at, failed_at, expired_at, cancelling_at, cancelled_at,
	window_policy, input_blob, output_folder, output_delimiter, output_blob, error_blob, project`

func scanBatch(row scanner) (*sluice.Batch, error) {
	var (
		b          sluice.Batch
		errs, meta []byte
	)
	u := &b.Usage
	err := row.Scan(&b.ID, &b.Endpoint, &b.InputFileID, &b.CompletionWindow, &b.Status, &b.Deployment,
		&b.Model, &b.InputTokens, &u.InputTokens, &u.CachedTokens, &u.OutputTokens, &u.ReasoningTokens,
		&u.EstimatedLines, &b.OutputFileID, &b.ErrorFileID, &errs, &meta, &b.RequestCounts.Total, &b.RequestCounts.Completed,
		&b.RequestCounts.Failed, &b.OutputExpiresAfter, &b.CreatedAt, &b.InProgressAt, &b.ExpiresAt, &b.FinalizingAt,
		&b.CompletedAt, &b.FailedAt, &b.ExpiredAt, &b.CancellingAt, &b.CancelledAt, &b.WindowPolicy, &b.InputBlob,
		&b.OutputFolder, &b.OutputDelimiter, &b.OutputBlob, &b.ErrorBlob, &b.Project)
	if err != nil {
		return nil, err
	}
	if errs != nil {
		if err := json.Unmarshal(errs, &b.Errors); err != nil {
			return nil, fmt.Errorf("decode errors of %s: %w", b.ID, err)
		}
	}
	if meta != nil {
		if err := json.Unmarshal(meta, &b.Metadata); err != nil {
			return nil, fmt.Errorf("decode metadata of %s: %w", b.ID, err)
		}
	}
	b.CreatedAt = b.CreatedAt.UTC()
	for _, t := range []**time.Time{&b.InProgressAt, &b.ExpiresAt, &b.FinalizingAt, &b.CompletedAt, &b.FailedAt,
		&b.ExpiredAt, &b.CancellingAt, &b.CancelledAt} {
		*t = utc(*t)
	}
	return &b, nil
}

// batchValues returns the values of b's columns, in the order of batchColumns.
func batchValues(b *sluice.Batch) ([]any, error) {
	errs, err := jsonOrNull(b.Errors, b.Errors == nil)
	if err != nil {
		return nil, err
	}
	meta, err := jsonOrNull(b.Metadata, b.Metadata == nil)
	if err != nil {
		return nil, err
	}
	u := &b.Usage
	return []any{b.ID, b.Endpoint, b.InputFileID, b.CompletionWindow, string(b.Status), b.Deployment, b.Model, b.InputTokens,
		u.InputTokens, u.CachedTokens, u.OutputTokens, u.ReasoningTokens, u.EstimatedLines, b.OutputFileID,
		b.ErrorFileID, errs, meta, b.RequestCounts.Total, b.RequestCounts.Completed, b.RequestCounts.Failed,
		b.OutputExpiresAfter, sec(b.CreatedAt), secPtr(b.InProgressAt), secPtr(b.ExpiresAt),
		secPtr(b.FinalizingAt), secPtr(b.CompletedAt), secPtr(b.FailedAt), secPtr(b.ExpiredAt),
		secPtr(b.CancellingAt), secPtr(b.CancelledAt), string(b.WindowPolicy), b.InputBlob, b.OutputFolder, b.OutputDelimiter,
		b.OutputBlob, b.ErrorBlob, b.Project}, nil
}

// insertBatch inserts the values batchValues returns.
var insertBatch = `INSERT INTO batches (` + batchColumns + `) VALUES (` + placeholders(1, 37) + `)`

// CreateBatch implements sluice.Store.
func (s *Store) CreateBatch(ctx context.Context, b *sluice.Batch) error {
	vals, err := batchValues(b)
	if err != nil {
		return err
	}
	_, err = s.pool.Exec(ctx, insertBatch, vals...)
	return interpret(err, "Batch", b.ID)
}

// AdmitBatch implements sluice.Store. Transaction-scoped advisory locks on the
// deployment and on the project (and schema) make the sums and the insert one step
// against every other admission to that deployment or project, on any connection of
// any replica: they wait for each other, rather than one failing and retrying as under
// SERIALIZABLE, and nothing else waits for them. Every admission takes the deployment's
// lock before the project's, so two never wait for each other in a cycle. The sums are
// statements of their own, after the locks, so their snapshots see what the previous
// holders committed.
func (s *Store) AdmitBatch(ctx context.Context, b *sluice.Batch, lim sluice.AdmitLimits) (sluice.AdmitResult, error) {
	var res sluice.AdmitResult
	vals, err := batchValues(b)
	if err != nil {
		return res, err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("admit batch: %w", err)
	}
	defer tx.Rollback(ctx)
	const lock = `SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '') || '/' || $2))`
	if _, err := tx.Exec(ctx, lock, lockAdmit, b.Deployment); err != nil {
		return res, fmt.Errorf("admit batch %s: %w", b.ID, err)
	}
	if _, err := tx.Exec(ctx, lock, lockAdmitProject, b.Project); err != nil {
		return res, fmt.Errorf("admit batch %s: %w", b.ID, err)
	}
	err = tx.QueryRow(ctx, `SELECT coalesce(sum(input_tokens), 0)::bigint FROM batches
		WHERE deployment = $1 AND status IN `+notTerminal, b.Deployment).Scan(&res.Held)
	if err != nil {
		return res, fmt.Errorf("admit batch %s: %w", b.ID, err)
	}
	err = tx.QueryRow(ctx, `SELECT coalesce(sum(input_tokens), 0)::bigint, count(*) FROM batches
		WHERE project = $1 AND status IN `+notTerminal, b.Project).Scan(&res.ProjectTokens, &res.ProjectBatches)
	if err != nil {
		return res, fmt.Errorf("admit batch %s: %w", b.ID, err)
	}
	if !lim.Fits(res, b.InputTokens) {
		return res, nil
	}
	if _, err := tx.Exec(ctx, insertBatch, vals...); err != nil {
		return res, interpret(err, "Batch", b.ID)
	}
	if err := tx.Commit(ctx); err != nil {
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
	rows, err := s.pool.Query(ctx, `SELECT deployment, sum(input_tokens)::bigint FROM batches
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

// FindBatchByID implements sluice.Store. It reads the database every time: other
// replicas change batch rows.
func (s *Store) FindBatchByID(ctx context.Context, id string) (*sluice.Batch, error) {
	b, err := scanBatch(s.pool.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1`, id))
	return b, interpret(err, "Batch", id)
}

// FindBatches implements sluice.Store. Pages follow the insertion order (seq).
func (s *Store) FindBatches(ctx context.Context, filter sluice.BatchFilter) ([]*sluice.Batch, bool, error) {
	var (
		where []string
		p     params
	)
	if len(filter.Status) > 0 {
		where = append(where, "status = ANY("+p.add(toStrings(filter.Status))+")")
	}
	if filter.Project != "" {
		where = append(where, "project = "+p.add(filter.Project))
	}
	if filter.Deployment != "" {
		where = append(where, "deployment = "+p.add(filter.Deployment))
	}
	if filter.CreatedFrom != nil {
		where = append(where, "created_at >= "+p.add(time.Unix(*filter.CreatedFrom, 0)))
	}
	if filter.CreatedTo != nil {
		where = append(where, "created_at <= "+p.add(time.Unix(*filter.CreatedTo, 0)))
	}
	cmp, order := "<", " ORDER BY seq DESC"
	if filter.Asc {
		cmp, order = ">", " ORDER BY seq ASC"
	}
	if filter.After != "" {
		where = append(where, "seq "+cmp+" (SELECT seq FROM batches WHERE id = "+p.add(filter.After)+")")
	}
	q := `SELECT ` + batchColumns + ` FROM batches`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += order
	if filter.Limit > 0 {
		q += " LIMIT " + p.add(filter.Limit+1)
	}
	rows, err := s.pool.Query(ctx, q, p...)
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

// updateBatch applies upd with q and returns the batch as it then is. When upd.IfStatus
// does not match it returns the batch as it is, with KindConflict.
func updateBatch(ctx context.Context, q querier, id string, upd sluice.BatchUpdate) (*sluice.Batch, error) {
	var (
		set []string
		p   params
	)
	add := func(col string, v any) { set = append(set, col+" = "+p.add(v)) }
	if upd.Status != nil {
		add("status", string(*upd.Status))
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
		add("errors", b)
	}
	if upd.Total != nil {
		add("total", *upd.Total)
	}
	for _, c := range []struct {
		col string
		t   *time.Time
	}{
		{"in_progress_at", upd.InProgressAt}, {"finalizing_at", upd.FinalizingAt}, {"completed_at", upd.CompletedAt},
		{"failed_at", upd.FailedAt}, {"expired_at", upd.ExpiredAt}, {"cancelling_at", upd.CancellingAt},
		{"cancelled_at", upd.CancelledAt},
	} {
		if c.t != nil {
			add(c.col, sec(*c.t))
		}
	}
	if len(set) == 0 {
		set = append(set, "id = id")
	}
	sql := `UPDATE batches SET ` + strings.Join(set, ", ") + ` WHERE id = ` + p.add(id)
	if len(upd.IfStatus) > 0 {
		sql += " AND status = ANY(" + p.add(toStrings(upd.IfStatus)) + ")"
	}
	b, err := scanBatch(q.QueryRow(ctx, sql+` RETURNING `+batchColumns, p...))
	if !errors.Is(err, pgx.ErrNoRows) {
		return b, interpret(err, "Batch", id)
	}
	// Nothing matched: the batch is missing, or in none of the states upd.IfStatus names.
	b, err = scanBatch(q.QueryRow(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = $1`, id))
	if err != nil {
		return nil, interpret(err, "Batch", id)
	}
	return b, sluice.Errorf(sluice.KindConflict, "The batch %s is %s, so it cannot be changed that way.", id, b.Status)
}

// UpdateBatch implements sluice.Store.
func (s *Store) UpdateBatch(ctx context.Context, id string, upd sluice.BatchUpdate) (*sluice.Batch, error) {
	return updateBatch(ctx, s.pool, id, upd)
}

// FinishBatch implements sluice.Store.
func (s *Store) FinishBatch(ctx context.Context, id string, files []*sluice.File, upd sluice.BatchUpdate) (*sluice.Batch, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("finish batch: %w", err)
	}
	defer tx.Rollback(ctx)
	for _, f := range files {
		g := *f
		g.Scan, g.Source, g.SourceETag = nil, "", ""
		if err := createFile(ctx, tx, &g); err != nil {
			return nil, err
		}
	}
	b, err := updateBatch(ctx, tx, id, upd)
	if err != nil {
		return b, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, interpret(err, "Batch", id)
	}
	return b, nil
}
