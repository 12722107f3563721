package upstream_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/upstream"
)

// rawServer answers each request with bytes a test writes itself, so that the client's
// own HTTP/1.1 transport meets what net/http's server would never send.
type rawServer struct {
	addr     string
	requests atomic.Int64  // read whole
	conns    atomic.Int64  // accepted
	closed   chan struct{} // the server closed a connection

	mu   sync.Mutex
	open []net.Conn
}

// serveRaw starts a server whose answer to the nth request (from 0) on any connection is
// answer(n, conn); answer returns false to close the connection afterwards.
func serveRaw(t *testing.T, answer func(n int64, c net.Conn) bool) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{addr: ln.Addr().String(), closed: make(chan struct{}, 16)}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.conns.Add(1)
			s.mu.Lock()
			s.open = append(s.open, c)
			s.mu.Unlock()
			wg.Go(func() {
				defer func() {
					c.Close()
					select {
					case s.closed <- struct{}{}:
					default:
					}
				}()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					if _, err := io.Copy(io.Discard, req.Body); err != nil {
						return
					}
					if !answer(s.requests.Add(1)-1, c) {
						return
					}
				}
			})
		}
	})
	return s
}

func (s *rawServer) client(concurrency int) *upstream.Client {
	return upstream.NewClient(sluice.Upstream{BaseURL: "http://" + s.addr + "/v1", MaxConcurrency: concurrency}, nil)
}

func write(c net.Conn, s string) bool {
	_, err := io.WriteString(c, s)
	return err == nil
}

func TestH1ReadsEveryBodyFraming(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, answer string
		status       int
		body, id     string
		retryAfter   time.Duration
		newConn      bool // the next request needs a new connection
	}{
		{name: "length", answer: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Request-Id: r-1\r\n\r\nhello",
			status: 200, body: "hello", id: "r-1"},
		{name: "chunked, extensions and trailers",
			answer: "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\n\r\n3;ext=1\r\nhel\r\nA\r\nlo, world!\r\n0\r\nX-Trailer: 1\r\n\r\n",
			status: 200, body: "hello, world!"},
		{name: "to the end of the connection", answer: "HTTP/1.0 200 OK\r\n\r\nuntil the end",
			status: 200, body: "until the end", newConn: true},
		{name: "HTTP/1.0 kept alive", answer: "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok"},
		{name: "connection close", answer: "HTTP/1.1 503 Busy\r\nConnection: close\r\nretry-after-ms: 1500\r\nContent-Length: 2\r\n\r\n{}",
			status: 503, body: "{}", retryAfter: 1500 * time.Millisecond, newConn: true},
		{name: "interim answers first", answer: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 429 Too Many\r\nRetry-After: 2\r\napim-request-id: az-7\r\nContent-Length: 0\r\n\r\n",
			status: 429, body: "", id: "az-7", retryAfter: 2 * time.Second},
		{name: "no body", answer: "HTTP/1.1 204 No Content\r\n\r\n", status: 204, body: ""},
		{name: "a header line longer than the buffer", answer: "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("a", 20000) + "\r\nContent-Length: 1\r\n\r\nx",
			status: 200, body: "x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := serveRaw(t, func(n int64, c net.Conn) bool {
				if n == 0 {
					return write(c, tc.answer) && !tc.newConn
				}
				return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
			})
			c := s.client(1)
			resp, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), make([]byte, 0, 4))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != tc.status || string(resp.Body) != tc.body || resp.RequestID != tc.id || resp.RetryAfter != tc.retryAfter {
				t.Errorf("got status %d, body %q, id %q, retry after %v; want %d, %q, %q, %v",
					resp.Status, resp.Body, resp.RequestID, resp.RetryAfter, tc.status, tc.body, tc.id, tc.retryAfter)
			}
			resp, err = c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil)
			if err != nil || string(resp.Body) != "next" {
				t.Fatalf("second request: %q, %v", resp.Body, err)
			}
			wantConns := int64(1)
			if tc.newConn {
				wantConns = 2
			}
			if got := s.conns.Load(); got != wantConns {
				t.Errorf("%d connections for two requests, want %d", got, wantConns)
			}
		})
	}
}

func TestH1RefusesMalformedAnswers(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"not HTTP":                   "SSH-2.0-OpenSSH\r\n\r\n",
		"bad status":                 "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
		"header without a colon":     "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\n{}",
		"bad length":                 "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}",
		"signed length":              "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\n{}",
		"two lengths":                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
		"unknown transfer coding":    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}",
		"bad chunk size":             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
		"chunk longer than its size": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{}\r\n0\r\n\r\n",
		"switching protocols":        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n",
		"headers over a megabyte":    "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", 1100) + "\r\n",
		"body cut short":             "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",
		"nothing at all":             "",
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := serveRaw(t, func(n int64, c net.Conn) bool {
				if n == 0 {
					write(c, answer)
					return false
				}
				return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
			})
			c := s.client(1)
			if resp, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil); err == nil {
				t.Fatalf("got status %d, body %q; want an error", resp.Status, resp.Body)
			}
			// The connection is not used again; the next request gets an answer.
			if resp, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil); err != nil || resp.Status != 200 {
				t.Fatalf("next request: %v, %v", resp.Status, err)
			}
		})
	}
}

