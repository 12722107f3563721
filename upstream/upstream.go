// Package upstream sends one request line to one OpenAI-compatible inference server and
// classifies what came back: success, a failure worth retrying (429, 5xx, timeouts,
// connection errors) or a final failure (other 4xx).
package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluice-batch/sluice"
)

// MaxResponseBytes bounds the body read from an upstream answer.
const MaxResponseBytes = 64 << 20

// Client sends requests to one upstream.
//
// To a plain-http upstream that no proxy stands before, such as a local inference
// server, it sends through its own HTTP/1.1 transport (see h1Transport); otherwise
// through an http.RoundTripper, not an http.Client: a request is one POST, and an
// http.Client's redirects, cookies and header copies cost a dozen allocations a request
// for nothing a batch needs. Either way a redirect is answered as it comes.
type Client struct {
	up     sluice.Upstream
	base   string
	rt     http.RoundTripper // nil when h1 sends
	h1     *h1Transport
	header http.Header // the same for every request; RoundTrip does not change it

	mu      sync.Mutex
	targets map[string]*target // by path; made once
}

// target is where a path's requests go.
type target struct {
	url  *url.URL
	head []byte // for h1: the request line and headers, up to "Content-Length: "
}

// NewClient returns a client for up. hc may be nil: the client then makes its own
// transport for up.MaxConcurrency requests at once (see NewClientTimeout); otherwise
// hc's transport is used (http.DefaultTransport when it has none), and hc's other
// settings are not.
func NewClient(up sluice.Upstream, hc *http.Client) *Client {
	if hc == nil {
		return NewClientTimeout(up, 0)
	}
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return newClient(up, rt)
}

// NewClientTimeout returns a client for up with its own transport, which keeps up to
// up.MaxConcurrency connections open and opens no more, each within connectTimeout
// (DefaultConnectTimeout when 0). To a plain-http upstream with no proxy for it in the
// environment (HTTP_PROXY, NO_PROXY) that is the client's own HTTP/1.1 transport;
// otherwise net/http's, from NewTransport, for TLS, HTTP/2 and proxies.
func NewClientTimeout(up sluice.Upstream, connectTimeout time.Duration) *Client {
	c := newClient(up, nil)
	if u, err := url.Parse(c.base); err == nil && u.Scheme == "http" && u.Host != "" && !proxied(u) {
		addr := u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "80")
		}
		c.h1 = newH1Transport(addr, up.MaxConcurrency, connectTimeout)
		return c
	}
	c.rt = NewTransport(up.MaxConcurrency, connectTimeout)
	return c
}

// proxied reports whether the environment sends requests to u through a proxy.
func proxied(u *url.URL) bool {
	p, err := http.ProxyFromEnvironment(&http.Request{URL: u})
	return err != nil || p != nil
}

// CloseIdleConnections closes the connections that no request is using.
func (c *Client) CloseIdleConnections() {
	if c.h1 != nil {
		c.h1.closeIdle()
	}
	if ci, ok := c.rt.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func newClient(up sluice.Upstream, rt http.RoundTripper) *Client {
	h := http.Header{"Content-Type": {"application/json"}, "User-Agent": {"sluice"}}
	base, user := splitUserinfo(strings.TrimRight(up.BaseURL, "/"))
	switch {
	case up.APIKey != "":
		h["Authorization"] = []string{"Bearer " + up.APIKey}
		h["Api-Key"] = []string{up.APIKey}
	case user != nil:
		// As an http.Client would: user:password@ in the URL is basic authentication.
		p, _ := user.Password()
		h["Authorization"] = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte(user.Username()+":"+p))}
	}
	return &Client{up: up, base: base, rt: rt, header: h, targets: make(map[string]*target)}
}

// splitUserinfo takes the user information out of a URL, so that it is in no request
// URL and so in no error that prints one.
func splitUserinfo(s string) (string, *url.Userinfo) {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s, nil
	}
	user := u.User
	u.User = nil
	return u.String(), user
}

// target returns where path's requests go on the upstream.
func (c *Client) target(path string) (*target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.targets[path]; ok {
		return t, nil
	}
	u, err := url.Parse(c.base + path)
	if err != nil {
		return nil, &redactedError{err}
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("upstream URL %q is not an http or https URL", Redact(c.base+path))
	}
	t := &target{url: u}
	if c.h1 != nil {
		if t.head, err = c.requestHead(u); err != nil {
			return nil, err
		}
	}
	c.targets[path] = t
	return t, nil
}

// requestHead returns the start of every request to u for h1: the request line and
// the fixed headers, in a fixed order, up to the value of Content-Length. A header
// value with a control character (a key pasted with its line break) is refused, as
// net/http refuses it, rather than sent as two lines.
func (c *Client) requestHead(u *url.URL) ([]byte, error) {
	b := fmt.Appendf(nil, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	for _, k := range slices.Sorted(maps.Keys(c.header)) {
		for _, v := range c.header[k] {
			if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				return nil, fmt.Errorf("the upstream's %s header holds a control character", k)
			}
			b = fmt.Appendf(b, "%s: %s\r\n", k, v)
		}
	}
	return append(b, "Content-Length: "...), nil
}

