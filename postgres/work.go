package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-batch/sluice"
)

// Statements that lock several chunk rows lock them in (batch_id, chunk) order, with an
// ordered SELECT ... FOR UPDATE under the UPDATE: a commit, the heartbeat and a release
// of one owner run at once, and in different orders they could deadlock.
const (
	sqlAddChunks = `INSERT INTO chunks (batch_id, chunk, lines, done, remaining, index_off, index_len)
		SELECT $1::text, u.chunk, u.lines, $2::bytea, u.lines, u.off, u.len
		FROM unnest($3::integer[], $4::integer[], $5::bigint[], $6::bigint[]) AS u(chunk, lines, off, len)
		ORDER BY u.chunk
		ON CONFLICT (batch_id, chunk) DO NOTHING`
	// SKIP LOCKED: a claim passes over chunks another transaction holds (a claim, a
	// commit) instead of waiting, and the re-check under the row lock drops a chunk
	// that a concurrent claim took meanwhile. A NULL $4 means the database's clock.
	sqlClaimChunks = `UPDATE chunks c SET state = 1, owner = $1, lease_until = $2
		FROM (SELECT chunk FROM chunks
			WHERE batch_id = $3 AND state < 2 AND (state = 0 OR lease_until < coalesce($4::timestamptz, now()))
			ORDER BY chunk LIMIT $5 FOR UPDATE SKIP LOCKED) AS free
		WHERE c.batch_id = $3 AND c.chunk = free.chunk
		RETURNING c.chunk, c.lines, c.done, c.index_off, c.index_len`
	sqlExtendLeases = `UPDATE chunks c SET lease_until = $2
		FROM (SELECT batch_id, chunk FROM chunks WHERE state = 1 AND owner = $1
			ORDER BY batch_id COLLATE "C", chunk FOR UPDATE) AS held
		WHERE c.batch_id = held.batch_id AND c.chunk = held.chunk`
	sqlReleaseChunks = `UPDATE chunks c SET state = 0, owner = NULL, lease_until = NULL
		FROM (SELECT chunk FROM chunks WHERE batch_id = $1 AND chunk = ANY($2::integer[]) AND state = 1 AND owner = $3
			ORDER BY chunk FOR UPDATE) AS held
		WHERE c.batch_id = $1 AND c.chunk = held.chunk`
	// sqlLockChunks locks the given chunks in key order and reads them; the caller keeps
	// those owner holds. Under READ COMMITTED a row another transaction changed is read
	// again, as it is now, once its lock is free, so a chunk that another owner claimed
	// meanwhile is seen as theirs. The owner is not in the WHERE clause: there the
	// planner would scan every chunk owner holds, rather than look up the few given.
	sqlLockChunks = `SELECT c.batch_id, c.chunk, c.lines, c.done, coalesce(c.state = 1 AND c.owner = $3, false) FROM chunks c
		JOIN unnest($1::text[], $2::integer[]) AS k(batch_id, chunk) ON c.batch_id = k.batch_id AND c.chunk = k.chunk
		ORDER BY c.batch_id COLLATE "C", c.chunk
		FOR UPDATE OF c`
	sqlCommitChunks = `UPDATE chunks c SET done = u.done, remaining = u.remaining,
			state = CASE WHEN u.remaining = 0 THEN 2 ELSE c.state END,
			owner = CASE WHEN u.remaining = 0 THEN NULL ELSE c.owner END,
			lease_until = CASE WHEN u.remaining = 0 THEN NULL ELSE c.lease_until END
		FROM unnest($1::text[], $2::integer[], $3::bytea[], $4::integer[]) AS u(batch_id, chunk, done, remaining)
		WHERE c.batch_id = u.batch_id AND c.chunk = u.chunk`
	sqlCommitCounts = `UPDATE batches SET completed = completed + $2, failed = failed + $3,
		usage_input = usage_input + $4, usage_cached = usage_cached + $5, usage_output = usage_output + $6,
		usage_reasoning = usage_reasoning + $7, usage_estimated = usage_estimated + $8 WHERE id = $1`
	sqlCommitExtents = `INSERT INTO extents (batch_id, succeeded, segment, off, len, lines)
		SELECT u.batch_id, u.succeeded, u.segment, u.off, u.len, u.lines
		FROM unnest($1::text[], $2::boolean[], $3::text[], $4::bigint[], $5::bigint[], $6::integer[])
			WITH ORDINALITY AS u(batch_id, succeeded, segment, off, len, lines, n)
		ORDER BY u.n`
)

