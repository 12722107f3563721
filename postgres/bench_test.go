package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/postgres"
	"github.com/sluice-batch/sluice/postgres/pgtest"
)

// BenchmarkLineLifecycle measures the store's cost per request line through each phase of
// the hot path, as sqlite's benchmark of the same name does, so the two compare in one
// run (bash scripts/postgres.sh go test -run '^$' -bench LineLifecycle ./sqlite/ ./postgres/):
// chunks added at validation, claimed 4 at a time, and results committed in groups of
// 256 (their bytes are in a segment; the store records extents). ns/line is per line.
func BenchmarkLineLifecycle(b *testing.B) {
	ctx := context.Background()
	s, err := postgres.Open(ctx, pgtest.MustNewSchema(b, pgtest.DSN(b)), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	until := time.Now().Add(time.Hour)
	batch := 0
	newBatch := func(n int) string {
		batch++
		id := fmt.Sprint("batch-", batch)
		if err := s.CreateBatch(ctx, &sluice.Batch{ID: id, Endpoint: "/v1/chat/completions", CompletionWindow: "24h", Status: sluice.StatusInProgress, CreatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
		var chunks []sluice.Chunk
		for i := 0; i*sluice.ChunkLines < n; i++ {
			chunks = append(chunks, sluice.Chunk{Number: i, Lines: min(sluice.ChunkLines, n-i*sluice.ChunkLines), IndexOffset: int64(i) * 4000, IndexLength: 4000})
		}
		if err := s.AddChunks(ctx, id, chunks); err != nil {
			b.Fatal(err)
		}
		return id
	}
	claimAll := func(id string, n int) []sluice.Chunk {
		var all []sluice.Chunk
		for lines := 0; lines < n; {
			got, err := s.ClaimChunks(ctx, id, "owner", 4, until)
			if err != nil || len(got) == 0 {
				b.Fatalf("claim: %v, %d", err, len(got))
			}
			for _, c := range got {
				lines += c.Lines
			}
			all = append(all, got...)
		}
		return all
	}
	perLine := func(b *testing.B, lines int) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(lines), "ns/line")
	}
	b.Run("add", func(b *testing.B) {
		newBatch(b.N)
		perLine(b, b.N)
	})
	b.Run("claim", func(b *testing.B) {
		id := newBatch(b.N)
		b.ResetTimer()
		claimAll(id, b.N)
		perLine(b, b.N)
	})
	b.Run("commit", func(b *testing.B) {
		id := newBatch(b.N)
		chunks := claimAll(id, b.N)
		var refs []sluice.ResultRef
		var off int64
		for _, c := range chunks {
			for i := range c.Lines {
				refs = append(refs, sluice.ResultRef{BatchID: id, Chunk: c.Number, Index: i, Succeeded: true, Segment: "segments/x/owner-0-ok", Offset: off, Length: 600})
				off += 600
			}
		}
		b.ResetTimer()
		for len(refs) > 0 {
			g := refs[:min(256, len(refs))]
			refs = refs[len(g):]
			if _, err := s.CommitResults(ctx, "owner", g); err != nil {
				b.Fatal(err)
			}
		}
		perLine(b, b.N)
	})
}
