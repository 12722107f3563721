package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"time"
)

// Client speaks the parts of the Batch API the benchmarks drive.
type Client struct {
	// BaseURL is the server's address without /v1, e.g. http://127.0.0.1:8080.
	BaseURL string
	// HTTP sends the requests.
	HTTP *http.Client
}

// NewClient returns a Client for base that keeps up to conns idle connections.
func NewClient(base string, conns int) *Client {
	// Large write buffers: with the default 4 KiB, a 200 MB upload goes out as 50,000
	// writes and the client, not the server, sets the pace.
	return &Client{BaseURL: base, HTTP: &http.Client{Transport: &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, DisableCompression: true,
		WriteBufferSize: 256 << 10, ReadBufferSize: 64 << 10,
	}}}
}

// File is the part of a file object the benchmarks read.
type File struct {
	ID            string  `json:"id"`
	Bytes         int64   `json:"bytes"`
	Status        string  `json:"status"`
	StatusDetails *string `json:"status_details"`
}

// Batch is the part of a batch object the benchmarks read.
type Batch struct {
	ID            string  `json:"id"`
	Status        string  `json:"status"`
	OutputFileID  *string `json:"output_file_id"`
	ErrorFileID   *string `json:"error_file_id"`
	RequestCounts struct {
		Total     int `json:"total"`
		Completed int `json:"completed"`
		Failed    int `json:"failed"`
	} `json:"request_counts"`
	Errors *struct {
		Data []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Line    *int   `json:"line"`
		} `json:"data"`
	} `json:"errors"`
}

// Terminal reports whether the batch has reached a state it never leaves.
func (b *Batch) Terminal() bool {
	switch b.Status {
	case "completed", "failed", "expired", "cancelled":
		return true
	}
	return false
}

// Describe says where a batch stands, with its first errors, for failure messages.
func (b *Batch) Describe() string {
	s := fmt.Sprintf("batch %s is %s with %d of %d completed and %d failed", b.ID, b.Status,
		b.RequestCounts.Completed, b.RequestCounts.Total, b.RequestCounts.Failed)
	if b.Errors != nil {
		for i, e := range b.Errors.Data {
			if i == 3 {
				s += fmt.Sprintf("; and %d more errors", len(b.Errors.Data)-i)
				break
			}
			line := 0
			if e.Line != nil {
				line = *e.Line
			}
			s += fmt.Sprintf("; %s at line %d: %s", e.Code, line, e.Message)
		}
	}
	return s
}

// Upload sends body as a batch input file through POST /v1/files, streamed, so body is
// never held in memory. A body whose length it can tell (sizeOf) goes with a
// Content-Length, as the official clients send a file; another is framed through a pipe
// and sent chunked.
func (c *Client) Upload(ctx context.Context, filename string, body io.Reader) (*File, error) {
	size, sized := sizeOf(body)
	if !sized {
		return c.uploadChunked(ctx, filename, body)
	}
	// The multipart framing around the file, so the body goes out as one stream of
	// known length: no pipe, no chunked encoding for the server to undo.
	var frame bytes.Buffer
	mw := multipart.NewWriter(&frame)
	if err := mw.WriteField("purpose", "batch"); err != nil {
		return nil, err
	}
	if _, err := mw.CreateFormFile("file", filename); err != nil {
		return nil, err
	}
	head := frame.Len()
	if err := mw.Close(); err != nil {
		return nil, err
	}
	parts := frame.Bytes()
	req, err := http.NewRequestWithContext(ctx, "POST", c.BaseURL+"/v1/files",
		io.MultiReader(bytes.NewReader(parts[:head]), body, bytes.NewReader(parts[head:])))
	if err != nil {
		return nil, err
	}
	req.ContentLength = int64(len(parts)) + size
	req.Header.Set("Content-Type", mw.FormDataContentType())
	var f File
	if err := c.send(req, &f); err != nil {
		return nil, fmt.Errorf("upload %s: %w", filename, err)
	}
	return &f, nil
}

