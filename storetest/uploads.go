package storetest

import (
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

func newUpload(id string, created, expires int64, bytes int64) *sluice.Upload {
	return &sluice.Upload{
		ID: id, CreatedAt: at(created), ExpiresAt: at(expires),
		Filename: id + ".jsonl", Purpose: sluice.PurposeBatch, Bytes: bytes, MimeType: "text/jsonl",
		Status: sluice.UploadPending, FileExpiresAfter: 2592000,
	}
}

func runUploads(t *testing.T, setup func(t *testing.T) sluice.Store) {
	t.Run("Upload/RoundTrip", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		want := newUpload("upload_1", 100, 3700, 1000)
		if err := s.CreateUpload(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.FindUploadByID(ctx, "upload_1")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("upload (-want +got):\n%s", diff)
		}
		if err := s.CreateUpload(ctx, want); sluice.ErrorKind(err) != sluice.KindConflict {
			t.Errorf("create twice: got %v, want kind conflict", err)
		}
		if _, err := s.FindUploadByID(ctx, "upload_none"); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("find missing: got %v, want kind not_found", err)
		}
	})

	t.Run("Upload/Update", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		s.CreateUpload(ctx, newUpload("upload_1", 100, 3700, 1000))
		got, err := s.UpdateUpload(ctx, "upload_1", sluice.UploadUpdate{IfStatus: sluice.UploadPending,
			Status: sluice.Ptr(sluice.UploadCompleted), FileID: sluice.Ptr("file-1")})
		if err != nil || got.Status != sluice.UploadCompleted || got.FileID != "file-1" {
			t.Fatalf("complete: got %+v, %v", got, err)
		}
		if _, err := s.UpdateUpload(ctx, "upload_1", sluice.UploadUpdate{IfStatus: sluice.UploadPending,
			Status: sluice.Ptr(sluice.UploadCancelled)}); sluice.ErrorKind(err) != sluice.KindConflict {
			t.Errorf("cancel a completed upload: got %v, want kind conflict", err)
		}
		if got, _ := s.FindUploadByID(ctx, "upload_1"); got.Status != sluice.UploadCompleted {
			t.Errorf("after the refused change: status %s, want completed", got.Status)
		}
		if _, err := s.UpdateUpload(ctx, "upload_none", sluice.UploadUpdate{Status: sluice.Ptr(sluice.UploadCancelled)}); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("update missing: got %v, want kind not_found", err)
		}
	})

	// Parts are recorded before their bytes, finished with their size, and refused
	// past the upload's size or once it is no longer pending.
	t.Run("Upload/Parts", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		s.CreateUpload(ctx, newUpload("upload_1", 100, 3700, 10))
		part := func(id string) *sluice.UploadPart {
			return &sluice.UploadPart{ID: id, UploadID: "upload_1", CreatedAt: at(200)}
		}
		for _, id := range []string{"part_a", "part_b", "part_c"} {
			if err := s.AddUploadPart(ctx, part(id)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.FinishUploadPart(ctx, "upload_1", "part_b", 6); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishUploadPart(ctx, "upload_1", "part_a", 5); sluice.ErrorKind(err) != sluice.KindConflict {
			t.Errorf("a part past the upload's size: got %v, want kind conflict", err)
		}
		if err := s.FinishUploadPart(ctx, "upload_1", "part_a", 4); err != nil {
			t.Errorf("a part that fits exactly: %v", err)
		}
		if err := s.FinishUploadPart(ctx, "upload_1", "part_none", 0); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("finish a missing part: got %v, want kind not_found", err)
		}
		got, err := s.FindUploadParts(ctx, "upload_1")
		if err != nil {
			t.Fatal(err)
		}
		want := []*sluice.UploadPart{
			{ID: "part_a", UploadID: "upload_1", CreatedAt: at(200), Bytes: 4},
			{ID: "part_b", UploadID: "upload_1", CreatedAt: at(200), Bytes: 6},
			{ID: "part_c", UploadID: "upload_1", CreatedAt: at(200), Bytes: -1},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("parts in the order added (-want +got):\n%s", diff)
		}
		if err := s.AddUploadPart(ctx, &sluice.UploadPart{ID: "part_x", UploadID: "upload_none", CreatedAt: at(200)}); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("a part of a missing upload: got %v, want kind not_found", err)
		}
		s.UpdateUpload(ctx, "upload_1", sluice.UploadUpdate{Status: sluice.Ptr(sluice.UploadCancelled)})
		if err := s.AddUploadPart(ctx, part("part_d")); sluice.ErrorKind(err) != sluice.KindConflict {
			t.Errorf("a part of a cancelled upload: got %v, want kind conflict", err)
		}
		if err := s.FinishUploadPart(ctx, "upload_1", "part_c", 0); sluice.ErrorKind(err) != sluice.KindConflict {
			t.Errorf("finish a part of a cancelled upload: got %v, want kind conflict", err)
		}
	})

	// Parts finishing at once never hold more than the upload's size together.
	t.Run("Upload/Parts/Concurrent", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		s.CreateUpload(ctx, newUpload("upload_1", 100, 3700, 10))
		const n = 8
		for i := range n {
			s.AddUploadPart(ctx, &sluice.UploadPart{ID: "part_" + string(rune('a'+i)), UploadID: "upload_1", CreatedAt: at(200)})
		}
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() { errs[i] = s.FinishUploadPart(ctx, "upload_1", "part_"+string(rune('a'+i)), 3) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if sluice.ErrorKind(err) != sluice.KindConflict {
				t.Errorf("got %v, want nil or kind conflict", err)
			}
		}
		if ok != 3 {
			t.Errorf("%d parts of 3 bytes finished in an upload of 10, want 3", ok)
		}
	})

	t.Run("Upload/FindAndDelete", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		ctx := t.Context()
		s.CreateUpload(ctx, newUpload("upload_late", 100, 5000, 10))
		s.CreateUpload(ctx, newUpload("upload_b", 100, 3700, 10))
		s.CreateUpload(ctx, newUpload("upload_a", 100, 3600, 10))
		s.AddUploadPart(ctx, &sluice.UploadPart{ID: "part_1", UploadID: "upload_a", CreatedAt: at(200)})
		got, err := s.FindUploads(ctx, at(3700), 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, u := range got {
			ids = append(ids, u.ID)
		}
		if diff := cmp.Diff([]string{"upload_a", "upload_b"}, ids); diff != "" {
			t.Errorf("expired by 3700, oldest first (-want +got):\n%s", diff)
		}
		if got, _ := s.FindUploads(ctx, at(3700), 1); len(got) != 1 || got[0].ID != "upload_a" {
			t.Errorf("limit 1: got %v", got)
		}
		if err := s.DeleteUpload(ctx, "upload_a"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUpload(ctx, "upload_a"); err != nil {
			t.Errorf("delete twice: %v", err)
		}
		if _, err := s.FindUploadByID(ctx, "upload_a"); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("after delete: got %v, want kind not_found", err)
		}
		if parts, err := s.FindUploadParts(ctx, "upload_a"); err != nil || len(parts) != 0 {
			t.Errorf("parts after delete: got %v, %v; want none", parts, err)
		}
	})
}
