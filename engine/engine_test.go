package engine_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/engine"
	"github.com/sluice-batch/sluice/jsonl"
	"github.com/sluice-batch/sluice/sim"
	"github.com/sluice-batch/sluice/sqlite"
	"github.com/sluice-batch/sluice/tokens"
)

// testBundle is an engine over a real SQLite store and an in-memory bucket, sending to
// a fake upstream that injects the faults a test scripts.
type testBundle struct {
	eng    *engine.Engine
	store  *sqlite.Store
	bucket *recordingBucket

	mu    sync.Mutex
	waits []time.Duration // the waits the engine asked for between attempts
	seen  []seenRequest   // what the upstream received

	bucketFunc func(n int) (fail, partial bool) // set before setup to inject append failures
}

type seenRequest struct {
	path, auth string
	body       map[string]any
}

func setup(t *testing.T, up sluice.Upstream, handler http.HandlerFunc, opts engine.Options) *testBundle {
	t.Helper()
	return setupInto(t, &testBundle{}, up, handler, opts)
}

// setupInto is setup for a bundle whose fault injection is already set.
func setupInto(t *testing.T, b *testBundle, up sluice.Upstream, handler http.HandlerFunc, opts engine.Options) *testBundle {
	t.Helper()
	if handler != nil {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			raw, _ := io.ReadAll(r.Body)
			_ = json.Unmarshal(raw, &body)
			b.mu.Lock()
			b.seen = append(b.seen, seenRequest{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body})
			b.mu.Unlock()
			r.Body = io.NopCloser(strings.NewReader(string(raw)))
			handler(w, r)
		}))
		t.Cleanup(ts.Close)
		up.BaseURL = ts.URL + "/v1"
	}
	if up.MaxConcurrency == 0 {
		up.MaxConcurrency = 4
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	opts.WaitFunc = func(ctx context.Context, d time.Duration) error {
		b.mu.Lock()
		b.waits = append(b.waits, d)
		b.mu.Unlock()
		return ctx.Err()
	}
	opts.PollInterval = 10 * time.Millisecond
	bucket := &recordingBucket{Bucket: blob.NewMem(), keys: make(map[string]bool)}
	bucket.appendFunc = b.bucketFunc
	eng, err := engine.New(store, bucket, []sluice.Deployment{{Name: "dep", Upstreams: []sluice.Upstream{up}}}, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := eng.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	b.eng, b.store, b.bucket = eng, store, bucket
	return b
}

// recordingBucket is a real in-memory bucket that remembers every key appended to and
// can inject append failures.
type recordingBucket struct {
	sluice.Bucket
	mu         sync.Mutex
	keys       map[string]bool
	appends    int
	appendFunc func(n int) (fail bool, partial bool) // n counts appends from 1
}

func (r *recordingBucket) Append(ctx context.Context, key string, off int64, p []byte) error {
	r.mu.Lock()
	r.keys[key] = true
	r.appends++
	n := r.appends
	f := r.appendFunc
	r.mu.Unlock()
	if f != nil {
		if fail, partial := f(n); fail {
			if partial {
				_ = r.Bucket.Append(ctx, key, off, p[:len(p)/2])
			}
			return fmt.Errorf("injected append failure %d", n)
		}
	}
	return r.Bucket.Append(ctx, key, off, p)
}

func (r *recordingBucket) segmentKeys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.keys {
		out = append(out, k)
	}
	return out
}

func lines(n int) string {
	var s strings.Builder
	for i := range n {
		fmt.Fprintf(&s, `{"custom_id":"c%d","method":"POST","url":"/chat/completions","body":{"model":"dep","messages":[{"role":"user","content":"q%d"}]}}`+"\n", i, i)
	}
	return s.String()
}

type outcome struct {
	batch  *sluice.Batch
	output []map[string]any
	errors []map[string]any
}

