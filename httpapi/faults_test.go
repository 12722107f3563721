package httpapi

import (
	"context"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-batch/sluice"
)

// An error that is a storage fault answers 503 storage_unavailable with its reason and
// Retry-After, and no path; the caller's own errors keep their answer.
func TestStorageFaultAnswers(t *testing.T) {
	t.Parallel()
	s := NewServer(nil, &quotaService{}, nil)
	for _, tc := range []struct {
		err    error
		status int
		after  string
		want   string
	}{
		{fmt.Errorf("put files/f-1: %w", &fs.PathError{Op: "write", Path: "/srv/data/files/f-1", Err: syscall.ENOSPC}), 503, "30", "the disk is full"},
		{sluice.Errorf(sluice.KindInvalid, "bad"), 400, "", "bad"},
		{fmt.Errorf("something else"), 500, "", ""},
	} {
		rec := httptest.NewRecorder()
		s.writeRetryError(rec, httptest.NewRequest("POST", "/v1/files", nil), tc.err)
		body := rec.Body.String()
		if rec.Code != tc.status || rec.Header().Get("Retry-After") != tc.after || !strings.Contains(body, tc.want) || strings.Contains(body, "/srv/data") {
			t.Errorf("%v: got %d, Retry-After %q, %s", tc.err, rec.Code, rec.Header().Get("Retry-After"), body)
		}
		if tc.status == 503 && !strings.Contains(body, `"storage_unavailable"`) {
			t.Errorf("%v: %s lacks the code storage_unavailable", tc.err, body)
		}
	}
}

// /readyz answers 503 with the reason while Ready fails, 200 otherwise, with no key.
func TestReadyz(t *testing.T) {
	t.Parallel()
	var failing error
	s := NewServer(nil, &quotaService{}, &Options{APIKeys: []string{"k"}, Ready: func(context.Context) error { return failing }})
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ready"`) {
		t.Errorf("ready: got %d %s", rec.Code, rec.Body.String())
	}
	failing = sluice.Errorf(sluice.KindUnavailable, "Storage is failing: the disk is full.")
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "30" || !strings.Contains(rec.Body.String(), "the disk is full") {
		t.Errorf("not ready: got %d, Retry-After %q, %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
	}
}
