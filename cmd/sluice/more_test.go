package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestUploadOverLimitIsRefusedAndNotKept(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil, "--max-upload-bytes", "1000")
	status, b := c.upload("/v1/files", "big.jsonl", chatLines(20, "gpt-4o-mini"), map[string]string{"purpose": "batch"})
	var e apiError
	if json.Unmarshal(b, &e) != nil || status != 413 || e.Error.Message == "" || e.Error.Param == nil || *e.Error.Param != "file" {
		t.Fatalf("got %d %s, want 413 with param file", status, b)
	}
	var list struct{ Data []fileObj }
	c.json("GET", "/v1/files", nil, &list)
	if len(list.Data) != 0 {
		t.Errorf("files after a refused upload: got %+v, want none", list.Data)
	}
	if f := c.mustUpload(chatLines(2, "gpt-4o-mini")); f.Status != "processed" {
		t.Errorf("a small upload after: got status %s, want processed", f.Status)
	}
}

// TestUploadIsPendingWhileItArrives holds an upload open half-way and lists the files.
func TestUploadIsPendingWhileItArrives(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan fileObj, 1)
	go func() {
		req, _ := http.NewRequest("POST", c.base+"/v1/files", pr)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		var f fileObj
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&f)
			resp.Body.Close()
		}
		done <- f
	}()
	fw, _ := mw.CreateFormFile("file", "slow.jsonl")
	content := chatLines(4, "gpt-4o-mini")
	half := len(content) / 2
	io.WriteString(fw, content[:half])

	var pending fileObj
	deadline := time.Now().Add(10 * time.Second)
	for pending.ID == "" && time.Now().Before(deadline) {
		var list struct{ Data []fileObj }
		c.json("GET", "/v1/files", nil, &list)
		if len(list.Data) == 1 {
			pending = list.Data[0]
		}
	}
	if pending.Status != "pending" {
		t.Fatalf("during the upload: got %+v, want one pending file", pending)
	}
	if status, _ := c.do("GET", "/v1/files/"+pending.ID+"/content", nil, ""); status != 409 {
		t.Errorf("content of a pending file: got %d, want 409", status)
	}
	io.WriteString(fw, content[half:])
	mw.WriteField("purpose", "batch") // after the file, as some SDKs send it
	mw.Close()
	pw.Close()
	f := <-done
	if f.ID != pending.ID || f.Status != "processed" || f.Bytes != int64(len(content)) {
		t.Errorf("after the upload: got %+v, want %s processed with %d bytes", f, pending.ID, len(content))
	}
}

func TestBatchListPages(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	f := c.mustUpload(chatLines(1, "gpt-4o-mini"))
	var ids []string
	for range 3 {
		ids = append(ids, c.mustCreateBatch(f.ID, "/v1/chat/completions").ID)
	}
	var page struct {
		Object  string     `json:"object"`
		Data    []batchObj `json:"data"`
		FirstID string     `json:"first_id"`
		LastID  string     `json:"last_id"`
		HasMore bool       `json:"has_more"`
	}
	c.json("GET", "/v1/batches?limit=2", nil, &page)
	if page.Object != "list" || len(page.Data) != 2 || !page.HasMore || page.FirstID != ids[2] || page.LastID != ids[1] {
		t.Fatalf("page 1: got %+v, want the two newest with has_more", page)
	}
	c.json("GET", "/v1/batches?limit=2&after="+page.LastID, nil, &page)
	if len(page.Data) != 1 || page.HasMore || page.FirstID != ids[0] {
		t.Fatalf("page 2: got %+v, want the oldest alone", page)
	}
	c.json("GET", "/openai/batches?api-version=2025-04-01-preview", nil, &page)
	if len(page.Data) != 3 {
		t.Errorf("default limit on /openai: got %d batches, want 3", len(page.Data))
	}
}

