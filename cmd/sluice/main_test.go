package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

// seedLines are the three requests of the product guide's quickstart.
var seedQuestions = []string{"When was Microsoft founded?", "When was the first XBOX released?", "What is Altair Basic?"}

func seedFile(model, url string) string {
	var b strings.Builder
	for i, q := range seedQuestions {
		fmt.Fprintf(&b, `{"custom_id": "task-%d", "method": "POST", "url": %q, "body": {"model": %q, "messages": [{"role": "system", "content": "You are an AI assistant that helps people find information."}, {"role": "user", "content": %q}]}}`+"\n", i, url, model, q)
	}
	return b.String()
}

// chatLines returns n request lines for model, custom_ids line-0 .. line-(n-1).
func chatLines(n int, model string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"line-%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"question number %d"}]}}`+"\n", i, model, i)
	}
	return b.String()
}

// syncBuffer is a bytes.Buffer safe to write from run's goroutines while a test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listenRE = regexp.MustCompile(`listening on (http://\S+)`)

// MustRunMain runs `sluice serve` in-process on a free port with args and env, and
// returns a client for it. The server stops when the test ends.
func MustRunMain(tb testing.TB, env map[string]string, args ...string) *apiClient {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	full := append([]string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", tb.TempDir()}, args...)
	go func() { done <- run(ctx, full, func(k string) string { return env[k] }, stdout, stderr) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("run: %v\n%s", err, stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m := listenRE.FindStringSubmatch(stdout.String()); m != nil {
			return &apiClient{tb: tb, base: m[1], key: strings.Split(env["SLUICE_API_KEYS"], ",")[0]}
		}
		select {
		case err := <-done:
			tb.Fatalf("sluice serve exited: %v\n%s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	tb.Fatalf("sluice serve did not start:\n%s", stderr.String())
	return nil
}

// apiClient speaks the API as a plain HTTP client would.
type apiClient struct {
	tb   testing.TB
	base string
	key  string
}

func (c *apiClient) do(method, path string, body io.Reader, contentType string) (int, []byte) {
	c.tb.Helper()
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.tb.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.key != "" {
		req.Header.Set("api-key", c.key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatal(err)
	}
	return resp.StatusCode, b
}

func (c *apiClient) json(method, path string, in, out any) int {
	c.tb.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	status, b := c.do(method, path, body, "application/json")
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.tb.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return status
}

type fileObj struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Bytes         int64   `json:"bytes"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"`
	ExpiresAt     *int64  `json:"expires_at"`
	CreatedAt     int64   `json:"created_at"`
	StatusDetails *string `json:"status_details"`
}

type batchObj struct {
	ID            string            `json:"id"`
	Status        string            `json:"status"`
	OutputFileID  *string           `json:"output_file_id"`
	ErrorFileID   *string           `json:"error_file_id"`
	Metadata      map[string]string `json:"metadata"`
	RequestCounts struct {
		Total, Completed, Failed int
	} `json:"request_counts"`
	Errors *struct {
		Object string `json:"object"`
		Data   []struct {
			Code    string  `json:"code"`
			Message string  `json:"message"`
			Param   *string `json:"param"`
			Line    *int    `json:"line"`
		} `json:"data"`
	} `json:"errors"`
	InProgressAt *int64 `json:"in_progress_at"`
	FailedAt     *int64 `json:"failed_at"`
	CompletedAt  *int64 `json:"completed_at"`
	CancelledAt  *int64 `json:"cancelled_at"`
	CancellingAt *int64 `json:"cancelling_at"`
}

type apiError struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func (c *apiClient) upload(path, name, content string, fields map[string]string) (int, []byte) {
	c.tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	io.WriteString(fw, content)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	mw.Close()
	return c.do("POST", path, &buf, mw.FormDataContentType())
}

func (c *apiClient) mustUpload(content string) fileObj {
	c.tb.Helper()
	status, b := c.upload("/v1/files", "input.jsonl", content, map[string]string{"purpose": "batch"})
	var f fileObj
	if status != 200 || json.Unmarshal(b, &f) != nil {
		c.tb.Fatalf("upload: got %d %s, want 200 and a file", status, b)
	}
	return f
}

func (c *apiClient) mustCreateBatch(fileID, endpoint string) batchObj {
	c.tb.Helper()
	var b batchObj
	if status := c.json("POST", "/v1/batches", map[string]any{"input_file_id": fileID, "endpoint": endpoint, "completion_window": "24h"}, &b); status != 200 {
		c.tb.Fatalf("create batch: got status %d", status)
	}
	return b
}

// waitBatch polls the batch until done says so, with a deadline.
func (c *apiClient) waitBatch(id string, done func(batchObj) bool) batchObj {
	c.tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var b batchObj
	for time.Now().Before(deadline) {
		c.json("GET", "/v1/batches/"+id, nil, &b)
		if done(b) {
			return b
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.tb.Fatalf("batch %s: still %s with %+v", id, b.Status, b.RequestCounts)
	return b
}

func terminal(b batchObj) bool {
	switch b.Status {
	case "completed", "failed", "cancelled", "expired":
		return true
	}
	return false
}

func (c *apiClient) content(id string) string {
	c.tb.Helper()
	status, b := c.do("GET", "/v1/files/"+id+"/content", nil, "")
	if status != 200 {
		c.tb.Fatalf("content of %s: got %d %s", id, status, b)
	}
	return string(b)
}

type resultLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func parseResults(tb testing.TB, s string) []resultLine {
	tb.Helper()
	var out []resultLine
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r resultLine
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			tb.Fatalf("result line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func customIDs(rs []resultLine) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.CustomID)
	}
	sort.Strings(ids)
	return ids
}

func TestQuickstart(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, map[string]string{"SLUICE_API_KEYS": "k1,k2"})
	const q = "?api-version=2024-10-21"

	status, b := c.upload("/openai/files"+q, "test.jsonl", seedFile("gpt-4o-mini", "/chat/completions"),
		map[string]string{"purpose": "batch", "expires_after.seconds": "1209600", "expires_after.anchor": "created_at"})
	var f fileObj
	if status != 201 || json.Unmarshal(b, &f) != nil { // Azure's Files_Upload answers 201
		t.Fatalf("upload: got %d %s", status, b)
	}
	if f.Status != "processed" || f.Object != "file" || f.Purpose != "batch" || f.Filename != "test.jsonl" || !strings.HasPrefix(f.ID, "file-") {
		t.Errorf("upload: got %+v, want a processed batch file named test.jsonl", f)
	}
	if f.ExpiresAt == nil || *f.ExpiresAt != f.CreatedAt+1209600 {
		t.Errorf("expires_at: got %v, want created_at+1209600", f.ExpiresAt)
	}

	var created batchObj
	body := map[string]any{"input_file_id": f.ID, "endpoint": "/chat/completions", "completion_window": "24h",
		"metadata": map[string]string{"job": "quickstart"}, "output_expires_after": map[string]any{"seconds": 1209600}, "anchor": "created_at"}
	if status := c.json("POST", "/openai/batches"+q, body, &created); status != 200 {
		t.Fatalf("create: got %d", status)
	}
	if created.Status != "validating" || created.OutputFileID != nil || created.Errors != nil {
		t.Errorf("create: got %+v, want validating with null output_file_id and errors", created)
	}
	var done batchObj
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !terminal(done) {
		c.json("GET", "/openai/batches/"+created.ID+q, nil, &done)
		time.Sleep(20 * time.Millisecond)
	}
	if done.Status != "completed" || done.RequestCounts.Total != 3 || done.RequestCounts.Completed != 3 || done.RequestCounts.Failed != 0 {
		t.Fatalf("got %s %+v, want completed 3/3", done.Status, done.RequestCounts)
	}
	if done.InProgressAt == nil || done.CompletedAt == nil || done.FailedAt != nil || done.Metadata["job"] != "quickstart" {
		t.Errorf("timestamps or metadata wrong: %+v", done)
	}
	_, out := c.do("GET", "/openai/files/"+*done.OutputFileID+"/content"+q, nil, "")
	results := parseResults(t, string(out))
	if got, want := customIDs(results), []string{"task-0", "task-1", "task-2"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("custom_ids: got %v, want %v", got, want)
	}
	for _, r := range results {
		var body struct {
			Choices []struct{ Message struct{ Content string } }
			Usage   struct {
				TotalTokens int `json:"total_tokens"`
			}
		}
		if r.Response == nil || r.Response.StatusCode != 200 || r.Error != nil || json.Unmarshal(r.Response.Body, &body) != nil ||
			len(body.Choices) != 1 || body.Choices[0].Message.Content == "" || body.Usage.TotalTokens == 0 || !strings.HasPrefix(r.ID, "batch_req_") {
			t.Errorf("result %s: got %+v", r.CustomID, r)
		}
	}
	if got := c.content(*done.ErrorFileID); got != "" {
		t.Errorf("error file: got %q, want empty", got)
	}
	var ef fileObj
	c.json("GET", "/v1/files/"+*done.ErrorFileID, nil, &ef)
	if ef.Bytes != 0 || ef.Purpose != "batch_output" {
		t.Errorf("error file object: got %+v, want 0 bytes of purpose batch_output", ef)
	}
}

func TestAuthAndVersionErrors(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, map[string]string{"SLUICE_API_KEYS": "good"})
	for _, tc := range []struct {
		name, path, key string
		status          int
		param           string
	}{
		{name: "no-key", path: "/v1/batches", status: 401},
		{name: "wrong-key", path: "/v1/batches", key: "bad", status: 401},
		{name: "missing-api-version", path: "/openai/batches", key: "good", status: 400, param: "api-version"},
		{name: "unknown-api-version", path: "/openai/batches?api-version=2020-01-01", key: "good", status: 400, param: "api-version"},
		{name: "unknown-batch", path: "/v1/batches/batch_nope", key: "good", status: 404, param: "batch_id"},
		{name: "unknown-file", path: "/openai/files/file-nope?api-version=2024-10-21", key: "good", status: 404, param: "file_id"},
		{name: "bad-limit", path: "/v1/batches?limit=101", key: "good", status: 400, param: "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := *c
			cc.tb, cc.key = t, tc.key
			var e apiError
			if status := cc.json("GET", tc.path, nil, &e); status != tc.status {
				t.Fatalf("got status %d, want %d", status, tc.status)
			}
			if e.Error.Message == "" || e.Error.Type != "invalid_request_error" {
				t.Errorf("got error %+v, want a message and type invalid_request_error", e.Error)
			}
			if tc.param != "" && (e.Error.Param == nil || *e.Error.Param != tc.param) {
				t.Errorf("param: got %v, want %q", e.Error.Param, tc.param)
			}
		})
	}
	t.Run("supported-versions-named", func(t *testing.T) {
		t.Parallel()
		cc := *c
		cc.tb = t
		_, b := cc.do("GET", "/openai/batches", nil, "")
		if !strings.Contains(string(b), "2024-10-21") || !strings.Contains(string(b), "2025-04-01-preview") {
			t.Errorf("got %s, want the supported versions named", b)
		}
	})
}

func TestRefusesOpenNonLoopback(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"sluice", "serve", "--addr", "0.0.0.0:0", "--data", t.TempDir()},
		func(string) string { return "" }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "no API key") {
		t.Fatalf("got %v, want a refusal naming the missing API key", err)
	}
}

func TestValidationCodes(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	good := func(id string) string {
		return `{"custom_id":"` + id + `","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}`
	}
	var many strings.Builder
	for i := range 100_001 {
		fmt.Fprintf(&many, `{"custom_id":"%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}`+"\n", i)
	}
	for _, tc := range []struct {
		name, file, endpoint string
		code, param          string
		line                 int
	}{
		{name: "invalid-json-line", file: good("a") + "\n{not json\n", code: "invalid_json_line", line: 2},
		{name: "too-many-tasks", file: many.String(), code: "too_many_tasks", line: 100_001},
		{name: "url-mismatch-between-lines", file: good("a") + "\n" + strings.Replace(good("b"), "/v1/chat/completions", "/v1/embeddings", 1) + "\n", code: "url_mismatch", line: 2},
		{name: "url-mismatch-with-endpoint", file: good("a") + "\n", endpoint: "/v1/embeddings", code: "url_mismatch", line: 1},
		{name: "body-without-messages", file: good("a") + "\n" + `{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini"}}` + "\n", code: "invalid_request", param: "body.messages", line: 2},
		{name: "model-not-found", file: "\n" + strings.Replace(good("a"), "gpt-4o-mini", "nope", 1) + "\n", code: "model_not_found", line: 2},
		{name: "duplicate-custom-id", file: good("a") + "\n" + good("b") + "\n" + good("a") + "\n", code: "duplicate_custom_id", line: 3},
		{name: "empty-batch", file: "\n\n", code: "empty_batch"},
		{name: "model-mismatch", file: good("a") + "\n" + strings.Replace(good("b"), "gpt-4o-mini", "gpt-4o", 1) + "\n", code: "model_mismatch", line: 2},
		{name: "missing-custom-id", file: good("a") + "\n" + `{"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini"}}`, code: "invalid_request", param: "custom_id", line: 2},
		{name: "custom-id-not-string", file: `{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini"}}`, code: "invalid_request", param: "custom_id", line: 1},
		{name: "method-not-post", file: strings.Replace(good("a"), "POST", "GET", 1), code: "invalid_request", param: "method", line: 1},
		{name: "body-not-object", file: `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":"hi"}`, code: "invalid_request", param: "body", line: 1},
		{name: "stream-true", file: `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","stream":true}}`, code: "invalid_request", param: "body.stream", line: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := *c
			cc.tb = t
			f := cc.mustUpload(tc.file)
			endpoint := tc.endpoint
			if endpoint == "" {
				endpoint = "/v1/chat/completions"
			}
			b := cc.waitBatch(cc.mustCreateBatch(f.ID, endpoint).ID, terminal)
			if b.Status != "failed" || b.FailedAt == nil || b.Errors == nil || len(b.Errors.Data) == 0 {
				t.Fatalf("got status %s errors %+v, want failed with errors", b.Status, b.Errors)
			}
			e := b.Errors.Data[0]
			if e.Code != tc.code || e.Message == "" {
				t.Errorf("code: got %q (%s), want %q", e.Code, e.Message, tc.code)
			}
			if tc.line == 0 && e.Line != nil {
				t.Errorf("line: got %d, want null", *e.Line)
			} else if tc.line != 0 && (e.Line == nil || *e.Line != tc.line) {
				t.Errorf("line: got %v, want %d", e.Line, tc.line)
			}
			if tc.param != "" && (e.Param == nil || *e.Param != tc.param) {
				t.Errorf("param: got %v, want %q", e.Param, tc.param)
			}
			if b.OutputFileID != nil {
				t.Errorf("output_file_id: got %q, want null for a failed batch", *b.OutputFileID)
			}
		})
	}
}

func TestCreateRejectsBadParameters(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	f := c.mustUpload(chatLines(1, "gpt-4o-mini"))
	meta := map[string]string{}
	for i := range 17 {
		meta[fmt.Sprint("k", i)] = "v"
	}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		param string
	}{
		{"missing-file", map[string]any{"endpoint": "/v1/chat/completions", "completion_window": "24h"}, "input_file_id"},
		{"unknown-file", map[string]any{"input_file_id": "file-nope", "endpoint": "/v1/chat/completions", "completion_window": "24h"}, "input_file_id"},
		{"bad-endpoint", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/images", "completion_window": "24h"}, "endpoint"},
		{"bad-window", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "48h"}, "completion_window"},
		{"too-much-metadata", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": meta}, "metadata"},
		{"metadata-value-too-long", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": map[string]string{"k": strings.Repeat("x", 513)}}, "metadata"},
		{"output-expiry-too-short", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h", "output_expires_after": map[string]any{"seconds": 60, "anchor": "created_at"}}, "output_expires_after.seconds"},
		{"output-expiry-no-anchor", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h", "output_expires_after": map[string]any{"seconds": 3600}}, "output_expires_after.anchor"},
		{"missing-window", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions"}, "completion_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := *c
			cc.tb = t
			var e apiError
			if status := cc.json("POST", "/v1/batches", tc.body, &e); status != 400 {
				t.Fatalf("got status %d, want 400", status)
			}
			if e.Error.Param == nil || *e.Error.Param != tc.param {
				t.Errorf("param: got %v, want %q (%s)", e.Error.Param, tc.param, e.Error.Message)
			}
		})
	}
}

func TestUploadErrors(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	for _, tc := range []struct {
		name   string
		fields map[string]string
		param  string
	}{
		{"missing-purpose", nil, "purpose"},
		{"wrong-purpose", map[string]string{"purpose": "fine-tune"}, "purpose"},
		{"expiry-too-long", map[string]string{"purpose": "batch", "expires_after[seconds]": "99999999", "expires_after[anchor]": "created_at"}, "expires_after.seconds"},
		{"expiry-bad-anchor", map[string]string{"purpose": "batch", "expires_after.seconds": "1209600", "expires_after.anchor": "now"}, "expires_after.anchor"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := *c
			cc.tb = t
			status, b := cc.upload("/v1/files", "x.jsonl", chatLines(1, "gpt-4o-mini"), tc.fields)
			var e apiError
			json.Unmarshal(b, &e)
			if status != 400 || e.Error.Param == nil || *e.Error.Param != tc.param {
				t.Errorf("got %d %s, want 400 with param %q", status, b, tc.param)
			}
		})
	}
	t.Run("rejected-upload-is-not-kept", func(t *testing.T) {
		t.Parallel()
		cc := *c
		cc.tb = t
		var list struct{ Data []fileObj }
		cc.json("GET", "/v1/files", nil, &list)
		for _, f := range list.Data {
			if f.Filename == "x.jsonl" {
				t.Errorf("a rejected upload is listed: %+v", f)
			}
		}
	})
}

func TestFilesListAndDelete(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	var ids []string
	for range 3 {
		ids = append(ids, c.mustUpload(chatLines(2, "gpt-4o-mini")).ID)
	}
	var page struct {
		Data    []fileObj `json:"data"`
		HasMore bool      `json:"has_more"`
		FirstID string    `json:"first_id"`
		LastID  string    `json:"last_id"`
	}
	c.json("GET", "/v1/files?limit=2", nil, &page)
	if len(page.Data) != 2 || !page.HasMore || page.FirstID != ids[2] || page.LastID != ids[1] {
		t.Fatalf("page 1: got %+v, want the two newest and has_more", page)
	}
	c.json("GET", "/v1/files?limit=2&after="+page.LastID, nil, &page)
	if len(page.Data) != 1 || page.HasMore || page.Data[0].ID != ids[0] {
		t.Fatalf("page 2: got %+v, want the oldest alone", page)
	}
	c.json("GET", "/v1/files?order=asc&limit=1", nil, &page)
	if len(page.Data) != 1 || page.Data[0].ID != ids[0] {
		t.Fatalf("asc: got %+v, want the oldest first", page)
	}
	var del struct {
		ID      string `json:"id"`
		Deleted bool   `json:"deleted"`
	}
	if status := c.json("DELETE", "/v1/files/"+ids[0], nil, &del); status != 200 || !del.Deleted || del.ID != ids[0] {
		t.Fatalf("delete: got %d %+v", status, del)
	}
	if status, _ := c.do("GET", "/v1/files/"+ids[0]+"/content", nil, ""); status != 404 {
		t.Errorf("content after delete: got %d, want 404", status)
	}
}

// slowSim starts a simulator answering after latency, for tests that need lines in flight.
func slowSim(tb testing.TB, latency time.Duration) (*sim.Server, string) {
	tb.Helper()
	s := sim.New(sim.Options{Latency: latency})
	ts := httptest.NewServer(s)
	tb.Cleanup(ts.Close)
	return s, ts.URL + "/v1"
}

func TestCancelKeepsFinishedLines(t *testing.T) {
	t.Parallel()
	s, url := slowSim(t, 100*time.Millisecond)
	// A long grace: lines in flight at the cancel may finish, but queued ones must not
	// be sent during it.
	c := MustRunMain(t, nil, "--upstream", url, "--deployment", "gpt-4o-mini", "--upstream-concurrency", "2", "--cancel-grace", "5s")
	const n = 60
	f := c.mustUpload(chatLines(n, "gpt-4o-mini"))
	b := c.mustCreateBatch(f.ID, "/v1/chat/completions")
	c.waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed >= 4 })

	var cancelling batchObj
	if status := c.json("POST", "/v1/batches/"+b.ID+"/cancel", nil, &cancelling); status != 200 {
		t.Fatalf("cancel: got %d", status)
	}
	if cancelling.Status != "cancelling" || cancelling.CancellingAt == nil {
		t.Errorf("cancel: got %s, want cancelling with cancelling_at", cancelling.Status)
	}
	done := c.waitBatch(b.ID, terminal)
	if done.Status != "cancelled" || done.CancelledAt == nil {
		t.Fatalf("got %s, want cancelled", done.Status)
	}
	results := parseResults(t, c.content(*done.OutputFileID))
	if len(results) != done.RequestCounts.Completed || len(results) < 4 || len(results) >= n {
		t.Errorf("output: got %d lines for %d completed of %d, want them equal, at least 4 and below %d", len(results), done.RequestCounts.Completed, n, n)
	}
	ids := customIDs(results)
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Errorf("custom_id %s appears twice", ids[i])
		}
	}
	// Sent: the lines that finished, plus at most one in flight per worker at the cancel
	// and one more each may have started before the engine saw it.
	if sent, max := s.Stats().Requests, int64(done.RequestCounts.Completed+2*2); sent > max {
		t.Errorf("upstream got %d requests for %d finished lines, want at most %d: queued lines were sent after the cancel", sent, done.RequestCounts.Completed, max)
	}
	var again batchObj
	if status := c.json("POST", "/v1/batches/"+b.ID+"/cancel", nil, &again); status != 200 || again.Status != "cancelled" {
		t.Errorf("cancel again: got %d %s, want 200 cancelled", status, again.Status)
	}
	c.json("GET", "/v1/batches/"+b.ID, nil, &again)
	if again.RequestCounts != done.RequestCounts {
		t.Errorf("counts moved after cancel: got %+v, want %+v", again.RequestCounts, done.RequestCounts)
	}
}

