package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

// newChunks returns the chunks of a batch of n request lines. Each chunk's index block
// is placed apart from the others, so a store that mixes them up is caught.
func newChunks(batchID string, n int) []sluice.Chunk {
	var out []sluice.Chunk
	for i := 0; i*sluice.ChunkLines < n; i++ {
		out = append(out, sluice.Chunk{
			BatchID:     batchID,
			Number:      i,
			Lines:       min(sluice.ChunkLines, n-i*sluice.ChunkLines),
			IndexOffset: 5 + int64(i)*1000,
			IndexLength: 900 - int64(i),
		})
	}
	return out
}

// withDone returns c with the lines idx marked done.
func withDone(c sluice.Chunk, idx ...int) sluice.Chunk {
	for _, i := range idx {
		c.Done.Set(i)
	}
	return c
}

// span returns the ordinals from..to, inclusive.
func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// ref returns the result of the request line with the given 0-based ordinal in its
// batch, stored at off in seg.
func ref(batchID string, ordinal int, succeeded bool, seg string, off, length int64) sluice.ResultRef {
	return sluice.ResultRef{
		BatchID:   batchID,
		Chunk:     ordinal / sluice.ChunkLines,
		Index:     ordinal % sluice.ChunkLines,
		Succeeded: succeeded,
		Segment:   seg,
		Offset:    off,
		Length:    length,
		Usage:     usageOf(ordinal),
	}
}

// usageOf is the usage of the result of ordinal in the tests: counts differ, so that a
// sum shows which results counted.
func usageOf(ordinal int) sluice.Usage {
	o := int64(ordinal)
	return sluice.Usage{
		InputTokens: 100 + o, CachedTokens: o % 3, OutputTokens: 10 + o%7, ReasoningTokens: o % 2,
		EstimatedLines: o % 4 / 3,
	}
}

// usageSum is the usage of the results of ordinals.
func usageSum(ordinals ...int) sluice.Usage {
	var u sluice.Usage
	for _, o := range ordinals {
		u.Add(usageOf(o))
	}
	return u
}

// lineBytes is the size of the result line of ordinal in the tests: sizes differ, so
// an extent of the wrong lines has the wrong length.
func lineBytes(ordinal int) int64 { return 40 + int64(ordinal%7) }

// appendRefs returns the results of ordinals written back to back in seg from off, as
// a committer appends a group: all succeeded, or all failed.
func appendRefs(batchID string, succeeded bool, seg string, off int64, ordinals ...int) []sluice.ResultRef {
	out := make([]sluice.ResultRef, 0, len(ordinals))
	for _, o := range ordinals {
		n := lineBytes(o)
		out = append(out, ref(batchID, o, succeeded, seg, off, n))
		off += n
	}
	return out
}

// bytesOf returns the bytes the results of ordinals take.
func bytesOf(ordinals ...int) int64 {
	var n int64
	for _, o := range ordinals {
		n += lineBytes(o)
	}
	return n
}

func numbers(chunks []sluice.Chunk) []int {
	out := make([]int, 0, len(chunks))
	for _, c := range chunks {
		out = append(out, c.Number)
	}
	return out
}

// chunksDiff is cmp.Diff of claimed chunks, but when other chunks were claimed it
// reports only the difference of their numbers, to keep it short.
func chunksDiff(want, got []sluice.Chunk) string {
	if diff := cmp.Diff(numbers(want), numbers(got)); diff != "" {
		return "chunk numbers: " + diff
	}
	return cmp.Diff(want, got)
}

// MustAddChunks adds chunks to the batch batchID of s.
func MustAddChunks(tb testing.TB, s sluice.Store, batchID string, chunks []sluice.Chunk) {
	tb.Helper()
	if err := s.AddChunks(tb.Context(), batchID, chunks); err != nil {
		tb.Fatalf("add chunks of %s: %v", batchID, err)
	}
}

// MustClaimChunks claims up to n chunks of batchID for owner until the given time.
func MustClaimChunks(tb testing.TB, s sluice.Store, batchID, owner string, n int, until time.Time) []sluice.Chunk {
	tb.Helper()
	chunks, err := s.ClaimChunks(tb.Context(), batchID, owner, n, until)
	if err != nil {
		tb.Fatalf("claim chunks of %s for %s: %v", batchID, owner, err)
	}
	return chunks
}

// MustCommitResults commits refs for owner and returns how many counted.
func MustCommitResults(tb testing.TB, s sluice.Store, owner string, refs []sluice.ResultRef) int {
	tb.Helper()
	n, err := s.CommitResults(tb.Context(), owner, refs)
	if err != nil {
		tb.Fatalf("commit results of %s: %v", owner, err)
	}
	return n
}

