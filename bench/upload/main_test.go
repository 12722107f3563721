package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/sluice-batch/sluice/bench/harness"
)

func TestWriteLines(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		n    int
		size int64
	}{{1, 2000}, {50, 100_000}, {1000, 500_000}} {
		t.Run(fmt.Sprintf("%d-lines-%d-bytes", tt.n, tt.size), func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			w := bufio.NewWriter(&b)
			if err := writeLines(w, tt.n, tt.size); err != nil {
				t.Fatal(err)
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			if got := int64(b.Len()); got != tt.size {
				t.Errorf("got %d bytes, want %d", got, tt.size)
			}
			lines := bytes.Split(bytes.TrimSuffix(b.Bytes(), []byte("\n")), []byte("\n"))
			if len(lines) != tt.n {
				t.Fatalf("got %d lines, want %d", len(lines), tt.n)
			}
			for i, line := range lines {
				var req struct {
					CustomID string `json:"custom_id"`
					Body     struct {
						Model    string `json:"model"`
						Messages []struct{ Role, Content string }
					} `json:"body"`
				}
				if err := json.Unmarshal(line, &req); err != nil {
					t.Fatalf("line %d: %v: %.200s", i+1, err, line)
				}
				if want := fmt.Sprintf("req-%d", i); req.CustomID != want {
					t.Errorf("line %d: got custom_id %q, want %q", i+1, req.CustomID, want)
				}
				if req.Body.Model != harness.Deployment || len(req.Body.Messages) != 2 || req.Body.Messages[1].Role != "user" {
					t.Errorf("line %d: got body %+v", i+1, req.Body)
				}
			}
		})
	}
}

func TestWriteLinesTooSmall(t *testing.T) {
	t.Parallel()
	if err := writeLines(bufio.NewWriter(&bytes.Buffer{}), 100, 10_000); err == nil {
		t.Error("got no error for 100 lines in 10000 bytes")
	}
}

func TestWriteOneLine(t *testing.T) {
	t.Parallel()
	const size = 3_000_123
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := writeOneLine(w, size); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if b.Len() != size {
		t.Errorf("got %d bytes, want %d", b.Len(), size)
	}
	if n := bytes.Count(b.Bytes(), []byte("\n")); n != 1 {
		t.Errorf("got %d newlines, want 1", n)
	}
	if !json.Valid(bytes.TrimSuffix(b.Bytes(), []byte("\n"))) {
		t.Error("the line is not valid JSON")
	}
}
