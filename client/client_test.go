package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice/client"
)

// testClients returns a client of each route family of the server at url.
func testClients(t *testing.T, url, key string) map[string]*client.Client {
	t.Helper()
	openai, err := client.New(url+"/v1", key, nil)
	if err != nil {
		t.Fatal(err)
	}
	azure, err := client.NewAzure(url, key, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*client.Client{"openai": openai, "azure": azure}
}

func upload(t *testing.T, c *client.Client, name, content string) *client.File {
	t.Helper()
	f, err := c.UploadFile(context.Background(), client.FileUpload{Filename: name, Content: strings.NewReader(content), Size: int64(len(content))})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return f
}

// waitBatch polls a batch until it ends.
func waitBatch(t *testing.T, c *client.Client, id string) *client.Batch {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		b, err := c.GetBatch(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if b.Status.Terminal() {
			return b
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("batch %s did not end in 30s", id)
	return nil
}

// wantAPIError checks that err is an *client.Error with the status and code.
func wantAPIError(t *testing.T, err error, status int, code, param string) *client.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T), want a *client.Error", err, err)
	}
	if e.StatusCode != status || e.Code != code || e.Param != param || e.Message == "" {
		t.Errorf("got %d code %q param %q message %q, want %d code %q param %q and a message", e.StatusCode, e.Code, e.Param, e.Message,
			status, code, param)
	}
	return e
}

func TestClientFiles(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{})
	for name, c := range testClients(t, url, testKey) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			content := chatLines(3)
			f := upload(t, c, "input.jsonl", content)
			if f.Object != "file" || f.Bytes != int64(len(content)) || f.Filename != "input.jsonl" || f.Purpose != "batch" {
				t.Errorf("upload: got %+v", f)
			}
			if !bytes.Contains(f.RawJSON(), []byte(`"id":"`+f.ID+`"`)) {
				t.Errorf("RawJSON: got %s, want the file as sent", f.RawJSON())
			}
			got, err := c.GetFile(ctx, f.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != f.ID || got.Bytes != f.Bytes {
				t.Errorf("get: got %+v, want %+v", got, f)
			}
			var buf bytes.Buffer
			n, err := c.DownloadFile(ctx, f.ID, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if n != int64(len(content)) || buf.String() != content {
				t.Errorf("download: got %d bytes %q, want %q", n, buf.String(), content)
			}
			if err := c.DeleteFile(ctx, f.ID); err != nil {
				t.Fatal(err)
			}
			_, err = c.GetFile(ctx, f.ID)
			wantAPIError(t, err, http.StatusNotFound, map[string]string{"openai": "", "azure": "notFound"}[name], "file_id")
		})
	}
}

