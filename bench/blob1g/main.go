// Command blob1g measures blob-mode batches whose input is a blob of about 1 GB, the
// most a blob-mode input may hold, next to the same batch from a 100 MB blob in the
// same run: Sluice must scan and read the input as a stream, so its memory must not
// grow with the blob.
//
//	bash bench/blob1g.sh        # starts Azurite on disk, builds, runs this
//	go run ./bench/blob1g -sluice /tmp/sluice -conn "$SLUICE_TEST_AZURITE" -mb 100,1000
//
// For each size it writes the input blob to Azurite as it generates it (lines of
// -line-bytes, custom_ids req-0 …; never the whole blob in memory), starts a fresh
// `sluice serve` whose config lists the emulator's account, with the simulator as
// upstream, creates the batch with input_blob and output_folder, waits for it, and
// checks results.jsonl in the container holds each custom_id once. It reports the
// create's latency (the blob is scanned, token-counted and indexed during the
// create), the time from the create to completed, lines a second over that time, and
// sluice's peak RSS (VmHWM) after the create, while the batch is in_progress and at
// the end (which includes writing results.jsonl to the folder), with the ratio of the
// largest size's peaks to the smallest's.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/sluice-batch/sluice/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "blob1g:", err)
		os.Exit(1)
	}
}

// row is one size's figures.
type row struct {
	mb          int
	bytes       int64
	lines       int
	upload      time.Duration // generating and writing the blob to Azurite
	create      time.Duration // POST /openai/batches, the scan included
	total       time.Duration // from the create to completed
	rssCreate   float64       // sluice's VmHWM right after the create, MiB
	rssDispatch float64       // at the last poll that saw the batch in_progress
	rssEnd      float64       // and at the end
	cpu         float64       // sluice's CPU seconds
}

func run() error {
	var (
		bin       = flag.String("sluice", "sluice", "path of the sluice binary")
		conn      = flag.String("conn", os.Getenv("SLUICE_TEST_AZURITE"), "connection string of the Azurite (or storage account) to use; default $SLUICE_TEST_AZURITE")
		sizes     = flag.String("mb", "100,1000", "input sizes in MB (10^6 bytes), comma-separated; 1000 is the 1 GB case")
		lineBytes = flag.Int("line-bytes", 10000, "bytes of each request line, about: 100,000 lines make 1 GB, the most a batch may hold")
		conc      = flag.Int("concurrency", 64, "sluice's requests in flight to the simulator")
		latency   = flag.String("latency", "0s", "simulator latency per request")
		timeout   = flag.Duration("timeout", 30*time.Minute, "longest one batch may take")
		verbose   = flag.Bool("v", false, "show the logs of sluice and the simulator")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *conn == "" {
		return errors.New("no -conn and no SLUICE_TEST_AZURITE: run under bash bench/blob1g.sh or scripts/azurite.sh")
	}
	var mbs []int
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return fmt.Errorf("-mb %q: want positive whole MB", *sizes)
		}
		mbs = append(mbs, n)
	}
	stderr := io.Discard
	if *verbose {
		stderr = os.Stderr
	}
	endpoint := connField(*conn, "BlobEndpoint")
	if endpoint == "" {
		return errors.New("the connection string has no BlobEndpoint")
	}
	az, err := azblob.NewClientFromConnectionString(*conn, nil)
	if err != nil {
		return err
	}
	ctx := context.Background()
	var r [4]byte
	_, _ = rand.Read(r[:])
	container := "bench-" + hex.EncodeToString(r[:])
	if _, err := az.CreateContainer(ctx, container, nil); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	defer func() { _, _ = az.DeleteContainer(context.Background(), container, nil) }()

	dir, err := os.MkdirTemp("", "sluice-blob1g-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("storage_accounts:\n  - name: %s\n    blob_endpoint: %s\n    connection_string: %q\n",
		connField(*conn, "AccountName"), strings.TrimSuffix(endpoint, "/"), *conn)), 0o600); err != nil {
		return err
	}
	sim, err := harness.StartSim(*bin, *latency, stderr)
	if err != nil {
		return err
	}
	defer sim.Stop()

	var rows []row
	for _, mb := range mbs {
		rw := row{mb: mb, lines: int(int64(mb) * 1e6 / int64(*lineBytes))}
		name := fmt.Sprintf("in/%dmb.jsonl", mb)
		t0 := time.Now()
		if _, err := az.UploadStream(ctx, container, name, &lineReader{n: rw.lines, size: *lineBytes},
			&azblob.UploadStreamOptions{BlockSize: 8 << 20, Concurrency: 4}); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		rw.upload = time.Since(t0)
		props, err := az.ServiceClient().NewContainerClient(container).NewBlobClient(name).GetProperties(ctx, nil)
		if err != nil {
			return err
		}
		rw.bytes = *props.ContentLength
		fmt.Fprintf(os.Stderr, "%d MB: wrote %s (%d bytes, %d lines) in %.1f s\n", mb, name, rw.bytes, rw.lines, rw.upload.Seconds())
		if err := measure(ctx, &rw, *bin, cfg, sim.URL, *conc, stderr, strings.TrimSuffix(endpoint, "/")+"/"+container, name, az, container, *timeout); err != nil {
			return fmt.Errorf("%d MB: %w", mb, err)
		}
		_, _ = az.DeleteBlob(ctx, container, name, nil)
		fmt.Fprintf(os.Stderr, "%d MB: create %.1f s, completed %.1f s after it, peak RSS %.0f MiB\n", mb, rw.create.Seconds(), rw.total.Seconds(), rw.rssEnd)
		rows = append(rows, rw)
	}

	fmt.Println("| input blob | lines | create s (scan) | scan MB/s | create → completed s | lines/s | sluice peak RSS MiB: after create | while in_progress | at end | sluice CPU s |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, rw := range rows {
		fmt.Printf("| %d MB | %d | %.1f | %.0f | %.1f | %.0f | %.0f | %.0f | %.0f | %.1f |\n",
			rw.mb, rw.lines, rw.create.Seconds(), float64(rw.bytes)/1e6/rw.create.Seconds(),
			rw.total.Seconds(), float64(rw.lines)/rw.total.Seconds(), rw.rssCreate, rw.rssDispatch, rw.rssEnd, rw.cpu)
	}
	if len(rows) > 1 {
		first, last := rows[0], rows[len(rows)-1]
		fmt.Printf("\nPeak RSS at %d MB over %d MB (input %.0fx): %.2f after the create, %.2f while in_progress, %.2f at the end.\n",
			last.mb, first.mb, float64(last.bytes)/float64(first.bytes), last.rssCreate/first.rssCreate, last.rssDispatch/first.rssDispatch, last.rssEnd/first.rssEnd)
	}
	return nil
}

