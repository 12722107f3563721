package harness_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice/bench/harness"
)

func TestCustomID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		line    string
		want    string
		wantErr bool
	}{
		{name: "result-line", line: `{"id":"batch_req_1","custom_id":"req-7","response":{"status_code":200,"body":{}},"error":null}`, want: "req-7"},
		{name: "custom-id-after-nested-one", line: `{"response":{"body":{"custom_id":"inner","x":["custom_id"]}},"custom_id":"req-1"}`, want: "req-1"},
		{name: "spaces", line: ` { "custom_id" : "req-2" } `, want: "req-2"},
		{name: "escapes", line: `{"note":"a \"custom_id\": \"x\"","custom_id":"req-\u0033"}`, want: "req-3"},
		{name: "value-equal-to-key", line: `{"a":"custom_id","custom_id":"req-4"}`, want: "req-4"},
		{name: "missing", line: `{"id":"x","response":{"custom_id":"req-1"}}`, wantErr: true},
		{name: "not-a-string", line: `{"custom_id":12}`, wantErr: true},
		{name: "not-an-object", line: `["custom_id","req-1"]`, wantErr: true},
		{name: "unterminated", line: `{"custom_id":"req-1`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := harness.CustomID([]byte(tt.line))
			if (err != nil) != tt.wantErr {
				t.Fatalf("got error %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestIDCheck(t *testing.T) {
	t.Parallel()
	line := func(id string) string { return `{"id":"r","custom_id":"` + id + `","response":null}` + "\n" }
	tests := []struct {
		name    string
		files   []string // each written in pieces of 7 bytes, then ended
		wantErr string   // substring; "" for no error
	}{
		{name: "complete-across-output-and-error-files", files: []string{line("req-0") + line("req-2"), line("req-1")}},
		{name: "last-line-without-newline", files: []string{line("req-1") + strings.TrimSuffix(line("req-0"), "\n") + "\n\n", line("req-2")[:len(line("req-2"))-1]}},
		{name: "missing", files: []string{line("req-0") + line("req-2")}, wantErr: "1 of 3 custom_ids missing, the first req-1"},
		{name: "duplicated", files: []string{line("req-0") + line("req-1") + line("req-2"), line("req-1")}, wantErr: "1 duplicated result lines, the first for req-1"},
		{name: "unknown", files: []string{line("req-0") + line("req-1") + line("req-2") + line("req-3") + line("req-01")}, wantErr: "2 result lines for unknown custom_ids"},
		{name: "malformed", files: []string{line("req-0") + line("req-1") + line("req-2") + "{}\n"}, wantErr: "1 result lines without a custom_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := harness.NewIDCheck(3)
			for _, f := range tt.files {
				for len(f) > 0 {
					n := min(7, len(f))
					if _, err := c.Write([]byte(f[:n])); err != nil {
						t.Fatal(err)
					}
					f = f[n:]
				}
				c.EndFile()
			}
			err := c.Err()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("got error %v, want none", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestRequestsSized(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 100, 2000, 5000} {
		lines := bytes.Split(bytes.TrimSuffix(harness.RequestsSized(3, size), []byte("\n")), []byte("\n"))
		if len(lines) != 3 {
			t.Fatalf("size %d: got %d lines, want 3", size, len(lines))
		}
		for i, l := range lines {
			if !json.Valid(l) {
				t.Errorf("size %d line %d: not JSON: %s", size, i, l)
			}
			if size > 300 && (len(l) < size-100 || len(l) > size+100) {
				t.Errorf("size %d line %d: got %d bytes", size, i, len(l))
			}
		}
	}
}