// AddChunks implements sluice.Store. The chunks go in one statement, in chunk order.
func (s *Store) AddChunks(ctx context.Context, batchID string, chunks []sluice.Chunk) error {
	if len(chunks) == 0 {
		return nil
	}
	sorted := slices.Clone(chunks)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Number < sorted[j].Number })
	var (
		nums, lines = make([]int, len(sorted)), make([]int, len(sorted))
		offs, lens  = make([]int64, len(sorted)), make([]int64, len(sorted))
	)
	for i, c := range sorted {
		if c.Lines < 1 || c.Lines > sluice.ChunkLines {
			return fmt.Errorf("add chunk %d of %s: %d lines", c.Number, batchID, c.Lines)
		}
		nums[i], lines[i], offs[i], lens[i] = c.Number, c.Lines, c.IndexOffset, c.IndexLength
	}
	var none sluice.Bitmap
	if _, err := s.pool.Exec(ctx, sqlAddChunks, batchID, none[:], nums, lines, offs, lens); err != nil {
		return fmt.Errorf("add chunks of %s: %w", batchID, err)
	}
	return nil
}

// ClaimChunks implements sluice.Store. It is one statement: no transaction round trips.
func (s *Store) ClaimChunks(ctx context.Context, batchID, owner string, n int, until time.Time) ([]sluice.Chunk, error) {
	var now any // NULL: the database's clock
	if s.now != nil {
		now = s.now()
	}
	rows, err := s.pool.Query(ctx, sqlClaimChunks, owner, until, batchID, now, max(1, n))
	if err != nil {
		return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
	}
	defer rows.Close()
	var out []sluice.Chunk
	for rows.Next() {
		c := sluice.Chunk{BatchID: batchID}
		var done []byte
		if err := rows.Scan(&c.Number, &c.Lines, &done, &c.IndexOffset, &c.IndexLength); err != nil {
			return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
		}
		copy(c.Done[:], done)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim chunks of %s: %w", batchID, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	return out, nil
}

// ExtendLeases implements sluice.Store.
func (s *Store) ExtendLeases(ctx context.Context, owner string, until time.Time) error {
	if _, err := s.pool.Exec(ctx, sqlExtendLeases, owner, until); err != nil {
		return fmt.Errorf("extend leases: %w", err)
	}
	return nil
}

// ReleaseChunks implements sluice.Store.
func (s *Store) ReleaseChunks(ctx context.Context, owner, batchID string, chunks []int) error {
	if len(chunks) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, sqlReleaseChunks, batchID, chunks, owner); err != nil {
		return fmt.Errorf("release chunks of %s: %w", batchID, err)
	}
	return nil
}

