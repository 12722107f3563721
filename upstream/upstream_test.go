package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/upstream"
)

// MustServe starts a real HTTP server with handler and returns a client for it.
func MustServe(tb testing.TB, up sluice.Upstream, handler http.HandlerFunc) *upstream.Client {
	tb.Helper()
	ts := httptest.NewServer(handler)
	tb.Cleanup(ts.Close)
	up.BaseURL = ts.URL + "/v1/"
	if up.MaxConcurrency == 0 {
		up.MaxConcurrency = 4
	}
	return upstream.NewClient(up, nil)
}

func TestDo(t *testing.T) {
	t.Parallel()
	type seen struct{ method, path, auth, apiKey, contentType, body string }
	got := make(chan seen, 1)
	c := MustServe(t, sluice.Upstream{APIKey: "k-1"}, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("api-key"), r.Header.Get("Content-Type"), string(b)}
		w.Header().Set("x-request-id", "req-9")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"ok":true}`)
	})
	resp, err := c.Do(t.Context(), "/chat/completions", []byte(`{"model":"m"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := upstream.Response{Status: http.StatusCreated, Body: []byte(`{"ok":true}`), RequestID: "req-9"}
	if diff := cmp.Diff(want, resp); diff != "" {
		t.Errorf("response mismatch (-want +got):\n%s", diff)
	}
	wantSeen := seen{"POST", "/v1/chat/completions", "Bearer k-1", "k-1", "application/json", `{"model":"m"}`}
	if diff := cmp.Diff(wantSeen, <-got, cmp.AllowUnexported(seen{})); diff != "" {
		t.Errorf("request mismatch (-want +got):\n%s", diff)
	}
}

func TestDoWithoutKeySendsNone(t *testing.T) {
	t.Parallel()
	c := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("api-key") != "" {
			w.WriteHeader(http.StatusTeapot)
		}
	})
	resp, err := c.Do(t.Context(), "/embeddings", []byte(`{}`), nil)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("got %d, %v; want 200 with no credentials sent", resp.Status, err)
	}
}

// An empty body goes with Content-Length 0, not chunked: a server reading the body
// of a chunked request before it looks at the connection would miss a hang-up.
func TestDoEmptyBody(t *testing.T) {
	t.Parallel()
	c := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 || len(r.TransferEncoding) != 0 {
			http.Error(w, fmt.Sprint(r.ContentLength, r.TransferEncoding), http.StatusBadRequest)
		}
	})
	resp, err := c.Do(t.Context(), "/x", nil, nil)
	if err != nil || resp.Status != http.StatusOK {
		t.Fatalf("got %d %s, %v; want 200", resp.Status, resp.Body, err)
	}
}

// A given http.Client lends its transport; the client's own settings are not used.
func TestDoUsesTheGivenTransport(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(ts.Close)
	var used atomic.Int64
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		used.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	c := upstream.NewClient(sluice.Upstream{BaseURL: ts.URL}, &http.Client{Transport: rt})
	if _, err := c.Do(t.Context(), "/x", []byte("{}"), nil); err != nil {
		t.Fatal(err)
	}
	if used.Load() != 1 {
		t.Errorf("got %d requests through the given transport, want 1", used.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"ftp://x/v1", "not a url\x7f", "/relative"} {
		c := upstream.NewClient(sluice.Upstream{BaseURL: base, MaxConcurrency: 1}, nil)
		if _, err := c.Do(t.Context(), "/x", nil, nil); err == nil {
			t.Errorf("base %q: got nil error, want one", base)
		}
	}
}

// Bodies of a known length are read into the caller's buffer when it is big enough, so
// a worker reuses one buffer; a bigger body, or one of unknown length, still arrives
// whole.
func TestDoReadsIntoBuffer(t *testing.T) {
	t.Parallel()
	small := strings.Repeat("a", 100)
	big := strings.Repeat("b", 100_000)
	c := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		body := small
		if r.URL.Path == "/v1/big" {
			body = big
		}
		if r.URL.Query().Get("chunked") != "" {
			// Flushing before the end makes the server send chunks, with no length.
			io.WriteString(w, body[:len(body)/2])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[len(body)/2:])
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		io.WriteString(w, body)
	})
	buf := make([]byte, 0, 4096)
	for _, tc := range []struct {
		path, want string
		inBuf      bool
	}{
		{"/small", small, true},
		{"/small?chunked=1", small, true},
		{"/big", big, false},
		{"/big?chunked=1", big, false},
	} {
		resp, err := c.Do(t.Context(), tc.path, nil, buf)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if string(resp.Body) != tc.want {
			t.Errorf("%s: got %d bytes, want %d", tc.path, len(resp.Body), len(tc.want))
		}
		if inBuf := &resp.Body[:1][0] == &buf[:1][0]; inBuf != tc.inBuf {
			t.Errorf("%s: body in the caller's buffer: got %t, want %t", tc.path, inBuf, tc.inBuf)
		}
	}
}