// measure runs one blob-mode batch on a fresh sluice serve and fills in rw.
func measure(ctx context.Context, rw *row, bin, cfg, simURL string, conc int, stderr io.Writer, folder, name string, az *azblob.Client, container string, timeout time.Duration) error {
	srv, err := harness.StartServe(harness.Serve{Bin: bin, Upstream: simURL, Deployment: harness.Deployment,
		Concurrency: conc, Args: []string{"--config", cfg}, Stderr: stderr})
	if err != nil {
		return err
	}
	defer srv.Stop()
	api := harness.NewClient(srv.URL, 4)
	const q = "?api-version=2025-04-01-preview"
	body, _ := json.Marshal(map[string]any{
		"input_blob": folder + "/" + name, "output_folder": map[string]any{"url": folder + "/out"},
		"endpoint": "/chat/completions", "completion_window": "24h",
	})
	t0 := time.Now()
	var b blobBatch
	if err := call(ctx, api, "POST", "/openai/batches"+q, body, &b); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	rw.create = time.Since(t0)
	rw.rssCreate = srv.PeakRSS()
	deadline := t0.Add(timeout)
	for !b.Terminal() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not done after %s: %s", timeout, b.Describe())
		}
		if err := srv.Exited(); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		rss := srv.PeakRSS()
		if err := call(ctx, api, "GET", "/openai/batches/"+b.ID+q, nil, &b); err != nil {
			return err
		}
		if b.Status == "in_progress" {
			rw.rssDispatch = rss
		}
	}
	rw.total = time.Since(t0)
	rw.rssEnd, rw.cpu = srv.PeakRSS(), srv.CPU()
	if b.Status != "completed" || b.RequestCounts.Completed != rw.lines {
		return errors.New(b.Describe())
	}
	want := folder + "/out/" + b.ID + "/results.jsonl"
	if b.OutputBlob != want {
		return fmt.Errorf("output_blob %q, want %q", b.OutputBlob, want)
	}
	resp, err := az.DownloadStream(ctx, container, "out/"+b.ID+"/results.jsonl", nil)
	if err != nil {
		return fmt.Errorf("read results.jsonl: %w", err)
	}
	defer resp.Body.Close()
	check := harness.NewIDCheck(rw.lines)
	n, err := io.Copy(check, bufio.NewReaderSize(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read results.jsonl: %w", err)
	}
	check.EndFile()
	fmt.Fprintf(os.Stderr, "%d MB: results.jsonl holds %d bytes\n", rw.mb, n)
	if err := check.Err(); err != nil {
		return fmt.Errorf("results.jsonl: %w", err)
	}
	return nil
}

// blobBatch is a batch with the blob-mode fields the benchmark reads.
type blobBatch struct {
	harness.Batch
	InputBlob  string `json:"input_blob"`
	OutputBlob string `json:"output_blob"`
}

// call sends a JSON request and decodes a 2xx answer into out.
func call(ctx context.Context, c *harness.Client, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// connField returns a field of a connection string, e.g. BlobEndpoint.
func connField(conn, key string) string {
	for _, kv := range strings.Split(conn, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// lineReader yields n chat request lines of about size bytes, custom_ids req-0 …
// req-(n-1) for harness.IDCheck, made one at a time as they are read.
type lineReader struct {
	n, size, i int
	buf        []byte
	off        int
}

const filler = "Consider its price, its colour, its size and what customers said of it. "

func (r *lineReader) Read(p []byte) (int, error) {
	if r.off == len(r.buf) {
		if r.i == r.n {
			return 0, io.EOF
		}
		r.buf = r.buf[:0]
		r.buf = fmt.Appendf(r.buf, `{"custom_id":"req-%d","method":"POST","url":"/chat/completions","body":{"model":"`+harness.Deployment+`","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise item %d of the catalogue in one sentence.`, r.i, r.i)
		for pad := r.size - 22 - len(r.buf); pad > 0; pad -= len(filler) {
			r.buf = append(r.buf, filler[:min(pad, len(filler))]...)
		}
		r.buf = append(r.buf, `"}],"max_tokens":16}}`+"\n"...)
		r.off = 0
		r.i++
	}
	n := copy(p, r.buf[r.off:])
	r.off += n
	return n, nil
}