// MustExtendLeases moves the leases of every chunk owner holds to until.
func MustExtendLeases(tb testing.TB, s sluice.Store, owner string, until time.Time) {
	tb.Helper()
	if err := s.ExtendLeases(tb.Context(), owner, until); err != nil {
		tb.Fatalf("extend leases of %s: %v", owner, err)
	}
}

// MustReleaseChunks releases the chunks of batchID that owner holds.
func MustReleaseChunks(tb testing.TB, s sluice.Store, owner, batchID string, chunks ...int) {
	tb.Helper()
	if err := s.ReleaseChunks(tb.Context(), owner, batchID, chunks); err != nil {
		tb.Fatalf("release chunks of %s: %v", owner, err)
	}
}

// MustCountLeased returns how many chunks of batchID hold a lease live at now.
func MustCountLeased(tb testing.TB, s sluice.Store, batchID string, now time.Time) int {
	tb.Helper()
	n, err := s.CountLeased(tb.Context(), batchID, now)
	if err != nil {
		tb.Fatalf("count leased of %s: %v", batchID, err)
	}
	return n
}

// MustExtents returns the extents of batchID's succeeded (or failed) results, as
// EachExtent yields them.
func MustExtents(tb testing.TB, s sluice.Store, batchID string, succeeded bool) []sluice.Extent {
	tb.Helper()
	var out []sluice.Extent
	err := s.EachExtent(tb.Context(), batchID, succeeded, func(x sluice.Extent) error {
		out = append(out, x)
		return nil
	})
	if err != nil {
		tb.Fatalf("extents of %s (succeeded %t): %v", batchID, succeeded, err)
	}
	return out
}

// MustFindSegments returns the segments of batchID.
func MustFindSegments(tb testing.TB, s sluice.Store, batchID string) []string {
	tb.Helper()
	keys, err := s.FindSegments(tb.Context(), batchID)
	if err != nil {
		tb.Fatalf("find segments of %s: %v", batchID, err)
	}
	return keys
}

// lineCount sums the lines of extents.
func lineCount(xs []sluice.Extent) int {
	n := 0
	for _, x := range xs {
		n += x.Lines
	}
	return n
}

// runningBatch creates a batch in progress with n request lines and adds its chunks.
func runningBatch(t *testing.T, s sluice.Store, id string, n int) []sluice.Chunk {
	t.Helper()
	b := newBatch(id, "file-in", sluice.StatusInProgress, 1000)
	b.RequestCounts.Total = n
	MustCreateBatch(t, s, b)
	chunks := newChunks(id, n)
	MustAddChunks(t, s, id, chunks)
	return chunks
}

func runWork(t *testing.T, setup func(t *testing.T) sluice.Store) {
	runClaims(t, setup)
	runCommits(t, setup)
	runWorkLifecycle(t, setup)
}

