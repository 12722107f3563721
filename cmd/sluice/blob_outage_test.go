package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/sluice-batch/sluice/blob/azure/azuretest"
)

// azuriteOutage is how long TestBlobStorageOutage keeps storage down, as issue 17
// asks; SLUICE_TEST_AZURITE_OUTAGE (a Go duration) shortens it.
const azuriteOutage = 30 * time.Second

// azuriteBin is the emulator scripts/azurite.sh installs, from this package's folder.
const azuriteBin = "../../scripts/azurite/node_modules/.bin/azurite-blob"

// devstoreKey is the well-known key of the emulator's development account (public).
const devstoreKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// azurite is an emulator of the test's own, kept on disk so that it can be stopped and
// started again on the same port with its blobs.
type azurite struct {
	tb   testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// MustStartAzurite starts an Azurite of the test's own on a free loopback port, and
// stops it when the test ends. It skips the test when Azurite is not installed, or
// fails it under SLUICE_REQUIRE_AZURITE=1.
func MustStartAzurite(tb testing.TB) *azurite {
	tb.Helper()
	bin, err := filepath.Abs(azuriteBin)
	if err != nil {
		tb.Fatal(err)
	}
	_, statErr := os.Stat(bin)
	_, nodeErr := exec.LookPath("node")
	if statErr != nil || nodeErr != nil {
		msg := "Azurite is not installed (" + azuriteBin + ", and node on PATH): run bash scripts/azurite.sh once to install it"
		if os.Getenv(azuretest.EnvRequire) == "1" {
			tb.Fatal(msg + " (" + azuretest.EnvRequire + "=1 requires Azurite)")
		}
		tb.Skip(msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	a := &azurite{tb: tb, bin: bin, dir: tb.TempDir(), port: port}
	a.start()
	tb.Cleanup(a.stop)
	return a
}

func (a *azurite) endpoint() string {
	return fmt.Sprintf("http://127.0.0.1:%d/devstoreaccount1", a.port)
}

func (a *azurite) connectionString() string {
	return "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=" + devstoreKey + ";BlobEndpoint=" + a.endpoint() + ";"
}

// start runs the emulator on a.port with its data in a.dir and waits until it answers.
func (a *azurite) start() {
	a.tb.Helper()
	// --disableTelemetry always: without it Azurite tries to reach an outside host.
	cmd := exec.Command(a.bin, "--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(a.port), "--location", a.dir,
		"--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry")
	cmd.Dir = a.dir // its debug and extent files go there
	log, err := os.OpenFile(filepath.Join(a.dir, "azurite.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		a.tb.Fatalf("start azurite: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	a.cmd, a.done = cmd, done
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// Any HTTP answer means it listens (an unauthenticated request gets 403).
		resp, err := http.Get(a.endpoint())
		if err == nil {
			resp.Body.Close()
			return
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(a.dir, "azurite.log"))
			a.tb.Fatalf("azurite exited at start:\n%s", b)
		case <-time.After(100 * time.Millisecond):
		}
	}
	a.tb.Fatalf("azurite did not answer on %s", a.endpoint())
}

// stop stops the emulator as an operator would (SIGTERM, so that it saves its
// metadata), and kills it if it does not exit within 10 s.
func (a *azurite) stop() {
	if a.cmd == nil {
		return
	}
	_ = a.cmd.Process.Signal(os.Interrupt)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
	}
	a.cmd = nil
}

// outage returns how long storage stays down: azuriteOutage, or the duration in
// SLUICE_TEST_AZURITE_OUTAGE.
func outage(tb testing.TB) time.Duration {
	tb.Helper()
	s := os.Getenv("SLUICE_TEST_AZURITE_OUTAGE")
	if s == "" {
		return azuriteOutage
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		tb.Fatalf("SLUICE_TEST_AZURITE_OUTAGE=%q: want a positive Go duration such as 10s", s)
	}
	return d
}

// Storage stopped for a while in the middle of a blob-mode batch: a new blob-mode
// create gets a 503 that says why, the running batch still answers from the database
// and fails no line, and once storage is back the batch completes by itself with one
// result per line.
func TestBlobStorageOutage(t *testing.T) {
	t.Parallel()
	down := outage(t)
	az := MustStartAzurite(t)
	conn := az.connectionString()
	client, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const container = "outage"
	if _, err := client.CreateContainer(ctx, container, nil); err != nil {
		t.Fatal(err)
	}
	const n = 1000 // four chunks at 20 ms a line and 4 at a time: about 5 s of work
	if _, err := client.UploadBuffer(ctx, container, "in/batch.jsonl", []byte(chatLines(n, "gpt-4o-mini")), nil); err != nil {
		t.Fatal(err)
	}
	_, simURL := slowSim(t, 20*time.Millisecond)
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, cfg, `
storage_accounts:
  - name: devstoreaccount1
    blob_endpoint: `+az.endpoint()+`
    connection_string: "`+conn+`"
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: `+simURL+`
        max_concurrency: 4
`)
	e := &blobEnv{c: MustRunMain(t, nil, "--config", cfg), az: client, conn: conn, container: container, base: az.endpoint()}

	status, b, ae := e.create(t, map[string]any{
		"input_blob": e.url("in/batch.jsonl"), "output_folder": map[string]any{"url": e.url("out")},
		"endpoint": "/chat/completions", "completion_window": "24h",
	})
	if status != 201 {
		t.Fatalf("create: got %d %s", status, ae.Error.Message)
	}
	before := e.c.waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed >= 50 })
	az.stop()
	stopped := time.Now()
	t.Logf("azurite stopped with %d of %d lines completed", before.RequestCounts.Completed, n)

	// Meanwhile a blob-mode create cannot read its input: 503, with a reason.
	t0 := time.Now()
	status, _, ae = e.create(t, map[string]any{
		"input_blob": e.url("in/batch.jsonl"), "output_folder": map[string]any{"url": e.url("out")},
		"endpoint": "/chat/completions", "completion_window": "24h",
	})
	t.Logf("create while storage is down: %d %q (type %s) after %s", status, ae.Error.Message, ae.Error.Type, time.Since(t0).Round(100*time.Millisecond))
	if status != 503 || ae.Error.Type != "server_error" || !strings.Contains(ae.Error.Message, "storage") {
		t.Errorf("create while storage is down: got %d %+v, want 503 saying storage did not answer", status, ae.Error)
	}
	// The running batch answers from the database.
	var mid blobBatchObj
	if status := e.c.json("GET", "/openai/batches/"+b.ID+"?api-version=2025-04-01-preview", nil, &mid); status != 200 || mid.Status != "in_progress" {
		t.Errorf("get while storage is down: got %d %s, want 200 in_progress", status, mid.Status)
	}

	// The outage itself is the point of the test: it lasts its set time.
	time.Sleep(time.Until(stopped.Add(down)))
	e.c.json("GET", "/openai/batches/"+b.ID+"?api-version=2025-04-01-preview", nil, &mid)
	t.Logf("after %s down: %s, %+v", down, mid.Status, mid.RequestCounts)
	if mid.Status != "in_progress" || mid.RequestCounts.Failed != 0 || mid.RequestCounts.Completed >= n {
		t.Fatalf("after %s down: %s with %+v, want in_progress, no line failed and some left to read", down, mid.Status, mid.RequestCounts)
	}
	az.start()
	restarted := time.Now()

	done := waitBlobBatch(t, e, b.ID, 2*time.Minute)
	t.Logf("completed %s after storage came back", time.Since(restarted).Round(100*time.Millisecond))
	if done.Status != "completed" || done.RequestCounts.Completed != n || done.RequestCounts.Failed != 0 {
		t.Fatalf("batch: %s %+v, want completed with %d lines", done.Status, done.RequestCounts, n)
	}
	out, ok := e.get(t, "out/"+b.ID+"/results.jsonl")
	if !ok {
		t.Fatal("results.jsonl is missing")
	}
	ids := customIDs(parseResults(t, out))
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("line-%d", i))
	}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("results.jsonl: %d lines, %d distinct; want each of the %d custom_ids once", len(ids), len(slices.Compact(slices.Clone(ids))), n)
	}
	if _, ok := e.get(t, "out/"+b.ID+"/errors.jsonl"); ok {
		t.Error("errors.jsonl was written though no line failed")
	}
}

// waitBlobBatch polls a batch until it ends, for up to timeout (waitBatch allows 60 s).
func waitBlobBatch(t *testing.T, e *blobEnv, id string, timeout time.Duration) blobBatchObj {
	t.Helper()
	var b blobBatchObj
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		e.c.json("GET", "/openai/batches/"+id+"?api-version=2025-04-01-preview", nil, &b)
		if terminal(b.batchObj) {
			return b
		}
	}
	t.Fatalf("batch %s: still %s with %+v after %s", id, b.Status, b.RequestCounts, timeout)
	return b
}
