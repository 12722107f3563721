package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// outcome is what one upstream call came to, as the counting proxy saw it.
type outcome uint8

const (
	outOK      outcome = iota // a 2xx answer
	outFail                   // a 5xx answer
	outBusy                   // a 429 answer
	outOther                  // any other answer
	outReset                  // the simulator reset the connection: no answer
	outTimeout                // no answer: sluice gave up waiting (the simulator hung)
	outKilled                 // no answer: the sluice that sent it was killed
)

var outcomeNames = [...]string{"200", "500", "429", "other", "reset", "timed out (hang)", "cut by a kill"}

func (o outcome) String() string { return outcomeNames[o] }

// answered reports whether the upstream answered the call.
func (o outcome) answered() bool { return o <= outOther }

// call is one request the simulator got, as the counting proxy in front of it saw it.
type call struct {
	line      int // the input line (custom_id req-N); -1 when the body names none
	life      int // the sluice process that sent it: 0 for the first start, k after the k-th kill
	start     time.Time
	end       time.Time // when the answer was handed back, or the call ended without one
	status    int       // the answer's status; 0 when none came
	requestID string    // the answer's x-request-id
	out       outcome   // outKilled is set later, by classify, from the kill times
	gaveUp    bool      // no answer because the client went away (a timeout or a kill)
}

// proxy is a reverse proxy in front of one `sluice sim`, recording every call with the
// line it carries and the sluice process that sent it. The simulator's faults pass
// through as they are: its answers are copied, a reset becomes a reset of the
// caller's connection, and a hang lasts until the caller gives up.
type proxy struct {
	target string          // the simulator's address, http://host:port
	life   func() int      // the current sluice process, stamped on each connection
	tr     *http.Transport // to the simulator
	srv    *http.Server
	URL    string // the proxy's base URL, with /v1

	mu    sync.Mutex
	calls []call
}

type lifeKey struct{}

// startProxy serves a proxy to the simulator at simURL (its /v1 base URL) on a free
// loopback port.
func startProxy(simURL string, life func() int) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{
		target: string(bytes.TrimSuffix([]byte(simURL), []byte("/v1"))),
		life:   life,
		tr: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true,
			IdleConnTimeout: time.Minute},
		URL: "http://" + ln.Addr().String() + "/v1",
	}
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		// A connection belongs to the process that opened it: stamping it when it is
		// accepted keeps a request of a killed process, read late, in that process's life.
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, lifeKey{}, p.life())
		},
	}
	go p.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed at close
	return p, nil
}

// close stops the proxy.
func (p *proxy) close() {
	_ = p.srv.Close()
	p.tr.CloseIdleConnections()
}

// snapshot returns a copy of the calls so far.
func (p *proxy) snapshot() []call {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]call(nil), p.calls...)
}

// hopHeaders are the headers a proxy does not pass on.
var hopHeaders = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true, "Content-Length": true,
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	life, _ := r.Context().Value(lifeKey{}).(int)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return // the caller went away mid-body: no call reached the simulator
	}
	c := call{line: lineOf(body), life: life, start: time.Now()}
	// The call is recorded before its answer is written: sluice may send the next
	// request as soon as it has read this answer.
	record := func() {
		c.end = time.Now()
		p.mu.Lock()
		p.calls = append(p.calls, c)
		p.mu.Unlock()
	}

	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		panic(err) // the target and the URI were valid a moment ago
	}
	for k, v := range r.Header {
		if !hopHeaders[k] {
			req.Header[k] = v
		}
	}
	resp, err := p.tr.RoundTrip(req)
	var answer []byte
	if err == nil {
		answer, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err != nil {
		if r.Context().Err() != nil {
			c.out, c.gaveUp = outTimeout, true
			record()
			return
		}
		c.out = outReset
		record()
		resetConn(w)
		return
	}
	c.status, c.requestID = resp.StatusCode, resp.Header.Get("X-Request-Id")
	switch {
	case c.status/100 == 2:
		c.out = outOK
	case c.status == http.StatusTooManyRequests:
		c.out = outBusy
	case c.status/100 == 5:
		c.out = outFail
	default:
		c.out = outOther
	}
	record()
	h := w.Header()
	for k, v := range resp.Header {
		if !hopHeaders[k] {
			h[k] = v
		}
	}
	h.Set("Content-Length", strconv.Itoa(len(answer)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(answer)
}

// resetConn closes the caller's connection with a TCP RST, as the simulator did ours.
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// lineMark starts the mark each request line's user message carries: "[req-N]".
var lineMark = []byte("[req-")

// lineOf returns N of the mark "[req-N]" in a request body, or -1.
func lineOf(body []byte) int {
	i := bytes.Index(body, lineMark)
	if i < 0 {
		return -1
	}
	rest := body[i+len(lineMark):]
	j := bytes.IndexByte(rest, ']')
	if j <= 0 {
		return -1
	}
	n, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return -1
	}
	return n
}