// sizeOf returns the bytes left in r when it can tell: a bytes.Reader, strings.Reader
// or bytes.Buffer, or a file read from its start.
func sizeOf(r io.Reader) (int64, bool) {
	switch v := r.(type) {
	case interface{ Len() int }:
		return int64(v.Len()), true
	case *os.File:
		st, err := v.Stat()
		if err != nil || !st.Mode().IsRegular() {
			return 0, false
		}
		at, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return 0, false
		}
		return st.Size() - at, true
	}
	return 0, false
}

// uploadChunked is Upload for a body of unknown length, framed as it is read.
func (c *Client) uploadChunked(ctx context.Context, filename string, body io.Reader) (*File, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := mw.WriteField("purpose", "batch")
		if err == nil {
			var fw io.Writer
			if fw, err = mw.CreateFormFile("file", filename); err == nil {
				_, err = io.CopyBuffer(fw, body, make([]byte, 256<<10))
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	var f File
	if err := c.do(ctx, "POST", "/v1/files", mw.FormDataContentType(), pr, &f); err != nil {
		pr.CloseWithError(err)
		return nil, fmt.Errorf("upload %s: %w", filename, err)
	}
	return &f, nil
}

// File reads a file object.
func (c *Client) File(ctx context.Context, id string) (*File, error) {
	var f File
	if err := c.do(ctx, "GET", "/v1/files/"+id, "", nil, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// WaitProcessed polls f every interval until its status is processed. It fails when the
// status is error or ctx ends first.
func (c *Client) WaitProcessed(ctx context.Context, f *File, every time.Duration) (*File, error) {
	for {
		switch f.Status {
		case "processed":
			return f, nil
		case "error":
			details := ""
			if f.StatusDetails != nil {
				details = *f.StatusDetails
			}
			return nil, fmt.Errorf("file %s ended in status error: %s", f.ID, details)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("file %s still %s: %w", f.ID, f.Status, ctx.Err())
		case <-time.After(every):
		}
		var err error
		if f, err = c.File(ctx, f.ID); err != nil {
			return nil, err
		}
	}
}

// CreateBatch creates a /v1/chat/completions batch of the file.
func (c *Client) CreateBatch(ctx context.Context, fileID string) (*Batch, error) {
	body, err := json.Marshal(map[string]string{"input_file_id": fileID, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
	if err != nil {
		return nil, err
	}
	var b Batch
	if err := c.do(ctx, "POST", "/v1/batches", "application/json", bytes.NewReader(body), &b); err != nil {
		return nil, fmt.Errorf("create batch: %w", err)
	}
	return &b, nil
}

// DryRun asks whether a /v1/chat/completions batch of the file would be admitted, and
// returns the input tokens the upload scan counted for it.
func (c *Client) DryRun(ctx context.Context, fileID string) (tokens int64, err error) {
	body, err := json.Marshal(map[string]any{"input_file_id": fileID, "endpoint": "/v1/chat/completions",
		"completion_window": "24h", "dry_run": true})
	if err != nil {
		return 0, err
	}
	var out struct {
		InputTokens int64 `json:"input_tokens"`
	}
	if err := c.do(ctx, "POST", "/v1/batches", "application/json", bytes.NewReader(body), &out); err != nil {
		return 0, fmt.Errorf("dry run: %w", err)
	}
	return out.InputTokens, nil
}

// Batch reads a batch object.
func (c *Client) Batch(ctx context.Context, id string) (*Batch, error) {
	var b Batch
	if err := c.do(ctx, "GET", "/v1/batches/"+id, "", nil, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Content copies a file's content to w and returns the number of bytes.
func (c *Client) Content(ctx context.Context, id string, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.BaseURL+"/v1/files/"+id+"/content", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return 0, fmt.Errorf("GET content of %s: %d %s", id, resp.StatusCode, bytes.TrimSpace(b))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("read content of %s: %w", id, err)
	}
	return n, nil
}

// do sends one request and decodes a 2xx JSON answer into out.
func (c *Client) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return c.send(req, out)
}

// send sends req and decodes a 2xx answer's JSON into out.
func (c *Client) send(req *http.Request, out any) error {
	method, path := req.Method, req.URL.Path
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &StatusError{Method: method, Path: path, Code: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// StatusError is an answer outside 2xx.
type StatusError struct {
	Method, Path string
	Code         int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Code, e.Body)
}