func runClaims(t *testing.T, setup func(t *testing.T) sluice.Store) {
	t.Run("AddChunks/RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", threeChunks)
		if diff := chunksDiff(chunks, MustClaimChunks(t, s, "batch-1", "owner-a", 10, future())); diff != "" {
			t.Errorf("claimed chunks mismatch (-want +got):\n%s", diff)
		}
	})

	// Adding the same chunks again changes nothing: no chunk appears twice, the rows
	// keep their first values, and the chunks still finish when every line has a result.
	t.Run("AddChunks/Idempotent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", twoChunks)
		again := newChunks("batch-1", twoChunks)
		for i := range again {
			again[i].IndexOffset += 7
			again[i].IndexLength += 7
		}
		MustAddChunks(t, s, "batch-1", again)
		if diff := chunksDiff(chunks, MustClaimChunks(t, s, "batch-1", "owner-a", 2, future())); diff != "" {
			t.Errorf("claimed chunks mismatch (-want +got):\n%s", diff)
		}
		if got := MustClaimChunks(t, s, "batch-1", "owner-b", 2, future()); len(got) != 0 {
			t.Errorf("owner-b: got chunks %v, want none", numbers(got))
		}
		refs := appendRefs("batch-1", true, "seg-a", 0, span(0, twoChunks-1)...)
		if got := MustCommitResults(t, s, "owner-a", refs); got != twoChunks {
			t.Errorf("got %d counted, want %d", got, twoChunks)
		}
		want := sluice.RequestCounts{Total: twoChunks, Completed: twoChunks}
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("after every line has a result: got %d leased, want 0", got)
		}
	})

	// A claim takes n chunks, at least one, however many lines they hold.
	for _, tc := range []struct{ n, want int }{{0, 1}, {1, 1}, {2, 2}, {10, 3}} {
		t.Run(fmt.Sprintf("ClaimChunks/N/n=%d", tc.n), func(t *testing.T) {
			t.Parallel()
			s := setup(t)
			chunks := runningBatch(t, s, "batch-1", threeChunks)
			if diff := chunksDiff(chunks[:tc.want], MustClaimChunks(t, s, "batch-1", "owner-a", tc.n, future())); diff != "" {
				t.Errorf("claimed chunks mismatch (-want +got):\n%s", diff)
			}
			if got := MustCountLeased(t, s, "batch-1", time.Now()); got != tc.want {
				t.Errorf("got %d leased, want %d", got, tc.want)
			}
		})
	}

	// Chunks are claimed lowest first, whatever order they were added in.
	t.Run("ClaimChunks/LowestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := newChunks("batch-1", threeChunks)
		for _, c := range []int{2, 0, 1} {
			MustAddChunks(t, s, "batch-1", chunks[c:c+1])
		}
		for c, owner := range []string{"owner-a", "owner-b", "owner-c"} {
			if diff := chunksDiff(chunks[c:c+1], MustClaimChunks(t, s, "batch-1", owner, 1, future())); diff != "" {
				t.Errorf("%s claim mismatch (-want +got):\n%s", owner, diff)
			}
		}
	})

	// A chunk whose lease is live is claimed by nobody, not even its owner.
	t.Run("ClaimChunks/NoDoubleClaim", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", twoChunks)
		if diff := chunksDiff(chunks[:1], MustClaimChunks(t, s, "batch-1", "owner-a", 1, future())); diff != "" {
			t.Errorf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(chunks[1:], MustClaimChunks(t, s, "batch-1", "owner-b", 1, future())); diff != "" {
			t.Errorf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		for _, owner := range []string{"owner-a", "owner-b", "owner-c"} {
			if got := MustClaimChunks(t, s, "batch-1", owner, 10, future()); len(got) != 0 {
				t.Errorf("%s: got chunks %v, want none", owner, numbers(got))
			}
		}
	})

	// A chunk whose lease ran out can be claimed by another owner, which learns from its
	// done bits which lines have a result already.
	t.Run("ClaimChunks/ExpiredLease", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", twoChunks)
		if diff := chunksDiff(chunks[:1], MustClaimChunks(t, s, "batch-1", "owner-a", 1, past())); diff != "" {
			t.Fatalf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg-a", 0, 0, 1, 7)); got != 3 {
			t.Fatalf("owner-a: got %d counted, want 3", got)
		}
		want := []sluice.Chunk{withDone(chunks[0], 0, 1, 7)}
		if diff := chunksDiff(want, MustClaimChunks(t, s, "batch-1", "owner-b", 1, future())); diff != "" {
			t.Errorf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(chunks[1:], MustClaimChunks(t, s, "batch-1", "owner-c", 1, future())); diff != "" {
			t.Errorf("owner-c claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustClaimChunks(t, s, "batch-1", "owner-d", 10, future()); len(got) != 0 {
			t.Errorf("owner-d: got chunks %v, want none", numbers(got))
		}
	})

	// Chunks whose lease ran out and pending chunks are claimable alike, lowest first,
	// in the same claim; a chunk whose lease is live is skipped.
	t.Run("ClaimChunks/ExpiredLowestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", threeChunks)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, past())
		// Chunk 0's lease ran out, so it is claimable again and comes first.
		if diff := chunksDiff(chunks[:1], MustClaimChunks(t, s, "batch-1", "owner-b", 1, future())); diff != "" {
			t.Fatalf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(chunks[1:2], MustClaimChunks(t, s, "batch-1", "owner-c", 1, past())); diff != "" {
			t.Fatalf("owner-c claim mismatch (-want +got):\n%s", diff)
		}
		// Chunk 0 is live with owner-b, chunk 1 ran out, chunk 2 is pending.
		if diff := chunksDiff(chunks[1:], MustClaimChunks(t, s, "batch-1", "owner-d", 10, future())); diff != "" {
			t.Errorf("owner-d claim mismatch (-want +got):\n%s", diff)
		}
	})

	// Chunks of different batches share their numbers but never their leases.
	t.Run("ClaimChunks/OtherBatch", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		c1, c2 := runningBatch(t, s, "batch-1", twoChunks), runningBatch(t, s, "batch-2", twoChunks)
		if diff := chunksDiff(c1[:1], MustClaimChunks(t, s, "batch-1", "owner-a", 1, future())); diff != "" {
			t.Errorf("batch-1 claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(c2[:1], MustClaimChunks(t, s, "batch-2", "owner-a", 1, future())); diff != "" {
			t.Errorf("batch-2 claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(c1[1:], MustClaimChunks(t, s, "batch-1", "owner-b", 10, future())); diff != "" {
			t.Errorf("batch-1 second claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(c2[1:], MustClaimChunks(t, s, "batch-2", "owner-b", 10, future())); diff != "" {
			t.Errorf("batch-2 second claim mismatch (-want +got):\n%s", diff)
		}
		for _, id := range []string{"batch-1", "batch-2", "batch-3"} {
			if got := MustClaimChunks(t, s, id, "owner-c", 10, future()); len(got) != 0 {
				t.Errorf("%s: got chunks %v, want none", id, numbers(got))
			}
		}
	})

	t.Run("ExtendLeases", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", threeChunks)
		runningBatch(t, s, "batch-2", oneChunk)
		runningBatch(t, s, "batch-3", oneChunk)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, past())
		MustClaimChunks(t, s, "batch-2", "owner-a", 1, past())
		MustClaimChunks(t, s, "batch-3", "owner-x", 1, past())
		MustExtendLeases(t, s, "owner-a", future())
		MustExtendLeases(t, s, "owner-z", future()) // holds nothing
		// Every chunk of owner-a is live again, in every batch; owner-x's is not.
		for id, want := range map[string]int{"batch-1": 1, "batch-2": 1, "batch-3": 0} {
			if got := MustCountLeased(t, s, id, time.Now()); got != want {
				t.Errorf("%s after extending: got %d leased, want %d", id, got, want)
			}
		}
		// owner-a's chunk 0 is live again, so owner-b gets chunk 1, and lets it run out.
		if diff := chunksDiff(chunks[1:2], MustClaimChunks(t, s, "batch-1", "owner-b", 1, past())); diff != "" {
			t.Fatalf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(chunks[1:], MustClaimChunks(t, s, "batch-1", "owner-c", 10, future())); diff != "" {
			t.Errorf("owner-c claim mismatch (-want +got):\n%s", diff)
		}
		// Extending does not take back a chunk another owner claimed since.
		MustExtendLeases(t, s, "owner-b", future())
		first1 := sluice.ChunkLines
		if got := MustCommitResults(t, s, "owner-b", appendRefs("batch-1", true, "seg-b", 0, first1)); got != 0 {
			t.Errorf("owner-b commit: got %d counted, want 0", got)
		}
		if got := MustCommitResults(t, s, "owner-c", appendRefs("batch-1", true, "seg-c", 0, first1)); got != 1 {
			t.Errorf("owner-c commit: got %d counted, want 1", got)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg-a", 0, 0)); got != 1 {
			t.Errorf("owner-a commit: got %d counted, want 1", got)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 3 {
			t.Errorf("got %d leased, want 3", got)
		}
	})

	t.Run("ReleaseChunks", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", twoChunks)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, future())
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg-a", 0, 0, 1, 2)); got != 3 {
			t.Fatalf("owner-a: got %d counted, want 3", got)
		}
		MustReleaseChunks(t, s, "owner-b", "batch-1", 0)
		MustReleaseChunks(t, s, "owner-a", "batch-2", 0) // another batch's chunk 0
		// The wrong owner, or the wrong batch, released nothing: chunk 0 is still owner-a's.
		if diff := chunksDiff(chunks[1:], MustClaimChunks(t, s, "batch-1", "owner-c", 1, future())); diff != "" {
			t.Errorf("after the wrong releases: owner-c claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg-a", bytesOf(0, 1, 2), 3)); got != 1 {
			t.Errorf("after the wrong releases: owner-a got %d counted, want 1", got)
		}
		MustReleaseChunks(t, s, "owner-a", "batch-1", 0)
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 1 {
			t.Errorf("after release: got %d leased, want 1", got)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg-a", bytesOf(0, 1, 2, 3), 4)); got != 0 {
			t.Errorf("after release: owner-a got %d counted, want 0", got)
		}
		want := []sluice.Chunk{withDone(chunks[0], 0, 1, 2, 3)}
		if diff := chunksDiff(want, MustClaimChunks(t, s, "batch-1", "owner-d", 1, future())); diff != "" {
			t.Errorf("owner-d claim mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("CountLeased", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		runningBatch(t, s, "batch-1", threeChunks)
		runningBatch(t, s, "batch-2", oneChunk)
		now := time.Now()
		until := now.Add(time.Hour)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, until)  // chunk 0, live
		MustClaimChunks(t, s, "batch-1", "owner-b", 1, past()) // chunk 1, ran out; chunk 2 pending
		MustClaimChunks(t, s, "batch-2", "owner-a", 1, until)  // another batch's
		for id, want := range map[string]int{"batch-1": 1, "batch-2": 1, "batch-3": 0} {
			if got := MustCountLeased(t, s, id, now); got != want {
				t.Errorf("%s: got %d leased, want %d", id, got, want)
			}
		}
		if got := MustCountLeased(t, s, "batch-1", until.Add(time.Second)); got != 0 {
			t.Errorf("after the leases ran out: got %d leased, want 0", got)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg", 0, 0)); got != 1 {
			t.Fatalf("got %d counted, want 1", got)
		}
		if got := MustCountLeased(t, s, "batch-1", now); got != 1 {
			t.Errorf("after a commit: got %d leased, want 1", got)
		}
		MustClaimChunks(t, s, "batch-1", "owner-c", 10, until) // chunks 1 and 2
		if got := MustCountLeased(t, s, "batch-1", now); got != 3 {
			t.Errorf("after owner-c's claim: got %d leased, want 3", got)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg", lineBytes(0), span(1, sluice.ChunkLines-1)...)); got != sluice.ChunkLines-1 {
			t.Fatalf("got %d counted, want %d", got, sluice.ChunkLines-1)
		}
		// Chunk 0 is done, so it is no longer leased.
		if got := MustCountLeased(t, s, "batch-1", now); got != 2 {
			t.Errorf("after chunk 0 is done: got %d leased, want 2", got)
		}
	})
}