// MustRun uploads input, creates a batch and waits for it to end.
func (b *testBundle) MustRun(t *testing.T, input string) outcome {
	t.Helper()
	ctx := context.Background()
	f, err := b.eng.UploadFile(ctx, sluice.FileUpload{Filename: "in.jsonl", Body: strings.NewReader(input)})
	if err != nil {
		t.Fatal(err)
	}
	batch, _, err := b.eng.CreateBatch(ctx, sluice.BatchCreate{InputFileID: f.ID, Endpoint: "/chat/completions", CompletionWindow: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !batch.Status.Terminal() {
		if time.Now().After(deadline) {
			t.Fatalf("batch still %s with %+v", batch.Status, batch.RequestCounts)
		}
		time.Sleep(5 * time.Millisecond)
		if batch, err = b.store.FindBatchByID(ctx, batch.ID); err != nil {
			t.Fatal(err)
		}
	}
	return outcome{batch: batch, output: b.read(t, batch.OutputFileID), errors: b.read(t, batch.ErrorFileID)}
}

func (b *testBundle) read(t *testing.T, id string) []map[string]any {
	t.Helper()
	if id == "" {
		return nil
	}
	_, rc, err := b.eng.FileContent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []map[string]any
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("result line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func (b *testBundle) Waits() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.waits...)
}

func ok(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
}

// attempts counts requests per prompt, so a handler can fail the first tries of a line.
type attempts struct {
	mu sync.Mutex
	n  map[string]int
}

func (a *attempts) next(r *http.Request) int {
	var body struct {
		Messages []struct{ Content string }
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil {
		a.n = map[string]int{}
	}
	key := ""
	if len(body.Messages) > 0 {
		key = body.Messages[0].Content
	}
	a.n[key]++
	return a.n[key]
}

func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	var a attempts
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		if a.next(r) == 1 {
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":null}}`)
			return
		}
		ok(w)
	}, engine.Options{})
	out := b.MustRun(t, lines(1))
	if out.batch.Status != sluice.StatusCompleted || out.batch.RequestCounts.Completed != 1 {
		t.Fatalf("got %s %+v, want completed 1", out.batch.Status, out.batch.RequestCounts)
	}
	if got := b.Waits(); len(got) != 1 || got[0] != 7*time.Second {
		t.Errorf("waits: got %v, want [7s] from Retry-After", got)
	}
}

func TestRetryAfterMillisecondsAndCap(t *testing.T) {
	t.Parallel()
	var a attempts
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		switch a.next(r) {
		case 1:
			w.Header().Set("retry-after-ms", "1500")
			w.WriteHeader(http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "86400")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			ok(w)
		}
	}, engine.Options{})
	b.MustRun(t, lines(1))
	if got, want := b.Waits(), []time.Duration{1500 * time.Millisecond, 10 * time.Minute}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits: got %v, want %v", got, want)
	}
}

func TestExponentialBackoffThenErrorFile(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`)
	}, engine.Options{MaxAttempts: 4, BackoffBase: 100 * time.Millisecond, BackoffMax: time.Second})
	out := b.MustRun(t, lines(1))
	if out.batch.RequestCounts.Failed != 1 || len(out.errors) != 1 || len(out.output) != 0 {
		t.Fatalf("got %+v, %d error lines, %d output lines; want 1 failed line in the error file", out.batch.RequestCounts, len(out.errors), len(out.output))
	}
	resp, _ := out.errors[0]["response"].(map[string]any)
	if resp == nil || resp["status_code"] != float64(500) || out.errors[0]["custom_id"] != "c0" {
		t.Errorf("error line: got %v, want the upstream's 500 for c0", out.errors[0])
	}
	waits := b.Waits()
	if len(waits) != 3 {
		t.Fatalf("waits: got %v, want 3 (between 4 attempts)", waits)
	}
	for i, w := range waits {
		hi := 100 * time.Millisecond << i
		if w < hi/2 || w > hi {
			t.Errorf("wait %d: got %v, want within [%v, %v]", i, w, hi/2, hi)
		}
	}
}

func TestNoRetryOnClientError(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"message":"bad messages","type":"invalid_request_error","param":"messages","code":null}}`)
	}, engine.Options{})
	out := b.MustRun(t, lines(2))
	b.mu.Lock()
	seen := len(b.seen)
	b.mu.Unlock()
	if out.batch.RequestCounts.Failed != 2 || seen != 2 || len(b.Waits()) != 0 {
		t.Errorf("got %+v after %d requests and waits %v; want 2 failed, 2 requests, no waits", out.batch.RequestCounts, seen, b.Waits())
	}
}

