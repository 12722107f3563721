package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/sluice-batch/sluice/blob/azure/azuretest"
	"github.com/sluice-batch/sluice/sim"
)

// blobBatchObj is a batch with the blob-mode fields.
type blobBatchObj struct {
	batchObj
	InputFileID *string `json:"input_file_id"`
	InputBlob   *string `json:"input_blob"`
	OutputBlob  *string `json:"output_blob"`
	ErrorBlob   *string `json:"error_blob"`
}

// blobEnv is an Azurite container with an input blob, and a server configured with the
// emulator's account, its upstream a simulator with the given latency.
type blobEnv struct {
	c         *apiClient
	az        *azblob.Client
	conn      string
	container string
	base      string // the account's URL, http://127.0.0.1:PORT/devstoreaccount1
}

func newBlobEnv(t *testing.T, latency time.Duration) *blobEnv {
	t.Helper()
	conn := azuretest.ConnectionString(t)
	container := azuretest.MustNewContainer(t, conn)
	az, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := az.CreateContainer(context.Background(), container, nil); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(az.URL(), "/")
	s := sim.New(sim.Options{Latency: latency})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, cfg, `
storage_accounts:
  - name: devstoreaccount1
    blob_endpoint: `+base+`
    connection_string: "`+conn+`"
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: `+ts.URL+`/v1
        max_concurrency: 2
`)
	c := MustRunMain(t, nil, "--config", cfg, "--cancel-grace", "100ms")
	return &blobEnv{c: c, az: az, conn: conn, container: container, base: base}
}

func (e *blobEnv) url(name string) string { return e.base + "/" + e.container + "/" + name }

func (e *blobEnv) put(t *testing.T, name, content string) {
	t.Helper()
	if _, err := e.az.UploadBuffer(context.Background(), e.container, name, []byte(content), nil); err != nil {
		t.Fatal(err)
	}
}

