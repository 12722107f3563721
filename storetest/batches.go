package storetest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

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
			Model:            "gpt-4o-mini-2024-07-18",
			InputTokens:      123456789012,
			Usage: sluice.Usage{
				InputTokens: 900, CachedTokens: 300, OutputTokens: 80, ReasoningTokens: 20, EstimatedLines: 2,
			},
			OutputFileID: "file-out",
			ErrorFileID:  "file-err",
			Errors: []sluice.BatchError{
				{Code: "invalid_json_line", Message: "Line 3 is not valid JSON.", Line: 3},
				{Code: "token_limit_exceeded", Message: "Too many tokens.", Param: "body"},
			},
			Metadata:           map[string]string{"project": "eval", "run": "7"},
			RequestCounts:      sluice.RequestCounts{Total: 10, Completed: 6, Failed: 2},
			OutputExpiresAfter: sluice.MaxFileExpiry,
			WindowPolicy:       sluice.WindowExpire,
			InputBlob:          "https://acct.blob.core.windows.net/in/a.jsonl",
			OutputFolder:       "https://acct.blob.core.windows.net/out",
			OutputDelimiter:    "/",
			OutputBlob:         "https://acct.blob.core.windows.net/out/batch-1/results.jsonl",
			ErrorBlob:          "https://acct.blob.core.windows.net/out/batch-1/errors.jsonl",
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