func TestConnectionResetIsRetriedThenReported(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{ResetRate: 1})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	// Every connection reset: the upstream is in trouble, not the line. The line's first
	// failure counts as an attempt; the second, in a row, is an outage, and with no
	// budget for outages the line then fails.
	b := setup(t, sluice.Upstream{BaseURL: ts.URL + "/v1"}, nil, engine.Options{MaxAttempts: 3, OutageBudget: time.Nanosecond})
	out := b.MustRun(t, lines(1))
	if len(out.errors) != 1 {
		t.Fatalf("got %d error lines, want 1", len(out.errors))
	}
	e, _ := out.errors[0]["error"].(map[string]any)
	if out.errors[0]["response"] != nil || e == nil || e["code"] != "connection_reset" {
		t.Errorf("error line: got %v, want response null and error code connection_reset", out.errors[0])
	}
	if got := s.Stats().Requests; got != 2 {
		t.Errorf("upstream requests: got %d, want 2 attempts", got)
	}
}

func TestHangingUpstreamTimesOut(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{HangRate: 1})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	b := setup(t, sluice.Upstream{BaseURL: ts.URL + "/v1"}, nil, engine.Options{MaxAttempts: 2, RequestTimeout: 50 * time.Millisecond, OutageBudget: time.Nanosecond})
	out := b.MustRun(t, lines(1))
	e, _ := out.errors[0]["error"].(map[string]any)
	if e == nil || e["code"] != "timeout" {
		t.Errorf("error line: got %v, want error code timeout", out.errors[0])
	}
}

func TestUnreachableUpstream(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	b := setup(t, sluice.Upstream{BaseURL: "http://" + addr + "/v1"}, nil, engine.Options{MaxAttempts: 2, OutageBudget: time.Nanosecond})
	out := b.MustRun(t, lines(1))
	e, _ := out.errors[0]["error"].(map[string]any)
	if e == nil || e["code"] != "connection_refused" {
		t.Errorf("error line: got %v, want error code connection_refused", out.errors[0])
	}
}

func TestNonJSONUpstreamBodyIsWrapped(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, "<html>forbidden\nby proxy</html>")
	}, engine.Options{})
	out := b.MustRun(t, lines(1))
	resp, _ := out.errors[0]["response"].(map[string]any)
	body, _ := resp["body"].(map[string]any)
	e, _ := body["error"].(map[string]any)
	if e == nil || !strings.Contains(fmt.Sprint(e["message"]), "forbidden") {
		t.Errorf("error line: got %v, want the HTML wrapped as an error message", out.errors[0])
	}
}

func TestUpstreamModelAndKey(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{Model: "Qwen/Qwen2.5-7B", APIKey: "up-key"}, func(w http.ResponseWriter, r *http.Request) { ok(w) }, engine.Options{})
	out := b.MustRun(t, lines(3))
	if out.batch.RequestCounts.Completed != 3 {
		t.Fatalf("got %+v, want 3 completed", out.batch.RequestCounts)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.seen {
		if s.path != "/v1/chat/completions" || s.auth != "Bearer up-key" || s.body["model"] != "Qwen/Qwen2.5-7B" {
			t.Errorf("upstream got path %s auth %q model %v; want /v1/chat/completions, Bearer up-key, Qwen/Qwen2.5-7B", s.path, s.auth, s.body["model"])
		}
	}
}

