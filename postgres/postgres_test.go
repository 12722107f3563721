package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/postgres"
	"github.com/sluice-batch/sluice/postgres/pgtest"
	"github.com/sluice-batch/sluice/storetest"
)

func TestStore(t *testing.T) {
	t.Parallel()
	dsn := pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) sluice.Store {
		return MustOpen(t, pgtest.MustNewSchema(t, dsn), nil)
	})
}

// MustOpen opens a store on dsn and closes it when tb ends.
func MustOpen(tb testing.TB, dsn string, opts *postgres.Options) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(tb.Context(), dsn, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Error(err)
		}
	})
	return s
}

// testBundle is two stores, with pools of their own, on one fresh schema: two replicas.
type testBundle struct {
	dsn  string
	a, b *postgres.Store
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	dsn := pgtest.MustNewSchema(t, pgtest.DSN(t))
	return &testBundle{dsn: dsn, a: MustOpen(t, dsn, nil), b: MustOpen(t, dsn, nil)}
}

// runningBatch creates a batch in progress of n lines with its chunks.
func runningBatch(t *testing.T, s sluice.Store, id string, n int) {
	t.Helper()
	b := &sluice.Batch{ID: id, Endpoint: "/v1/chat/completions", CompletionWindow: "24h", Status: sluice.StatusInProgress,
		CreatedAt: time.Now(), RequestCounts: sluice.RequestCounts{Total: n}}
	storetest.MustCreateBatch(t, s, b)
	var chunks []sluice.Chunk
	for i := 0; i*sluice.ChunkLines < n; i++ {
		chunks = append(chunks, sluice.Chunk{Number: i, Lines: min(sluice.ChunkLines, n-i*sluice.ChunkLines), IndexLength: 10})
	}
	storetest.MustAddChunks(t, s, id, chunks)
}

// refs returns results for every line of chunk c (of full chunks), back to back in seg.
func refs(batchID string, c int, seg string) []sluice.ResultRef {
	out := make([]sluice.ResultRef, sluice.ChunkLines)
	for i := range out {
		off := int64(c*sluice.ChunkLines+i) * 10
		out[i] = sluice.ResultRef{BatchID: batchID, Chunk: c, Index: i, Succeeded: true, Segment: seg, Offset: off, Length: 10,
			Usage: sluice.Usage{InputTokens: 1}}
	}
	return out
}

