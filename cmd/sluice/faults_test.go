package main

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/blob/azure"
	"github.com/sluice-batch/sluice/engine"
	"github.com/sluice-batch/sluice/httpapi"
	"github.com/sluice-batch/sluice/postgres"
	"github.com/sluice-batch/sluice/sqlite"
)

// fullDisk is the data folder's bucket on a disk that fills up on demand: while full,
// every write fails as the kernel fails it (ENOSPC); reads go on. The fault is
// injected; everything else is the real folder, store, engine and API.
type fullDisk struct {
	*blob.Dir
	full atomic.Bool
}

func (d *fullDisk) err(op, key string) error {
	return &fs.PathError{Op: op, Path: key, Err: syscall.ENOSPC}
}

func (d *fullDisk) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	if d.full.Load() {
		io.Copy(io.Discard, r)
		return 0, d.err("write", key)
	}
	return d.Dir.Put(ctx, key, r)
}

func (d *fullDisk) Append(ctx context.Context, key string, offset int64, p []byte) error {
	if d.full.Load() {
		return d.err("write", key)
	}
	return d.Dir.Append(ctx, key, offset, p)
}

func (d *fullDisk) Compose(ctx context.Context, key string, parts []sluice.Part) (int64, error) {
	if d.full.Load() {
		return 0, d.err("write", key)
	}
	return d.Dir.Compose(ctx, key, parts)
}

// When the disk fills mid-batch, uploads answer 503 with the reason (and no path)
// and Retry-After, /readyz says not ready and why, /healthz stays 200, reads go on,
// and the batch waits; once there is room again everything resumes by itself and the
// batch completes with each line's result exactly once.
func TestFullDiskPausesAndResumes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "sluice.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	folder, err := blob.OpenDir(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	disk := &fullDisk{Dir: folder}
	_, upURL := slowSim(t, 20*time.Millisecond)
	fault := sluice.Faults(sluice.StorageFault, sqlite.Fault, postgres.Fault, azure.Fault)
	eng, err := engine.New(store, disk, []sluice.Deployment{{Name: "gpt-4o-mini", Upstreams: []sluice.Upstream{{BaseURL: upURL, MaxConcurrency: 4}}}},
		&engine.Options{Fault: fault, BackoffBase: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(context.Background())
	ts := httptest.NewServer(httpapi.NewServer(store, eng, &httpapi.Options{Fault: fault, Ready: eng.Ready}))
	defer ts.Close()
	c := &apiClient{tb: t, base: ts.URL}

	const lines = 300
	f := c.mustUpload(chatLines(lines, "gpt-4o-mini"))
	b := c.mustCreateBatch(f.ID, "/v1/chat/completions")
	c.waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed > 20 })
	disk.full.Store(true)

	status, body := c.upload("/v1/files", "more.jsonl", chatLines(2, "gpt-4o-mini"), map[string]string{"purpose": "batch"})
	var e apiError
	json.Unmarshal(body, &e)
	if status != http.StatusServiceUnavailable || e.Error.Code == nil || *e.Error.Code != "storage_unavailable" ||
		!strings.Contains(e.Error.Message, "the disk is full") || strings.Contains(e.Error.Message, "files/") {
		t.Errorf("upload on a full disk: got %d %s, want 503 storage_unavailable saying the disk is full, naming no path", status, body)
	}
	res, err := http.Get(ts.URL + "/v1/files")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("a read on a full disk: %d, want 200", res.StatusCode)
	}
	probe := func(path string) (int, string, string) {
		res, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, res.Header.Get("Retry-After"), string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, after, body := probe("/readyz")
		if status == http.StatusServiceUnavailable {
			if after != "30" || !strings.Contains(body, "the disk is full") || !strings.Contains(body, "not_ready") {
				t.Errorf("/readyz on a full disk: Retry-After %q, %s", after, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s on a full disk", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, _, body := probe("/healthz"); status != 200 {
		t.Errorf("/healthz on a full disk: %d %s, want 200", status, body)
	}
	var mid batchObj
	c.json("GET", "/v1/batches/"+b.ID, nil, &mid)
	if mid.Status == "completed" {
		t.Fatalf("the batch completed with nowhere to write its results")
	}

	disk.full.Store(false)
	done := c.waitBatch(b.ID, terminal)
	if done.Status != "completed" || done.RequestCounts.Completed != lines || done.OutputFileID == nil {
		t.Fatalf("after the disk has room: %s %+v, want completed with %d", done.Status, done.RequestCounts, lines)
	}
	got := customIDs(parseResults(t, c.content(*done.OutputFileID)))
	seen := make(map[string]bool)
	for _, id := range got {
		if seen[id] {
			t.Errorf("custom_id %s twice", id)
		}
		seen[id] = true
	}
	if len(seen) != lines {
		t.Errorf("%d distinct results, want %d", len(seen), lines)
	}
	for time.Now().Before(deadline) {
		if status, _, _ := probe("/readyz"); status == 200 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, _, body := probe("/readyz"); status != 200 {
		t.Errorf("/readyz after the disk has room: %d %s", status, body)
	}
	c.mustUpload(chatLines(2, "gpt-4o-mini"))
}
