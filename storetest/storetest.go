package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
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
	runRequests(t, setup)
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

// newRequests returns the request rows of lines from..to of a batch whose request lines
// are lines 1, 2, ... of its input file, so line l is in chunk (l-1)/ChunkLines.
func newRequests(batchID string, from, to int) []sluice.Request {
	var reqs []sluice.Request
	for line := from; line <= to; line++ {
		reqs = append(reqs, sluice.Request{
			BatchID:  batchID,
			Chunk:    (line - 1) / sluice.ChunkLines,
			Line:     line,
			CustomID: fmt.Sprintf("req-%d", line),
			Offset:   int64(line-1) * 100,
			Length:   90 + line,
		})
	}
	return reqs
}

// inChunks returns the requests of reqs that are in one of chunks, in the order of reqs.
func inChunks(reqs []sluice.Request, chunks ...int) []sluice.Request {
	var out []sluice.Request
	for _, r := range reqs {
		if slices.Contains(chunks, r.Chunk) {
			out = append(out, r)
		}
	}
	return out
}

// newResult returns the result of a line of a batch laid out as newRequests does.
func newResult(batchID string, line int, succeeded bool, output string) sluice.Result {
	return sluice.Result{
		BatchID:   batchID,
		Chunk:     (line - 1) / sluice.ChunkLines,
		Line:      line,
		Succeeded: succeeded,
		Output:    []byte(output),
	}
}

// resultsFor returns a result for each of reqs: odd lines succeed, even lines fail.
func resultsFor(reqs []sluice.Request) []sluice.Result {
	out := make([]sluice.Result, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, newResult(r.BatchID, r.Line, r.Line%2 == 1, fmt.Sprintf(`{"custom_id":%q}`, r.CustomID)))
	}
	return out
}

// countsOf returns the request counts that storing results adds to a batch.
func countsOf(results []sluice.Result) sluice.RequestCounts {
	var c sluice.RequestCounts
	for _, r := range results {
		if r.Succeeded {
			c.Completed++
		} else {
			c.Failed++
		}
	}
	return c
}

// ignoreChunk compares results EachResult yields: the contract does not say that it
// sets Chunk, and the engine writes only Output.
var ignoreChunk = cmpopts.IgnoreFields(sluice.Result{}, "Chunk")

// requestsDiff is cmp.Diff of claimed requests, but when the claim holds other lines
// it reports only the difference of the line numbers, to keep it short.
func requestsDiff(want, got []sluice.Request) string {
	if diff := cmp.Diff(lines(want), lines(got)); diff != "" {
		return "lines: " + diff
	}
	return cmp.Diff(want, got)
}

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

func lines(reqs []sluice.Request) []int {
	out := make([]int, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.Line)
	}
	return out
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

// MustAddRequests adds reqs to the batch batchID of s.
func MustAddRequests(tb testing.TB, s sluice.Store, batchID string, reqs []sluice.Request) {
	tb.Helper()
	if err := s.AddRequests(tb.Context(), batchID, reqs); err != nil {
		tb.Fatalf("add requests of %s: %v", batchID, err)
	}
}

// MustClaimRequests claims up to n lines of batchID for owner until the given time.
func MustClaimRequests(tb testing.TB, s sluice.Store, batchID, owner string, n int, until time.Time) []sluice.Request {
	tb.Helper()
	reqs, err := s.ClaimRequests(tb.Context(), batchID, owner, n, until)
	if err != nil {
		tb.Fatalf("claim requests of %s for %s: %v", batchID, owner, err)
	}
	return reqs
}

