package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// idleAttack holds n keep-alive connections open, each after one GET /healthz, as the
// fd-exhaustion attack of issue 20 did. A connection the server closes is opened again
// after a second, so the attack keeps pressing for the whole window.
type idleAttack struct {
	addr string

	open, peak                       atomic.Int64
	opened, closedByServer, dialFail atomic.Int64
	reqFail                          atomic.Int64
	wg                               sync.WaitGroup
}

// run opens the connections; the caller has added n to wg.
func (a *idleAttack) run(ctx context.Context, n int) {
	for i := range n {
		go a.conn(ctx)
		if i%8 == 7 { // about 8,000 dials a second: the listen backlog keeps up
			time.Sleep(time.Millisecond)
		}
	}
}

func (a *idleAttack) conn(ctx context.Context) {
	defer a.wg.Done()
	wait := func(d time.Duration) {
		select {
		case <-ctx.Done():
		case <-time.After(d + time.Duration(rand.Int64N(int64(d)))):
		}
	}
	req := []byte("GET /healthz HTTP/1.1\r\nHost: chaos\r\n\r\n")
	for ctx.Err() == nil {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", a.addr)
		if err != nil {
			if ctx.Err() == nil {
				a.dialFail.Add(1)
			}
			wait(500 * time.Millisecond)
			continue
		}
		a.opened.Add(1)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReaderSize(c, 512)
		_, err = c.Write(req)
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(br, nil)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err != nil {
			if ctx.Err() == nil {
				a.reqFail.Add(1)
			}
			c.Close()
			wait(500 * time.Millisecond)
			continue
		}
		_ = c.SetDeadline(time.Time{})
		if n := a.open.Add(1); n > a.peak.Load() {
			a.peak.Store(n) // racy max, close enough for a peak
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		_, err = br.ReadByte() // idle until the server closes it, or the attack ends
		stop()
		a.open.Add(-1)
		c.Close()
		if ctx.Err() == nil && err != nil {
			a.closedByServer.Add(1)
		}
		wait(time.Second)
	}
}

// slowResult is one slow request of the slow-body attack.
type slowResult struct {
	kind       string // slowCreate, slowUpload or slowNoKey
	route      string
	start, end time.Time
	status     int    // the server's answer; 0 when it closed without one, or the attack ended first
	code       string // the error code of the answer
	ours       bool   // the attack ended it, not the server
}

// The kinds of slow request: a batch create with a key, whose body the API reads; a
// file upload with a key, whose body the API reads when the key has an upload slot
// and refuses (429) when it has not; a file upload without a key, refused (401).
const (
	slowCreate = "batch create with a key"
	slowUpload = "upload with a key"
	slowNoKey  = "upload without a key"
)

// slowAttack sends n requests at once whose bodies trickle in at 16 bytes a second, a
// third of each kind, each opened again when it ends.
type slowAttack struct {
	addr, key string
	wg        sync.WaitGroup

	mu      sync.Mutex
	results []slowResult
}

// run starts the requests; the caller has added n to wg.
func (a *slowAttack) run(ctx context.Context, n int) {
	for i := range n {
		go a.loop(ctx, [...]string{slowCreate, slowUpload, slowNoKey}[i%3])
	}
}

func (a *slowAttack) loop(ctx context.Context, kind string) {
	defer a.wg.Done()
	for ctx.Err() == nil {
		r := a.once(ctx, kind)
		if r.start.IsZero() {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		a.mu.Lock()
		a.results = append(a.results, r)
		a.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (a *slowAttack) once(ctx context.Context, kind string) slowResult {
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", a.addr)
	if err != nil {
		return slowResult{}
	}
	defer c.Close()
	route := "/v1/files"
	if kind == slowCreate {
		route = "/v1/batches"
	}
	r := slowResult{kind: kind, route: route, start: time.Now()}
	head := "Authorization: Bearer " + a.key + "\r\n"
	if kind == slowNoKey {
		head = ""
	}
	var body string
	if route == "/v1/files" {
		body = "--chaosboundary\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n" +
			"--chaosboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.jsonl\"\r\n" +
			"Content-Type: application/jsonl\r\n\r\n" + strings.Repeat(`{"custom_id":"slow","method":"POST","url":"/v1/chat/completions","body":{}}`+"\n", 200)
		head += "Content-Type: multipart/form-data; boundary=chaosboundary\r\n"
	} else {
		body = `{"input_file_id":"file-` + strings.Repeat("0", 4000) + `","endpoint":"/v1/chat/completions","completion_window":"24h"}`
		head += "Content-Type: application/json\r\n"
	}
	_, err = fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: chaos\r\n%sContent-Length: %d\r\n\r\n", route, head, len(body))
	if err != nil {
		r.end = time.Now()
		return r
	}
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(b, &e)
		r.status, r.code = resp.StatusCode, e.Error.Code
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for off := 0; ; off += 16 {
		select {
		case <-answered:
			r.end = time.Now()
			return r
		case <-ctx.Done():
			c.Close()
			<-answered
			r.end, r.ours = time.Now(), r.status == 0
			return r
		case <-t.C:
		}
		if off < len(body) {
			if _, err := io.WriteString(c, body[off:min(off+16, len(body))]); err != nil {
				// The server closed the connection; its answer, if any, is being read.
				<-answered
				r.end = time.Now()
				return r
			}
		}
	}
}

func (a *slowAttack) all() []slowResult {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]slowResult(nil), a.results...)
}

// openFDs returns how many file descriptors a process has open, or -1.
func openFDs(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(entries)
}
