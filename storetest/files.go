package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

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

	// A file whose bytes are in a blob round-trips with its source, and is listed and
	// counted only when asked for.
	t.Run("CreateFile/Source", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		src := newFile("file-blob", 1000)
		src.Source, src.SourceETag = "https://acct.blob.core.windows.net/in/a.jsonl", "0x8DC0FFEE"
		MustCreateFile(t, s, src)
		MustCreateFile(t, s, newFile("file-plain", 1001))
		if diff := cmp.Diff(src, MustFindFileByID(t, s, "file-blob")); diff != "" {
			t.Errorf("file mismatch (-want +got):\n%s", diff)
		}
		ids := func(filter sluice.FileFilter) []string {
			files, _, err := s.FindFiles(t.Context(), filter)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, f := range files {
				out = append(out, f.ID)
			}
			return out
		}
		if got := ids(sluice.FileFilter{}); !cmp.Equal(got, []string{"file-plain"}) {
			t.Errorf("listed by default: %v, want file-plain alone", got)
		}
		if got := ids(sluice.FileFilter{Sources: true}); !cmp.Equal(got, []string{"file-plain", "file-blob"}) {
			t.Errorf("listed with sources: %v", got)
		}
		if n, err := s.CountFiles(t.Context(), sluice.FileFilter{}); err != nil || n != 1 {
			t.Errorf("counted by default: %d, %v; want 1", n, err)
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

	// CountFiles counts what FindFiles finds, with or without an expiry.
	t.Run("CountFiles", func(t *testing.T) {
		t.Parallel()
		s := setup(t)
		for i := range 5 {
			f := newFile(fmt.Sprintf("file-%d", i+1), int64(1000*(i+1)))
			if i%2 == 0 {
				f.ExpiresAt = sluice.Ptr(at(int64(9000 + i)))
			}
			if i == 4 {
				f.Purpose = sluice.PurposeBatchOutput
			}
			MustCreateFile(t, s, f)
		}
		for _, tt := range []struct {
			name   string
			filter sluice.FileFilter
			want   int
		}{
			{"all", sluice.FileFilter{}, 5},
			{"expiring", sluice.FileFilter{Expiring: sluice.Ptr(true)}, 3},
			{"not expiring", sluice.FileFilter{Expiring: sluice.Ptr(false)}, 2},
			{"expiring outputs", sluice.FileFilter{Expiring: sluice.Ptr(true), Purpose: sluice.PurposeBatchOutput}, 1},
			{"expired by", sluice.FileFilter{ExpiredBy: sluice.Ptr(at(9002)), Limit: 1}, 2},
		} {
			n, err := s.CountFiles(t.Context(), tt.filter)
			if err != nil || n != tt.want {
				t.Errorf("%s: got %d, %v; want %d", tt.name, n, err, tt.want)
			}
			files, _, err := s.FindFiles(t.Context(), sluice.FileFilter{Expiring: tt.filter.Expiring, Purpose: tt.filter.Purpose, ExpiredBy: tt.filter.ExpiredBy})
			if err != nil || len(files) != tt.want {
				t.Errorf("%s: FindFiles found %d, %v; want %d", tt.name, len(files), err, tt.want)
			}
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