// MustCommitResults commits results for owner and returns how many were stored.
func MustCommitResults(tb testing.TB, s sluice.Store, owner string, results []sluice.Result) int {
	tb.Helper()
	n, err := s.CommitResults(tb.Context(), owner, results)
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

// MustReleaseRequests releases the chunks of reqs that owner holds.
func MustReleaseRequests(tb testing.TB, s sluice.Store, owner string, reqs []sluice.Request) {
	tb.Helper()
	if err := s.ReleaseRequests(tb.Context(), owner, reqs); err != nil {
		tb.Fatalf("release requests of %s: %v", owner, err)
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

// MustEachResult returns the stored results of batchID that succeeded (or failed), as
// EachResult yields them.
func MustEachResult(tb testing.TB, s sluice.Store, batchID string, succeeded bool) []sluice.Result {
	tb.Helper()
	var out []sluice.Result
	err := s.EachResult(tb.Context(), batchID, succeeded, func(r sluice.Result) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		tb.Fatalf("results of %s (succeeded %t): %v", batchID, succeeded, err)
	}
	return out
}

// MustResults returns every stored result of batchID: the successes, then the
// failures, each as EachResult yields them.
func MustResults(tb testing.TB, s sluice.Store, batchID string) []sluice.Result {
	tb.Helper()
	return append(MustEachResult(tb, s, batchID, true), MustEachResult(tb, s, batchID, false)...)
}

// wantKind fails t unless err is of the given kind.
func wantKind(tb testing.TB, err error, kind sluice.Kind) {
	tb.Helper()
	if got := sluice.ErrorKind(err); got != kind {
		tb.Fatalf("got error %v (kind %q), want kind %q", err, got, kind)
	}
}

func runFiles(t *testing.T, setup func(t *testing.T) sluice.Store) {
	t.Run("CreateFile/RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		minimal := newFile("file-min", 1000)
		full := &sluice.File{
			ID:            "file-full",
			Bytes:         12345,
			CreatedAt:     at(2000),
			ExpiresAt:     sluice.Ptr(at(2000 + sluice.MinFileExpiry)),
			Filename:      "input.jsonl",
			Purpose:       sluice.PurposeBatch,
			Status:        sluice.FileStatusError,
			StatusDetails: "Line 2 is not valid JSON.",
			Scan: &sluice.FileScan{
				Requests:  3,
				FirstLine: 2,
				URL:       "/v1/chat/completions",
				Model:     "gpt-4o-mini",
				Problems: []sluice.BatchError{
					{Code: "invalid_json_line", Message: "Line 2 is not valid JSON.", Line: 2},
					{Code: "missing_required_parameter", Message: "custom_id is missing.", Param: "custom_id", Line: 3},
				},
				Indexed: false,
			},
		}
		indexed := newFile("file-indexed", 3000)
		indexed.Scan = &sluice.FileScan{Requests: 2, FirstLine: 1, URL: "/v1/chat/completions", Model: "m", Indexed: true}
		for _, want := range []*sluice.File{minimal, full, indexed} {
			MustCreateFile(t, s, want)
			got := MustFindFileByID(t, s, want.ID)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("file %s mismatch (-want +got):\n%s", want.ID, diff)
			}
		}
	})

	t.Run("CreateFile/ErrConflict", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		want := newFile("file-1", 1000)
		MustCreateFile(t, s, want)
		other := newFile("file-1", 2000)
		other.Filename = "other.jsonl"
		wantKind(t, s.CreateFile(t.Context(), other), sluice.KindConflict)
		if diff := cmp.Diff(want, MustFindFileByID(t, s, "file-1")); diff != "" {
			t.Errorf("file changed by a conflicting create (-want +got):\n%s", diff)
		}
	})

	t.Run("FindFileByID/ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		_, err := s.FindFileByID(t.Context(), "file-missing")
		wantKind(t, err, sluice.KindNotFound)
	})

	// mustFiles creates file-1, file-2 and file-3 in that order, oldest first.
	mustFiles := func(t *testing.T, s sluice.Store) {
		t.Helper()
		for i := 1; i <= 3; i++ {
			MustCreateFile(t, s, newFile(fmt.Sprintf("file-%d", i), int64(1000*i)))
		}
	}

	t.Run("FindFiles/NewestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustFiles(t, s)
		files, more, err := s.FindFiles(t.Context(), sluice.FileFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"file-3", "file-2", "file-1"}, fileIDs(files)); diff != "" {
			t.Errorf("ids mismatch (-want +got):\n%s", diff)
		}
		if more {
			t.Errorf("got more %v, want false", more)
		}
		if diff := cmp.Diff(newFile("file-3", 3000), files[0]); diff != "" {
			t.Errorf("file mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("FindFiles/Asc", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustFiles(t, s)
		files, more, err := s.FindFiles(t.Context(), sluice.FileFilter{Asc: true})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"file-1", "file-2", "file-3"}, fileIDs(files)); diff != "" {
			t.Errorf("ids mismatch (-want +got):\n%s", diff)
		}
		if more {
			t.Errorf("got more %v, want false", more)
		}
	})

	t.Run("FindFiles/Purpose", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for i, p := range []sluice.Purpose{sluice.PurposeBatch, sluice.PurposeBatchOutput, sluice.PurposeBatch, sluice.PurposeBatchOutput} {
			f := newFile(fmt.Sprintf("file-%d", i+1), int64(1000*(i+1)))
			f.Purpose = p
			MustCreateFile(t, s, f)
		}
		for _, tt := range []struct {
			purpose sluice.Purpose
			want    []string
		}{
			{sluice.PurposeBatch, []string{"file-3", "file-1"}},
			{sluice.PurposeBatchOutput, []string{"file-4", "file-2"}},
		} {
			files, _, err := s.FindFiles(t.Context(), sluice.FileFilter{Purpose: tt.purpose})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fileIDs(files)); diff != "" {
				t.Errorf("purpose %s: ids mismatch (-want +got):\n%s", tt.purpose, diff)
			}
		}
	})

	t.Run("FindFiles/ExpiredBy", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for i, exp := range []int64{0, 2000, 3000, 4000} {
			f := newFile(fmt.Sprintf("file-%d", i+1), 1000)
			if exp != 0 {
				f.ExpiresAt = sluice.Ptr(time.Unix(exp, 0).UTC())
			}
			MustCreateFile(t, s, f)
		}
		for _, tt := range []struct {
			by   int64
			want []string
		}{
			{1999, []string{}},
			{3000, []string{"file-2", "file-3"}}, // at or before
			{9999, []string{"file-2", "file-3", "file-4"}},
		} {
			files, _, err := s.FindFiles(t.Context(), sluice.FileFilter{ExpiredBy: sluice.Ptr(time.Unix(tt.by, 0)), Asc: true})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fileIDs(files)); diff != "" {
				t.Errorf("expired by %d: ids mismatch (-want +got):\n%s", tt.by, diff)
			}
		}
	})

	t.Run("FindFiles/Status", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for i, st := range []sluice.FileStatus{sluice.FileStatusPending, sluice.FileStatusProcessed, sluice.FileStatusError, sluice.FileStatusProcessed} {
			f := newFile(fmt.Sprintf("file-%d", i+1), int64(1000*(i+1)))
			f.Status = st
			MustCreateFile(t, s, f)
		}
		for _, tt := range []struct {
			filter sluice.FileFilter
			want   []string
		}{
			{sluice.FileFilter{Status: sluice.FileStatusProcessed}, []string{"file-4", "file-2"}},
			{sluice.FileFilter{Status: sluice.FileStatusPending}, []string{"file-1"}},
			{sluice.FileFilter{Status: sluice.FileStatusError, Purpose: sluice.PurposeBatchOutput}, []string{}},
		} {
			files, _, err := s.FindFiles(t.Context(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fileIDs(files)); diff != "" {
				t.Errorf("%+v: ids mismatch (-want +got):\n%s", tt.filter, diff)
			}
		}
	})

	t.Run("FindFiles/Limit", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustFiles(t, s)
		for _, tt := range []struct {
			filter   sluice.FileFilter
			want     []string
			wantMore bool
		}{
			{sluice.FileFilter{Limit: 2}, []string{"file-3", "file-2"}, true},
			{sluice.FileFilter{Limit: 3}, []string{"file-3", "file-2", "file-1"}, false},
			{sluice.FileFilter{Limit: 4}, []string{"file-3", "file-2", "file-1"}, false},
			{sluice.FileFilter{Limit: 2, Asc: true}, []string{"file-1", "file-2"}, true},
		} {
			files, more, err := s.FindFiles(t.Context(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fileIDs(files)); diff != "" {
				t.Errorf("%+v: ids mismatch (-want +got):\n%s", tt.filter, diff)
			}
			if more != tt.wantMore {
				t.Errorf("%+v: got more %v, want %v", tt.filter, more, tt.wantMore)
			}
		}
	})

	t.Run("FindFiles/After", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustFiles(t, s)
		for _, tt := range []struct {
			filter   sluice.FileFilter
			want     []string
			wantMore bool
		}{
			{sluice.FileFilter{After: "file-3", Limit: 1}, []string{"file-2"}, true},
			{sluice.FileFilter{After: "file-2", Limit: 1}, []string{"file-1"}, false},
			{sluice.FileFilter{After: "file-1"}, []string{}, false},
			{sluice.FileFilter{After: "file-1", Asc: true, Limit: 1}, []string{"file-2"}, true},
			{sluice.FileFilter{After: "file-2", Asc: true, Limit: 1}, []string{"file-3"}, false},
			{sluice.FileFilter{After: "file-3", Asc: true}, []string{}, false},
		} {
			files, more, err := s.FindFiles(t.Context(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, fileIDs(files)); diff != "" {
				t.Errorf("%+v: ids mismatch (-want +got):\n%s", tt.filter, diff)
			}
			if more != tt.wantMore {
				t.Errorf("%+v: got more %v, want %v", tt.filter, more, tt.wantMore)
			}
		}
	})

	t.Run("UpdateFile", func(t *testing.T) {
		t.Parallel()
		scan := &sluice.FileScan{
			Requests: 7,
			URL:      "/v1/chat/completions",
			Model:    "gpt-4o-mini",
			Problems: []sluice.BatchError{{Code: "invalid_json_line", Message: "Line 4 is not valid JSON.", Line: 4}},
		}
		for _, tt := range []struct {
			name   string
			update sluice.FileUpdate
			apply  func(f *sluice.File)
		}{
			{"bytes", sluice.FileUpdate{Bytes: sluice.Ptr[int64](999)}, func(f *sluice.File) { f.Bytes = 999 }},
			{"filename", sluice.FileUpdate{Filename: sluice.Ptr("renamed.jsonl")}, func(f *sluice.File) { f.Filename = "renamed.jsonl" }},
			{"purpose", sluice.FileUpdate{Purpose: sluice.Ptr(sluice.PurposeBatchOutput)}, func(f *sluice.File) { f.Purpose = sluice.PurposeBatchOutput }},
			{"status", sluice.FileUpdate{Status: sluice.Ptr(sluice.FileStatusError)}, func(f *sluice.File) { f.Status = sluice.FileStatusError }},
			{"status-details", sluice.FileUpdate{StatusDetails: sluice.Ptr("Scan failed.")}, func(f *sluice.File) { f.StatusDetails = "Scan failed." }},
			{"expires-at", sluice.FileUpdate{ExpiresAt: sluice.Ptr(at(5000))}, func(f *sluice.File) { f.ExpiresAt = sluice.Ptr(at(5000)) }},
			{"scan", sluice.FileUpdate{Scan: scan}, func(f *sluice.File) { f.Scan = scan }},
			{"nothing", sluice.FileUpdate{}, func(f *sluice.File) {}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t)
				f := newFile("file-1", 1000)
				f.Status = sluice.FileStatusPending
				MustCreateFile(t, s, f)
				want := newFile("file-1", 1000)
				want.Status = sluice.FileStatusPending
				tt.apply(want)
				got, err := s.UpdateFile(t.Context(), "file-1", tt.update)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("returned file mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(want, MustFindFileByID(t, s, "file-1")); diff != "" {
					t.Errorf("stored file mismatch (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("UpdateFile/ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		_, err := s.UpdateFile(t.Context(), "file-missing", sluice.FileUpdate{Filename: sluice.Ptr("x.jsonl")})
		wantKind(t, err, sluice.KindNotFound)
	})

	t.Run("DeleteFile", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustFiles(t, s)
		if err := s.DeleteFile(t.Context(), "file-2"); err != nil {
			t.Fatal(err)
		}
		_, err := s.FindFileByID(t.Context(), "file-2")
		wantKind(t, err, sluice.KindNotFound)
		files, _, err := s.FindFiles(t.Context(), sluice.FileFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"file-3", "file-1"}, fileIDs(files)); diff != "" {
			t.Errorf("ids mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("DeleteFile/ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		wantKind(t, s.DeleteFile(t.Context(), "file-missing"), sluice.KindNotFound)
	})

	t.Run("DeleteFile/ErrConflict", func(t *testing.T) {
		t.Parallel()
		for _, status := range []sluice.Status{sluice.StatusValidating, sluice.StatusInProgress, sluice.StatusFinalizing, sluice.StatusCancelling} {
			t.Run(string(status), func(t *testing.T) {
				t.Parallel()
				s := setup(t)
				want := newFile("file-1", 1000)
				MustCreateFile(t, s, want)
				MustCreateBatch(t, s, newBatch("batch-1", "file-1", status, 2000))
				wantKind(t, s.DeleteFile(t.Context(), "file-1"), sluice.KindConflict)
				if diff := cmp.Diff(want, MustFindFileByID(t, s, "file-1")); diff != "" {
					t.Errorf("file mismatch (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("DeleteFile/TerminalBatch", func(t *testing.T) {
		t.Parallel()
		for _, status := range []sluice.Status{sluice.StatusCompleted, sluice.StatusFailed, sluice.StatusCancelled, sluice.StatusExpired} {
			t.Run(string(status), func(t *testing.T) {
				t.Parallel()
				s := setup(t)
				MustCreateFile(t, s, newFile("file-1", 1000))
				MustCreateBatch(t, s, newBatch("batch-1", "file-1", status, 2000))
				if err := s.DeleteFile(t.Context(), "file-1"); err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				_, err := s.FindFileByID(t.Context(), "file-1")
				wantKind(t, err, sluice.KindNotFound)
			})
		}
	})
}

func runBatches(t *testing.T, setup func(t *testing.T) sluice.Store) {
	t.Run("CreateBatch/RoundTrip/Full", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		want := &sluice.Batch{
			ID:               "batch-1",
			Endpoint:         "/v1/chat/completions",
			InputFileID:      "file-in",
			CompletionWindow: sluice.CompletionWindow,
			Status:           sluice.StatusCancelled,
			Deployment:       "gpt-4o-mini",
			OutputFileID:     "file-out",
			ErrorFileID:      "file-err",
			Errors: []sluice.BatchError{
				{Code: "invalid_json_line", Message: "Line 3 is not valid JSON.", Line: 3},
				{Code: "token_limit_exceeded", Message: "Too many tokens.", Param: "body"},
			},
			Metadata:           map[string]string{"project": "eval", "run": "7"},
			RequestCounts:      sluice.RequestCounts{Total: 10, Completed: 6, Failed: 2},
			OutputExpiresAfter: sluice.MaxFileExpiry,
			CreatedAt:          at(1000),
			InProgressAt:       sluice.Ptr(at(1001)),
			ExpiresAt:          sluice.Ptr(at(1000 + 24*3600)),
			FinalizingAt:       sluice.Ptr(at(1003)),
			CompletedAt:        sluice.Ptr(at(1004)),
			FailedAt:           sluice.Ptr(at(1005)),
			ExpiredAt:          sluice.Ptr(at(1006)),
			CancellingAt:       sluice.Ptr(at(1007)),
			CancelledAt:        sluice.Ptr(at(1008)),
		}
		MustCreateBatch(t, s, want)
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1")); diff != "" {
			t.Errorf("batch mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("CreateBatch/RoundTrip/Minimal", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		want := newBatch("batch-1", "file-in", sluice.StatusValidating, 1000)
		MustCreateBatch(t, s, want)
		got := MustFindBatchByID(t, s, "batch-1")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("batch mismatch (-want +got):\n%s", diff)
		}
		if got.Errors != nil || got.Metadata != nil {
			t.Errorf("got errors %#v, metadata %#v; want nil, nil", got.Errors, got.Metadata)
		}
	})

	t.Run("CreateBatch/ErrConflict", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		want := newBatch("batch-1", "file-in", sluice.StatusValidating, 1000)
		MustCreateBatch(t, s, want)
		wantKind(t, s.CreateBatch(t.Context(), newBatch("batch-1", "file-other", sluice.StatusInProgress, 2000)), sluice.KindConflict)
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1")); diff != "" {
			t.Errorf("batch changed by a conflicting create (-want +got):\n%s", diff)
		}
	})

	t.Run("FindBatchByID/ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		_, err := s.FindBatchByID(t.Context(), "batch-missing")
		wantKind(t, err, sluice.KindNotFound)
	})

	// mustBatches creates batch-1 … batch-4 in that order, oldest first, with these statuses.
	statuses := []sluice.Status{sluice.StatusValidating, sluice.StatusInProgress, sluice.StatusCompleted, sluice.StatusInProgress}
	mustBatches := func(t *testing.T, s sluice.Store) {
		t.Helper()
		for i, st := range statuses {
			MustCreateBatch(t, s, newBatch(fmt.Sprintf("batch-%d", i+1), "file-in", st, int64(1000*(i+1))))
		}
	}

	t.Run("FindBatches/NewestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustBatches(t, s)
		batches, more, err := s.FindBatches(t.Context(), sluice.BatchFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"batch-4", "batch-3", "batch-2", "batch-1"}, batchIDs(batches)); diff != "" {
			t.Errorf("ids mismatch (-want +got):\n%s", diff)
		}
		if more {
			t.Errorf("got more %v, want false", more)
		}
		if diff := cmp.Diff(newBatch("batch-4", "file-in", sluice.StatusInProgress, 4000), batches[0]); diff != "" {
			t.Errorf("batch mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("FindBatches/Status", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustBatches(t, s)
		for _, tt := range []struct {
			status []sluice.Status
			want   []string
		}{
			{[]sluice.Status{sluice.StatusInProgress}, []string{"batch-4", "batch-2"}},
			{[]sluice.Status{sluice.StatusValidating, sluice.StatusCompleted}, []string{"batch-3", "batch-1"}},
			{[]sluice.Status{sluice.StatusCompleted, sluice.StatusInProgress, sluice.StatusValidating}, []string{"batch-4", "batch-3", "batch-2", "batch-1"}},
			{[]sluice.Status{sluice.StatusCancelled}, []string{}},
		} {
			batches, _, err := s.FindBatches(t.Context(), sluice.BatchFilter{Status: tt.status})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, batchIDs(batches)); diff != "" {
				t.Errorf("status %v: ids mismatch (-want +got):\n%s", tt.status, diff)
			}
		}
	})

	t.Run("FindBatches/Limit", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustBatches(t, s)
		for _, tt := range []struct {
			filter   sluice.BatchFilter
			want     []string
			wantMore bool
		}{
			{sluice.BatchFilter{Limit: 3}, []string{"batch-4", "batch-3", "batch-2"}, true},
			{sluice.BatchFilter{Limit: 4}, []string{"batch-4", "batch-3", "batch-2", "batch-1"}, false},
			{sluice.BatchFilter{Limit: 1, Status: []sluice.Status{sluice.StatusInProgress}}, []string{"batch-4"}, true},
			{sluice.BatchFilter{Limit: 2, Status: []sluice.Status{sluice.StatusInProgress}}, []string{"batch-4", "batch-2"}, false},
		} {
			batches, more, err := s.FindBatches(t.Context(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, batchIDs(batches)); diff != "" {
				t.Errorf("%+v: ids mismatch (-want +got):\n%s", tt.filter, diff)
			}
			if more != tt.wantMore {
				t.Errorf("%+v: got more %v, want %v", tt.filter, more, tt.wantMore)
			}
		}
	})

	t.Run("FindBatches/After", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		mustBatches(t, s)
		for _, tt := range []struct {
			filter   sluice.BatchFilter
			want     []string
			wantMore bool
		}{
			{sluice.BatchFilter{After: "batch-4", Limit: 2}, []string{"batch-3", "batch-2"}, true},
			{sluice.BatchFilter{After: "batch-2", Limit: 2}, []string{"batch-1"}, false},
			{sluice.BatchFilter{After: "batch-1"}, []string{}, false},
			{sluice.BatchFilter{After: "batch-4", Status: []sluice.Status{sluice.StatusInProgress}}, []string{"batch-2"}, false},
		} {
			batches, more, err := s.FindBatches(t.Context(), tt.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, batchIDs(batches)); diff != "" {
				t.Errorf("%+v: ids mismatch (-want +got):\n%s", tt.filter, diff)
			}
			if more != tt.wantMore {
				t.Errorf("%+v: got more %v, want %v", tt.filter, more, tt.wantMore)
			}
		}
	})

	t.Run("UpdateBatch", func(t *testing.T) {
		t.Parallel()
		errs := []sluice.BatchError{{Code: "invalid_request", Message: "Line 1 names no model.", Param: "body.model", Line: 1}}
		for _, tt := range []struct {
			name   string
			update sluice.BatchUpdate
			apply  func(b *sluice.Batch)
		}{
			{"status", sluice.BatchUpdate{Status: sluice.Ptr(sluice.StatusInProgress)}, func(b *sluice.Batch) { b.Status = sluice.StatusInProgress }},
			{"deployment", sluice.BatchUpdate{Deployment: sluice.Ptr("gpt-4o-mini")}, func(b *sluice.Batch) { b.Deployment = "gpt-4o-mini" }},
			{"output-file-id", sluice.BatchUpdate{OutputFileID: sluice.Ptr("file-out")}, func(b *sluice.Batch) { b.OutputFileID = "file-out" }},
			{"error-file-id", sluice.BatchUpdate{ErrorFileID: sluice.Ptr("file-err")}, func(b *sluice.Batch) { b.ErrorFileID = "file-err" }},
			{"errors", sluice.BatchUpdate{Errors: errs}, func(b *sluice.Batch) { b.Errors = errs }},
			{"total", sluice.BatchUpdate{Total: sluice.Ptr(42)}, func(b *sluice.Batch) { b.RequestCounts.Total = 42 }},
			{"in-progress-at", sluice.BatchUpdate{InProgressAt: sluice.Ptr(at(2001))}, func(b *sluice.Batch) { b.InProgressAt = sluice.Ptr(at(2001)) }},
			{"finalizing-at", sluice.BatchUpdate{FinalizingAt: sluice.Ptr(at(2002))}, func(b *sluice.Batch) { b.FinalizingAt = sluice.Ptr(at(2002)) }},
			{"completed-at", sluice.BatchUpdate{CompletedAt: sluice.Ptr(at(2003))}, func(b *sluice.Batch) { b.CompletedAt = sluice.Ptr(at(2003)) }},
			{"failed-at", sluice.BatchUpdate{FailedAt: sluice.Ptr(at(2004))}, func(b *sluice.Batch) { b.FailedAt = sluice.Ptr(at(2004)) }},
			{"expired-at", sluice.BatchUpdate{ExpiredAt: sluice.Ptr(at(2005))}, func(b *sluice.Batch) { b.ExpiredAt = sluice.Ptr(at(2005)) }},
			{"cancelling-at", sluice.BatchUpdate{CancellingAt: sluice.Ptr(at(2006))}, func(b *sluice.Batch) { b.CancellingAt = sluice.Ptr(at(2006)) }},
			{"cancelled-at", sluice.BatchUpdate{CancelledAt: sluice.Ptr(at(2007))}, func(b *sluice.Batch) { b.CancelledAt = sluice.Ptr(at(2007)) }},
			{"nothing", sluice.BatchUpdate{}, func(b *sluice.Batch) {}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				s := setup(t)
				base := func() *sluice.Batch {
					b := newBatch("batch-1", "file-in", sluice.StatusValidating, 1000)
					b.Metadata = map[string]string{"k": "v"}
					b.ExpiresAt = sluice.Ptr(at(1000 + 24*3600))
					return b
				}
				MustCreateBatch(t, s, base())
				want := base()
				tt.apply(want)
				got, err := s.UpdateBatch(t.Context(), "batch-1", tt.update)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("returned batch mismatch (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1")); diff != "" {
					t.Errorf("stored batch mismatch (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("UpdateBatch/IfStatus", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000))
		got, err := s.UpdateBatch(t.Context(), "batch-1", sluice.BatchUpdate{
			IfStatus:     []sluice.Status{sluice.StatusValidating, sluice.StatusInProgress},
			Status:       sluice.Ptr(sluice.StatusCancelling),
			CancellingAt: sluice.Ptr(at(2000)),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := newBatch("batch-1", "file-in", sluice.StatusCancelling, 1000)
		want.CancellingAt = sluice.Ptr(at(2000))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("returned batch mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1")); diff != "" {
			t.Errorf("stored batch mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("UpdateBatch/IfStatus/ErrConflict", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		want := newBatch("batch-1", "file-in", sluice.StatusCompleted, 1000)
		MustCreateBatch(t, s, want)
		_, err := s.UpdateBatch(t.Context(), "batch-1", sluice.BatchUpdate{
			IfStatus:     []sluice.Status{sluice.StatusValidating, sluice.StatusInProgress},
			Status:       sluice.Ptr(sluice.StatusCancelling),
			Deployment:   sluice.Ptr("gpt-4o-mini"),
			Total:        sluice.Ptr(5),
			CancellingAt: sluice.Ptr(at(2000)),
		})
		wantKind(t, err, sluice.KindConflict)
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1")); diff != "" {
			t.Errorf("batch changed by a conflicting update (-want +got):\n%s", diff)
		}
	})

	t.Run("UpdateBatch/ErrNotFound", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		_, err := s.UpdateBatch(t.Context(), "batch-missing", sluice.BatchUpdate{Status: sluice.Ptr(sluice.StatusFailed)})
		wantKind(t, err, sluice.KindNotFound)
		_, err = s.UpdateBatch(t.Context(), "batch-missing", sluice.BatchUpdate{
			IfStatus: []sluice.Status{sluice.StatusValidating},
			Status:   sluice.Ptr(sluice.StatusFailed),
		})
		wantKind(t, err, sluice.KindNotFound)
	})
}

func runFinishBatch(t *testing.T, setup func(t *testing.T) sluice.Store) {
	resultFiles := func() []*sluice.File {
		out := newFile("file-out", 3000)
		out.Purpose = sluice.PurposeBatchOutput
		out.ExpiresAt = sluice.Ptr(at(3000 + sluice.MinFileExpiry))
		errs := newFile("file-err", 3000)
		errs.Purpose = sluice.PurposeBatchOutput
		errs.Bytes = 7
		return []*sluice.File{out, errs}
	}

	t.Run("FinishBatch", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		b := newBatch("batch-1", "file-in", sluice.StatusFinalizing, 1000)
		b.FinalizingAt = sluice.Ptr(at(2000))
		MustCreateBatch(t, s, b)
		got, err := s.FinishBatch(t.Context(), "batch-1", resultFiles(), sluice.BatchUpdate{
			IfStatus:     []sluice.Status{sluice.StatusFinalizing},
			Status:       sluice.Ptr(sluice.StatusCompleted),
			OutputFileID: sluice.Ptr("file-out"),
			ErrorFileID:  sluice.Ptr("file-err"),
			CompletedAt:  sluice.Ptr(at(3000)),
		})
		if err != nil {
			t.Fatal(err)
		}
		want := newBatch("batch-1", "file-in", sluice.StatusCompleted, 1000)
		want.FinalizingAt = sluice.Ptr(at(2000))
		want.OutputFileID, want.ErrorFileID = "file-out", "file-err"
		want.CompletedAt = sluice.Ptr(at(3000))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("returned batch mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1")); diff != "" {
			t.Errorf("stored batch mismatch (-want +got):\n%s", diff)
		}
		for _, f := range resultFiles() {
			if diff := cmp.Diff(f, MustFindFileByID(t, s, f.ID)); diff != "" {
				t.Errorf("file %s mismatch (-want +got):\n%s", f.ID, diff)
			}
		}
	})

	t.Run("FinishBatch/ErrConflict", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		want := newBatch("batch-1", "file-in", sluice.StatusCancelled, 1000)
		MustCreateBatch(t, s, want)
		_, err := s.FinishBatch(t.Context(), "batch-1", resultFiles(), sluice.BatchUpdate{
			IfStatus:     []sluice.Status{sluice.StatusFinalizing},
			Status:       sluice.Ptr(sluice.StatusCompleted),
			OutputFileID: sluice.Ptr("file-out"),
			ErrorFileID:  sluice.Ptr("file-err"),
			CompletedAt:  sluice.Ptr(at(3000)),
		})
		wantKind(t, err, sluice.KindConflict)
		for _, f := range resultFiles() {
			_, err := s.FindFileByID(t.Context(), f.ID)
			wantKind(t, err, sluice.KindNotFound)
		}
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1")); diff != "" {
			t.Errorf("batch changed by a conflicting finish (-want +got):\n%s", diff)
		}
	})
}

func runRequests(t *testing.T, setup func(t *testing.T) sluice.Store) {
	// Adding the same lines again changes nothing: no line or chunk appears twice, the
	// rows keep their first values, and the chunks still finish when every line has a
	// result.
	t.Run("AddRequests/Idempotent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		b := newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000)
		b.RequestCounts.Total = twoChunks
		MustCreateBatch(t, s, b)
		reqs := newRequests("batch-1", 1, twoChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		again := newRequests("batch-1", 1, twoChunks)
		for i := range again {
			again[i].CustomID += "-again"
			again[i].Offset += 7
			again[i].Length += 7
		}
		MustAddRequests(t, s, "batch-1", again)
		if diff := requestsDiff(reqs, MustClaimRequests(t, s, "batch-1", "owner-a", 2*sluice.ChunkLines, future())); diff != "" {
			t.Errorf("claimed requests mismatch (-want +got):\n%s", diff)
		}
		if got := MustClaimRequests(t, s, "batch-1", "owner-b", 2*sluice.ChunkLines, future()); len(got) != 0 {
			t.Errorf("owner-b: got lines %v, want none", lines(got))
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 2 {
			t.Errorf("got %d leased, want 2", got)
		}
		results := resultsFor(reqs)
		if got := MustCommitResults(t, s, "owner-a", results); got != twoChunks {
			t.Errorf("got %d stored, want %d", got, twoChunks)
		}
		want := countsOf(results)
		want.Total = twoChunks
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		// Both chunks are done, so neither is leased any more.
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("after every line has a result: got %d leased, want 0", got)
		}
	})

	// A claim leases a whole chunk however few lines it asks for, and returns every line
	// of the chunk, in line order, with its chunk set.
	for _, n := range []int{0, 1, 10, sluice.ChunkLines} {
		t.Run(fmt.Sprintf("ClaimRequests/WholeChunk/n=%d", n), func(t *testing.T) {
			t.Parallel()
			s := setup(t)
			reqs := newRequests("batch-1", 1, threeChunks)
			MustAddRequests(t, s, "batch-1", reqs)
			if diff := requestsDiff(inChunks(reqs, 0), MustClaimRequests(t, s, "batch-1", "owner-a", n, future())); diff != "" {
				t.Errorf("claimed requests mismatch (-want +got):\n%s", diff)
			}
			if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 1 {
				t.Errorf("got %d leased, want 1", got)
			}
		})
	}

	t.Run("ClaimRequests/SeveralChunks", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		reqs := newRequests("batch-1", 1, threeChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		if diff := requestsDiff(inChunks(reqs, 0, 1), MustClaimRequests(t, s, "batch-1", "owner-a", 2*sluice.ChunkLines, future())); diff != "" {
			t.Errorf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs, 2), MustClaimRequests(t, s, "batch-1", "owner-b", 2*sluice.ChunkLines, future())); diff != "" {
			t.Errorf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 3 {
			t.Errorf("got %d leased, want 3", got)
		}
	})

	// Chunks are claimed lowest first, whatever order their rows were added in.
	t.Run("ClaimRequests/LowestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		reqs := newRequests("batch-1", 1, threeChunks)
		for _, c := range []int{2, 0, 1} {
			chunk := inChunks(reqs, c)
			slices.Reverse(chunk)
			MustAddRequests(t, s, "batch-1", chunk)
		}
		for c, owner := range []string{"owner-a", "owner-b", "owner-c"} {
			if diff := requestsDiff(inChunks(reqs, c), MustClaimRequests(t, s, "batch-1", owner, 1, future())); diff != "" {
				t.Errorf("%s claim mismatch (-want +got):\n%s", owner, diff)
			}
		}
	})

	// A chunk whose lease is live is claimed by nobody, not even its owner.
	t.Run("ClaimRequests/NoDoubleClaim", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		reqs := newRequests("batch-1", 1, twoChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		if diff := requestsDiff(inChunks(reqs, 0), MustClaimRequests(t, s, "batch-1", "owner-a", 10, future())); diff != "" {
			t.Errorf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs, 1), MustClaimRequests(t, s, "batch-1", "owner-b", 10, future())); diff != "" {
			t.Errorf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		for _, owner := range []string{"owner-a", "owner-b", "owner-c"} {
			if got := MustClaimRequests(t, s, "batch-1", owner, 2*sluice.ChunkLines, future()); len(got) != 0 {
				t.Errorf("%s: got lines %v, want none", owner, lines(got))
			}
		}
	})

	// A chunk whose lease ran out can be claimed by another owner, which gets only the
	// lines that have no result yet.
	t.Run("ClaimRequests/ExpiredLease", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000))
		reqs := newRequests("batch-1", 1, twoChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		chunk0 := inChunks(reqs, 0)
		if diff := requestsDiff(chunk0, MustClaimRequests(t, s, "batch-1", "owner-a", 10, past())); diff != "" {
			t.Fatalf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustCommitResults(t, s, "owner-a", resultsFor(chunk0[:3])); got != 3 {
			t.Fatalf("owner-a: got %d stored, want 3", got)
		}
		if diff := requestsDiff(chunk0[3:], MustClaimRequests(t, s, "batch-1", "owner-b", 10, future())); diff != "" {
			t.Errorf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs, 1), MustClaimRequests(t, s, "batch-1", "owner-c", 10, future())); diff != "" {
			t.Errorf("owner-c claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustClaimRequests(t, s, "batch-1", "owner-d", 2*sluice.ChunkLines, future()); len(got) != 0 {
			t.Errorf("owner-d: got lines %v, want none", lines(got))
		}
	})

	// Chunks whose lease ran out and pending chunks are claimable alike, lowest first,
	// in the same claim; a chunk whose lease is live is skipped.
	t.Run("ClaimRequests/ExpiredLowestFirst", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		reqs := newRequests("batch-1", 1, threeChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		if diff := requestsDiff(inChunks(reqs, 0), MustClaimRequests(t, s, "batch-1", "owner-a", 1, past())); diff != "" {
			t.Fatalf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		// Chunk 0's lease ran out, so it is claimable again and comes first.
		if diff := requestsDiff(inChunks(reqs, 0), MustClaimRequests(t, s, "batch-1", "owner-b", 1, future())); diff != "" {
			t.Fatalf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs, 1), MustClaimRequests(t, s, "batch-1", "owner-c", 1, past())); diff != "" {
			t.Fatalf("owner-c claim mismatch (-want +got):\n%s", diff)
		}
		// Chunk 0 is live with owner-b, chunk 1 ran out, chunk 2 is pending.
		if diff := requestsDiff(inChunks(reqs, 1, 2), MustClaimRequests(t, s, "batch-1", "owner-d", 2*sluice.ChunkLines, future())); diff != "" {
			t.Errorf("owner-d claim mismatch (-want +got):\n%s", diff)
		}
	})

	// A claim whose lease is already over at once still returns each line once.
	t.Run("ClaimRequests/PastUntilNoDuplicates", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		reqs := newRequests("batch-1", 1, twoChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		if diff := requestsDiff(reqs, MustClaimRequests(t, s, "batch-1", "owner-a", 2*sluice.ChunkLines, past())); diff != "" {
			t.Errorf("claimed requests mismatch (-want +got):\n%s", diff)
		}
	})

	// Chunks of different batches share their numbers but never their leases.
	t.Run("ClaimRequests/OtherBatch", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		reqs1, reqs2 := newRequests("batch-1", 1, twoChunks), newRequests("batch-2", 1, twoChunks)
		MustAddRequests(t, s, "batch-1", reqs1)
		MustAddRequests(t, s, "batch-2", reqs2)
		if diff := requestsDiff(inChunks(reqs1, 0), MustClaimRequests(t, s, "batch-1", "owner-a", 1, future())); diff != "" {
			t.Errorf("batch-1 claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs2, 0), MustClaimRequests(t, s, "batch-2", "owner-a", 1, future())); diff != "" {
			t.Errorf("batch-2 claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs1, 1), MustClaimRequests(t, s, "batch-1", "owner-b", 2*sluice.ChunkLines, future())); diff != "" {
			t.Errorf("batch-1 second claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs2, 1), MustClaimRequests(t, s, "batch-2", "owner-b", 2*sluice.ChunkLines, future())); diff != "" {
			t.Errorf("batch-2 second claim mismatch (-want +got):\n%s", diff)
		}
		for _, id := range []string{"batch-1", "batch-2", "batch-3"} {
			if got := MustClaimRequests(t, s, id, "owner-c", 2*sluice.ChunkLines, future()); len(got) != 0 {
				t.Errorf("%s: got lines %v, want none", id, lines(got))
			}
		}
	})

	t.Run("ExtendLeases", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000))
		MustCreateBatch(t, s, newBatch("batch-2", "file-in", sluice.StatusInProgress, 1000))
		reqs := newRequests("batch-1", 1, threeChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		MustAddRequests(t, s, "batch-2", newRequests("batch-2", 1, oneChunk))
		MustAddRequests(t, s, "batch-3", newRequests("batch-3", 1, oneChunk))
		if got := MustClaimRequests(t, s, "batch-1", "owner-a", 1, past()); len(got) != sluice.ChunkLines || got[0].Line != 1 {
			t.Fatalf("owner-a: got lines %v, want chunk 0", lines(got))
		}
		if got := MustClaimRequests(t, s, "batch-2", "owner-a", 1, past()); len(got) != oneChunk {
			t.Fatalf("owner-a on batch-2: got lines %v, want [1 2 3]", lines(got))
		}
		if got := MustClaimRequests(t, s, "batch-3", "owner-x", 1, past()); len(got) != oneChunk {
			t.Fatalf("owner-x on batch-3: got lines %v, want [1 2 3]", lines(got))
		}
		MustExtendLeases(t, s, "owner-a", future())
		MustExtendLeases(t, s, "owner-z", future()) // holds nothing
		// Every chunk of owner-a is live again, in every batch; owner-x's is not.
		for id, want := range map[string]int{"batch-1": 1, "batch-2": 1, "batch-3": 0} {
			if got := MustCountLeased(t, s, id, time.Now()); got != want {
				t.Errorf("%s after extending: got %d leased, want %d", id, got, want)
			}
		}
		// owner-a's chunk 0 is live again, so owner-b gets chunk 1, and lets it run out.
		if diff := requestsDiff(inChunks(reqs, 1), MustClaimRequests(t, s, "batch-1", "owner-b", 1, past())); diff != "" {
			t.Fatalf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs, 1, 2), MustClaimRequests(t, s, "batch-1", "owner-c", 2*sluice.ChunkLines, future())); diff != "" {
			t.Errorf("owner-c claim mismatch (-want +got):\n%s", diff)
		}
		// Extending does not take back a chunk another owner claimed since.
		MustExtendLeases(t, s, "owner-b", future())
		if got := MustCommitResults(t, s, "owner-b", resultsFor(inChunks(reqs, 1)[:1])); got != 0 {
			t.Errorf("owner-b commit: got %d stored, want 0", got)
		}
		if got := MustCommitResults(t, s, "owner-c", resultsFor(inChunks(reqs, 1)[:1])); got != 1 {
			t.Errorf("owner-c commit: got %d stored, want 1", got)
		}
		if got := MustCommitResults(t, s, "owner-a", resultsFor(reqs[:1])); got != 1 {
			t.Errorf("owner-a commit: got %d stored, want 1", got)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 3 {
			t.Errorf("got %d leased, want 3", got)
		}
	})

	t.Run("ReleaseRequests", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000))
		reqs := newRequests("batch-1", 1, twoChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		chunk0 := inChunks(reqs, 0)
		if diff := requestsDiff(chunk0, MustClaimRequests(t, s, "batch-1", "owner-a", 1, future())); diff != "" {
			t.Fatalf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustCommitResults(t, s, "owner-a", resultsFor(chunk0[:3])); got != 3 {
			t.Fatalf("owner-a: got %d stored, want 3", got)
		}
		MustReleaseRequests(t, s, "owner-b", chunk0[3:])
		// The wrong owner released nothing: chunk 0 is still owner-a's.
		if diff := requestsDiff(inChunks(reqs, 1), MustClaimRequests(t, s, "batch-1", "owner-c", 1, future())); diff != "" {
			t.Errorf("after release by the wrong owner: owner-c claim mismatch (-want +got):\n%s", diff)
		}
		if got := MustCommitResults(t, s, "owner-a", resultsFor(chunk0[3:4])); got != 1 {
			t.Errorf("after release by the wrong owner: owner-a got %d stored, want 1", got)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 2 {
			t.Errorf("after release by the wrong owner: got %d leased, want 2", got)
		}
		// One line of a chunk releases the whole chunk.
		MustReleaseRequests(t, s, "owner-a", chunk0[4:5])
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 1 {
			t.Errorf("after release: got %d leased, want 1", got)
		}
		if got := MustCommitResults(t, s, "owner-a", resultsFor(chunk0[5:6])); got != 0 {
			t.Errorf("after release: owner-a got %d stored, want 0", got)
		}
		if diff := requestsDiff(chunk0[4:], MustClaimRequests(t, s, "batch-1", "owner-d", 1, future())); diff != "" {
			t.Errorf("owner-d claim mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("CommitResults", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		b := newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000)
		b.RequestCounts.Total = 3
		MustCreateBatch(t, s, b)
		MustAddRequests(t, s, "batch-1", newRequests("batch-1", 1, 3))
		MustClaimRequests(t, s, "batch-1", "owner-a", 3, future())
		results := []sluice.Result{
			{BatchID: "batch-1", Line: 1, Succeeded: true, Output: []byte(`{"custom_id":"req-1"}`)},
			{BatchID: "batch-1", Line: 2, Succeeded: false, Output: []byte(`{"custom_id":"req-2","error":{}}`)},
			{BatchID: "batch-1", Line: 3, Succeeded: true, Output: []byte(`{"custom_id":"req-3"}`)},
		}
		if got := MustCommitResults(t, s, "owner-a", results); got != 3 {
			t.Errorf("got %d stored, want 3", got)
		}
		want := sluice.RequestCounts{Total: 3, Completed: 2, Failed: 1}
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		want2 := []sluice.Result{results[0], results[2], results[1]} // successes, then failures
		if diff := cmp.Diff(want2, MustResults(t, s, "batch-1")); diff != "" {
			t.Errorf("results mismatch (-want +got):\n%s", diff)
		}
	})

	// Results of an owner whose chunk another owner claimed after its lease ran out are
	// dropped and not counted; results of its other chunks in the same call are stored.
	t.Run("CommitResults/LostLease", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000))
		reqs := newRequests("batch-1", 1, twoChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		MustClaimRequests(t, s, "batch-1", "owner-a", 1, past())
		if diff := requestsDiff(inChunks(reqs, 0), MustClaimRequests(t, s, "batch-1", "owner-b", 1, future())); diff != "" {
			t.Fatalf("owner-b claim mismatch (-want +got):\n%s", diff)
		}
		if diff := requestsDiff(inChunks(reqs, 1), MustClaimRequests(t, s, "batch-1", "owner-a", 1, future())); diff != "" {
			t.Fatalf("owner-a claim mismatch (-want +got):\n%s", diff)
		}
		lost := []sluice.Result{
			newResult("batch-1", 1, true, `{"from":"a"}`),
			newResult("batch-1", 2, false, `{"from":"a"}`),
		}
		held := newResult("batch-1", sluice.ChunkLines+1, false, `{"from":"a"}`)
		if got := MustCommitResults(t, s, "owner-a", append(lost, held)); got != 1 {
			t.Errorf("owner-a: got %d stored, want 1", got)
		}
		if diff := cmp.Diff(sluice.RequestCounts{Failed: 1}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("after owner-a: request counts mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]sluice.Result{held}, MustResults(t, s, "batch-1"), ignoreChunk); diff != "" {
			t.Errorf("after owner-a: results mismatch (-want +got):\n%s", diff)
		}
		kept := newResult("batch-1", 1, true, `{"from":"b"}`)
		if got := MustCommitResults(t, s, "owner-b", []sluice.Result{kept}); got != 1 {
			t.Errorf("owner-b: got %d stored, want 1", got)
		}
		if diff := cmp.Diff(sluice.RequestCounts{Completed: 1, Failed: 1}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]sluice.Result{kept, held}, MustResults(t, s, "batch-1"), ignoreChunk); diff != "" {
			t.Errorf("results mismatch (-want +got):\n%s", diff)
		}
	})

	// A line that has a result keeps it: another result for it, in a later call or in
	// the same one, is dropped and not counted, and the chunk still finishes.
	t.Run("CommitResults/Duplicate", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		b := newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000)
		b.RequestCounts.Total = oneChunk
		MustCreateBatch(t, s, b)
		MustAddRequests(t, s, "batch-1", newRequests("batch-1", 1, oneChunk))
		MustClaimRequests(t, s, "batch-1", "owner-a", 1, future())
		first := newResult("batch-1", 1, true, `{"first":true}`)
		if got := MustCommitResults(t, s, "owner-a", []sluice.Result{first}); got != 1 {
			t.Errorf("first commit: got %d stored, want 1", got)
		}
		if got := MustCommitResults(t, s, "owner-a", []sluice.Result{newResult("batch-1", 1, false, `{"first":false}`)}); got != 0 {
			t.Errorf("second commit of line 1: got %d stored, want 0", got)
		}
		twice := newResult("batch-1", 2, true, `{"line":2}`)
		if got := MustCommitResults(t, s, "owner-a", []sluice.Result{twice, twice}); got != 1 {
			t.Errorf("line 2 twice in one commit: got %d stored, want 1", got)
		}
		if diff := cmp.Diff(sluice.RequestCounts{Total: oneChunk, Completed: 2}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 1 {
			t.Errorf("before the last line: got %d leased, want 1", got)
		}
		last := newResult("batch-1", 3, false, `{"line":3}`)
		if got := MustCommitResults(t, s, "owner-a", []sluice.Result{last}); got != 1 {
			t.Errorf("line 3: got %d stored, want 1", got)
		}
		if diff := cmp.Diff(sluice.RequestCounts{Total: oneChunk, Completed: 2, Failed: 1}, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]sluice.Result{first, twice, last}, MustResults(t, s, "batch-1"), ignoreChunk); diff != "" {
			t.Errorf("results mismatch (-want +got):\n%s", diff)
		}
		// Every line has a result, so the chunk is done: not leased, not claimable.
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("after the last line: got %d leased, want 0", got)
		}
		if got := MustClaimRequests(t, s, "batch-1", "owner-b", 1, future()); len(got) != 0 {
			t.Errorf("owner-b: got lines %v, want none", lines(got))
		}
	})

	// A chunk whose every line has a result is done: claims skip it even though its
	// lease ran out, and the batch counts every line once.
	t.Run("CommitResults/NeverClaimedAgain", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		b := newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000)
		b.RequestCounts.Total = threeChunks
		MustCreateBatch(t, s, b)
		reqs := newRequests("batch-1", 1, threeChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		for c, owner := range []string{"owner-a", "owner-b", "owner-c"} {
			chunk := inChunks(reqs, c)
			if diff := requestsDiff(chunk, MustClaimRequests(t, s, "batch-1", owner, 1, past())); diff != "" {
				t.Fatalf("%s claim mismatch (-want +got):\n%s", owner, diff)
			}
			if got := MustCommitResults(t, s, owner, resultsFor(chunk)); got != len(chunk) {
				t.Fatalf("%s: got %d stored, want %d", owner, got, len(chunk))
			}
		}
		for _, owner := range []string{"owner-a", "owner-d"} {
			if got := MustClaimRequests(t, s, "batch-1", owner, 2*sluice.ChunkLines, future()); len(got) != 0 {
				t.Errorf("%s: got lines %v, want none", owner, lines(got))
			}
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("got %d leased, want 0", got)
		}
		// Committing a done chunk again is dropped.
		if got := MustCommitResults(t, s, "owner-a", resultsFor(inChunks(reqs, 0))); got != 0 {
			t.Errorf("second commit: got %d stored, want 0", got)
		}
		want := countsOf(resultsFor(reqs))
		want.Total = threeChunks
		if diff := cmp.Diff(want, MustFindBatchByID(t, s, "batch-1").RequestCounts); diff != "" {
			t.Errorf("request counts mismatch (-want +got):\n%s", diff)
		}
		if got := want.Completed + want.Failed; got != threeChunks {
			t.Errorf("got %d lines counted, want %d", got, threeChunks)
		}
		if got := len(MustResults(t, s, "batch-1")); got != threeChunks {
			t.Errorf("got %d results, want %d", got, threeChunks)
		}
	})

	// EachResult yields only the successes, or only the failures, of one batch, in line
	// order whatever order they were committed in.
	t.Run("EachResult", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for _, id := range []string{"batch-1", "batch-2"} {
			MustCreateBatch(t, s, newBatch(id, "file-in", sluice.StatusInProgress, 1000))
			MustAddRequests(t, s, id, newRequests(id, 1, twoChunks))
			MustClaimRequests(t, s, id, "owner-a", 2*sluice.ChunkLines, future())
		}
		committed := []sluice.Result{
			newResult("batch-1", 300, true, `{"id":"batch_req_300"}`),
			newResult("batch-1", 4, true, `{"id":"batch_req_4","custom_id":"réq-4","response":{"status_code":200}}`),
			newResult("batch-1", 257, false, `{"id":"batch_req_257","error":{"code":"timeout"}}`),
			newResult("batch-1", 1, false, `{"id":"batch_req_1","error":{"code":"server_error","message":"a \"quoted\"\tmessage"}}`),
			newResult("batch-1", 3, true, `{"id":"batch_req_3","response":{"body":{"content":"\u00e9\ud83d\ude00"}}}`),
			newResult("batch-2", 2, true, `{"id":"other"}`),
		}
		if got := MustCommitResults(t, s, "owner-a", committed); got != len(committed) {
			t.Fatalf("got %d stored, want %d", got, len(committed))
		}
		for _, tt := range []struct {
			batchID   string
			succeeded bool
			want      []sluice.Result
		}{
			{"batch-1", true, []sluice.Result{committed[4], committed[1], committed[0]}},
			{"batch-1", false, []sluice.Result{committed[3], committed[2]}},
			{"batch-2", true, committed[5:]},
			{"batch-2", false, nil},
			{"batch-3", true, nil},
		} {
			if diff := cmp.Diff(tt.want, MustEachResult(t, s, tt.batchID, tt.succeeded), ignoreChunk); diff != "" {
				t.Errorf("%s results (succeeded %t) mismatch (-want +got):\n%s", tt.batchID, tt.succeeded, diff)
			}
		}
	})

	// CountLeased counts the chunks of one batch whose lease is live at now.
	t.Run("DeleteRequests", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for _, id := range []string{"batch-1", "batch-2"} {
			MustCreateBatch(t, s, newBatch(id, "file-in", sluice.StatusInProgress, 1000))
			MustAddRequests(t, s, id, newRequests(id, 1, threeChunks))
			claimed := MustClaimRequests(t, s, id, "owner-a", 1, future())
			MustCommitResults(t, s, "owner-a", resultsFor(claimed))
		}
		if err := s.DeleteRequests(t.Context(), "batch-1"); err != nil {
			t.Fatal(err)
		}
		for _, ok := range []bool{true, false} {
			if got := MustEachResult(t, s, "batch-1", ok); len(got) != 0 {
				t.Errorf("batch-1 results (succeeded %v): got %d, want none", ok, len(got))
			}
		}
		if got := MustClaimRequests(t, s, "batch-1", "owner-b", 1000, future()); len(got) != 0 {
			t.Errorf("batch-1 claim after delete: got %d lines, want none", len(got))
		}
		if got := MustCountLeased(t, s, "batch-1", time.Now()); got != 0 {
			t.Errorf("batch-1 leased: got %d, want 0", got)
		}
		// The other batch is untouched.
		if got := len(MustEachResult(t, s, "batch-2", true)) + len(MustEachResult(t, s, "batch-2", false)); got != sluice.ChunkLines {
			t.Errorf("batch-2 results: got %d, want %d", got, sluice.ChunkLines)
		}
		if got := MustClaimRequests(t, s, "batch-2", "owner-b", 1, future()); len(got) != sluice.ChunkLines {
			t.Errorf("batch-2 claim: got %d lines, want the next chunk of %d", len(got), sluice.ChunkLines)
		}
		if err := s.DeleteRequests(t.Context(), "batch-none"); err != nil {
			t.Errorf("delete of a batch with no rows: got %v, want nil", err)
		}
	})

	t.Run("CountLeased", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		MustCreateBatch(t, s, newBatch("batch-1", "file-in", sluice.StatusInProgress, 1000))
		reqs := newRequests("batch-1", 1, threeChunks)
		MustAddRequests(t, s, "batch-1", reqs)
		MustAddRequests(t, s, "batch-2", newRequests("batch-2", 1, oneChunk))
		now := time.Now()
		until := now.Add(time.Hour)
		MustClaimRequests(t, s, "batch-1", "owner-a", 1, until)  // chunk 0, live
		MustClaimRequests(t, s, "batch-1", "owner-b", 1, past()) // chunk 1, ran out; chunk 2 pending
		MustClaimRequests(t, s, "batch-2", "owner-a", 1, until)  // another batch's
		if got := MustCountLeased(t, s, "batch-1", now); got != 1 {
			t.Errorf("batch-1: got %d leased, want 1", got)
		}
		if got := MustCountLeased(t, s, "batch-2", now); got != 1 {
			t.Errorf("batch-2: got %d leased, want 1", got)
		}
		if got := MustCountLeased(t, s, "batch-3", now); got != 0 {
			t.Errorf("batch-3: got %d leased, want 0", got)
		}
		if got := MustCountLeased(t, s, "batch-1", until.Add(time.Second)); got != 0 {
			t.Errorf("after the leases ran out: got %d leased, want 0", got)
		}
		chunk0 := inChunks(reqs, 0)
		if got := MustCommitResults(t, s, "owner-a", resultsFor(chunk0[:1])); got != 1 {
			t.Fatalf("got %d stored, want 1", got)
		}
		if got := MustCountLeased(t, s, "batch-1", now); got != 1 {
			t.Errorf("after a commit: got %d leased, want 1", got)
		}
		MustClaimRequests(t, s, "batch-1", "owner-c", 2*sluice.ChunkLines, until) // chunks 1 and 2
		if got := MustCountLeased(t, s, "batch-1", now); got != 3 {
			t.Errorf("after owner-c's claim: got %d leased, want 3", got)
		}
		if got := MustCommitResults(t, s, "owner-a", resultsFor(chunk0[1:])); got != len(chunk0)-1 {
			t.Fatalf("got %d stored, want %d", got, len(chunk0)-1)
		}
		// Chunk 0 is done, so it is no longer leased.
		if got := MustCountLeased(t, s, "batch-1", now); got != 2 {
			t.Errorf("after chunk 0 is done: got %d leased, want 2", got)
		}
	})
}