func TestClientFileExpiry(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{})
	c := testClients(t, url, testKey)["openai"]
	content := chatLines(1)
	f, err := c.UploadFile(context.Background(), client.FileUpload{Filename: "a.jsonl", Content: strings.NewReader(content),
		Size: -1, ExpiresAfter: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if f.ExpiresAt != f.CreatedAt+7200 {
		t.Errorf("expires_at: got %d, want created_at %d + 7200", f.ExpiresAt, f.CreatedAt)
	}
	_, err = c.UploadFile(context.Background(), client.FileUpload{Filename: "a.jsonl", Content: strings.NewReader(content),
		Size: int64(len(content)), ExpiresAfter: time.Minute})
	wantAPIError(t, err, http.StatusBadRequest, "", "expires_after.seconds")
}

func TestClientListPages(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{})
	c := testClients(t, url, testKey)["openai"]
	ctx := context.Background()
	var want []string
	for range 5 {
		want = append([]string{upload(t, c, "f.jsonl", chatLines(1)).ID}, want...) // newest first
	}
	page, err := c.ListFiles(ctx, &client.FileListParams{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 || !page.HasMore || page.FirstID != want[0] || page.LastID != want[1] {
		t.Errorf("first page: got %d files, has_more %v, %s..%s; want 2, true, %s..%s", len(page.Data), page.HasMore,
			page.FirstID, page.LastID, want[0], want[1])
	}
	var got []string
	for f, err := range c.AllFiles(ctx, &client.FileListParams{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.ID)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("AllFiles (-want +got):\n%s", diff)
	}
	// Breaking out of the loop stops it.
	n := 0
	for range c.AllFiles(ctx, &client.FileListParams{Limit: 1}) {
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("break: got %d files, want 3", n)
	}
}

func TestClientBatches(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{})
	for name, c := range testClients(t, url, testKey) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := upload(t, c, "input.jsonl", chatLines(4))
			b, err := c.CreateBatch(ctx, client.BatchCreate{InputFileID: f.ID, Endpoint: "/v1/chat/completions",
				Metadata: map[string]string{"job": name}, IdempotencyKey: "create-" + name})
			if err != nil {
				t.Fatal(err)
			}
			if b.Object != "batch" || b.InputFileID != f.ID || b.CompletionWindow != "24h" || b.Metadata["job"] != name {
				t.Errorf("create: got %+v", b)
			}
			// The same key again creates nothing more.
			again, err := c.CreateBatch(ctx, client.BatchCreate{InputFileID: f.ID, Endpoint: "/v1/chat/completions",
				Metadata: map[string]string{"job": name}, IdempotencyKey: "create-" + name})
			if err != nil {
				t.Fatal(err)
			}
			if again.ID != b.ID {
				t.Errorf("create with the same Idempotency-Key: got %s, want %s", again.ID, b.ID)
			}
			done := waitBatch(t, c, b.ID)
			want := client.RequestCounts{Total: 4, Completed: 4}
			if done.Status != client.StatusCompleted || done.RequestCounts != want || done.OutputFileID == "" || done.ErrorFileID == "" {
				t.Fatalf("got %s %+v output %q errors %q, want completed %+v with both files", done.Status, done.RequestCounts,
					done.OutputFileID, done.ErrorFileID, want)
			}
			var out bytes.Buffer
			if _, err := c.DownloadFile(ctx, done.OutputFileID, &out); err != nil {
				t.Fatal(err)
			}
			if n := strings.Count(out.String(), "\n"); n != 4 {
				t.Errorf("output: got %d lines, want 4:\n%s", n, out.String())
			}
			var line struct {
				CustomID string `json:"custom_id"`
				Response struct {
					StatusCode int `json:"status_code"`
				} `json:"response"`
			}
			if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &line); err != nil || line.Response.StatusCode != 200 {
				t.Errorf("output line: got %+v, %v", line, err)
			}

			found := false
			for b, err := range c.AllBatches(ctx, nil) {
				if err != nil {
					t.Fatal(err)
				}
				found = found || b.ID == done.ID
			}
			if !found {
				t.Errorf("AllBatches: %s not listed", done.ID)
			}
			_, err = c.CancelBatch(ctx, done.ID)
			wantAPIError(t, err, http.StatusConflict, map[string]string{"openai": "", "azure": "conflict"}[name], "")
		})
	}
}