func TestReplicas(t *testing.T) {
	t.Parallel()

	// Claimers on two pools, taking a few chunks at a time, never get one chunk twice,
	// and between them get every chunk.
	t.Run("ClaimChunks/NoChunkTwice", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		const chunks = 200
		runningBatch(t, bundle.a, "batch-1", chunks*sluice.ChunkLines)
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			owner = map[int]string{}
		)
		for i, s := range []*postgres.Store{bundle.a, bundle.b, bundle.a, bundle.b} {
			name := fmt.Sprint("owner-", i)
			wg.Go(func() {
				for {
					got, err := s.ClaimChunks(t.Context(), "batch-1", name, 3, time.Now().Add(time.Hour))
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, c := range got {
						if prev, ok := owner[c.Number]; ok {
							t.Errorf("chunk %d claimed by %s and %s", c.Number, prev, name)
						}
						owner[c.Number] = name
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(owner) != chunks {
			t.Errorf("got %d chunks claimed, want %d", len(owner), chunks)
		}
		if got := storetest.MustCountLeased(t, bundle.b, "batch-1", time.Now()); got != chunks {
			t.Errorf("got %d leased, want %d", got, chunks)
		}
	})

	// Admissions on two pools at once never pass the limits together.
	t.Run("AdmitBatch/TwoPools", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		const creates, tokens, limit = 40, 100, 1000
		lim := sluice.AdmitLimits{Deployment: limit, Project: sluice.ProjectLimits{EnqueuedTokens: limit}}
		admitted := storetest.AdmitConcurrently(t, []sluice.Store{bundle.a, bundle.b}, creates, func(i int) *sluice.Batch {
			b := &sluice.Batch{ID: fmt.Sprint("batch-", i), Project: "proj-a", Endpoint: "/v1/chat/completions", CompletionWindow: "24h",
				Status: sluice.StatusValidating, Deployment: "dep-a", InputTokens: tokens, CreatedAt: time.Now()}
			if i%4 >= 2 {
				b.Deployment = "dep-b" // the project's limit binds across deployments
			}
			return b
		}, lim)
		if admitted != limit/tokens {
			t.Errorf("admitted %d of %d, want %d", admitted, creates, limit/tokens)
		}
		if m := storetest.MustEnqueuedTokens(t, bundle.b); m["dep-a"]+m["dep-b"] != limit {
			t.Errorf("enqueued %v, want %d in all", m, limit)
		}
	})

	// A replica whose lease ran out, and whose chunk another replica claimed, commits
	// nothing: its results are not counted and in no extent. The new owner's count.
	t.Run("CommitResults/StaleOwner", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		runningBatch(t, bundle.a, "batch-1", 2*sluice.ChunkLines)
		if got := storetest.MustClaimChunks(t, bundle.a, "batch-1", "owner-a", 1, time.Now().Add(-time.Second)); len(got) != 1 {
			t.Fatalf("owner-a claimed %d chunks, want 1", len(got))
		}
		got := storetest.MustClaimChunks(t, bundle.b, "batch-1", "owner-b", 1, time.Now().Add(time.Hour))
		if len(got) != 1 || got[0].Number != 0 {
			t.Fatalf("owner-b claimed %v, want chunk 0 (its lease ran out)", got)
		}
		if n := storetest.MustCommitResults(t, bundle.a, "owner-a", refs("batch-1", 0, "seg-a")); n != 0 {
			t.Errorf("stale owner-a: got %d counted, want 0", n)
		}
		if n := storetest.MustCommitResults(t, bundle.b, "owner-b", refs("batch-1", 0, "seg-b")); n != sluice.ChunkLines {
			t.Errorf("owner-b: got %d counted, want %d", n, sluice.ChunkLines)
		}
		b := storetest.MustFindBatchByID(t, bundle.a, "batch-1")
		want := sluice.RequestCounts{Total: 2 * sluice.ChunkLines, Completed: sluice.ChunkLines}
		if diff := cmp.Diff(want, b.RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		xs := storetest.MustExtents(t, bundle.a, "batch-1", true)
		wantX := []sluice.Extent{{Segment: "seg-b", Offset: 0, Length: 10 * sluice.ChunkLines, Lines: sluice.ChunkLines}}
		if diff := cmp.Diff(wantX, xs); diff != "" {
			t.Errorf("extents mismatch (-want +got):\n%s", diff)
		}
	})

	// Replicas committing different chunks of one batch at once: every result counts
	// once, and the extents, in their order, hold every line once.
	t.Run("CommitResults/Concurrent", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		const chunks = 40
		runningBatch(t, bundle.a, "batch-1", chunks*sluice.ChunkLines)
		var wg sync.WaitGroup
		for i, s := range []*postgres.Store{bundle.a, bundle.b} {
			owner := fmt.Sprint("owner-", i)
			wg.Go(func() {
				for {
					got, err := s.ClaimChunks(t.Context(), "batch-1", owner, 2, time.Now().Add(time.Hour))
					if err != nil || len(got) == 0 {
						if err != nil {
							t.Error(err)
						}
						return
					}
					var rs []sluice.ResultRef
					for _, c := range got {
						rs = append(rs, refs("batch-1", c.Number, "seg-"+owner)...)
					}
					// Half now, then all again: the repeats are dropped.
					if _, err := s.CommitResults(t.Context(), owner, rs[:len(rs)/2]); err != nil {
						t.Error(err)
						return
					}
					if _, err := s.CommitResults(t.Context(), owner, rs); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b := storetest.MustFindBatchByID(t, bundle.a, "batch-1")
		if b.RequestCounts.Completed != chunks*sluice.ChunkLines || b.Usage.InputTokens != chunks*sluice.ChunkLines {
			t.Errorf("got %d completed, %d input tokens; want %d of each", b.RequestCounts.Completed, b.Usage.InputTokens, chunks*sluice.ChunkLines)
		}
		lines := 0
		for _, x := range storetest.MustExtents(t, bundle.b, "batch-1", true) {
			lines += x.Lines
		}
		if lines != chunks*sluice.ChunkLines {
			t.Errorf("got %d lines in extents, want %d", lines, chunks*sluice.ChunkLines)
		}
		if got := storetest.MustCountLeased(t, bundle.a, "batch-1", time.Now()); got != 0 {
			t.Errorf("got %d leased after every line, want 0", got)
		}
	})

	// With NowFunc set, claims judge leases by that clock, not the database's.
	t.Run("ClaimChunks/NowFunc", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		later := MustOpen(t, bundle.dsn, &postgres.Options{NowFunc: func() time.Time { return time.Now().Add(2 * time.Hour) }})
		runningBatch(t, bundle.a, "batch-1", sluice.ChunkLines)
		storetest.MustClaimChunks(t, bundle.a, "batch-1", "owner-a", 1, time.Now().Add(time.Hour))
		if got := storetest.MustClaimChunks(t, bundle.b, "batch-1", "owner-b", 1, time.Now().Add(time.Hour)); len(got) != 0 {
			t.Errorf("by the database's clock: got %d chunks, want none (the lease is live)", len(got))
		}
		if got := storetest.MustClaimChunks(t, later, "batch-1", "owner-c", 1, time.Now().Add(3*time.Hour)); len(got) != 1 {
			t.Errorf("two hours later: got %d chunks, want 1 (the lease ran out)", len(got))
		}
	})

	// The heartbeat, the committer and releases of owners whose chunks interleave run
	// at once without deadlocking (PostgreSQL would abort one of them).
	t.Run("Leases/NoDeadlock", func(t *testing.T) {
		t.Parallel()
		bundle := setup(t)
		const chunks = 32
		for _, id := range []string{"batch-1", "batch-2"} {
			runningBatch(t, bundle.a, id, chunks*sluice.ChunkLines)
			storetest.MustClaimChunks(t, bundle.a, id, "owner-a", chunks, time.Now().Add(time.Hour))
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			for range 50 {
				if err := bundle.a.ExtendLeases(t.Context(), "owner-a", time.Now().Add(time.Hour)); err != nil {
					t.Error(err)
					return
				}
			}
		})
		for i, s := range []*postgres.Store{bundle.a, bundle.b} {
			wg.Go(func() {
				for c := range chunks {
					// Commit lines of chunks in both batches, in opposite orders.
					cc := c
					if i == 1 {
						cc = chunks - 1 - c
					}
					rs := append(refs("batch-2", cc, "seg")[i:i+1], refs("batch-1", cc, "seg")[i:i+1]...)
					if _, err := s.CommitResults(t.Context(), "owner-a", rs); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := bundle.b.ReleaseChunks(t.Context(), "owner-a", "batch-1", []int{5, 3, 1}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"batch-1", "batch-2"} {
			if got := storetest.MustFindBatchByID(t, bundle.a, id).RequestCounts.Completed; got != 2*chunks {
				t.Errorf("%s: got %d completed, want %d", id, got, 2*chunks)
			}
		}
		if got := storetest.MustClaimChunks(t, bundle.b, "batch-1", "owner-b", 10, time.Now().Add(time.Hour)); len(got) != 3 {
			t.Errorf("after releasing 3 chunks: got %d claimed, want 3", len(got))
		}
	})
}

func TestOpen(t *testing.T) {
	t.Parallel()

	// Replicas that start together on an empty schema both open it: one migrates, the
	// other waits and finds it current.
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.MustNewSchema(t, pgtest.DSN(t))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				s, err := postgres.Open(t.Context(), dsn, nil)
				if err != nil {
					t.Error(err)
					return
				}
				s.Close()
			})
		}
		wg.Wait()
		s := MustOpen(t, dsn, nil)
		storetest.MustCreateFile(t, s, &sluice.File{ID: "file-1", CreatedAt: time.Unix(1000, 0).UTC(), Purpose: sluice.PurposeBatch,
			Status: sluice.FileStatusProcessed})
	})

	// A schema newer than this package knows is refused, not used.
	t.Run("NewerSchema", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.MustNewSchema(t, pgtest.DSN(t))
		MustOpen(t, dsn, nil)
		conn, err := pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if _, err := conn.Exec(t.Context(), `UPDATE schema_version SET version = version + 1`); err != nil {
			t.Fatal(err)
		}
		if s, err := postgres.Open(t.Context(), dsn, nil); err == nil {
			s.Close()
			t.Fatal("opened a schema newer than the package knows")
		}
	})
}