func TestManyChunksEachLineOnce(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	b := setup(t, sluice.Upstream{BaseURL: ts.URL + "/v1", MaxConcurrency: 16}, nil, engine.Options{})
	const n = 3*sluice.ChunkLines + 17
	out := b.MustRun(t, lines(n))
	if out.batch.RequestCounts != (sluice.RequestCounts{Total: n, Completed: n}) || len(out.output) != n {
		t.Fatalf("got %+v and %d output lines, want %d completed", out.batch.RequestCounts, len(out.output), n)
	}
	seen := map[any]bool{}
	for _, l := range out.output {
		if seen[l["custom_id"]] {
			t.Errorf("custom_id %v twice", l["custom_id"])
		}
		seen[l["custom_id"]] = true
	}
	if got := s.Stats().Requests; got != n {
		t.Errorf("upstream requests: got %d, want %d", got, n)
	}
}

func TestStartMarksInterruptedUploads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// A row left pending by a process that died mid-upload.
	if err := store.CreateFile(ctx, &sluice.File{ID: "file-cut", CreatedAt: time.Now(), Purpose: sluice.PurposeBatch, Status: sluice.FileStatusPending}); err != nil {
		t.Fatal(err)
	}
	// Its bytes were stored before the cut.
	bucket := blob.NewMem()
	for _, key := range []string{sluice.FileKey("file-cut"), sluice.IndexKey("file-cut")} {
		if _, err := bucket.Put(ctx, key, strings.NewReader("bytes")); err != nil {
			t.Fatal(err)
		}
	}
	eng, err := engine.New(store, bucket, []sluice.Deployment{{Name: "dep", Upstreams: []sluice.Upstream{{BaseURL: "http://127.0.0.1:1/v1"}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(ctx)
	for _, key := range []string{sluice.FileKey("file-cut"), sluice.IndexKey("file-cut")} {
		if _, err := bucket.Get(ctx, key); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("%s after start: got %v, want the bytes deleted", key, err)
		}
	}
	f, err := store.FindFileByID(ctx, "file-cut")
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != sluice.FileStatusError || f.StatusDetails == "" {
		t.Errorf("got status %s (%q), want error with details", f.Status, f.StatusDetails)
	}
	_, _, err = eng.CreateBatch(ctx, sluice.BatchCreate{InputFileID: "file-cut", Endpoint: "/v1/chat/completions", CompletionWindow: "24h"})
	if sluice.ErrorKind(err) != sluice.KindInvalid {
		t.Errorf("batch on an errored file: got %v, want KindInvalid", err)
	}
	if _, _, err := eng.FileContent(ctx, "file-cut"); sluice.ErrorKind(err) != sluice.KindInvalid {
		t.Errorf("content of an errored file: got %v, want KindInvalid", err)
	}
}

func TestExpiredFilesAreDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, store, bucket, advance := newClockEngine(t)
	keep, err := eng.UploadFile(ctx, sluice.FileUpload{Filename: "keep.jsonl", Body: strings.NewReader(lines(1))})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := eng.UploadFile(ctx, sluice.FileUpload{Filename: "gone.jsonl", Body: strings.NewReader(lines(1))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateFile(ctx, gone.ID, sluice.FileUpdate{ExpiresAt: sluice.Ptr(time.Unix(1_800_000_000, 0).Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(ctx)
	advance(2 * time.Hour) // past gone's expiry
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store.FindFileByID(ctx, gone.ID)
		if sluice.ErrorKind(err) == sluice.KindNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired file still there: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The row goes first, then the bytes.
	for {
		_, err := bucket.Get(ctx, sluice.FileKey(gone.ID))
		if sluice.ErrorKind(err) == sluice.KindNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bytes of the expired file: got %v, want not found", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := store.FindFileByID(ctx, keep.ID); err != nil {
		t.Errorf("file without expiry: got %v, want it kept", err)
	}
}

// failingStore is a real store whose CommitResults always fails, as on a full disk.
type failingStore struct {
	*sqlite.Store
}

func (failingStore) CommitResults(context.Context, string, []sluice.ResultRef) (int, error) {
	return 0, fmt.Errorf("disk full")
}

func TestStopReturnsWhenTheStoreFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	s := sim.New(sim.Options{})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	eng, err := engine.New(failingStore{store}, blob.NewMem(), []sluice.Deployment{{Name: "dep", Upstreams: []sluice.Upstream{{BaseURL: ts.URL + "/v1", MaxConcurrency: 8}}}},
		&engine.Options{PollInterval: 5 * time.Millisecond, CommitSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	f, err := eng.UploadFile(ctx, sluice.FileUpload{Filename: "in.jsonl", Body: strings.NewReader(lines(2000))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.CreateBatch(ctx, sluice.BatchCreate{InputFileID: f.ID, Endpoint: "/chat/completions", CompletionWindow: "24h"}); err != nil {
		t.Fatal(err)
	}
	// The committer queue holds 4*CommitSize results; with 8 workers blocked on it too, 40
	// answered requests mean it is full and stuck behind the failing store.
	for deadline := time.Now().Add(10 * time.Second); s.Stats().Requests < 40; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("upstream got %d requests, want the committer's queue to fill", s.Stats().Requests)
		}
	}
	stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- eng.Stop(stopCtx) }()
	select {
	case err := <-stopped:
		if err == nil {
			t.Errorf("stop: got nil, want the context's error for a stop cut short")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("stop did not return after its context ended")
	}
}

// cancelAtEOF cancels a context when its reader is drained: a client that goes away
// right after its last byte.
type cancelAtEOF struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c cancelAtEOF) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err == io.EOF {
		c.cancel()
	}
	return n, err
}

func TestUploadFinishesWhenTheClientLeavesAtTheEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) { ok(w) }, engine.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	f, err := b.eng.UploadFile(ctx, sluice.FileUpload{Filename: "in.jsonl", Body: cancelAtEOF{strings.NewReader(lines(3)), cancel}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.store.FindFileByID(context.Background(), f.ID)
	if err != nil || got.Status != sluice.FileStatusProcessed {
		t.Errorf("got %+v, %v; want the file processed", got, err)
	}
}

// A finished batch leaves nothing behind but its files: no chunk, extent or segment
// record, and no segment in the bucket.
func TestFinishedBatchLeavesNoWork(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(fmt.Sprint(readBody(r)), "q3") {
			http.Error(w, `{"error":{"message":"no"}}`, http.StatusBadRequest)
			return
		}
		ok(w)
	}, engine.Options{})
	out := b.MustRun(t, lines(5))
	if len(out.output) != 4 || len(out.errors) != 1 {
		t.Fatalf("got %d output and %d error lines, want 4 and 1", len(out.output), len(out.errors))
	}
	ctx := context.Background()
	keys := b.bucket.segmentKeys()
	if len(keys) != 2 {
		t.Errorf("got segments %v, want one for the output and one for the errors", keys)
	}
	// Deleting the work follows the final status; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		segs, err := b.store.FindSegments(ctx, out.batch.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("segments still recorded: %v", segs)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, ok := range []bool{true, false} {
		n := 0
		if err := b.store.EachExtent(ctx, out.batch.ID, ok, func(sluice.Extent) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("got %d extents (succeeded %t) after the files were written, want 0", n, ok)
		}
	}
	for _, k := range keys {
		if _, err := b.bucket.Get(ctx, k); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("segment %s: got %v, want it deleted", k, err)
		}
	}
	if left, err := b.store.FindLeftoverWork(ctx, 10); err != nil || len(left) != 0 {
		t.Errorf("leftover work: got %v, %v; want none", left, err)
	}
}

// readBody returns the JSON body of a request the upstream received.
func readBody(r *http.Request) map[string]any {
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(raw, &body)
	return body
}

// A failed append, even one that left half its bytes in the segment, loses nothing and
// adds nothing: the group goes to a new segment, and the output file holds each line
// once, whole.
func TestFailedAppendsGoToNewSegments(t *testing.T) {
	t.Parallel()
	b := &testBundle{bucketFunc: func(n int) (bool, bool) { return n%3 == 1, n%2 == 1 }}
	b = setupInto(t, b, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) { ok(w) }, engine.Options{CommitSize: 16})
	const n = 600
	out := b.MustRun(t, lines(n))
	if out.batch.Status != sluice.StatusCompleted || out.batch.RequestCounts.Completed != n {
		t.Fatalf("got %s %+v, want completed %d", out.batch.Status, out.batch.RequestCounts, n)
	}
	seen := make(map[string]bool)
	for _, line := range out.output {
		id, _ := line["custom_id"].(string)
		if seen[id] {
			t.Errorf("custom_id %s twice in the output", id)
		}
		seen[id] = true
	}
	if len(seen) != n || len(out.errors) != 0 {
		t.Errorf("got %d custom_ids and %d errors, want %d and 0", len(seen), len(out.errors), n)
	}
	if keys := b.bucket.segmentKeys(); len(keys) < 3 {
		t.Errorf("got segments %v, want several: failed appends move to new ones", keys)
	}
}

