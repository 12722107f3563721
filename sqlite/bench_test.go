package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/sqlite"
)

// BenchmarkLineLifecycle measures the store's cost per request line through each phase of
// the hot path: rows added at validation, claimed in chunks of 256, and committed in
// groups of 64 results of 600 bytes. ns/op is per line.
func BenchmarkLineLifecycle(b *testing.B) {
	ctx := context.Background()
	output := []byte(`{"id":"batch_req_x","custom_id":"c","response":{"status_code":200,"body":{` + strings.Repeat(`"k":"v",`, 70) + `"z":1}},"error":null}`)
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"), nil)
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
		reqs := make([]sluice.Request, n)
		for i := range reqs {
			reqs[i] = sluice.Request{BatchID: id, Chunk: i / sluice.ChunkLines, Line: i + 1, CustomID: fmt.Sprint("req-", i), Offset: int64(i) * 200, Length: 199}
		}
		for len(reqs) > 0 {
			chunk := reqs[:min(2048, len(reqs))]
			reqs = reqs[len(chunk):]
			if err := s.AddRequests(ctx, id, chunk); err != nil {
				b.Fatal(err)
			}
		}
		return id
	}
	claimAll := func(id string, n int) []sluice.Request {
		var all []sluice.Request
		for len(all) < n {
			got, err := s.ClaimRequests(ctx, id, "owner", 256, until)
			if err != nil || len(got) == 0 {
				b.Fatalf("claim: %v, %d", err, len(got))
			}
			all = append(all, got...)
		}
		return all
	}
	b.Run("add", func(b *testing.B) {
		for b.Loop() {
			newBatch(1000)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*1000), "ns/line")
	})
	b.Run("claim", func(b *testing.B) {
		id := newBatch(b.N)
		b.ResetTimer()
		claimAll(id, b.N)
	})
	b.Run("commit", func(b *testing.B) {
		id := newBatch(b.N)
		reqs := claimAll(id, b.N)
		results := make([]sluice.Result, len(reqs))
		for i, r := range reqs {
			results[i] = sluice.Result{BatchID: id, Chunk: r.Chunk, Line: r.Line, Succeeded: true, Output: output}
		}
		b.ResetTimer()
		for len(results) > 0 {
			g := results[:min(64, len(results))]
			results = results[len(g):]
			if _, err := s.CommitResults(ctx, "owner", g); err != nil {
				b.Fatal(err)
			}
		}
	})
}
