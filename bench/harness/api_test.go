package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice/bench/harness"
)

// TestUpload checks the multipart body Upload sends, with a length it can tell (a
// reader of known length, a file read from part way) and without (a plain reader).
func TestUpload(t *testing.T) {
	t.Parallel()
	type seen struct {
		length  int64
		chunked bool
		purpose string
		name    string
		data    string
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.length, s.chunked = r.ContentLength, len(r.TransferEncoding) > 0
		mr, err := r.MultipartReader()
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			b, _ := io.ReadAll(p)
			switch p.FormName() {
			case "purpose":
				s.purpose = string(b)
			case "file":
				s.name, s.data = p.FileName(), string(b)
			}
		}
		got <- s
		json.NewEncoder(w).Encode(harness.File{ID: "file-1", Bytes: int64(len(s.data)), Status: "processed"})
	}))
	defer srv.Close()
	c := harness.NewClient(srv.URL, 1)

	data := strings.Repeat(`{"custom_id":"a"}`+"\n", 1000)
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte("skipped"+data), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(int64(len("skipped")), io.SeekStart); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		body  io.Reader
		sized bool
	}{
		{"bytes", bytes.NewReader([]byte(data)), true},
		{"file", f, true},
		{"stream", io.MultiReader(strings.NewReader(data)), false},
	} {
		file, err := c.Upload(context.Background(), "in.jsonl", tc.body)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		s := <-got
		if file.ID != "file-1" || s.purpose != "batch" || s.name != "in.jsonl" || s.data != data {
			t.Errorf("%s: got id %q, purpose %q, name %q, %d bytes; want file-1, batch, in.jsonl, %d", tc.name, file.ID, s.purpose, s.name, len(s.data), len(data))
		}
		if sized := s.length > 0 && !s.chunked; sized != tc.sized {
			t.Errorf("%s: Content-Length %d, chunked %v; want a length: %v", tc.name, s.length, s.chunked, tc.sized)
		}
	}
}
