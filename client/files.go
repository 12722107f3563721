package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"iter"
	"mime/multipart"
	"net/url"
	"strconv"
	"time"
)

// File is a file of the Files API.
type File struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"` // unix seconds
	ExpiresAt int64  `json:"expires_at"` // unix seconds; 0 when it does not expire
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	// Status is uploaded, pending (an input file still being checked), processed or
	// error.
	Status        string `json:"status"`
	StatusDetails string `json:"status_details"`

	raw
}

// FileUpload is a file to upload.
type FileUpload struct {
	// Filename is the name the file is stored under, e.g. "input.jsonl".
	Filename string
	// Content is read once, as it is sent.
	Content io.Reader
	// Size is the number of bytes Content holds, sent as the Content-Length; -1 means
	// unknown, and the body is sent chunked.
	Size int64
	// Purpose is "batch" when empty.
	Purpose string
	// ExpiresAfter, in whole seconds, is how long after its creation the file is
	// deleted; 0 leaves it to the server (30 days on /v1, never on the Azure routes).
	ExpiresAfter time.Duration
}

// UploadFile uploads a file as multipart/form-data, streaming its content: only the
// multipart framing is held in memory.
func (c *Client) UploadFile(ctx context.Context, u FileUpload) (*File, error) {
	if u.Content == nil {
		return nil, fmt.Errorf("client: upload %q: no content", u.Filename)
	}
	purpose := u.Purpose
	if purpose == "" {
		purpose = "batch"
	}
	// The framing before and after the content is built first, so that the body is
	// the two around the content, with a Content-Length when Size is known.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fields := [][2]string{{"purpose", purpose}}
	if u.ExpiresAfter > 0 {
		fields = append(fields, [2]string{"expires_after[anchor]", "created_at"},
			[2]string{"expires_after[seconds]", strconv.FormatInt(int64(u.ExpiresAfter/time.Second), 10)})
	}
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			return nil, fmt.Errorf("client: upload: %w", err)
		}
	}
	if _, err := mw.CreateFormFile("file", u.Filename); err != nil {
		return nil, fmt.Errorf("client: upload: %w", err)
	}
	head := bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("client: upload: %w", err)
	}
	tail := buf.Bytes()
	size := int64(-1)
	if u.Size >= 0 {
		size = int64(len(head)) + u.Size + int64(len(tail))
	}
	body := io.MultiReader(bytes.NewReader(head), u.Content, bytes.NewReader(tail))
	var f File
	err := c.call(ctx, request{method: "POST", path: "/files", body: body, size: size, ctype: mw.FormDataContentType()}, &f)
	if err != nil {
		return nil, err
	}
	return &f, nil
}

// FileListParams select a page of files. The zero value is the first page, newest
// first, in the server's page size.
type FileListParams struct {
	Purpose string // only files of this purpose
	Limit   int    // files in a page; 0 is the server's default
	After   string // the page after this file ID
	Asc     bool   // oldest first
}

func (p *FileListParams) query() url.Values {
	q := url.Values{}
	if p == nil {
		return q
	}
	if p.Purpose != "" {
		q.Set("purpose", p.Purpose)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Asc {
		q.Set("order", "asc")
	}
	return q
}

// ListFiles returns one page of files.
func (c *Client) ListFiles(ctx context.Context, p *FileListParams) (*List[File], error) {
	var l List[File]
	if err := c.call(ctx, request{method: "GET", path: "/files", query: p.query()}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// AllFiles returns every file from the page p selects on, fetching pages as the
// loop asks for them. It stops at the first error, which it yields.
func (c *Client) AllFiles(ctx context.Context, p *FileListParams) iter.Seq2[*File, error] {
	q := FileListParams{}
	if p != nil {
		q = *p
	}
	return pages(func(after string) (*List[File], error) {
		if after != "" {
			q.After = after
		}
		return c.ListFiles(ctx, &q)
	})
}

// pages yields the objects of the pages that list returns, page after page.
func pages[T any](list func(after string) (*List[T], error)) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		after := ""
		for {
			l, err := list(after)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, v := range l.Data {
				if !yield(v, nil) {
					return
				}
			}
			if !l.HasMore || l.LastID == "" || l.LastID == after {
				return
			}
			after = l.LastID
		}
	}
}

// GetFile returns a file.
func (c *Client) GetFile(ctx context.Context, id string) (*File, error) {
	var f File
	if err := c.call(ctx, request{method: "GET", path: "/files/" + url.PathEscape(id)}, &f); err != nil {
		return nil, err
	}
	return &f, nil
}

// DeleteFile deletes a file.
func (c *Client) DeleteFile(ctx context.Context, id string) error {
	return c.call(ctx, request{method: "DELETE", path: "/files/" + url.PathEscape(id)}, nil)
}

// FileContent returns the content of a file as it arrives; the caller closes it. A
// content cut short reads as io.ErrUnexpectedEOF.
func (c *Client) FileContent(ctx context.Context, id string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, request{method: "GET", path: "/files/" + url.PathEscape(id) + "/content"})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// DownloadFile copies the content of a file to w as it arrives and returns the
// number of bytes written.
func (c *Client) DownloadFile(ctx context.Context, id string, w io.Writer) (int64, error) {
	rc, err := c.FileContent(ctx, id)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return n, fmt.Errorf("download %s: %w", id, err)
	}
	return n, nil
}
