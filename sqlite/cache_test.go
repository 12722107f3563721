package sqlite_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/storetest"
)

// Batches are read from memory while results are committed: a reader never sees a
// count that was not committed, never sees counts go back, and at the end sees what
// the database holds.
func TestCachedCountsFollowCommits(t *testing.T) {
	t.Parallel()
	s := MustOpen(t)
	ctx := t.Context()
	const lines = 600
	storetest.MustCreateBatch(t, s, &sluice.Batch{ID: "batch-1", Endpoint: "/v1/chat/completions", CompletionWindow: "24h",
		Status: sluice.StatusInProgress, CreatedAt: time.Now(), RequestCounts: sluice.RequestCounts{Total: lines}})
	var chunks []sluice.Chunk
	for i := 0; i*sluice.ChunkLines < lines; i++ {
		chunks = append(chunks, sluice.Chunk{Number: i, Lines: min(sluice.ChunkLines, lines-i*sluice.ChunkLines), IndexLength: 1})
	}
	storetest.MustAddChunks(t, s, "batch-1", chunks)
	storetest.MustClaimChunks(t, s, "batch-1", "owner", 10, time.Now().Add(time.Hour))

	var attempted atomic.Int64 // an upper bound of what is committed
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := 0
			for {
				select {
				case <-done:
					return
				default:
				}
				b, err := s.FindBatchByID(ctx, "batch-1")
				if err != nil {
					t.Error(err)
					return
				}
				n := b.RequestCounts.Completed + b.RequestCounts.Failed
				if bound := attempted.Load(); int64(n) > bound {
					t.Errorf("read %d results, more than the %d ever sent to commit", n, bound)
				}
				if n < last {
					t.Errorf("read %d results after %d", n, last)
				}
				last = n
			}
		}()
	}
	var off int64
	for i := 0; i < lines; i += 3 {
		var refs []sluice.ResultRef
		for j := i; j < min(i+3, lines); j++ {
			refs = append(refs, sluice.ResultRef{BatchID: "batch-1", Chunk: j / sluice.ChunkLines, Index: j % sluice.ChunkLines,
				Succeeded: j%4 != 0, Segment: "seg", Offset: off, Length: 10})
			off += 10
		}
		attempted.Add(int64(len(refs)))
		storetest.MustCommitResults(t, s, "owner", refs)
		if i%30 == 0 { // status changes go through the cache too
			if _, err := s.UpdateBatch(ctx, "batch-1", sluice.BatchUpdate{Deployment: sluice.Ptr("dep")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(done)
	wg.Wait()
	cached := storetest.MustFindBatchByID(t, s, "batch-1")
	listed, _, err := s.FindBatches(ctx, sluice.BatchFilter{})
	if err != nil || len(listed) != 1 {
		t.Fatalf("list: got %d batches, %v", len(listed), err)
	}
	if cached.RequestCounts != listed[0].RequestCounts || cached.RequestCounts.Completed+cached.RequestCounts.Failed != lines {
		t.Errorf("cached counts %+v, database %+v, want both complete", cached.RequestCounts, listed[0].RequestCounts)
	}
	// A copy is returned: changing it changes nothing stored.
	cached.RequestCounts.Completed = -1
	cached.Metadata = map[string]string{"x": "y"}
	if again := storetest.MustFindBatchByID(t, s, "batch-1"); again.RequestCounts.Completed < 0 || again.Metadata != nil {
		t.Errorf("a caller's change reached the cache: %+v", again)
	}
}
