package httpapi

import (
	"strings"
	"testing"
)

// A path with routes for other methods answers 405 with Allow, in the error shape; an
// unknown path answers 404.
func TestUnroutedRequests(t *testing.T) {
	t.Parallel()
	s := NewServer(nil, &quotaService{}, nil)
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"PUT", "/v1/batches", 405, "GET, POST"},
		{"DELETE", "/openai/v1/batches/batch_1", 405, "GET"},
		{"GET", "/v1/files/file-1/content/more", 404, ""},
		{"GET", "/v2/batches", 404, ""},
	} {
		res, body := call(t, s, tc.method, tc.path, "")
		if res.StatusCode != tc.status || res.Header.Get("Allow") != tc.allow || !strings.Contains(body, `"error"`) {
			t.Errorf("%s %s: got %d, Allow %q, %s; want %d, Allow %q", tc.method, tc.path, res.StatusCode, res.Header.Get("Allow"), body, tc.status, tc.allow)
		}
	}
}
