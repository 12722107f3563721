package client

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/url"
	"time"
)

// PartSize is the most one part of an upload may hold, 64 MB, and the size of the
// parts UploadFileInParts sends.
const PartSize = 64 << 20

// partSize is the size of the parts UploadFileInParts sends; tests make it small.
var partSize int64 = PartSize

// Upload is an upload in parts of the Uploads API.
type Upload struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"` // pending, completed, cancelled or expired
	ExpiresAt int64  `json:"expires_at"`
	File      *File  `json:"file"` // the file made of the parts, once completed

	raw
}

// UploadPart is one part of an upload.
type UploadPart struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	CreatedAt int64  `json:"created_at"`
	UploadID  string `json:"upload_id"`

	raw
}

// UploadCreate starts an upload in parts.
type UploadCreate struct {
	Filename string
	Bytes    int64  // the size of the whole file
	MimeType string // "application/jsonl" when empty
	Purpose  string // "batch" when empty
	// ExpiresAfter, in whole seconds, is the lifetime of the file the upload becomes;
	// 0 leaves it to the server.
	ExpiresAfter time.Duration
}

// CreateUpload starts an upload in parts.
func (c *Client) CreateUpload(ctx context.Context, u UploadCreate) (*Upload, error) {
	in := struct {
		Filename     string `json:"filename"`
		Purpose      string `json:"purpose"`
		Bytes        int64  `json:"bytes"`
		MimeType     string `json:"mime_type"`
		ExpiresAfter *struct {
			Anchor  string `json:"anchor"`
			Seconds int64  `json:"seconds"`
		} `json:"expires_after,omitempty"`
	}{Filename: u.Filename, Purpose: u.Purpose, Bytes: u.Bytes, MimeType: u.MimeType}
	if in.Purpose == "" {
		in.Purpose = "batch"
	}
	if in.MimeType == "" {
		in.MimeType = "application/jsonl"
	}
	if u.ExpiresAfter > 0 {
		in.ExpiresAfter = &struct {
			Anchor  string `json:"anchor"`
			Seconds int64  `json:"seconds"`
		}{"created_at", int64(u.ExpiresAfter / time.Second)}
	}
	var out Upload
	if err := c.callJSON(ctx, "POST", "/uploads", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AddUploadPart sends size bytes of data as the next part of an upload, streamed.
func (c *Client) AddUploadPart(ctx context.Context, uploadID string, data io.Reader, size int64) (*UploadPart, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if _, err := mw.CreateFormFile("data", "part"); err != nil {
		return nil, fmt.Errorf("client: upload part: %w", err)
	}
	head := bytes.Clone(buf.Bytes())
	buf.Reset()
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("client: upload part: %w", err)
	}
	tail := buf.Bytes()
	body := io.MultiReader(bytes.NewReader(head), data, bytes.NewReader(tail))
	var p UploadPart
	err := c.call(ctx, request{method: "POST", path: "/uploads/" + url.PathEscape(uploadID) + "/parts", body: body,
		size: int64(len(head)) + size + int64(len(tail)), ctype: mw.FormDataContentType()}, &p)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// CompleteUpload joins the parts, in the order given, into a file. md5, when not
// empty, is the hex MD5 of the whole file, which the server checks.
func (c *Client) CompleteUpload(ctx context.Context, uploadID string, partIDs []string, md5 string) (*Upload, error) {
	in := struct {
		PartIDs []string `json:"part_ids"`
		MD5     string   `json:"md5,omitempty"`
	}{partIDs, md5}
	var out Upload
	if err := c.callJSON(ctx, "POST", "/uploads/"+url.PathEscape(uploadID)+"/complete", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelUpload cancels an upload; its parts are dropped.
func (c *Client) CancelUpload(ctx context.Context, uploadID string) (*Upload, error) {
	var out Upload
	if err := c.call(ctx, request{method: "POST", path: "/uploads/" + url.PathEscape(uploadID) + "/cancel"}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UploadFileInParts uploads a file through the Uploads API in parts of PartSize, one
// after another, each streamed, and checks the whole with its MD5. u.Size must be
// known. A part that fails cancels the upload. Files too big for one request, or
// sent over a link that drops long requests, go this way.
func (c *Client) UploadFileInParts(ctx context.Context, u FileUpload) (*File, error) {
	if u.Content == nil || u.Size < 0 {
		return nil, fmt.Errorf("client: upload %q in parts: the content and its size are needed", u.Filename)
	}
	up, err := c.CreateUpload(ctx, UploadCreate{Filename: u.Filename, Bytes: u.Size, Purpose: u.Purpose, ExpiresAfter: u.ExpiresAfter})
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*File, error) {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = c.CancelUpload(cctx, up.ID) // best effort: an upload left pending expires anyway
		return nil, err
	}
	sum := md5.New()
	content := io.TeeReader(u.Content, sum)
	var ids []string
	for left := u.Size; left > 0 || len(ids) == 0; {
		n := min(left, partSize)
		p, err := c.AddUploadPart(ctx, up.ID, io.LimitReader(content, n), n)
		if err != nil {
			return fail(fmt.Errorf("part %d: %w", len(ids)+1, err))
		}
		ids = append(ids, p.ID)
		left -= n
	}
	done, err := c.CompleteUpload(ctx, up.ID, ids, hex.EncodeToString(sum.Sum(nil)))
	if err != nil {
		return fail(err)
	}
	if done.File == nil {
		return nil, fmt.Errorf("complete upload %s: the answer has no file", up.ID)
	}
	return done.File, nil
}