// AddSegment implements sluice.Store.
func (s *Store) AddSegment(ctx context.Context, batchID, key string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO segments (batch_id, key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, batchID, key)
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

// heldChunk is a chunk owner holds, as a commit sees it.
type heldChunk struct {
	done  sluice.Bitmap
	lines int
	added int
}

// batchCounts is what a commit adds to a batch.
type batchCounts struct {
	completed, failed int
	usage             sluice.Usage
}

// extentRows are extents to insert, column by column.
type extentRows struct {
	batchIDs  []string
	succeeded []bool
	segments  []string
	offs      []int64
	lens      []int64
	lines     []int
}

func (x *extentRows) add(r sluice.ResultRef, lines int) {
	x.batchIDs = append(x.batchIDs, r.BatchID)
	x.succeeded = append(x.succeeded, r.Succeeded)
	x.segments = append(x.segments, r.Segment)
	x.offs = append(x.offs, r.Offset)
	x.lens = append(x.lens, r.Length)
	x.lines = append(x.lines, lines)
}

// CommitResults implements sluice.Store. It is one transaction in two round trips, which
// matter more than the statements once the database is across a network: BEGIN and a
// lock of the chunks the refs name, in key order; then, once Go has decided which
// results count, exactly as the SQLite store does, the chunks' done bits, each batch's
// counts (in ID order, so two commits never wait for each other's batch rows in a
// cycle), the extents, and COMMIT. The extents are inserted after their batch's row is
// locked by the count update, so concurrent commits to one batch number its extents in
// the order they commit, which the results cursor relies on.
func (s *Store) CommitResults(ctx context.Context, owner string, refs []sluice.ResultRef) (int, error) {
	if len(refs) == 0 {
		return 0, nil
	}
	seen := make(map[chunkKey]bool)
	var (
		keyBatches []string
		keyChunks  []int
	)
	for _, r := range refs {
		k := chunkKey{r.BatchID, r.Chunk}
		if !seen[k] {
			seen[k] = true
			keyBatches, keyChunks = append(keyBatches, r.BatchID), append(keyChunks, r.Chunk)
		}
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	// After an error the transaction may still be open; the pool closes a connection
	// released inside one, which is what rolls it back.
	defer conn.Release()
	chunks, order, err := lockHeld(ctx, conn.Conn(), owner, keyBatches, keyChunks)
	if err != nil {
		return 0, err
	}
	var (
		batches  = make(map[string]*batchCounts)
		extents  extentRows
		run      sluice.ResultRef // the extent being built
		runLines int
		stored   int
	)
	for _, r := range refs {
		hc := chunks[chunkKey{r.BatchID, r.Chunk}]
		if hc == nil || r.Index < 0 || r.Index >= hc.lines || hc.done.Has(r.Index) {
			continue // not held (the lease passed to another owner), or answered already
		}
		hc.done.Set(r.Index)
		hc.added++
		c := batches[r.BatchID]
		if c == nil {
			c = &batchCounts{}
			batches[r.BatchID] = c
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
		if runLines > 0 {
			extents.add(run, runLines)
		}
		run, runLines = r, 1
	}
	if stored == 0 {
		// Nothing counts (a stale owner, repeats): let go of the chunks. Should the
		// ROLLBACK fail, the pool closes the connection, which rolls back too.
		_, _ = conn.Exec(ctx, "ROLLBACK")
		return 0, nil
	}
	extents.add(run, runLines)

	var (
		b          pgx.Batch
		cb, dones  = []string{}, [][]byte{}
		cn, remain = []int{}, []int{}
	)
	for _, k := range order {
		hc := chunks[k]
		if hc.added == 0 {
			continue
		}
		cb, cn = append(cb, k.batchID), append(cn, k.chunk)
		dones, remain = append(dones, slices.Clone(hc.done[:])), append(remain, hc.lines-hc.done.Count())
	}
	b.Queue(sqlCommitChunks, cb, cn, dones, remain)
	ids := make([]string, 0, len(batches))
	for id := range batches {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c := batches[id]
		u := &c.usage
		b.Queue(sqlCommitCounts, id, c.completed, c.failed, u.InputTokens, u.CachedTokens, u.OutputTokens,
			u.ReasoningTokens, u.EstimatedLines)
	}
	b.Queue(sqlCommitExtents, extents.batchIDs, extents.succeeded, extents.segments, extents.offs, extents.lens, extents.lines)
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, &b).Close(); err != nil {
		return 0, fmt.Errorf("commit results: %w", err)
	}
	if st := conn.Conn().PgConn().TxStatus(); st != 'I' {
		return 0, fmt.Errorf("commit results: transaction status %q after COMMIT", st)
	}
	return stored, nil
}

// lockHeld begins a transaction on conn, locks the chunks of the given keys, and returns
// those owner holds, with their keys in the order they were locked. BEGIN and the lock
// go in one round trip.
func lockHeld(ctx context.Context, conn *pgx.Conn, owner string, batchIDs []string, chunks []int) (map[chunkKey]*heldChunk, []chunkKey, error) {
	var b pgx.Batch
	b.Queue("BEGIN")
	b.Queue(sqlLockChunks, batchIDs, chunks, owner)
	br := conn.SendBatch(ctx, &b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, nil, fmt.Errorf("commit results: begin: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("commit results: lock chunks: %w", err)
	}
	defer rows.Close()
	held := make(map[chunkKey]*heldChunk)
	var order []chunkKey
	for rows.Next() {
		var (
			k    chunkKey
			hc   heldChunk
			done []byte
			mine bool
		)
		if err := rows.Scan(&k.batchID, &k.chunk, &hc.lines, &done, &mine); err != nil {
			return nil, nil, fmt.Errorf("commit results: lock chunks: %w", err)
		}
		if !mine {
			continue
		}
		copy(hc.done[:], done)
		held[k] = &hc
		order = append(order, k)
	}
	rows.Close()
	if err := errors.Join(rows.Err(), br.Close()); err != nil {
		return nil, nil, fmt.Errorf("commit results: lock chunks: %w", err)
	}
	return held, order, nil
}

// CountLeased implements sluice.Store.
func (s *Store) CountLeased(ctx context.Context, batchID string, now time.Time) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM chunks WHERE batch_id = $1 AND state = 1 AND lease_until >= $2`,
		batchID, now).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count leased of %s: %w", batchID, err)
	}
	return n, nil
}

// EachExtent implements sluice.Store.
func (s *Store) EachExtent(ctx context.Context, batchID string, succeeded bool, fn func(sluice.Extent) error) error {
	rows, err := s.pool.Query(ctx, `SELECT segment, off, len, lines FROM extents WHERE batch_id = $1 AND succeeded = $2 ORDER BY seq`,
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
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read extents of %s: %w", batchID, err)
	}
	return nil
}

// FindSegments implements sluice.Store.
func (s *Store) FindSegments(ctx context.Context, batchID string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT key FROM segments WHERE batch_id = $1 ORDER BY key COLLATE "C"`, batchID)
	if err != nil {
		return nil, fmt.Errorf("find segments of %s: %w", batchID, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find segments of %s: %w", batchID, err)
	}
	return out, nil
}

// DeleteWork implements sluice.Store: one statement, so one transaction.
func (s *Store) DeleteWork(ctx context.Context, batchID string) error {
	_, err := s.pool.Exec(ctx, `WITH c AS (DELETE FROM chunks WHERE batch_id = $1),
			x AS (DELETE FROM extents WHERE batch_id = $1)
		DELETE FROM segments WHERE batch_id = $1`, batchID)
	if err != nil {
		return fmt.Errorf("delete work of %s: %w", batchID, err)
	}
	return nil
}

// FindLeftoverWork implements sluice.Store.
func (s *Store) FindLeftoverWork(ctx context.Context, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM batches b WHERE status IN ('completed', 'failed', 'expired', 'cancelled')
		AND (EXISTS (SELECT 1 FROM chunks c WHERE c.batch_id = b.id)
			OR EXISTS (SELECT 1 FROM extents x WHERE x.batch_id = b.id)
			OR EXISTS (SELECT 1 FROM segments g WHERE g.batch_id = b.id))
		ORDER BY seq LIMIT $1`, max(1, limit))
	if err != nil {
		return nil, fmt.Errorf("find leftover work: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("find leftover work: %w", err)
	}
	return out, nil
}
