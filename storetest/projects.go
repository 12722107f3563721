package storetest

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

// MustAdmit admits b under lim and returns what the store found.
func MustAdmit(tb testing.TB, s sluice.Store, b *sluice.Batch, lim sluice.AdmitLimits) sluice.AdmitResult {
	tb.Helper()
	res, err := s.AdmitBatch(tb.Context(), b, lim)
	if err != nil {
		tb.Fatalf("admit batch %s: %v", b.ID, err)
	}
	return res
}

// AdmitConcurrently admits n batches at once, batch i made by mk and sent to
// stores[i%len(stores)] under lim, and returns how many were admitted. Every
// admission's result must stay within lim.
func AdmitConcurrently(tb testing.TB, stores []sluice.Store, n int, mk func(i int) *sluice.Batch, lim sluice.AdmitLimits) int {
	tb.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for i := range n {
		wg.Go(func() {
			b := mk(i)
			res, err := stores[i%len(stores)].AdmitBatch(tb.Context(), b, lim)
			if err != nil {
				tb.Error(err)
			}
			if (lim.Deployment > 0 && res.Held > lim.Deployment) || (lim.Project.EnqueuedTokens > 0 && res.ProjectTokens > lim.Project.EnqueuedTokens) {
				tb.Errorf("admit %s: held %d, project %d, past %+v", b.ID, res.Held, res.ProjectTokens, lim)
			}
			if res.Admitted {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return admitted
}

// projectBatch returns a batch of project p and deployment dep holding tokens.
func projectBatch(id, p, dep string, tokens int64, status sluice.Status) *sluice.Batch {
	b := tokenBatch(id, dep, tokens, status)
	b.Project = p
	return b
}

func runProjects(t *testing.T, setup func(t *testing.T) sluice.Store) {
	// Files, batches and uploads keep their project, output files included.
	t.Run("Project/RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		f := newFile("file-a", 1)
		f.Project = "proj-a"
		MustCreateFile(t, s, f)
		if got := MustFindFileByID(t, s, "file-a").Project; got != "proj-a" {
			t.Errorf("file project %q, want proj-a", got)
		}
		b := newBatch("batch-a", "file-a", sluice.StatusInProgress, 2)
		b.Project = "proj-a"
		MustCreateBatch(t, s, b)
		if got := MustFindBatchByID(t, s, "batch-a").Project; got != "proj-a" {
			t.Errorf("batch project %q, want proj-a", got)
		}
		out := &sluice.File{ID: "file-out", Project: "proj-a", CreatedAt: at(3), Filename: "batch-a_output.jsonl",
			Purpose: sluice.PurposeBatchOutput, Status: sluice.FileStatusProcessed}
		if _, err := s.FinishBatch(t.Context(), "batch-a", []*sluice.File{out}, sluice.BatchUpdate{Status: sluice.Ptr(sluice.StatusCompleted)}); err != nil {
			t.Fatal(err)
		}
		if got := MustFindFileByID(t, s, "file-out").Project; got != "proj-a" {
			t.Errorf("output file project %q, want proj-a", got)
		}
		u := newUpload("upload-a", 1, 100, 10)
		u.Project = "proj-a"
		if err := s.CreateUpload(t.Context(), u); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindUploadByID(t.Context(), "upload-a")
		if err != nil {
			t.Fatal(err)
		}
		if got.Project != "proj-a" {
			t.Errorf("upload project %q, want proj-a", got.Project)
		}
	})

	// A project filter selects that project's files and batches; none selects all.
	t.Run("Project/Filters", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for i, p := range []string{"proj-a", "proj-b", "proj-a"} {
			f := newFile("file-"+string(rune('1'+i)), int64(i+1))
			f.Project = p
			MustCreateFile(t, s, f)
			b := newBatch("batch-"+string(rune('1'+i)), f.ID, sluice.StatusInProgress, int64(i+1))
			b.Project = p
			MustCreateBatch(t, s, b)
		}
		files, _, err := s.FindFiles(t.Context(), sluice.FileFilter{Project: "proj-a"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"file-3", "file-1"}, fileIDs(files)); diff != "" {
			t.Errorf("files of proj-a (-want +got):\n%s", diff)
		}
		n, err := s.CountFiles(t.Context(), sluice.FileFilter{Project: "proj-b"})
		if err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Errorf("proj-b counts %d files, want 1", n)
		}
		batches, _, err := s.FindBatches(t.Context(), sluice.BatchFilter{Project: "proj-a", Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"batch-3"}, batchIDs(batches)); diff != "" {
			t.Errorf("first batch of proj-a (-want +got):\n%s", diff)
		}
		batches, _, err = s.FindBatches(t.Context(), sluice.BatchFilter{Project: "proj-a", After: "batch-3"})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"batch-1"}, batchIDs(batches)); diff != "" {
			t.Errorf("next batches of proj-a (-want +got):\n%s", diff)
		}
		all, _, err := s.FindBatches(t.Context(), sluice.BatchFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 3 {
			t.Errorf("no filter found %d batches, want 3", len(all))
		}
	})

	// A project's enqueued-token limit counts its batches on every deployment and no
	// other project's; its batch limit counts those that are not terminal.
	t.Run("Project/AdmitLimits", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		lim := sluice.AdmitLimits{Project: sluice.ProjectLimits{EnqueuedTokens: 1000, Batches: 3}}
		MustCreateBatch(t, s, projectBatch("other", "proj-b", "dep-a", 5000, sluice.StatusInProgress))
		MustCreateBatch(t, s, projectBatch("old", "proj-a", "dep-a", 5000, sluice.StatusCompleted))
		steps := []struct {
			id, dep   string
			tokens    int64
			want      sluice.AdmitResult
			wantFound bool
		}{
			{"b1", "dep-a", 600, sluice.AdmitResult{Admitted: true, Held: 5600, ProjectTokens: 600, ProjectBatches: 1}, true},
			{"b2", "dep-b", 500, sluice.AdmitResult{Held: 0, ProjectTokens: 600, ProjectBatches: 1}, false},
			{"b3", "dep-b", 400, sluice.AdmitResult{Admitted: true, Held: 400, ProjectTokens: 1000, ProjectBatches: 2}, true},
			{"b4", "dep-c", 0, sluice.AdmitResult{Admitted: true, Held: 0, ProjectTokens: 1000, ProjectBatches: 3}, true},
			{"b5", "dep-c", 0, sluice.AdmitResult{Held: 0, ProjectTokens: 1000, ProjectBatches: 3}, false},
		}
		for _, st := range steps {
			got := MustAdmit(t, s, projectBatch(st.id, "proj-a", st.dep, st.tokens, sluice.StatusValidating), lim)
			if diff := cmp.Diff(st.want, got); diff != "" {
				t.Errorf("admit %s (%d tokens on %s) (-want +got):\n%s", st.id, st.tokens, st.dep, diff)
			}
			_, err := s.FindBatchByID(t.Context(), st.id)
			if found := err == nil; found != st.wantFound {
				t.Errorf("%s found %t after admission, want %t (%v)", st.id, found, st.wantFound, err)
			}
		}
		// A batch that ends frees its place and its tokens.
		if _, err := s.UpdateBatch(t.Context(), "b1", sluice.BatchUpdate{Status: sluice.Ptr(sluice.StatusCancelled)}); err != nil {
			t.Fatal(err)
		}
		if got := MustAdmit(t, s, projectBatch("b6", "proj-a", "dep-a", 600, sluice.StatusValidating), lim); !got.Admitted {
			t.Errorf("after b1 ended, b6 was refused: %+v", got)
		}
	})

	// Concurrent admissions of one project never pass its limits together, whatever
	// deployments they are on.
	t.Run("Project/AdmitConcurrent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		const creates, tokens, limit = 20, 100, 500
		lim := sluice.AdmitLimits{Project: sluice.ProjectLimits{EnqueuedTokens: limit}}
		admitted := AdmitConcurrently(t, []sluice.Store{s}, creates, func(i int) *sluice.Batch {
			return projectBatch(string(rune('a'+i)), "proj-a", []string{"dep-a", "dep-b"}[i%2], tokens, sluice.StatusValidating)
		}, lim)
		if admitted != limit/tokens {
			t.Errorf("admitted %d of %d, want %d", admitted, creates, limit/tokens)
		}
	})
}
