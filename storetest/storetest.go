package storetest

import (
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
)

// Run runs the conformance suite against the stores newStore returns. newStore must
// return a fresh, empty store and register its cleanup itself; every subtest calls it
// once and runs in parallel with the others.
func Run(t *testing.T, newStore func(t *testing.T) sluice.Store) {
	setup := func(t *testing.T) sluice.Store {
		t.Helper()
		return newStore(t)
	}

	runFiles(t, setup)
	runBatches(t, setup)
	runFinishBatch(t, setup)
	runWork(t, setup)
	runQuota(t, setup)
	runBatchLists(t, setup)
	runIdempotency(t, setup)
	runUploads(t, setup)
	runLeases(t, setup)
	runProjects(t, setup)
}

// at returns the time n seconds after the epoch, in UTC, as stores return timestamps.
func at(n int64) time.Time { return time.Unix(n, 0).UTC() }

// Lease times. Leases use the real clock, since Run cannot inject one.
func future() time.Time { return time.Now().Add(time.Hour) }
func past() time.Time   { return time.Now().Add(-time.Minute) }

func newFile(id string, created int64) *sluice.File {
	return &sluice.File{
		ID:        id,
		Bytes:     100,
		CreatedAt: at(created),
		Filename:  id + ".jsonl",
		Purpose:   sluice.PurposeBatch,
		Status:    sluice.FileStatusProcessed,
	}
}

func newBatch(id, inputFileID string, status sluice.Status, created int64) *sluice.Batch {
	return &sluice.Batch{
		ID:               id,
		Endpoint:         "/v1/chat/completions",
		InputFileID:      inputFileID,
		CompletionWindow: sluice.CompletionWindow,
		Status:           status,
		CreatedAt:        at(created),
	}
}

// Sizes of test batches, in request lines.
const (
	oneChunk    = 3                        // chunk 0 of 3 lines
	twoChunks   = sluice.ChunkLines + 44   // 300 lines: chunk 0 full, chunk 1 of 44 lines
	threeChunks = 2*sluice.ChunkLines + 10 // chunks 0 and 1 full, chunk 2 of 10 lines
)

func fileIDs(files []*sluice.File) []string {
	ids := make([]string, 0, len(files))
	for _, f := range files {
		ids = append(ids, f.ID)
	}
	return ids
}

func batchIDs(batches []*sluice.Batch) []string {
	ids := make([]string, 0, len(batches))
	for _, b := range batches {
		ids = append(ids, b.ID)
	}
	return ids
}

// MustCreateFile creates f in s.
func MustCreateFile(tb testing.TB, s sluice.Store, f *sluice.File) {
	tb.Helper()
	if err := s.CreateFile(tb.Context(), f); err != nil {
		tb.Fatalf("create file %s: %v", f.ID, err)
	}
}

// MustFindFileByID returns the file id of s.
func MustFindFileByID(tb testing.TB, s sluice.Store, id string) *sluice.File {
	tb.Helper()
	f, err := s.FindFileByID(tb.Context(), id)
	if err != nil {
		tb.Fatalf("find file %s: %v", id, err)
	}
	return f
}

// MustCreateBatch creates b in s.
func MustCreateBatch(tb testing.TB, s sluice.Store, b *sluice.Batch) {
	tb.Helper()
	if err := s.CreateBatch(tb.Context(), b); err != nil {
		tb.Fatalf("create batch %s: %v", b.ID, err)
	}
}

// MustFindBatchByID returns the batch id of s.
func MustFindBatchByID(tb testing.TB, s sluice.Store, id string) *sluice.Batch {
	tb.Helper()
	b, err := s.FindBatchByID(tb.Context(), id)
	if err != nil {
		tb.Fatalf("find batch %s: %v", id, err)
	}
	return b
}

// wantKind fails t unless err is of the given kind.
func wantKind(tb testing.TB, err error, kind sluice.Kind) {
	tb.Helper()
	if got := sluice.ErrorKind(err); got != kind {
		tb.Fatalf("got error %v (kind %q), want kind %q", err, got, kind)
	}
}
