package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

// keyed is a RoundTripper that sends an API key with every request.
type keyed struct {
	key  string
	next http.RoundTripper
}

func (k keyed) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+k.key)
	return k.next.RoundTrip(r)
}

// newClient returns a harness client that sends key, with its own connections.
func newClient(base, key string, conns int, timeout time.Duration) *harness.Client {
	tr := &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true}
	return &harness.Client{BaseURL: base, HTTP: &http.Client{Transport: keyed{key, tr}, Timeout: timeout}}
}

// sample is one API request the load sent: when, how long it took, and its status (0
// when it got no answer).
type sample struct {
	at     time.Time
	lat    time.Duration
	status int
}

// batchView is what the probe last read of the batch.
type batchView struct {
	at        time.Time
	status    string
	total     int
	completed int
	failed    int
}

// probe sends GET /v1/batches/{id} every interval, each in its own goroutine so a slow
// answer delays no other, and keeps every latency; the answers also tell the director
// how far the batch has come.
type probe struct {
	url string
	hc  *http.Client

	mu      sync.Mutex
	samples []sample
	errs    []string // the first errors, for the report
	last    batchView
}

func newProbe(base, key, batchID string) *probe {
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}
	return &probe{url: base + "/v1/batches/" + batchID, hc: &http.Client{Transport: keyed{key, tr}, Timeout: 5 * time.Second}}
}

func (p *probe) run(ctx context.Context, every time.Duration) {
	var wg sync.WaitGroup
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.once(ctx)
		}()
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

func (p *probe) once(ctx context.Context) {
	at := time.Now()
	var b struct {
		Status        string `json:"status"`
		RequestCounts struct {
			Total     int `json:"total"`
			Completed int `json:"completed"`
			Failed    int `json:"failed"`
		} `json:"request_counts"`
	}
	status, err := getJSON(context.WithoutCancel(ctx), p.hc, p.url, &b)
	s := sample{at: at, lat: time.Since(at), status: status}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.samples = append(p.samples, s)
	if err != nil || status != http.StatusOK {
		if len(p.errs) < 5 {
			p.errs = append(p.errs, fmt.Sprintf("%s: %d %v", at.Format("15:04:05.000"), status, err))
		}
		return
	}
	if at.After(p.last.at) {
		p.last = batchView{at: at, status: b.Status, total: b.RequestCounts.Total,
			completed: b.RequestCounts.Completed, failed: b.RequestCounts.Failed}
	}
}

// view returns the latest answer's view of the batch.
func (p *probe) view() batchView {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// getJSON sends a GET and decodes a 200 answer into out. It returns the status, 0 when
// no answer came.
func getJSON(ctx context.Context, hc *http.Client, url string, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("%.200s", bytes.TrimSpace(body))
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

// pollers are n clients that each GET the batch every interval, as batch clients do,
// spread over keys API keys.
type pollers struct {
	samples [][]sample // per poller
	wait    func()     // returns when every poller has stopped
}

func runPollers(ctx context.Context, base, batchID string, keys []string, n int, every time.Duration) *pollers {
	ps := &pollers{samples: make([][]sample, n)}
	url := base + "/v1/batches/" + batchID
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n, DisableCompression: true}
	clients := make([]*http.Client, len(keys))
	for i, k := range keys {
		clients[i] = &http.Client{Transport: keyed{k, tr}, Timeout: 10 * time.Second}
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := clients[i%len(clients)]
			// Start at a random point of the interval, so the load is spread out.
			first := time.Duration(rand.Int64N(int64(every)))
			select {
			case <-ctx.Done():
				return
			case <-time.After(first):
			}
			for ctx.Err() == nil {
				at := time.Now()
				status, _ := getJSON(ctx, hc, url, nil)
				if ctx.Err() != nil {
					return // cut off by the end of the run, not by the server
				}
				ps.samples[i] = append(ps.samples[i], sample{at: at, lat: time.Since(at), status: status})
				select {
				case <-ctx.Done():
				case <-time.After(time.Until(at.Add(every))):
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		tr.CloseIdleConnections()
	}()
	ps.wait = wg.Wait
	return ps
}

// all returns every poller's samples; call it after the pollers stopped.
func (ps *pollers) all() []sample {
	ps.wait()
	var out []sample
	for _, s := range ps.samples {
		out = append(out, s...)
	}
	return out
}

// upload is one small file the uploader sent during the run.
type upload struct {
	at      time.Time
	end     time.Time
	fileID  string
	content []byte
	result  string // ok, refused (429), failed: ...
}

// uploader sends a small file every interval while the batch runs, waits until it is
// processed and reads it back.
type uploader struct {
	cl *harness.Client

	mu      sync.Mutex
	uploads []upload
	seq     atomic.Int64
}

func (u *uploader) run(ctx context.Context, every time.Duration, lines int) {
	for ctx.Err() == nil {
		u.once(ctx, lines)
		select {
		case <-ctx.Done():
		case <-time.After(every):
		}
	}
}

func (u *uploader) once(ctx context.Context, lines int) {
	n := u.seq.Add(1)
	var b bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&b, `{"custom_id":"up%d-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"%s","messages":[{"role":"user","content":"Upload %d, line %d."}],"max_tokens":8}}`+"\n",
			n, i, deployment, n, i)
	}
	up := upload{at: time.Now(), content: b.Bytes()}
	defer func() {
		up.end = time.Now()
		u.mu.Lock()
		u.uploads = append(u.uploads, up)
		u.mu.Unlock()
	}()
	// The run's end does not cut an upload short: it would count as a failure.
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	f, err := u.cl.Upload(octx, "chaos-"+strconv.FormatInt(n, 10)+".jsonl", bytes.NewReader(up.content))
	if err != nil {
		var se *harness.StatusError
		if errors.As(err, &se) && se.Code == http.StatusTooManyRequests {
			up.result = "refused (429)"
			return
		}
		up.result = "failed: " + err.Error()
		return
	}
	up.fileID = f.ID
	// A kill may come while the file is read: errors without an answer are waited out.
	for f.Status != "processed" {
		if f.Status == "error" {
			details := ""
			if f.StatusDetails != nil {
				details = *f.StatusDetails
			}
			up.result = "failed: status error: " + details
			return
		}
		select {
		case <-octx.Done():
			up.result = "failed: still " + f.Status + " after a minute"
			return
		case <-time.After(100 * time.Millisecond):
		}
		if g, err := u.cl.File(octx, f.ID); err == nil {
			f = g
		}
	}
	for {
		err := u.verify(octx, f.ID, up.content)
		if err == nil {
			break
		}
		var se *harness.StatusError
		if errors.As(err, &se) || errors.Is(err, errDiffers) || octx.Err() != nil {
			up.result = "failed: " + err.Error()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	up.result = "ok"
}

// errDiffers says a file read back is not what was uploaded.
var errDiffers = errors.New("the content differs")

// verify reads a file back and compares it with what was uploaded.
func (u *uploader) verify(ctx context.Context, id string, want []byte) error {
	var got bytes.Buffer
	if _, err := u.cl.Content(ctx, id, &got); err != nil {
		return err
	}
	if !bytes.Equal(got.Bytes(), want) {
		return fmt.Errorf("file %s reads back %d bytes, uploaded %d: %w", id, got.Len(), len(want), errDiffers)
	}
	return nil
}

func (u *uploader) all() []upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upload(nil), u.uploads...)
}
