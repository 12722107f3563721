// Package e2e is an end-to-end test of a running Sluice server, driven by the
// official Go SDK github.com/openai/openai-go/v3, in both its Azure mode
// (/openai/...?api-version=, api-key header) and its plain OpenAI mode
// (/v1/..., Authorization: Bearer).
//
// Environment:
//
//	SLUICE_URL         base URL of the server, e.g. http://127.0.0.1:8080 (no trailing slash)
//	SLUICE_API_KEY     API key; empty means the server runs without auth ("unused" is sent)
//	SLUICE_DEPLOYMENT  model / deployment name written into the batch lines (default gpt-4o-mini)
//
// Without SLUICE_URL the tests skip; e2e/run.sh builds and starts a server and
// runs them against it.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/azure"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/shared"
)

const (
	apiVersion   = "2024-10-21"
	pollInterval = 200 * time.Millisecond
	pollTimeout  = 120 * time.Second
)

var questions = []string{
	"When was Microsoft founded?",
	"When was the first XBOX released?",
	"What is Altair Basic?",
}

// env holds the server coordinates; it skips the test when SLUICE_URL is unset.
type env struct {
	url        string // no trailing slash
	key        string // what the clients send
	rawKey     string // SLUICE_API_KEY as given; empty means no auth
	deployment string
}

func getEnv(t *testing.T) env {
	t.Helper()
	u := strings.TrimRight(os.Getenv("SLUICE_URL"), "/")
	if u == "" {
		t.Skip("SLUICE_URL not set: run through e2e/run.sh")
	}
	e := env{url: u, rawKey: os.Getenv("SLUICE_API_KEY"), deployment: os.Getenv("SLUICE_DEPLOYMENT")}
	e.key = e.rawKey
	if e.key == "" {
		e.key = "unused"
	}
	if e.deployment == "" {
		e.deployment = "gpt-4o-mini"
	}
	return e
}

func azureClient(e env, key string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		azure.WithEndpoint(e.url, apiVersion),
		azure.WithAPIKey(key),
		azure.WithUnsafeAllowHTTP(),
	}, opts...)...)
}

func plainClient(e env, key string, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(e.url + "/v1/"),
		option.WithAPIKey(key),
	}, opts...)...)
}

// inputJSONL is the seed guide's three-line batch input, with url as each line's url.
func inputJSONL(t *testing.T, deployment, url string) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i, q := range questions {
		line, err := json.Marshal(map[string]any{
			"custom_id": fmt.Sprintf("task-%d", i),
			"method":    "POST",
			"url":       url,
			"body": map[string]any{
				"model": deployment,
				"messages": []map[string]string{
					{"role": "system", "content": "You are an AI assistant that helps people find information."},
					{"role": "user", "content": q},
				},
			},
		})
		if err != nil {
			t.Fatalf("marshal input line: %v", err)
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// poll calls check every pollInterval until it reports done, for at most pollTimeout.
func poll(t *testing.T, ctx context.Context, what string, check func() (done bool, state string)) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for {
		done, state := check()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %v; last state: %s", what, pollTimeout, state)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v; last state: %s", what, ctx.Err(), state)
		case <-time.After(pollInterval):
		}
	}
}

func terminal(s openai.BatchStatus) bool {
	switch s {
	case openai.BatchStatusCompleted, openai.BatchStatusFailed, openai.BatchStatusCancelled, openai.BatchStatusExpired:
		return true
	}
	return false
}

