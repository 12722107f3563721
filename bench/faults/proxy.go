package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// proxy sits between sluice and the simulator and counts the calls of each line (the
// simulator cannot say which line a call carried). Faults pass through as they are:
// answers are copied, a reset becomes a reset of sluice's connection, and a hang
// lasts until sluice gives up.
type proxy struct {
	target string
	tr     *http.Transport
	srv    *http.Server
	url    string // with /v1

	mu      sync.Mutex
	calls   []int    // per line
	counted []int    // per line: calls that count toward max_attempts (500, reset, hang)
	last    []string // per line: what its last call came to: 200, 500, 429, reset, hang
	totals  map[string]int
}

// startProxy serves a proxy to simURL (a /v1 base URL) for n lines on a free port.
func startProxy(simURL string, n int) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{
		target: strings.TrimSuffix(simURL, "/v1"),
		tr:     &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, DisableCompression: true},
		url:    "http://" + ln.Addr().String() + "/v1",
		calls:  make([]int, n), counted: make([]int, n), last: make([]string, n), totals: map[string]int{},
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(ln)
	return p, nil
}

func (p *proxy) close() { p.srv.Close() }

// lineOf finds the line a request carries from its prompt, "Summarise item N of".
func lineOf(body []byte) int {
	const mark = "Summarise item "
	i := bytes.Index(body, []byte(mark))
	if i < 0 {
		return -1
	}
	rest := body[i+len(mark):]
	j := bytes.IndexByte(rest, ' ')
	if j < 0 {
		return -1
	}
	n, err := strconv.Atoi(string(rest[:j]))
	if err != nil {
		return -1
	}
	return n
}

func (p *proxy) record(line int, out string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.totals[out]++
	if line < 0 || line >= len(p.calls) {
		return
	}
	p.calls[line]++
	p.last[line] = out
	if out == "500" || out == "reset" || out == "hang" {
		p.counted[line]++
	}
}

func (p *proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	line := lineOf(body)
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	req.Header = r.Header.Clone()
	resp, err := p.tr.RoundTrip(req)
	if err != nil {
		if r.Context().Err() != nil {
			p.record(line, "hang") // sluice gave up waiting
			return
		}
		p.record(line, "reset")
		reset(w)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		p.record(line, "reset")
		reset(w)
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
	p.record(line, strconv.Itoa(resp.StatusCode))
}

// reset closes the caller's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// summary says what the proxy saw, by outcome.
func (p *proxy) summary() string {
	var total int
	for _, v := range p.totals {
		total += v
	}
	return fmt.Sprintf("%d calls: %d × 200, %d × 500, %d × 429, %d hung, %d reset", total,
		p.totals["200"], p.totals["500"], p.totals["429"], p.totals["hang"], p.totals["reset"])
}