// DefaultConnectTimeout bounds how long a transport made by NewTransport waits for a
// TCP connection when it is given no other bound.
const DefaultConnectTimeout = 10 * time.Second

// NewTransport returns an HTTP transport for concurrency requests in flight to one
// host: it keeps that many connections idle between requests and opens no more, so a
// burst never dials connections that are closed again as surplus. A connection must be
// made within connectTimeout (DefaultConnectTimeout when 0): a server that is gone
// answers a SYN with nothing, and the attempt should fail fast, not at its own timeout.
//
// It sets no ResponseHeaderTimeout: a non-streaming answer's headers come with its
// whole body, once every token is generated, so a time to first byte would be the
// whole request's time, which the caller's context already bounds per request.
func NewTransport(concurrency int, connectTimeout time.Duration) *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	concurrency = max(concurrency, 1)
	t.MaxIdleConns = concurrency * 2
	t.MaxIdleConnsPerHost = concurrency
	t.MaxConnsPerHost = concurrency
	t.ResponseHeaderTimeout = 0 // the caller's context bounds each attempt
	if connectTimeout <= 0 {
		connectTimeout = DefaultConnectTimeout
	}
	t.DialContext = (&net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	return t
}

// Upstream returns the upstream this client sends to.
func (c *Client) Upstream() sluice.Upstream { return c.up }

// Response is an upstream's answer.
type Response struct {
	Status     int
	Body       []byte
	RequestID  string        // x-request-id or apim-request-id, if sent
	RetryAfter time.Duration // from Retry-After or retry-after-ms; 0 if absent
}

// Retryable reports whether a request that got this answer should be sent again.
func (r *Response) Retryable() bool {
	return r.Status == http.StatusTooManyRequests || r.Status == http.StatusRequestTimeout || r.Status >= 500
}

// Do posts body to the base URL joined with path (e.g. "/chat/completions"). It returns
// an error only when no HTTP answer came: the connection failed, was reset, or ctx ended.
// The answer's body is read into buf's storage when it fits, so a caller sending many
// requests can reuse one buffer: Response.Body is then valid until buf is used again.
func (c *Client) Do(ctx context.Context, path string, body, buf []byte) (Response, error) {
	t, err := c.target(path)
	if err != nil {
		return Response{}, fmt.Errorf("build request: %w", err)
	}
	if c.h1 != nil {
		resp, err := c.h1.do(ctx, t.head, body, buf)
		if err != nil {
			return Response{}, &redactedError{err}
		}
		return resp, nil
	}
	u := t.url
	req := (&http.Request{
		Method: http.MethodPost, URL: u, Host: u.Host,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        c.header,
		Body:          http.NoBody,
		ContentLength: int64(len(body)),
	}).WithContext(ctx)
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		// The transport sends the body again if a kept-alive connection turns out closed
		// before any of it went out.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return Response{}, &redactedError{err}
	}
	defer resp.Body.Close()
	b, err := readBody(resp.Body, resp.ContentLength, buf[:0])
	if err != nil {
		return Response{}, fmt.Errorf("read response: %w", err)
	}
	out := Response{Status: resp.StatusCode, Body: b, RequestID: resp.Header.Get("x-request-id")}
	if out.RequestID == "" {
		out.RequestID = resp.Header.Get("apim-request-id")
	}
	out.RetryAfter = retryAfterOf(resp.Header.Get("retry-after-ms"), resp.Header.Get("Retry-After"))
	return out, nil
}

// readBody reads a body into dst's storage. With a known length n it reads exactly n
// bytes into a buffer of that size (the last read also sees the end, so the connection
// is reused); otherwise it grows dst as bytes come.
func readBody(r io.Reader, n int64, dst []byte) ([]byte, error) {
	if n > MaxResponseBytes {
		return nil, fmt.Errorf("response of %d bytes is over the %d byte limit: %w", n, MaxResponseBytes, ErrResponseTooLarge)
	}
	if n >= 0 {
		if int64(cap(dst)) < n {
			dst = make([]byte, n)
		}
		dst = dst[:n]
		if _, err := io.ReadFull(r, dst); err != nil {
			return nil, err
		}
		return dst, nil
	}
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		m, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+m]
		if len(dst) > MaxResponseBytes {
			return nil, fmt.Errorf("response is over the %d byte limit: %w", MaxResponseBytes, ErrResponseTooLarge)
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// retryAfterOf reads the values of retry-after-ms (Azure), then of Retry-After, in
// seconds or as a date.
func retryAfterOf(ms, v string) time.Duration {
	if ms != "" {
		if ms, err := strconv.ParseFloat(ms, 64); err == nil && ms >= 0 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil && s >= 0 {
		return time.Duration(s * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// ErrorCode names a transport failure for the error file: "timeout",
// "connection_reset", "connection_refused" or "connection_error".
func ErrorCode(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return "timeout"
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return "connection_reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	}
	return "connection_error"
}