func TestDoRefusesHugeBodies(t *testing.T) {
	t.Parallel()
	c := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(upstream.MaxResponseBytes+1))
		w.WriteHeader(http.StatusOK)
	})
	if _, err := c.Do(t.Context(), "/x", nil, nil); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("got %v, want an error naming the limit", err)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	date := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	for _, tc := range []struct {
		name     string
		header   map[string]string
		min, max time.Duration
	}{
		{"none", nil, 0, 0},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second, 7 * time.Second},
		{"fraction", map[string]string{"Retry-After": "0.5"}, 500 * time.Millisecond, 500 * time.Millisecond},
		{"milliseconds-first", map[string]string{"retry-after-ms": "250", "Retry-After": "9"}, 250 * time.Millisecond, 250 * time.Millisecond},
		{"bad-milliseconds-falls-back", map[string]string{"retry-after-ms": "soon", "Retry-After": "3"}, 3 * time.Second, 3 * time.Second},
		{"date", map[string]string{"Retry-After": date}, 80 * time.Second, 91 * time.Second},
		{"past-date", map[string]string{"Retry-After": "Mon, 01 Jan 2001 00:00:00 GMT"}, 0, 0},
		{"garbage", map[string]string{"Retry-After": "later"}, 0, 0},
		{"negative", map[string]string{"Retry-After": "-4"}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(http.StatusTooManyRequests)
			})
			resp, err := c.Do(t.Context(), "/x", nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.RetryAfter < tc.min || resp.RetryAfter > tc.max {
				t.Errorf("got %v, want between %v and %v", resp.RetryAfter, tc.min, tc.max)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	t.Parallel()
	for status, want := range map[int]bool{
		200: false, 400: false, 401: false, 404: false, 408: true, 409: false, 422: false,
		429: true, 500: true, 502: true, 503: true, 504: true,
	} {
		if got := (&upstream.Response{Status: status}).Retryable(); got != want {
			t.Errorf("status %d: got %t, want %t", status, got, want)
		}
	}
}

func TestRequestIDFromAzure(t *testing.T) {
	t.Parallel()
	c := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("apim-request-id", "apim-1")
	})
	resp, err := c.Do(t.Context(), "/x", nil, nil)
	if err != nil || resp.RequestID != "apim-1" {
		t.Errorf("got %q, %v; want apim-1", resp.RequestID, err)
	}
}

func TestErrorCode(t *testing.T) {
	t.Parallel()
	// A refused connection: a port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	refused := upstream.NewClient(sluice.Upstream{BaseURL: "http://" + addr, MaxConcurrency: 1}, nil)
	_, errRefused := refused.Do(t.Context(), "/x", nil, nil)

	// A reset: the server hangs up without answering.
	reset := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := w.(http.Hijacker).Hijack()
		conn.Close()
	})
	_, errReset := reset.Do(t.Context(), "/x", nil, nil)

	// A timeout: the caller's deadline passes first.
	hang := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, errTimeout := hang.Do(ctx, "/x", nil, nil)

	for _, tc := range []struct {
		err  error
		want string
	}{
		{errRefused, "connection_refused"},
		{errReset, "connection_reset"},
		{errTimeout, "timeout"},
		{errors.New("something else"), "connection_error"},
	} {
		if tc.err == nil {
			t.Errorf("want an error for %s, got none", tc.want)
			continue
		}
		if got := upstream.ErrorCode(tc.err); got != tc.want {
			t.Errorf("ErrorCode(%v): got %s, want %s", tc.err, got, tc.want)
		}
	}
}

// The transport opens at most MaxConcurrency connections to an upstream, however many
// requests are sent at once, and reuses them.
func TestTransportBoundsConnections(t *testing.T) {
	t.Parallel()
	var (
		mu          sync.Mutex
		open, peak  int
		dials       atomic.Int64
		release     = make(chan struct{})
		reachedPeak = make(chan struct{}, 1)
	)
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		open++
		peak = max(peak, open)
		if open == 2 {
			select {
			case reachedPeak <- struct{}{}:
			default:
			}
		}
		mu.Unlock()
		<-release
		mu.Lock()
		open--
		mu.Unlock()
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	ts.Start()
	t.Cleanup(ts.Close)
	c := upstream.NewClient(sluice.Upstream{BaseURL: ts.URL, MaxConcurrency: 2}, nil)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Do(context.Background(), "/x", nil, nil); err != nil {
				t.Error(err)
			}
		}()
	}
	<-reachedPeak
	close(release)
	wg.Wait()
	if peak != 2 {
		t.Errorf("got %d requests in flight at once, want 2", peak)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("got %d connections, want 2", n)
	}
}