func TestCancelCompletedConflicts(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	f := c.mustUpload(chatLines(1, "gpt-4o-mini"))
	b := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	var e apiError
	if status := c.json("POST", "/v1/batches/"+b.ID+"/cancel", nil, &e); status != 409 || e.Error.Message == "" {
		t.Errorf("got %d %+v, want 409 with a message", status, e)
	}
	// The official SDKs retry 409 unless told not to; this one answers the same each time.
	resp, err := http.Post(c.base+"/v1/batches/"+b.ID+"/cancel", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("x-should-retry"); got != "false" {
		t.Errorf("x-should-retry: got %q, want false", got)
	}
	if status := c.json("DELETE", "/v1/files/"+f.ID, nil, &e); status != 200 {
		t.Errorf("delete input of an ended batch: got %d, want 200", status)
	}
}

func TestFailedLinesGoToErrorFile(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{FailRate: 1})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "sluice.yaml")
	writeFile(t, cfg, `
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: `+ts.URL+`/v1
        max_concurrency: 4
engine:
  max_attempts: 2
  backoff_base: 1ms
  backoff_max: 2ms
  outage_budget: 1ns
`)
	c := MustRunMain(t, nil, "--config", cfg)
	f := c.mustUpload(chatLines(5, "gpt-4o-mini"))
	b := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	if b.Status != "completed" || b.RequestCounts.Failed != 5 || b.RequestCounts.Completed != 0 {
		t.Fatalf("got %s %+v, want completed with 5 failed", b.Status, b.RequestCounts)
	}
	if got := c.content(*b.OutputFileID); got != "" {
		t.Errorf("output file: got %q, want empty", got)
	}
	errs := parseResults(t, c.content(*b.ErrorFileID))
	if len(errs) != 5 {
		t.Fatalf("error file: got %d lines, want 5", len(errs))
	}
	for _, r := range errs {
		if r.Response == nil || r.Response.StatusCode != 500 || !bytes.Contains(r.Response.Body, []byte(`"error"`)) {
			t.Errorf("error line %s: got %+v, want the upstream's 500 and body", r.CustomID, r.Response)
		}
	}
	if got := s.Stats().Requests; got != 10 {
		t.Errorf("upstream requests: got %d, want 10 (2 attempts of 5 lines)", got)
	}
}

func writeFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}