func runCommits(t *testing.T, setup func(t *testing.T) sluice.Store) {
	// A commit counts each outcome and records one extent per run of results back to
	// back in a segment, per outcome, in commit order.
	t.Run("CommitResults", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		runningBatch(t, s, "batch-1", oneChunk)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, future())
		ok := appendRefs("batch-1", true, "seg-ok", 0, 0, 2)
		bad := appendRefs("batch-1", false, "seg-err", 0, 1)
		if got := MustCommitResults(t, s, "owner-a", append(ok, bad...)); got != 3 {
			t.Errorf("got %d counted, want 3", got)
		}
		want := sluice.RequestCounts{Total: oneChunk, Completed: 2, Failed: 1}
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		wantOK := []sluice.Extent{{Segment: "seg-ok", Offset: 0, Length: bytesOf(0, 2), Lines: 2}}
		if diff := cmp.Diff(wantOK, MustExtents(t, s, "batch-1", true)); diff != "" {
			t.Errorf("output extents mismatch (-want +got):\n%s", diff)
		}
		wantErr := []sluice.Extent{{Segment: "seg-err", Offset: 0, Length: bytesOf(1), Lines: 1}}
		if diff := cmp.Diff(wantErr, MustExtents(t, s, "batch-1", false)); diff != "" {
			t.Errorf("error extents mismatch (-want +got):\n%s", diff)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("after every line: got %d leased, want 0", got)
		}
	})

	// Usage is added once per line that counts: a repeat, a line of a chunk another owner
	// holds, or one past the chunk's end adds nothing.
	t.Run("CommitResults/Usage", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		runningBatch(t, s, "batch-1", twoChunks)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, future()) // chunk 0 only
		refs := appendRefs("batch-1", true, "seg-1", 0, 0, 1, 2, 3)
		refs = append(refs, appendRefs("batch-1", false, "seg-2", 0, 4, 1)...) // 1 again: dropped
		refs = append(refs, appendRefs("batch-1", true, "seg-3", 0, 260)...)   // chunk 1 not held
		if got := MustCommitResults(t, s, "owner-a", refs); got != 5 {
			t.Errorf("got %d counted, want 5", got)
		}
		MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg-1", bytesOf(0, 1, 2, 3), 2, 5)) // 2 again
		want := usageSum(0, 1, 2, 3, 4, 5)
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1").Usage); diff != "" {
			t.Errorf("usage mismatch (-want +got):\n%s", diff)
		}
	})

	// Extents follow the bytes: a run breaks where the next result is not right after
	// the previous one, is in another segment, or was dropped.
	t.Run("CommitResults/Extents", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		runningBatch(t, s, "batch-1", threeChunks)
		MustClaimChunks(t, s, "batch-1", "owner-a", 10, future())
		refs := appendRefs("batch-1", true, "seg-1", 100, 5, 6, 300) // across chunks 0 and 1: one run
		refs = append(refs, appendRefs("batch-1", true, "seg-1", 1000, 7)...)
		refs = append(refs, appendRefs("batch-1", true, "seg-2", 0, 8, 9)...)
		refs = append(refs, appendRefs("batch-1", true, "seg-2", bytesOf(8, 9), 5, 10)...) // line 5 again: dropped
		if got := MustCommitResults(t, s, "owner-a", refs); got != 7 {
			t.Errorf("got %d counted, want 7", got)
		}
		want := []sluice.Extent{
			{Segment: "seg-1", Offset: 100, Length: bytesOf(5, 6, 300), Lines: 3},
			{Segment: "seg-1", Offset: 1000, Length: bytesOf(7), Lines: 1},
			{Segment: "seg-2", Offset: 0, Length: bytesOf(8, 9), Lines: 2},
			{Segment: "seg-2", Offset: bytesOf(8, 9, 5), Length: bytesOf(10), Lines: 1},
		}
		if diff := cmp.Diff(want, MustExtents(t, s, "batch-1", true)); diff != "" {
			t.Errorf("extents mismatch (-want +got):\n%s", diff)
		}
	})

	// Results of an owner whose chunk another owner claimed after its lease ran out are
	// dropped: not counted, in no extent. Its results for chunks it holds, in the same
	// call, count.
	t.Run("CommitResults/LostLease", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", twoChunks)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, past())
		if diff := chunksDiff(chunks[:1], MustClaimChunks(t, s, "batch-1", "owner-b", 1, future())); diff != "" {
			t.Fatalf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := chunksDiff(chunks[1:], MustClaimChunks(t, s, "batch-1", "owner-a", 1, future())); diff != "" {
			t.Fatalf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		held := sluice.ChunkLines
		refs := appendRefs("batch-1", false, "seg-a", 0, 0, 1, held)
		if got := MustCommitResults(t, s, "owner-a", refs); got != 1 {
			t.Errorf("owner-a: got %d counted, want 1", got)
		}
		if diff := cmp.Diff(sluice.RequestCounts{Total: twoChunks, Failed: 1}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("after owner-a: request counts mismatch (-want +got):\n%s", diff)
		}
		want := []sluice.Extent{{Segment: "seg-a", Offset: bytesOf(0, 1), Length: bytesOf(held), Lines: 1}}
		if diff := cmp.Diff(want, MustExtents(t, s, "batch-1", false)); diff != "" {
			t.Errorf("after owner-a: extents mismatch (-want +got):\n%s", diff)
		}
		if got := MustCommitResults(t, s, "owner-b", appendRefs("batch-1", true, "seg-b", 0, 0)); got != 1 {
			t.Errorf("owner-b: got %d counted, want 1", got)
		}
		if diff := cmp.Diff(sluice.RequestCounts{Total: twoChunks, Completed: 1, Failed: 1}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
	})

	// A line that has a result keeps it: another result for it, in a later call or in
	// the same one, is dropped, and the chunk still finishes.
	t.Run("CommitResults/Duplicate", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		runningBatch(t, s, "batch-1", oneChunk)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, future())
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg", 0, 0)); got != 1 {
			t.Errorf("first commit: got %d counted, want 1", got)
		}
		off := bytesOf(0)
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", false, "seg-err", 0, 0)); got != 0 {
			t.Errorf("second commit of line 0: got %d counted, want 0", got)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg", off, 1, 1)); got != 1 {
			t.Errorf("line 1 twice in one commit: got %d counted, want 1", got)
		}
		off += bytesOf(1, 1)
		if diff := cmp.Diff(sluice.RequestCounts{Total: oneChunk, Completed: 2}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 1 {
			t.Errorf("before the last line: got %d leased, want 1", got)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", false, "seg-err", bytesOf(0), 2)); got != 1 {
			t.Errorf("line 2: got %d counted, want 1", got)
		}
		wantOK := []sluice.Extent{
			{Segment: "seg", Offset: 0, Length: bytesOf(0), Lines: 1},
			{Segment: "seg", Offset: bytesOf(0), Length: bytesOf(1), Lines: 1},
		}
		if diff := cmp.Diff(wantOK, MustExtents(t, s, "batch-1", true)); diff != "" {
			t.Errorf("output extents mismatch (-want +got):\n%s", diff)
		}
		wantErr := []sluice.Extent{{Segment: "seg-err", Offset: bytesOf(0), Length: bytesOf(2), Lines: 1}}
		if diff := cmp.Diff(wantErr, MustExtents(t, s, "batch-1", false)); diff != "" {
			t.Errorf("error extents mismatch (-want +got):\n%s", diff)
		}
		// Every line has a result, so the chunk is done: not leased, not claimable.
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("after the last line: got %d leased, want 0", got)
		}
		if got := MustClaimChunks(t, s, "batch-1", "owner-b", 1, future()); len(got) != 0 {
			t.Errorf("owner-b: got chunks %v, want none", numbers(got))
		}
	})

	// A chunk whose every line has a result is done: claims skip it even though its
	// lease ran out, a commit to it is dropped, and the batch counts every line once.
	t.Run("CommitResults/NeverClaimedAgain", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		chunks := runningBatch(t, s, "batch-1", threeChunks)
		var off int64
		for c, owner := range []string{"owner-a", "owner-b", "owner-c"} {
			if diff := chunksDiff(chunks[c:c+1], MustClaimChunks(t, s, "batch-1", owner, 1, past())); diff != "" {
				t.Fatalf("%s claim mismatch (-want +got):\n%s", owner, diff)
			}
			ords := span(c*sluice.ChunkLines, c*sluice.ChunkLines+chunks[c].Lines-1)
			if got := MustCommitResults(t, s, owner, appendRefs("batch-1", true, "seg", off, ords...)); got != len(ords) {
				t.Fatalf("%s: got %d counted, want %d", owner, got, len(ords))
			}
			off += bytesOf(ords...)
		}
		for _, owner := range []string{"owner-a", "owner-d"} {
			if got := MustClaimChunks(t, s, "batch-1", owner, 10, future()); len(got) != 0 {
				t.Errorf("%s: got chunks %v, want none", owner, numbers(got))
			}
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("got %d leased, want 0", got)
		}
		if got := MustCommitResults(t, s, "owner-a", appendRefs("batch-1", false, "seg", off, 0, 1)); got != 0 {
			t.Errorf("commit to a done chunk: got %d counted, want 0", got)
		}
		want := sluice.RequestCounts{Total: threeChunks, Completed: threeChunks}
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		xs := MustExtents(t, s, "batch-1", true)
		if got := lineCount(xs); got != threeChunks {
			t.Errorf("got %d lines in extents, want %d", got, threeChunks)
		}
		if diff := cmp.Diff([]sluice.Extent{{Segment: "seg", Offset: 0, Length: off, Lines: threeChunks}}, coalesce(xs)); diff != "" {
			t.Errorf("extents mismatch (-want +got):\n%s", diff)
		}
		if got := MustExtents(t, s, "batch-1", false); len(got) != 0 {
			t.Errorf("got error extents %v, want none", got)
		}
	})

	// A result for a line past the end of its chunk, or for a chunk that does not
	// exist, is dropped.
	t.Run("CommitResults/OutOfRange", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		runningBatch(t, s, "batch-1", oneChunk)
		MustClaimChunks(t, s, "batch-1", "owner-a", 1, future())
		refs := appendRefs("batch-1", true, "seg", 0, oneChunk, 5*sluice.ChunkLines)
		refs = append(refs, appendRefs("batch-9", true, "seg", bytesOf(oneChunk, 5*sluice.ChunkLines), 0)...)
		if got := MustCommitResults(t, s, "owner-a", refs); got != 0 {
			t.Errorf("got %d counted, want 0", got)
		}
		if got := MustExtents(t, s, "batch-1", true); len(got) != 0 {
			t.Errorf("got extents %v, want none", got)
		}
		if diff := cmp.Diff(sluice.RequestCounts{Total: oneChunk}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
	})

	// Extents come in commit order, not line order, and each batch has its own.
	t.Run("EachExtent/CommitOrder", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for _, id := range []string{"batch-1", "batch-2"} {
			runningBatch(t, s, id, twoChunks)
			MustClaimChunks(t, s, id, "owner-a", 10, future())
		}
		late := sluice.ChunkLines + 3
		MustCommitResults(t, s, "owner-a", appendRefs("batch-1", true, "seg-1", 0, late))
		MustCommitResults(t, s, "owner-a", append(appendRefs("batch-2", true, "seg-2", 0, 4), appendRefs("batch-1", true, "seg-1", bytesOf(late), 0)...))
		MustCommitResults(t, s, "owner-a", appendRefs("batch-1", false, "seg-1e", 0, 2))
		want1 := []sluice.Extent{
			{Segment: "seg-1", Offset: 0, Length: bytesOf(late), Lines: 1},
			{Segment: "seg-1", Offset: bytesOf(late), Length: bytesOf(0), Lines: 1},
		}
		if diff := cmp.Diff(want1, MustExtents(t, s, "batch-1", true)); diff != "" {
			t.Errorf("batch-1 extents mismatch (-want +got):\n%s", diff)
		}
		want2 := []sluice.Extent{{Segment: "seg-2", Offset: 0, Length: bytesOf(4), Lines: 1}}
		if diff := cmp.Diff(want2, MustExtents(t, s, "batch-2", true)); diff != "" {
			t.Errorf("batch-2 extents mismatch (-want +got):\n%s", diff)
		}
		if got := MustExtents(t, s, "batch-2", false); len(got) != 0 {
			t.Errorf("batch-2 error extents: got %v, want none", got)
		}
		if got := MustExtents(t, s, "batch-3", true); len(got) != 0 {
			t.Errorf("batch-3 extents: got %v, want none", got)
		}
	})
}