// completedBatch uploads the input, creates a batch on endpoint, waits for it to
// end and checks that it completed 3/3/0. It returns the batch and the input file id.
func completedBatch(t *testing.T, ctx context.Context, client openai.Client, deployment string, endpoint openai.BatchNewParamsEndpoint) (*openai.Batch, string) {
	t.Helper()

	uploaded, err := client.Files.New(ctx, openai.FileNewParams{
		File:    openai.File(bytes.NewReader(inputJSONL(t, deployment, string(endpoint))), "test.jsonl", "application/jsonl"),
		Purpose: openai.FilePurposeBatch,
	})
	if err != nil {
		t.Fatalf("Files.New: %v", err)
	}
	if !strings.HasPrefix(uploaded.ID, "file-") {
		t.Fatalf("uploaded file id: got %q, want prefix %q", uploaded.ID, "file-")
	}

	file := uploaded
	poll(t, ctx, "file "+uploaded.ID+" processing", func() (bool, string) {
		if file.Status == openai.FileObjectStatusProcessed {
			return true, string(file.Status)
		}
		if file.Status == openai.FileObjectStatusError {
			t.Fatalf("file status: got %q, want %q: %s", file.Status, openai.FileObjectStatusProcessed, file.RawJSON())
		}
		f, err := client.Files.Get(ctx, uploaded.ID)
		if err != nil {
			t.Fatalf("Files.Get(%s): %v", uploaded.ID, err)
		}
		file = f
		return false, string(file.Status)
	})
	if file.ID != uploaded.ID {
		t.Fatalf("Files.Get id: got %q, want %q", file.ID, uploaded.ID)
	}

	created, err := client.Batches.New(ctx, openai.BatchNewParams{
		InputFileID:      uploaded.ID,
		Endpoint:         endpoint,
		CompletionWindow: openai.BatchNewParamsCompletionWindow24h,
		Metadata:         shared.Metadata{"suite": "e2e"},
	})
	if err != nil {
		t.Fatalf("Batches.New: %v", err)
	}
	if !strings.HasPrefix(created.ID, "batch_") {
		t.Fatalf("batch id: got %q, want prefix %q", created.ID, "batch_")
	}
	switch created.Status {
	case openai.BatchStatusValidating, openai.BatchStatusInProgress, openai.BatchStatusFinalizing, openai.BatchStatusCompleted:
	default:
		t.Fatalf("status after create: got %q, want validating, in_progress, finalizing or completed", created.Status)
	}
	if created.InputFileID != uploaded.ID {
		t.Errorf("batch input_file_id: got %q, want %q", created.InputFileID, uploaded.ID)
	}
	if created.Endpoint != string(endpoint) {
		t.Errorf("batch endpoint: got %q, want %q", created.Endpoint, endpoint)
	}

	batch := created
	poll(t, ctx, "batch "+created.ID, func() (bool, string) {
		if terminal(batch.Status) {
			return true, string(batch.Status)
		}
		b, err := client.Batches.Get(ctx, created.ID)
		if err != nil {
			t.Fatalf("Batches.Get(%s): %v", created.ID, err)
		}
		batch = b
		return false, string(batch.Status)
	})
	if batch.Status != openai.BatchStatusCompleted {
		t.Fatalf("batch status: got %q, want %q: %s", batch.Status, openai.BatchStatusCompleted, batch.RawJSON())
	}
	rc := batch.RequestCounts
	if rc.Total != 3 || rc.Completed != 3 || rc.Failed != 0 {
		t.Fatalf("request_counts: got total=%d completed=%d failed=%d, want 3/3/0", rc.Total, rc.Completed, rc.Failed)
	}
	if got := batch.Metadata["suite"]; got != "e2e" || len(batch.Metadata) != 1 {
		t.Errorf("metadata: got %v, want map[suite:e2e]", batch.Metadata)
	}
	// The SDK reads the batch's usage and model: tokens were counted for the three lines.
	if u := batch.Usage; u.InputTokens <= 0 || u.OutputTokens <= 0 || u.TotalTokens != u.InputTokens+u.OutputTokens {
		t.Errorf("usage: got %s, want input and output tokens that add up", u.RawJSON())
	}
	if batch.Model != "gpt-4o-mini" {
		t.Errorf("model: got %q, want gpt-4o-mini", batch.Model)
	}
	return batch, uploaded.ID
}

