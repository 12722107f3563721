package storetest

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

func runBatchLists(t *testing.T, setup func(t *testing.T) sluice.Store) {
	// created_at bounds are inclusive; the order is by creation, either way.
	t.Run("FindBatches/CreatedAndOrder", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for i, st := range []sluice.Status{sluice.StatusCompleted, sluice.StatusFailed, sluice.StatusCompleted, sluice.StatusCancelled, sluice.StatusCompleted} {
			MustCreateBatch(t, s, newBatch(fmt.Sprint("batch-", i), "file-in", st, int64(1000+10*i)))
		}
		for _, tc := range []struct {
			name   string
			filter sluice.BatchFilter
			want   []string
		}{
			{"from", sluice.BatchFilter{CreatedFrom: sluice.Ptr[int64](1020)}, []string{"batch-4", "batch-3", "batch-2"}},
			{"to", sluice.BatchFilter{CreatedTo: sluice.Ptr[int64](1010)}, []string{"batch-1", "batch-0"}},
			{"between, oldest first", sluice.BatchFilter{CreatedFrom: sluice.Ptr[int64](1005), CreatedTo: sluice.Ptr[int64](1030), Asc: true},
				[]string{"batch-1", "batch-2", "batch-3"}},
			{"status and time", sluice.BatchFilter{Status: []sluice.Status{sluice.StatusCompleted}, CreatedFrom: sluice.Ptr[int64](1001)},
				[]string{"batch-4", "batch-2"}},
			{"oldest first after a cursor", sluice.BatchFilter{Asc: true, After: "batch-1", Limit: 2}, []string{"batch-2", "batch-3"}},
			{"empty range", sluice.BatchFilter{CreatedFrom: sluice.Ptr[int64](1031), CreatedTo: sluice.Ptr[int64](1039)}, nil},
		} {
			got, _, err := s.FindBatches(t.Context(), tc.filter)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, batchIDs(got)); diff != "" && (len(tc.want) > 0 || len(got) > 0) {
				t.Errorf("%s (-want +got):\n%s", tc.name, diff)
			}
		}
	})

	// Paging is exact while batches are created between pages: newest first, every
	// batch that existed at the start is seen once; oldest first, the new ones follow.
	t.Run("FindBatches/PagesWhileCreating", func(t *testing.T) {
		t.Parallel()
		for _, asc := range []bool{false, true} {
			s := setup(t)
			const before = 250
			for i := range before {
				MustCreateBatch(t, s, newBatch(fmt.Sprintf("old-%03d", i), "file-in", sluice.StatusCompleted, int64(i)))
			}
			seen := map[string]int{}
			after, added := "", 0
			for pages := 0; pages < 200; pages++ {
				page, more, err := s.FindBatches(t.Context(), sluice.BatchFilter{After: after, Limit: 7, Asc: asc})
				if err != nil {
					t.Fatal(err)
				}
				for _, b := range page {
					seen[b.ID]++
				}
				for range 3 { // creates between pages
					MustCreateBatch(t, s, newBatch(fmt.Sprintf("new-%03d", added), "file-in", sluice.StatusCompleted, int64(before+added)))
					added++
				}
				if !more || len(page) == 0 {
					break
				}
				after = page[len(page)-1].ID
			}
			for i := range before {
				if id := fmt.Sprintf("old-%03d", i); seen[id] != 1 {
					t.Errorf("asc=%t: %s seen %d times, want once", asc, id, seen[id])
				}
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("asc=%t: %s seen %d times", asc, id, n)
				}
			}
		}
	})
}