func TestSimCommand(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"sluice", "sim", "--addr", "127.0.0.1:0", "--latency", "1ms", "--model", "tiny"}, func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	url := strings.TrimSpace(strings.TrimPrefix(line, "sluice sim listening on "))
	resp, err := http.Post(url+"/chat/completions", "application/json",
		strings.NewReader(`{"model":"tiny","messages":[{"role":"user","content":"hello there"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Object string
		Usage  struct {
			PromptTokens int `json:"prompt_tokens"`
		}
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body.Object != "chat.completion" || body.Usage.PromptTokens == 0 {
		t.Errorf("got %d %+v, want a chat.completion with usage", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("sim exited with %v", err)
	}
}

func TestSimCommandRejectsBadKnob(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"sluice", "sim", "--fail-rate", "1.5"}, func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "fail") {
		t.Errorf("got %v, want an error naming the fail rate", err)
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, yaml, want string }{
		{"no-upstreams", "deployments:\n  - name: d\n", "deployments[0].upstreams"},
		{"bad-url", "deployments:\n  - name: d\n    upstreams:\n      - base_url: localhost:8000\n", "deployments[0].upstreams[0].base_url"},
		{"duplicate", "deployments:\n  - name: d\n    upstreams: [{base_url: 'http://a'}]\n  - name: d\n    upstreams: [{base_url: 'http://a'}]\n", "deployments[1].name"},
		{"unknown-field", "deployment:\n  - name: d\n", "deployment"},
		{"short-lease", "engine:\n  lease_duration: 8ms\n", "engine.lease_duration"},
		{"small-timeout-factor", "engine:\n  timeout_factor: 0.5\n", "engine.timeout_factor"},
		{"min-over-request-timeout", "engine:\n  request_timeout: 2s\n  min_request_timeout: 5s\n", "engine.min_request_timeout"},
		{"negative-connect-timeout", "engine:\n  connect_timeout: -1s\n", "engine.connect_timeout"},
		{"bad-limit", "deployments:\n  - name: d\n    enqueued_token_limit: lots\n    upstreams: [{base_url: 'http://a'}]\n", "enqueued_token_limit"},
		{"negative-limit", "deployments:\n  - name: d\n    enqueued_token_limit: -5\n    upstreams: [{base_url: 'http://a'}]\n", "enqueued_token_limit"},
		{"no-default-limit", "deployments:\n  - name: llama\n    enqueued_token_limit: default\n    upstreams: [{base_url: 'http://a'}]\n", "deployments[0].enqueued_token_limit"},
		{"datazone-without-zone", "deployments:\n  - name: d\n    type: datazone\n    upstreams: [{base_url: 'http://a', zone: eu}]\n", "deployments[0].zone is required"},
		{"datazone-foreign-upstream", "deployments:\n  - name: d\n    type: datazone\n    zone: eu\n    upstreams: [{base_url: 'http://a', zone: eu}, {base_url: 'http://b', zone: us}]\n", "deployments[0].upstreams[1].zone"},
		{"datazone-unzoned-upstream", "deployments:\n  - name: d\n    type: datazone\n    zone: eu\n    upstreams: [{base_url: 'http://a'}]\n", "deployments[0].upstreams[0].zone"},
		{"zone-on-global", "deployments:\n  - name: d\n    zone: eu\n    upstreams: [{base_url: 'http://a'}]\n", "deployments[0].zone"},
		{"bad-share", "deployments:\n  - name: d\n    dynamic_quota_share: -1\n    upstreams: [{base_url: 'http://a'}]\n", "deployments[0].dynamic_quota_share"},
		{"bad-discount", "deployments:\n  - name: d\n    price: {input: 1, batch_discount: 2}\n    upstreams: [{base_url: 'http://a'}]\n", "deployments[0].price.batch_discount"},
		{"bad-endpoint", "deployments:\n  - name: d\n    endpoints: [/v1/images]\n    upstreams: [{base_url: 'http://a'}]\n", "deployments[0].endpoints"},
		{"bad-encoding", "deployments:\n  - name: d\n    encoding: gpt2-ish\n    upstreams: [{base_url: 'http://a'}]\n", "deployment d"},
		{"project-twice", "projects:\n  - name: a\n  - name: a\n", "projects[1]: a project named \"a\" is listed twice"},
		{"project-role", "projects:\n  - name: a\n    keys: [{key: k, role: owner}]\n", "projects[0].keys[0].role"},
		{"project-key-sources", "projects:\n  - name: a\n    keys: [{key: k, key_env: K}]\n", "projects[0].keys[0]: give one of"},
		{"project-key-none", "projects:\n  - name: a\n    keys: [{role: admin}]\n", "projects[0].keys[0]: give one of"},
		{"project-key-hash", "projects:\n  - name: a\n    keys: [{key_sha256: abc}]\n", "projects[0].keys[0].key_sha256"},
		{"project-key-env", "projects:\n  - name: a\n    keys: [{key_env: NOT_SET}]\n", "projects[0].keys[0].key_env: NOT_SET is not set"},
		{"project-default-limit", "projects:\n  - name: a\n    enqueued_token_limit: default\n", "projects[0].enqueued_token_limit"},
		{"project-negative-batches", "projects:\n  - name: a\n    max_batches: -1\n", "projects[0].max_batches"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := t.TempDir() + "/c.yaml"
			writeFile(t, path, tc.yaml)
			err := run(context.Background(), []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--config", path},
				func(string) string { return "" }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestDataFolderIsLocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	err = run(context.Background(), []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", dir},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("got %v, want the data folder in use", err)
	}
}

func TestCreateStatusByAPIVersion(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	f := c.mustUpload(chatLines(1, "gpt-4o-mini"))
	body := map[string]any{"input_file_id": f.ID, "endpoint": "/chat/completions", "completion_window": "24h"}
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/v1/batches", 200},
		{"/openai/batches?api-version=2024-10-21", 200},
		{"/openai/batches?api-version=2025-04-01-preview", 201},
		{"/openai/batches?api-version=2024-07-01-preview", 201},
	} {
		var b batchObj
		if got := c.json("POST", tc.path, body, &b); got != tc.status || b.Status != "validating" {
			t.Errorf("%s: got %d %s, want %d validating", tc.path, got, b.Status, tc.status)
		}
	}
}

func TestBadRequestBodies(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	for _, tc := range []struct {
		name, method, path, contentType, body string
		status                                int
		param                                 string
	}{
		{name: "create-not-json", method: "POST", path: "/v1/batches", contentType: "application/json", body: `{"input_file_id":`, status: 400},
		{name: "create-empty-body", method: "POST", path: "/v1/batches", contentType: "application/json", body: ``, status: 400},
		{name: "create-metadata-not-strings", method: "POST", path: "/v1/batches", contentType: "application/json",
			body: `{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"k":1}}`, status: 400, param: "metadata"},
		{name: "create-window-not-string", method: "POST", path: "/v1/batches", contentType: "application/json",
			body: `{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":24}`, status: 400, param: "completion_window"},
		{name: "upload-not-multipart", method: "POST", path: "/v1/files", contentType: "application/json", body: `{}`, status: 400},
		{name: "upload-broken-multipart", method: "POST", path: "/v1/files", contentType: "multipart/form-data; boundary=xyz", body: "--xyz\r\nnonsense", status: 400},
		{name: "create-junk-after-body", method: "POST", path: "/v1/batches", contentType: "application/json",
			body: `{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h"} {}`, status: 400},
		{name: "create-text-plain", method: "POST", path: "/v1/batches", contentType: "text/plain",
			body: `{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h"}`, status: 400},
		{name: "create-array-body", method: "POST", path: "/v1/batches", contentType: "application/json", body: `[]`, status: 400},
		{name: "unknown-route", method: "GET", path: "/v1/assistants", status: 404},
		{name: "wrong-method", method: "PUT", path: "/v1/batches", status: 405},
		{name: "wrong-method-on-item", method: "DELETE", path: "/openai/batches/batch_1?api-version=2024-10-21", status: 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cc := *c
			cc.tb = t
			status, b := cc.do(tc.method, tc.path, strings.NewReader(tc.body), tc.contentType)
			var e apiError
			if err := json.Unmarshal(b, &e); err != nil || status != tc.status || e.Error.Message == "" || e.Error.Type == "" {
				t.Fatalf("got %d %s, want %d in the error shape", status, b, tc.status)
			}
			if tc.param != "" && (e.Error.Param == nil || *e.Error.Param != tc.param) {
				t.Errorf("param: got %v, want %q", e.Error.Param, tc.param)
			}
			// Messages speak of JSON, never of the Go types behind it.
			for _, leak := range []string{"httpapi.", "map[", "int64", "string]", "struct"} {
				if strings.Contains(e.Error.Message, leak) {
					t.Errorf("message %q names a Go type (%s)", e.Error.Message, leak)
				}
			}
		})
	}
	t.Run("two-file-parts", func(t *testing.T) {
		t.Parallel()
		cc := *c
		cc.tb = t
		var buf strings.Builder
		mw := multipart.NewWriter(&buf)
		mw.WriteField("purpose", "batch")
		for range 2 {
			fw, _ := mw.CreateFormFile("file", "twice.jsonl")
			io.WriteString(fw, chatLines(1, "gpt-4o-mini"))
		}
		mw.Close()
		status, b := cc.do("POST", "/v1/files", strings.NewReader(buf.String()), mw.FormDataContentType())
		if status != 400 {
			t.Fatalf("got %d %s, want 400", status, b)
		}
		var list struct{ Data []fileObj }
		cc.json("GET", "/v1/files", nil, &list)
		for _, f := range list.Data {
			if f.Filename == "twice.jsonl" {
				t.Errorf("the refused upload is listed: %+v", f)
			}
		}
	})
}