// content downloads a file's content.
func content(t *testing.T, ctx context.Context, client openai.Client, id string) string {
	t.Helper()
	res, err := client.Files.Content(ctx, id)
	if err != nil {
		t.Fatalf("Files.Content(%s): %v", id, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read content of %s: %v", id, err)
	}
	return string(b)
}

// outputLine is the part of a batch output line the test checks.
type outputLine struct {
	ID       string          `json:"id"`
	CustomID string          `json:"custom_id"`
	Error    json.RawMessage `json:"error"`
	Response *struct {
		StatusCode int `json:"status_code"`
		Body       struct {
			Choices []struct {
				Message struct {
					Content *string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
			Usage struct {
				TotalTokens *int64 `json:"total_tokens"`
			} `json:"usage"`
		} `json:"body"`
	} `json:"response"`
}

func runFlow(t *testing.T, client openai.Client, e env, endpoint openai.BatchNewParamsEndpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	batch, inputID := completedBatch(t, ctx, client, e.deployment, endpoint)

	// Output file.
	if batch.OutputFileID == "" {
		t.Fatalf("output_file_id: got empty, want a file id: %s", batch.RawJSON())
	}
	out := content(t, ctx, client, batch.OutputFileID)
	var lines []string
	for l := range strings.SplitSeq(out, "\n") {
		if strings.TrimSpace(l) != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 {
		t.Fatalf("output lines: got %d, want 3:\n%s", len(lines), out)
	}
	var ids []string
	for _, l := range lines {
		var r outputLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("output line %q: %v", l, err)
		}
		ids = append(ids, r.CustomID)
		if !strings.HasPrefix(r.ID, "batch_req_") {
			t.Errorf("output line %s id: got %q, want prefix %q", r.CustomID, r.ID, "batch_req_")
		}
		if e := strings.TrimSpace(string(r.Error)); e != "" && e != "null" {
			t.Errorf("output line %s error: got %s, want null", r.CustomID, e)
		}
		if r.Response == nil {
			t.Errorf("output line %s response: got none, want one: %s", r.CustomID, l)
			continue
		}
		if r.Response.StatusCode != http.StatusOK {
			t.Errorf("output line %s status_code: got %d, want 200", r.CustomID, r.Response.StatusCode)
		}
		if ch := r.Response.Body.Choices; len(ch) == 0 || ch[0].Message.Content == nil || *ch[0].Message.Content == "" {
			t.Errorf("output line %s content: got none or empty, want text: %s", r.CustomID, l)
		}
		if tt := r.Response.Body.Usage.TotalTokens; tt == nil || *tt <= 0 {
			t.Errorf("output line %s usage.total_tokens: got %v, want > 0: %s", r.CustomID, tt, l)
		}
	}
	slices.Sort(ids)
	if want := []string{"task-0", "task-1", "task-2"}; !slices.Equal(ids, want) {
		t.Errorf("custom_ids: got %v, want %v", ids, want)
	}

	// Error file exists and is empty.
	if batch.ErrorFileID == "" {
		t.Fatalf("error_file_id: got empty, want a file id: %s", batch.RawJSON())
	}
	if got := content(t, ctx, client, batch.ErrorFileID); got != "" {
		t.Errorf("error file content: got %q, want empty", got)
	}

	// Listings (auto-paging).
	found := false
	iter := client.Batches.ListAutoPaging(ctx, openai.BatchListParams{Limit: openai.Int(100)})
	for n := 0; !found && n < 10000 && iter.Next(); n++ {
		found = iter.Current().ID == batch.ID
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("Batches.ListAutoPaging: %v", err)
	}
	if !found {
		t.Errorf("Batches.ListAutoPaging: got no %s, want it listed", batch.ID)
	}
	found = false
	fiter := client.Files.ListAutoPaging(ctx, openai.FileListParams{})
	for n := 0; !found && n < 10000 && fiter.Next(); n++ {
		found = fiter.Current().ID == inputID
	}
	if err := fiter.Err(); err != nil {
		t.Fatalf("Files.ListAutoPaging: %v", err)
	}
	if !found {
		t.Errorf("Files.ListAutoPaging: got no %s, want it listed", inputID)
	}

	// Delete the input file.
	del, err := client.Files.Delete(ctx, inputID)
	if err != nil {
		t.Fatalf("Files.Delete(%s): %v", inputID, err)
	}
	if del.ID != inputID || !del.Deleted {
		t.Errorf("Files.Delete: got id=%q deleted=%v, want id=%q deleted=true", del.ID, del.Deleted, inputID)
	}
}

func TestAzureClientFlow(t *testing.T) {
	t.Parallel()
	e := getEnv(t)
	runFlow(t, azureClient(e, e.key, option.WithMaxRetries(0)), e, openai.BatchNewParamsEndpoint("/chat/completions"))
}

// Azure's OpenAI-compatible /openai/v1 routes, as Azure's current guides use them: a
// plain client with that base URL and an api-key header.
func TestAzureV1ClientFlow(t *testing.T) {
	t.Parallel()
	e := getEnv(t)
	client := openai.NewClient(option.WithBaseURL(e.url+"/openai/v1/"), option.WithAPIKey(e.key),
		option.WithHeader("api-key", e.key), option.WithMaxRetries(0))
	runFlow(t, client, e, openai.BatchNewParamsEndpointV1ChatCompletions)
}

func TestOpenAIClientFlow(t *testing.T) {
	t.Parallel()
	e := getEnv(t)
	runFlow(t, plainClient(e, e.key, option.WithMaxRetries(0)), e, openai.BatchNewParamsEndpointV1ChatCompletions)
}

// apiError returns err as an *openai.Error, failing the test if it is not one.
func apiError(t *testing.T, what string, err error) *openai.Error {
	t.Helper()
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s: got error %T %v, want *openai.Error", what, err, err)
	}
	return apiErr
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := getEnv(t)

	t.Run("cancel completed batch is 409 without retries", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// Default retry settings, so a retried 409 would show in the attempt count.
		var attempts atomic.Int32
		count := option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			attempts.Add(1)
			return next(r)
		})
		client := azureClient(e, e.key)
		batch, _ := completedBatch(t, ctx, client, e.deployment, openai.BatchNewParamsEndpoint("/chat/completions"))

		_, err := client.Batches.Cancel(ctx, batch.ID, count)
		if err == nil {
			t.Fatalf("Batches.Cancel(%s) of a completed batch: got no error, want 409", batch.ID)
		}
		apiErr := apiError(t, "Batches.Cancel", err)
		if apiErr.StatusCode != http.StatusConflict {
			t.Errorf("Batches.Cancel status: got %d, want 409: %s", apiErr.StatusCode, apiErr.RawJSON())
		}
		if apiErr.Message == "" {
			t.Errorf("Batches.Cancel error message: got empty, want text: %s", apiErr.RawJSON())
		}
		if n := attempts.Load(); n != 1 {
			t.Errorf("Batches.Cancel attempts: got %d, want 1 (409 must not be retried)", n)
		}
	})

	t.Run("get unknown batch is 404", func(t *testing.T) {
		t.Parallel()
		for name, client := range map[string]openai.Client{
			"azure":  azureClient(e, e.key, option.WithMaxRetries(0)),
			"openai": plainClient(e, e.key, option.WithMaxRetries(0)),
		} {
			_, err := client.Batches.Get(context.Background(), "batch_nope")
			if err == nil {
				t.Fatalf("%s: Batches.Get(batch_nope): got no error, want 404", name)
			}
			if apiErr := apiError(t, name+": Batches.Get", err); apiErr.StatusCode != http.StatusNotFound {
				t.Errorf("%s: Batches.Get(batch_nope) status: got %d, want 404: %s", name, apiErr.StatusCode, apiErr.RawJSON())
			}
		}
	})

	t.Run("wrong key is 401", func(t *testing.T) {
		t.Parallel()
		if e.rawKey == "" {
			t.Skip("SLUICE_API_KEY is empty: server runs without auth")
		}
		for name, client := range map[string]openai.Client{
			"azure":  azureClient(e, "wrong-key", option.WithMaxRetries(0)),
			"openai": plainClient(e, "wrong-key", option.WithMaxRetries(0)),
		} {
			_, err := client.Batches.List(context.Background(), openai.BatchListParams{})
			if err == nil {
				t.Fatalf("%s: Batches.List with a wrong key: got no error, want 401", name)
			}
			if apiErr := apiError(t, name+": Batches.List", err); apiErr.StatusCode != http.StatusUnauthorized {
				t.Errorf("%s: Batches.List with a wrong key status: got %d, want 401: %s", name, apiErr.StatusCode, apiErr.RawJSON())
			}
		}
	})
}