func TestClientCancel(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{Latency: 200 * time.Millisecond})
	c := testClients(t, url, testKey)["openai"]
	ctx := context.Background()
	f := upload(t, c, "input.jsonl", chatLines(50))
	b, err := c.CreateBatch(ctx, client.BatchCreate{InputFileID: f.ID, Endpoint: "/v1/chat/completions"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.CancelBatch(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != client.StatusCancelling && got.Status != client.StatusCancelled {
		t.Errorf("cancel: got %s, want cancelling", got.Status)
	}
	if done := waitBatch(t, c, b.ID); done.Status != client.StatusCancelled {
		t.Errorf("got %s, want cancelled", done.Status)
	}
}

func TestClientRetryAndResults(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{FailRate: 1})
	c := testClients(t, url, testKey)["openai"]
	ctx := context.Background()
	f := upload(t, c, "input.jsonl", chatLines(3))
	b, err := c.CreateBatch(ctx, client.BatchCreate{InputFileID: f.ID, Endpoint: "/v1/chat/completions"})
	if err != nil {
		t.Fatal(err)
	}
	done := waitBatch(t, c, b.ID)
	if done.RequestCounts.Failed != 3 {
		t.Fatalf("got %+v, want 3 failed", done.RequestCounts)
	}
	var errs bytes.Buffer
	cursor, n, err := c.BatchResults(ctx, b.ID, &client.ResultsParams{Type: "error"}, &errs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(errs.String(), "\n") != 3 || n != int64(errs.Len()) || cursor == "" {
		t.Errorf("results: got %d bytes, cursor %q:\n%s", n, cursor, errs.String())
	}
	_, n, err = c.BatchResults(ctx, b.ID, &client.ResultsParams{Type: "error", Cursor: cursor}, &errs)
	if err != nil || n != 0 {
		t.Errorf("results from the cursor: got %d bytes, %v; want none", n, err)
	}
	_, _, err = c.BatchResults(ctx, b.ID, &client.ResultsParams{Type: "bogus"}, &errs)
	wantAPIError(t, err, http.StatusBadRequest, "", "type")

	r, err := c.RetryBatch(ctx, b.ID, client.RetryFailed, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.ID == b.ID || r.Metadata["retry_of"] != b.ID {
		t.Errorf("retry: got %s with metadata %v, want a new batch with retry_of %s", r.ID, r.Metadata, b.ID)
	}
	if got := waitBatch(t, c, r.ID); got.RequestCounts.Total != 3 {
		t.Errorf("retry: got %+v, want 3 lines", got.RequestCounts)
	}
}

func TestClientErrors(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{TokenLimit: 10})
	ctx := context.Background()

	t.Run("WrongKey", func(t *testing.T) {
		t.Parallel()
		for name, c := range testClients(t, url, "wrong") {
			_, err := c.ListFiles(ctx, nil)
			wantAPIError(t, err, http.StatusUnauthorized, map[string]string{"openai": "invalid_api_key", "azure": "unauthorized"}[name], "")
		}
	})
	t.Run("NoKey", func(t *testing.T) {
		t.Parallel()
		c, _ := client.New(url, "", nil)
		_, err := c.ListBatches(ctx, nil)
		e := wantAPIError(t, err, http.StatusUnauthorized, "", "")
		if e.Type != "invalid_request_error" {
			t.Errorf("type: got %q, want invalid_request_error", e.Type)
		}
	})
	t.Run("BadAPIVersion", func(t *testing.T) {
		t.Parallel()
		c, _ := client.NewAzure(url, testKey, "1999-01-01", nil)
		_, err := c.ListBatches(ctx, nil)
		wantAPIError(t, err, http.StatusBadRequest, "invalidPayload", "api-version")
	})
	t.Run("MissingEndpoint", func(t *testing.T) {
		t.Parallel()
		c := testClients(t, url, testKey)["openai"]
		_, err := c.CreateBatch(ctx, client.BatchCreate{InputFileID: "file-nope"})
		var e *client.Error
		if !errors.As(err, &e) || e.StatusCode != http.StatusBadRequest || e.Param == "" {
			t.Errorf("got %v, want a 400 naming a param", err)
		}
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		c := testClients(t, url, testKey)["openai"]
		_, err := c.GetBatch(ctx, "batch_nope")
		wantAPIError(t, err, http.StatusNotFound, "", "batch_id")
		_, err = c.DownloadFile(ctx, "file-nope", &bytes.Buffer{})
		wantAPIError(t, err, http.StatusNotFound, "", "file_id")
	})
	t.Run("TokenLimitExceeded", func(t *testing.T) {
		t.Parallel()
		c := testClients(t, url, testKey)["openai"]
		f := upload(t, c, "big.jsonl", chatLines(3))
		_, err := c.CreateBatch(ctx, client.BatchCreate{InputFileID: f.ID, Endpoint: "/v1/chat/completions"})
		e := wantAPIError(t, err, http.StatusBadRequest, "token_limit_exceeded", "input_file_id")
		if !strings.Contains(e.Error(), "400 token_limit_exceeded: ") || !strings.HasSuffix(e.Error(), "(param input_file_id)") {
			t.Errorf("Error(): got %q", e.Error())
		}
	})
	t.Run("NotTheAPI", func(t *testing.T) {
		t.Parallel()
		_, other := newRecorder(t, http.StatusBadGateway, "<html>bad gateway</html>")
		c, _ := client.New(other, "", nil)
		_, err := c.GetFile(ctx, "file-1")
		e := wantAPIError(t, err, http.StatusBadGateway, "", "")
		if e.Message != "<html>bad gateway</html>" {
			t.Errorf("message: got %q", e.Message)
		}
	})
	t.Run("Unreachable", func(t *testing.T) {
		t.Parallel()
		c, _ := client.New("http://127.0.0.1:1", "", nil)
		_, err := c.GetFile(ctx, "file-1")
		var e *client.Error
		if err == nil || errors.As(err, &e) {
			t.Errorf("got %v, want a connection error", err)
		}
	})
}

func TestClientDeployments(t *testing.T) {
	t.Parallel()
	url := MustServe(t, serverOptions{TokenLimit: 1000})
	for name, c := range testClients(t, url, testKey) {
		l, err := c.ListDeployments(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Data) != 1 {
			t.Fatalf("%s: got %d deployments, want 1", name, len(l.Data))
		}
		d := l.Data[0]
		if d.ID != "gpt-4o-mini" || d.Object != "deployment" || d.Quota.MaximumEnqueuedTokens == nil || *d.Quota.MaximumEnqueuedTokens != 1000 {
			t.Errorf("%s: got %+v", name, d)
		}
		one, err := c.GetDeployment(context.Background(), "gpt-4o-mini")
		if err != nil || one.ID != "gpt-4o-mini" {
			t.Errorf("%s: get: got %+v, %v", name, one, err)
		}
	}
}

// TestClientUploadInParts sets the package's part size, a global, so it does not run
// in parallel.
func TestClientUploadInParts(t *testing.T) {
	defer client.SetPartSize(100)()
	url := MustServe(t, serverOptions{})
	for name, c := range testClients(t, url, testKey) {
		content := chatLines(3) // three parts and a bit
		f, err := c.UploadFileInParts(context.Background(), client.FileUpload{Filename: "parts.jsonl",
			Content: strings.NewReader(content), Size: int64(len(content))})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var buf bytes.Buffer
		if _, err := c.DownloadFile(context.Background(), f.ID, &buf); err != nil {
			t.Fatal(err)
		}
		if buf.String() != content || f.Filename != "parts.jsonl" {
			t.Errorf("%s: got %q named %q, want the content named parts.jsonl", name, buf.String(), f.Filename)
		}
		// A size that is wrong fails, and cancels the upload.
		_, err = c.UploadFileInParts(context.Background(), client.FileUpload{Filename: "short.jsonl",
			Content: strings.NewReader(content), Size: int64(len(content)) + 10})
		if err == nil {
			t.Errorf("%s: upload with a wrong size: got no error", name)
		}
	}
}

func TestClientRequestShape(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("OpenAI", func(t *testing.T) {
		t.Parallel()
		rec, url := newRecorder(t, http.StatusOK, `{"id":"file-1","object":"file","bytes":5}`)
		c, err := client.New(url, "k1", &client.Options{UserAgent: "test/1"})
		if err != nil {
			t.Fatal(err)
		}
		if c.BaseURL() != url+"/v1" || c.Azure() {
			t.Errorf("BaseURL: got %s azure %v, want %s/v1", c.BaseURL(), c.Azure(), url)
		}
		if _, err := c.UploadFile(ctx, client.FileUpload{Filename: `a "b".jsonl`, Content: strings.NewReader("hello"), Size: 5}); err != nil {
			t.Fatal(err)
		}
		got := <-rec.seen
		if got.method != "POST" || got.path != "/v1/files" || got.query != "" {
			t.Errorf("got %s %s?%s, want POST /v1/files", got.method, got.path, got.query)
		}
		if got.header.Get("Authorization") != "Bearer k1" || got.header.Get("api-key") != "" || got.header.Get("User-Agent") != "test/1" {
			t.Errorf("headers: got %v", got.header)
		}
		if got.contentLength != int64(len(got.body)) {
			t.Errorf("Content-Length: got %d, want %d, the body's length", got.contentLength, len(got.body))
		}
		for _, want := range []string{"name=\"purpose\"\r\n\r\nbatch\r\n", `name="file"; filename="a \"b\".jsonl"`, "\r\n\r\nhello\r\n--"} {
			if !bytes.Contains(got.body, []byte(want)) {
				t.Errorf("body: got %q, want it to hold %q", got.body, want)
			}
		}
	})
	t.Run("Azure", func(t *testing.T) {
		t.Parallel()
		rec, url := newRecorder(t, http.StatusOK, `{"id":"batch_1","object":"batch","status":"validating"}`)
		for _, tc := range []struct {
			endpoint, version, wantPath, wantQuery string
		}{
			{url, "", "/openai/batches/batch_1", "api-version=" + client.DefaultAPIVersion},
			{url + "/openai/", "2024-10-21", "/openai/batches/batch_1", "api-version=2024-10-21"},
			{url + "/openai/v1", "", "/openai/v1/batches/batch_1", ""},
		} {
			c, err := client.NewAzure(tc.endpoint, "k2", tc.version, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.GetBatch(ctx, "batch_1"); err != nil {
				t.Fatal(err)
			}
			got := <-rec.seen
			if got.path != tc.wantPath || got.query != tc.wantQuery || got.header.Get("api-key") != "k2" || got.header.Get("Authorization") != "" {
				t.Errorf("%s: got %s?%s with %v, want %s?%s with api-key", tc.endpoint, got.path, got.query, got.header, tc.wantPath, tc.wantQuery)
			}
		}
	})
	t.Run("BadBaseURL", func(t *testing.T) {
		t.Parallel()
		for _, u := range []string{"", "localhost:8080", "ftp://x/v1"} {
			if _, err := client.New(u, "", nil); err == nil {
				t.Errorf("New(%q): got no error", u)
			}
		}
	})
}