func TestH1CutShortIsAConnectionReset(t *testing.T) {
	t.Parallel()
	s := serveRaw(t, func(n int64, c net.Conn) bool {
		write(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")
		return false
	})
	_, err := s.client(1).Do(t.Context(), "/chat/completions", []byte(`{}`), nil)
	if got := upstream.ErrorCode(err); got != "connection_reset" {
		t.Errorf("ErrorCode(%v) = %q, want connection_reset", err, got)
	}
}

// A server that closes a connection it kept idle must not cost a request: the client
// sees the close before it writes, and sends on a new connection, once.
func TestH1IdleConnectionClosedByTheServer(t *testing.T) {
	t.Parallel()
	s := serveRaw(t, func(n int64, c net.Conn) bool {
		write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
		return n > 0 // the first connection is closed after its answer, without a word
	})
	c := s.client(1)
	for i := range 2 {
		if _, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if i == 0 {
			<-s.closed // the server has closed the first connection
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := s.requests.Load(); got != 2 {
		t.Errorf("the server read %d requests, want 2", got)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

// Bytes a server sends unasked on an idle connection make it unfit for the next request.
func TestH1IdleConnectionWithStrayBytes(t *testing.T) {
	t.Parallel()
	s := serveRaw(t, func(n int64, c net.Conn) bool {
		if n == 0 {
			return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}HTTP/1.1 200 OK\r\n")
		}
		return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext")
	})
	c := s.client(1)
	if _, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // the stray bytes arrive
	resp, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil)
	if err != nil || string(resp.Body) != "next" {
		t.Fatalf("second request: %q, %v", resp.Body, err)
	}
	if got := s.conns.Load(); got != 2 {
		t.Errorf("%d connections, want 2", got)
	}
}

// Cancelling a request closes its connection, so the server sees the client go, as an
// inference server must to stop generating.
func TestH1CancelClosesTheConnection(t *testing.T) {
	t.Parallel()
	gone := make(chan struct{})
	s := serveRaw(t, func(n int64, c net.Conn) bool {
		if n == 0 {
			c.Read(make([]byte, 1)) // until the client closes
			close(gone)
			return false
		}
		return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	})
	c := s.client(1)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := c.Do(ctx, "/chat/completions", []byte(`{}`), nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the server never saw the connection close")
	}
	if _, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil); err != nil {
		t.Fatalf("a request after the cancel: %v", err)
	}
}

func TestH1DeadlineIsATimeout(t *testing.T) {
	t.Parallel()
	s := serveRaw(t, func(n int64, c net.Conn) bool {
		c.Read(make([]byte, 1))
		return false
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	_, err := s.client(1).Do(ctx, "/chat/completions", []byte(`{}`), nil)
	if !errors.Is(err, context.DeadlineExceeded) || upstream.ErrorCode(err) != "timeout" {
		t.Errorf("err = %v (code %q), want a deadline exceeded, code timeout", err, upstream.ErrorCode(err))
	}
}

// A body too big to copy whole into the request buffer goes out as it is.
func TestH1LargeRequestBody(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	c := MustServe(t, sluice.Upstream{}, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
		io.WriteString(w, `{}`)
	})
	body := []byte(`{"x":"` + strings.Repeat("y", 1<<20) + `"}`)
	if _, err := c.Do(t.Context(), "/chat/completions", body, nil); err != nil {
		t.Fatal(err)
	}
	if got.Load() != int64(len(body)) {
		t.Errorf("the server read %d bytes, want %d", got.Load(), len(body))
	}
}

// An API key pasted with its line break would end the header early and start another:
// the request is refused instead, and says which header.
func TestH1RefusesControlCharactersInHeaders(t *testing.T) {
	t.Parallel()
	s := serveRaw(t, func(n int64, c net.Conn) bool {
		return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
	})
	c := upstream.NewClient(sluice.Upstream{BaseURL: "http://" + s.addr + "/v1", APIKey: "k-1\r\nX-Injected: 1", MaxConcurrency: 1}, nil)
	_, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil)
	if err == nil || !strings.Contains(err.Error(), "control character") || strings.Contains(err.Error(), "k-1") {
		t.Errorf("err = %v, want a refusal that names the header and not the key", err)
	}
	if got := s.requests.Load(); got != 0 {
		t.Errorf("the server read %d requests, want none", got)
	}
}

// A body of many small chunks is a body, however many chunks: only each chunk's size
// line is bounded, as a header line is.
func TestH1ManySmallChunks(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	sb.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range 300_000 { // some 2 MB of framing for 300 KB of body
		sb.WriteString("1\r\nx\r\n")
	}
	sb.WriteString("0\r\n\r\n")
	answer := sb.String()
	s := serveRaw(t, func(n int64, c net.Conn) bool { return write(c, answer) })
	resp, err := s.client(1).Do(t.Context(), "/chat/completions", []byte(`{}`), nil)
	if err != nil || len(resp.Body) != 300_000 {
		t.Fatalf("got %d bytes, %v; want 300000", len(resp.Body), err)
	}
}