// The upload counts every request line's input tokens: the file's total, and each
// line's count in its index entry.
// TestUploadCountsTokens checks the counts in the index line by line, on a small file
// and on one of many more chunks than the upload holds at once, so that the counter runs
// ahead of the scanner.
func TestUploadCountsTokens(t *testing.T) {
	t.Parallel()
	for _, n := range []int{600, 60_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			testUploadCountsTokens(t, lines(n))
		})
	}
}

func testUploadCountsTokens(t *testing.T, input string) {
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {}, engine.Options{})
	f, err := b.eng.UploadFile(context.Background(), sluice.FileUpload{Filename: "in.jsonl", Body: strings.NewReader(input)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := tokens.New("")
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	var wantEach []int
	for _, l := range strings.Split(strings.TrimSpace(input), "\n") {
		var req struct {
			Body json.RawMessage `json:"body"`
		}
		_ = json.Unmarshal([]byte(l), &req)
		n, err := c.Request("/v1/chat/completions", req.Body)
		if err != nil {
			t.Fatal(err)
		}
		want += int64(n)
		wantEach = append(wantEach, n)
	}
	if f.Scan.Tokens != want || f.Scan.Encoding != "o200k_base" {
		t.Errorf("scan: got %d tokens in %q, want %d in o200k_base", f.Scan.Tokens, f.Scan.Encoding, want)
	}
	rc, err := b.bucket.Get(context.Background(), sluice.IndexKey(f.ID))
	if err != nil {
		t.Fatal(err)
	}
	index, _ := io.ReadAll(rc)
	rc.Close()
	blocks := jsonl.IndexBlocks(f.Scan.Requests)
	dirSize := jsonl.IndexDirectorySize(blocks)
	dir, err := jsonl.ParseIndexDirectory(index[int64(len(index))-dirSize:], int64(len(index)), blocks)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, blk := range dir {
		entries, err := jsonl.AppendBlock(nil, index[blk.Offset:blk.Offset+blk.Length])
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			got = append(got, e.Tokens)
		}
	}
	if !slices.Equal(got, wantEach) {
		t.Errorf("index token counts differ from the tokenizer's")
	}
}

// TestUploadReportsLateBodyProblems puts bodies that lack their messages deep into a
// file of many chunks: each is reported at its line, and the file gets no index.
func TestUploadReportsLateBodyProblems(t *testing.T) {
	t.Parallel()
	b := setup(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {}, engine.Options{})
	rows := strings.SplitAfter(lines(60_000), "\n")
	bad := []int{45_000, 59_999}
	for _, line := range bad {
		rows[line-1] = fmt.Sprintf(`{"custom_id":"bad%d","method":"POST","url":"/chat/completions","body":{"model":"dep"}}`+"\n", line)
	}
	f, err := b.eng.UploadFile(context.Background(), sluice.FileUpload{Filename: "in.jsonl", Body: strings.NewReader(strings.Join(rows, ""))})
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, p := range f.Scan.Problems {
		if p.Param != "body.messages" {
			t.Errorf("line %d: param %q, want body.messages", p.Line, p.Param)
		}
		got = append(got, p.Line)
	}
	if !slices.Equal(got, bad) || f.Scan.Indexed {
		t.Errorf("problems at lines %v, indexed %v; want %v, not indexed", got, f.Scan.Indexed, bad)
	}
}