func (e *blobEnv) get(t *testing.T, name string) (string, bool) {
	t.Helper()
	resp, err := e.az.DownloadStream(context.Background(), e.container, name, nil)
	if err != nil {
		return "", false
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return string(b), true
}

func (e *blobEnv) create(t *testing.T, body map[string]any) (int, blobBatchObj, apiError) {
	t.Helper()
	status, b := e.c.do("POST", "/openai/batches?api-version=2025-04-01-preview", strings.NewReader(mustJSON(t, body)), "application/json")
	var out blobBatchObj
	var ae apiError
	_ = json.Unmarshal(b, &out)
	_ = json.Unmarshal(b, &ae)
	return status, out, ae
}

func (e *blobEnv) wait(t *testing.T, id string) blobBatchObj {
	t.Helper()
	e.c.waitBatch(id, terminal)
	var b blobBatchObj
	e.c.json("GET", "/openai/batches/"+id+"?api-version=2025-04-01-preview", nil, &b)
	return b
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A batch reads its input from a blob and writes its results to a folder of blobs,
// with no upload, its metadata kept; errors.jsonl is written only when a line failed.
func TestBlobModeBatch(t *testing.T) {
	t.Parallel()
	e := newBlobEnv(t, 0)
	const n = 40
	e.put(t, "in/batch.jsonl", chatLines(n, "gpt-4o-mini"))
	status, b, ae := e.create(t, map[string]any{
		"input_blob": e.url("in/batch.jsonl"), "output_folder": map[string]any{"url": e.url("results")},
		"endpoint": "/chat/completions", "completion_window": "24h", "metadata": map[string]string{"job": "blob"},
	})
	if status != 201 {
		t.Fatalf("create: got %d %s", status, ae.Error.Message)
	}
	if b.InputBlob == nil || *b.InputBlob != e.url("in/batch.jsonl") || b.OutputBlob == nil || *b.OutputBlob != "" || b.InputFileID != nil {
		t.Errorf("created: input_blob %v output_blob %v input_file_id %v; want the input, \"\" and null", b.InputBlob, b.OutputBlob, b.InputFileID)
	}
	done := e.wait(t, b.ID)
	if done.Status != "completed" || done.RequestCounts.Completed != n || done.Metadata["job"] != "blob" {
		t.Fatalf("batch: %s %+v metadata %v", done.Status, done.RequestCounts, done.Metadata)
	}
	wantOut, wantErr := e.url("results/"+b.ID+"/results.jsonl"), e.url("results/"+b.ID+"/errors.jsonl")
	if *done.OutputBlob != wantOut || *done.ErrorBlob != wantErr {
		t.Errorf("result blobs %q %q, want %q %q", *done.OutputBlob, *done.ErrorBlob, wantOut, wantErr)
	}
	out, ok := e.get(t, "results/"+b.ID+"/results.jsonl")
	if !ok || len(parseResults(t, out)) != n {
		t.Fatalf("results.jsonl: %t, %d lines", ok, len(parseResults(t, out)))
	}
	if _, ok := e.get(t, "results/"+b.ID+"/errors.jsonl"); ok {
		t.Error("errors.jsonl was written though no line failed")
	}
	// The input is the batch's: no file of it is listed.
	var list struct{ Data []fileObj }
	e.c.json("GET", "/openai/files?api-version=2025-04-01-preview", nil, &list)
	for _, f := range list.Data {
		if f.Filename == "batch.jsonl" {
			t.Errorf("the blob input is listed as file %s", f.ID)
		}
	}
}

// Blob URLs off the configured accounts, missing blobs and half-given parameters are
// refused at create, in the API's error shape.
func TestBlobModeRefusals(t *testing.T) {
	t.Parallel()
	e := newBlobEnv(t, 0)
	e.put(t, "in/ok.jsonl", chatLines(2, "gpt-4o-mini"))
	folder := map[string]any{"url": e.url("results")}
	for _, tc := range []struct {
		name  string
		body  map[string]any
		param string
		code  string
		text  string
	}{
		{"foreign-account", map[string]any{"input_blob": "https://evil.blob.core.windows.net/in/a.jsonl", "output_folder": folder}, "input_blob", "", "devstoreaccount1"},
		{"metadata-address", map[string]any{"input_blob": "http://169.254.169.254/metadata/instance", "output_folder": folder}, "input_blob", "", "IP address"},
		{"foreign-output", map[string]any{"input_blob": e.url("in/ok.jsonl"), "output_folder": map[string]any{"url": "https://evil.example/out"}}, "output_folder.url", "", "devstoreaccount1"},
		{"missing-blob", map[string]any{"input_blob": e.url("in/none.jsonl"), "output_folder": folder}, "input_blob", "input_no_permissions", "cannot be read"},
		{"no-output-folder", map[string]any{"input_blob": e.url("in/ok.jsonl")}, "output_folder", "", "output_folder"},
		{"both-inputs", map[string]any{"input_blob": e.url("in/ok.jsonl"), "input_file_id": "file-x", "output_folder": folder}, "input_blob", "", "not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.body["endpoint"], tc.body["completion_window"] = "/chat/completions", "24h"
			status, _, ae := e.create(t, tc.body)
			if status != 400 || ae.Error.Param == nil || *ae.Error.Param != tc.param || !strings.Contains(ae.Error.Message, tc.text) {
				t.Errorf("got %d %+v, want 400 on %s saying %q", status, ae.Error, tc.param, tc.text)
			}
			if tc.code != "" && (ae.Error.Code == nil || *ae.Error.Code != tc.code) {
				t.Errorf("code %v, want %s", ae.Error.Code, tc.code)
			}
		})
	}
	// Import makes a listed file of a blob.
	var f fileObj
	status := e.c.json("POST", "/openai/files/import?api-version=2025-04-01-preview",
		map[string]any{"purpose": "batch", "filename": "imported.jsonl", "content_url": e.url("in/ok.jsonl")}, &f)
	if status != 201 || f.Status != "processed" || f.Filename != "imported.jsonl" {
		t.Fatalf("import: got %d %+v", status, f)
	}
	if got := e.c.content(f.ID); got != chatLines(2, "gpt-4o-mini") {
		t.Errorf("imported content: %q", got)
	}
	var ae apiError
	if status := e.c.json("POST", "/openai/files/import?api-version=2025-04-01-preview",
		map[string]any{"purpose": "batch", "content_url": "http://127.0.0.1:1/x/y.jsonl"}, &ae); status != 400 {
		t.Errorf("import from a foreign URL: got %d", status)
	}
}

// An input blob changed while its batch runs fails the batch with input_modified; the
// lines that finished before are kept, each once.
func TestBlobModeInputModified(t *testing.T) {
	t.Parallel()
	e := newBlobEnv(t, 40*time.Millisecond)
	const n = 600 // three chunks: the later ones are read after the change
	e.put(t, "in/batch.jsonl", chatLines(n, "gpt-4o-mini"))
	status, b, ae := e.create(t, map[string]any{
		"input_blob": e.url("in/batch.jsonl"), "output_folder": map[string]any{"url": e.url("out")},
		"endpoint": "/chat/completions", "completion_window": "24h",
	})
	if status != 201 {
		t.Fatalf("create: got %d %s", status, ae.Error.Message)
	}
	e.c.waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed >= 2 })
	e.put(t, "in/batch.jsonl", chatLines(n, "gpt-4o-mini")+"\n") // a new ETag
	done := e.wait(t, b.ID)
	if done.Status != "failed" || done.Errors == nil || len(done.Errors.Data) == 0 || done.Errors.Data[0].Code != "input_modified" {
		t.Fatalf("got %s with %+v, want failed with input_modified", done.Status, done.Errors)
	}
	if done.RequestCounts.Completed == 0 || done.RequestCounts.Completed >= n {
		t.Errorf("completed %d of %d, want some and not all", done.RequestCounts.Completed, n)
	}
	out, ok := e.get(t, "out/"+b.ID+"/results.jsonl")
	ids := customIDs(parseResults(t, out))
	if !ok || len(ids) != done.RequestCounts.Completed || len(slices.Compact(slices.Clone(ids))) != len(ids) {
		t.Errorf("results.jsonl: %t, %d lines for %d completed", ok, len(ids), done.RequestCounts.Completed)
	}
}
