package client_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/engine"
	"github.com/sluice-batch/sluice/httpapi"
	"github.com/sluice-batch/sluice/sim"
	"github.com/sluice-batch/sluice/sqlite"
)

// testKey is the API key the test servers accept.
const testKey = "test-key"

// serverOptions shape a test server.
type serverOptions struct {
	// TokenLimit is the enqueued-token limit of deployment gpt-4o-mini; 0 for none.
	TokenLimit int64
	// Latency is the simulated upstream's; default 1ms.
	Latency time.Duration
	// FailRate is the share of requests the simulated upstream answers with a 500;
	// a failed line is not tried again.
	FailRate float64
}

// startServer runs the API as cmd/sluice/serve.go wires it, on real SQLite, a folder
// bucket and the simulator as upstream of deployment gpt-4o-mini, served by an
// httptest.Server. It returns the server's URL (no path) and a stop function.
func startServer(dir string, o serverOptions) (string, func(), error) {
	ctx := context.Background()
	if o.Latency == 0 {
		o.Latency = time.Millisecond
	}
	up := httptest.NewServer(sim.New(sim.Options{Latency: o.Latency, FailRate: o.FailRate, Seed: 1}))
	stops := []func(){up.Close}
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	store, err := sqlite.Open(ctx, filepath.Join(dir, "sluice.db"), nil)
	if err != nil {
		stop()
		return "", nil, err
	}
	stops = append(stops, func() { store.Close() })
	bucket, err := blob.OpenDir(filepath.Join(dir, "objects"))
	if err != nil {
		stop()
		return "", nil, err
	}
	deps := []sluice.Deployment{{Name: "gpt-4o-mini", Type: "global",
		Quota:     sluice.Quota{EnqueuedTokenLimit: o.TokenLimit},
		Upstreams: []sluice.Upstream{{BaseURL: up.URL + "/v1", MaxConcurrency: 8}}}}
	eng, err := engine.New(store, bucket, deps, &engine.Options{PollInterval: 10 * time.Millisecond, MaxAttempts: 1})
	if err != nil {
		stop()
		return "", nil, err
	}
	if err := eng.Start(ctx); err != nil {
		stop()
		return "", nil, err
	}
	stops = append(stops, func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = eng.Stop(sctx)
	})
	api := httptest.NewServer(httpapi.NewServer(store, eng, &httpapi.Options{APIKeys: []string{testKey}, Deployments: eng.Configured()}))
	stops = append(stops, api.Close)
	return api.URL, stop, nil
}

// MustServe starts a test server for tb and returns its URL.
func MustServe(tb testing.TB, o serverOptions) string {
	tb.Helper()
	url, stop, err := startServer(tb.TempDir(), o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(stop)
	return url
}

// chatLines returns n request lines for deployment gpt-4o-mini.
func chatLines(n int) string {
	var s string
	for i := range n {
		s += fmt.Sprintf(`{"custom_id":"line-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"question number %d"}]}}`+"\n", i, i)
	}
	return s
}

// exampleServer starts a server for an Example, which has no testing.TB.
func exampleServer() (string, func()) {
	dir, err := os.MkdirTemp("", "sluice-client-example")
	if err != nil {
		panic(err)
	}
	url, stop, err := startServer(dir, serverOptions{})
	if err != nil {
		panic(err)
	}
	return url, func() { stop(); os.RemoveAll(dir) }
}

// recorder is a fake API that answers every request with status and body, and
// passes on what it was sent.
type recorder struct {
	status int
	body   string
	seen   chan seenRequest
}

// seenRequest is what a recorder was sent.
type seenRequest struct {
	method, path, query string
	header              http.Header
	contentLength       int64
	body                []byte
}

func newRecorder(tb testing.TB, status int, body string) (*recorder, string) {
	tb.Helper()
	r := &recorder{status: status, body: body, seen: make(chan seenRequest, 16)}
	ts := httptest.NewServer(r)
	tb.Cleanup(ts.Close)
	return r, ts.URL
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.seen <- seenRequest{method: req.Method, path: req.URL.Path, query: req.URL.RawQuery, header: req.Header.Clone(),
		contentLength: req.ContentLength, body: b}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	fmt.Fprint(w, r.body)
}