// coalesce joins extents back to back in one segment, to compare the bytes they cover
// whatever the commits were.
func coalesce(xs []sluice.Extent) []sluice.Extent {
	var out []sluice.Extent
	for _, x := range xs {
		if n := len(out); n > 0 && out[n-1].Segment == x.Segment && out[n-1].Offset+out[n-1].Length == x.Offset {
			out[n-1].Length += x.Length
			out[n-1].Lines += x.Lines
			continue
		}
		out = append(out, x)
	}
	return out
}

func runWorkLifecycle(t *testing.T, setup func(t *testing.T) sluice.Store) {
	t.Run("AddSegment", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for _, k := range []string{"segments/batch-1/b", "segments/batch-1/a", "segments/batch-1/b"} {
			if err := s.AddSegment(t.Context(), "batch-1", k); err != nil {
				t.Fatalf("add segment %s: %v", k, err)
			}
		}
		if err := s.AddSegment(t.Context(), "batch-2", "segments/batch-2/a"); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"segments/batch-1/a", "segments/batch-1/b"}, MustFindSegments(t, s, "batch-1")); diff != "" {
			t.Errorf("segments mismatch (-want +got):\n%s", diff)
		}
		if got := MustFindSegments(t, s, "batch-3"); len(got) != 0 {
			t.Errorf("batch-3: got %v, want none", got)
		}
	})

	t.Run("DeleteWork", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for _, id := range []string{"batch-1", "batch-2"} {
			runningBatch(t, s, id, threeChunks)
			if err := s.AddSegment(t.Context(), id, "seg-"+id); err != nil {
				t.Fatal(err)
			}
			MustClaimChunks(t, s, id, "owner-a", 1, future())
			MustCommitResults(t, s, "owner-a", appendRefs(id, true, "seg-"+id, 0, span(0, 9)...))
		}
		if err := s.DeleteWork(t.Context(), "batch-1"); err != nil {
			t.Fatal(err)
		}
		if got := MustExtents(t, s, "batch-1", true); len(got) != 0 {
			t.Errorf("batch-1 extents: got %v, want none", got)
		}
		if got := MustFindSegments(t, s, "batch-1"); len(got) != 0 {
			t.Errorf("batch-1 segments: got %v, want none", got)
		}
		if got := MustClaimChunks(t, s, "batch-1", "owner-b", 10, future()); len(got) != 0 {
			t.Errorf("batch-1 claim after delete: got chunks %v, want none", numbers(got))
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("batch-1 leased: got %d, want 0", got)
		}
		// The batch row and its counts stay; the other batch is untouched.
		if got := MustFindBatchByID(t, s, "batch-1").RequestCounts.Completed; got != 10 {
			t.Errorf("batch-1 completed: got %d, want 10", got)
		}
		if got := lineCount(MustExtents(t, s, "batch-2", true)); got != 10 {
			t.Errorf("batch-2 lines in extents: got %d, want 10", got)
		}
		if got := MustFindSegments(t, s, "batch-2"); !slices.Equal(got, []string{"seg-batch-2"}) {
			t.Errorf("batch-2 segments: got %v, want [seg-batch-2]", got)
		}
		if got := MustClaimChunks(t, s, "batch-2", "owner-b", 1, future()); !slices.Equal(numbers(got), []int{1}) {
			t.Errorf("batch-2 claim: got chunks %v, want [1]", numbers(got))
		}
		if err := s.DeleteWork(t.Context(), "batch-none"); err != nil {
			t.Errorf("delete of a batch with no work: got %v, want nil", err)
		}
	})

	// Leftover work is what a crash between finishing a batch and deleting its work
	// leaves: terminal batches with chunks, extents or segments. Running batches are
	// never leftovers.
	t.Run("FindLeftoverWork", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		runningBatch(t, s, "batch-running", oneChunk)
		for i, st := range []sluice.Status{sluice.StatusCompleted, sluice.StatusCancelled, sluice.StatusFailed, sluice.StatusExpired} {
			id := fmt.Sprintf("batch-%d", i)
			b := newBatch(id, "file-in", st, int64(1000+i))
			MustCreateBatch(t, s, b)
			switch i {
			case 0:
				MustAddChunks(t, s, id, newChunks(id, oneChunk))
			case 1:
				if err := s.AddSegment(t.Context(), id, "seg"); err != nil {
					t.Fatal(err)
				}
			}
		}
		MustCreateBatch(t, s, newBatch("batch-clean", "file-in", sluice.StatusCompleted, 2000))
		got, err := s.FindLeftoverWork(t.Context(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"batch-0", "batch-1"}, got); diff != "" {
			t.Errorf("leftovers mismatch (-want +got):\n%s", diff)
		}
		if got, err := s.FindLeftoverWork(t.Context(), 1); err != nil || len(got) != 1 {
			t.Errorf("limit 1: got %v, %v; want one batch", got, err)
		}
		for _, id := range []string{"batch-0", "batch-1"} {
			if err := s.DeleteWork(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.FindLeftoverWork(t.Context(), 10); err != nil || len(got) != 0 {
			t.Errorf("after deleting: got %v, %v; want none", got, err)
		}
	})
}
