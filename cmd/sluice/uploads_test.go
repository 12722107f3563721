package main

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"mime/multipart"
	"strings"
	"testing"
)

type uploadObj struct {
	ID        string   `json:"id"`
	Object    string   `json:"object"`
	Bytes     int64    `json:"bytes"`
	CreatedAt int64    `json:"created_at"`
	ExpiresAt int64    `json:"expires_at"`
	Filename  string   `json:"filename"`
	Purpose   string   `json:"purpose"`
	Status    string   `json:"status"`
	File      *fileObj `json:"file"`
}

type partObj struct {
	ID       string `json:"id"`
	Object   string `json:"object"`
	UploadID string `json:"upload_id"`
}

func (c *apiClient) mustCreateUpload(prefix string, size int) uploadObj {
	c.tb.Helper()
	var u uploadObj
	status := c.json("POST", prefix+"/uploads", map[string]any{"filename": "big.jsonl", "purpose": "batch", "bytes": size, "mime_type": "text/jsonl"}, &u)
	if status != 200 || u.Status != "pending" || u.Object != "upload" {
		c.tb.Fatalf("create upload: got %d %+v", status, u)
	}
	return u
}

func (c *apiClient) addPart(path string, data []byte) (int, []byte) {
	c.tb.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("data", "blob")
	fw.Write(data)
	mw.Close()
	return c.do("POST", path, &buf, mw.FormDataContentType())
}

func (c *apiClient) mustAddPart(prefix, uploadID string, data []byte) partObj {
	c.tb.Helper()
	status, b := c.addPart(prefix+"/uploads/"+uploadID+"/parts", data)
	var p partObj
	if status != 200 || json.Unmarshal(b, &p) != nil || p.Object != "upload.part" || p.UploadID != uploadID {
		c.tb.Fatalf("add part: got %d %s", status, b)
	}
	return p
}

// A file sent in parts, out of order, and completed with their order, becomes a file
// that runs as a batch exactly as a direct upload does, on both route families.
func TestUploadInParts(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	for _, prefix := range []string{"/v1", "/openai/v1"} {
		t.Run(prefix, func(t *testing.T) {
			content := chatLines(300, "gpt-4o-mini")
			third := len(content) / 3
			chunks := [][]byte{[]byte(content[:third]), []byte(content[third : 2*third]), []byte(content[2*third:])}
			u := c.mustCreateUpload(prefix, len(content))
			wantTTL := int64(3600)
			if prefix != "/v1" {
				wantTTL = 7200
			}
			if u.ExpiresAt-u.CreatedAt != wantTTL {
				t.Errorf("expires_at - created_at = %d, want %d", u.ExpiresAt-u.CreatedAt, wantTTL)
			}
			// Parts may arrive in any order; completion gives the order.
			p2 := c.mustAddPart(prefix, u.ID, chunks[2])
			p0 := c.mustAddPart(prefix, u.ID, chunks[0])
			p1 := c.mustAddPart(prefix, u.ID, chunks[1])
			sum := md5.Sum([]byte(content))
			var done uploadObj
			status := c.json("POST", prefix+"/uploads/"+u.ID+"/complete",
				map[string]any{"part_ids": []string{p0.ID, p1.ID, p2.ID}, "md5": hex.EncodeToString(sum[:])}, &done)
			if status != 200 || done.Status != "completed" || done.File == nil {
				t.Fatalf("complete: got %d %+v", status, done)
			}
			if done.File.Bytes != int64(len(content)) || done.File.Status != "processed" || done.File.Filename != "big.jsonl" {
				t.Errorf("file: %+v", *done.File)
			}
			if got := c.content(done.File.ID); got != content {
				t.Fatalf("the file's content is not the parts in order (%d bytes, want %d)", len(got), len(content))
			}
			b := c.waitBatch(c.mustCreateBatch(done.File.ID, "/v1/chat/completions").ID, terminal)
			if b.Status != "completed" || b.RequestCounts.Completed != 300 {
				t.Fatalf("batch: %s %+v", b.Status, b.RequestCounts)
			}
			// Completed: no more parts, no second completion.
			if status, body := c.addPart(prefix+"/uploads/"+u.ID+"/parts", []byte("x")); status != 409 {
				t.Errorf("part after completion: got %d %s, want 409", status, body)
			}
		})
	}
}

func TestUploadInPartsErrors(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	content := chatLines(10, "gpt-4o-mini")
	wantErr := func(t *testing.T, status int, e apiError, wantStatus int, param, contains string) {
		t.Helper()
		if status != wantStatus {
			t.Errorf("status %d (%s), want %d", status, e.Error.Message, wantStatus)
		}
		if param != "" && (e.Error.Param == nil || *e.Error.Param != param) {
			t.Errorf("param %v, want %q (%s)", e.Error.Param, param, e.Error.Message)
		}
		if !strings.Contains(e.Error.Message, contains) {
			t.Errorf("message %q, want one containing %q", e.Error.Message, contains)
		}
	}

	t.Run("Create", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			body   map[string]any
			param  string
			substr string
		}{
			{"no-bytes", map[string]any{"filename": "a", "purpose": "batch", "mime_type": "text/jsonl"}, "bytes", "Missing required parameter: 'bytes'"},
			{"zero-bytes", map[string]any{"filename": "a", "purpose": "batch", "mime_type": "text/jsonl", "bytes": 0}, "bytes", "positive"},
			{"too-large", map[string]any{"filename": "a", "purpose": "batch", "mime_type": "text/jsonl", "bytes": 300_000_000}, "bytes", "limit"},
			{"no-filename", map[string]any{"purpose": "batch", "mime_type": "text/jsonl", "bytes": 10}, "filename", "filename"},
			{"filename-control", map[string]any{"filename": "a\x01.jsonl", "purpose": "batch", "mime_type": "text/jsonl", "bytes": 10}, "filename", "control character"},
			{"filename-long", map[string]any{"filename": strings.Repeat("x", 300), "purpose": "batch", "mime_type": "text/jsonl", "bytes": 10}, "filename", "longer than 255"},
			{"no-mime-type", map[string]any{"filename": "a", "purpose": "batch", "bytes": 10}, "mime_type", "mime_type"},
			{"purpose", map[string]any{"filename": "a", "purpose": "fine-tune", "mime_type": "text/jsonl", "bytes": 10}, "purpose", "batch"},
			{"expiry-anchor", map[string]any{"filename": "a", "purpose": "batch", "mime_type": "text/jsonl", "bytes": 10,
				"expires_after": map[string]any{"seconds": 7200}}, "expires_after.anchor", "anchor"},
			{"expiry-short", map[string]any{"filename": "a", "purpose": "batch", "mime_type": "text/jsonl", "bytes": 10,
				"expires_after": map[string]any{"anchor": "created_at", "seconds": 60}}, "expires_after.seconds", "3600"},
		} {
			var e apiError
			status := c.json("POST", "/v1/uploads", tc.body, &e)
			t.Run(tc.name, func(t *testing.T) { wantErr(t, status, e, 400, tc.param, tc.substr) })
		}
	})

	t.Run("Complete", func(t *testing.T) {
		u := c.mustCreateUpload("/v1", len(content))
		p := c.mustAddPart("/v1", u.ID, []byte(content))
		other := c.mustCreateUpload("/v1", 5)
		op := c.mustAddPart("/v1", other.ID, []byte("12345"))
		var e apiError
		status := c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{p.ID, op.ID}}, &e)
		wantErr(t, status, e, 400, "part_ids", "is not a part of the upload")
		status = c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{p.ID, p.ID}}, &e)
		wantErr(t, status, e, 400, "part_ids", "listed twice")
		status = c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{}}, &e)
		wantErr(t, status, e, 400, "part_ids", "part_ids")
		status = c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{}, &e)
		wantErr(t, status, e, 400, "part_ids", "Missing required parameter: 'part_ids'")
		status = c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{p.ID}, "md5": "not-a-sum"}, &e)
		wantErr(t, status, e, 400, "md5", "MD5")
		wrong := md5.Sum([]byte("something else"))
		status = c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{p.ID}, "md5": hex.EncodeToString(wrong[:])}, &e)
		wantErr(t, status, e, 400, "md5", "checksum")
		// Nothing was stored by the refusals: the upload completes, with a base64 md5.
		right := md5.Sum([]byte(content))
		var done uploadObj
		if status := c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{p.ID}, "md5": base64.StdEncoding.EncodeToString(right[:])}, &done); status != 200 || done.File == nil {
			t.Fatalf("complete after the refusals: got %d %+v", status, done)
		}
		var list struct{ Data []fileObj }
		c.json("GET", "/v1/files?limit=100", nil, &list)
		n := 0
		for _, f := range list.Data {
			if f.Filename == "big.jsonl" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d files named big.jsonl, want 1: a refused completion stored one", n)
		}
		status = c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{p.ID}}, &e)
		wantErr(t, status, e, 409, "", "completed")
	})

	t.Run("Size", func(t *testing.T) {
		u := c.mustCreateUpload("/v1", 10)
		c.mustAddPart("/v1", u.ID, []byte("123456"))
		status, b := c.addPart("/v1/uploads/"+u.ID+"/parts", []byte("123456"))
		var e apiError
		json.Unmarshal(b, &e)
		wantErr(t, status, e, 400, "data", "more than the 10")
		status, b = c.addPart("/v1/uploads/"+u.ID+"/parts", []byte("12345678901"))
		json.Unmarshal(b, &e)
		wantErr(t, status, e, 413, "data", "larger than 10 bytes")
		p := c.mustAddPart("/v1", u.ID, []byte("1234"))
		_ = p
		status = c.json("POST", "/v1/uploads/"+u.ID+"/complete", map[string]any{"part_ids": []string{p.ID}}, &e)
		wantErr(t, status, e, 400, "part_ids", "hold 4 bytes; the upload was created for 10")
		status, b = c.do("POST", "/v1/uploads/"+u.ID+"/parts", strings.NewReader("raw"), "text/plain")
		json.Unmarshal(b, &e)
		wantErr(t, status, e, 400, "", "multipart/form-data")
	})

	t.Run("Cancel", func(t *testing.T) {
		u := c.mustCreateUpload("/v1", 10)
		c.mustAddPart("/v1", u.ID, []byte("12345"))
		var got uploadObj
		if status := c.json("POST", "/v1/uploads/"+u.ID+"/cancel", nil, &got); status != 200 || got.Status != "cancelled" {
			t.Fatalf("cancel: got %d %+v", status, got)
		}
		var e apiError
		status, b := c.addPart("/v1/uploads/"+u.ID+"/parts", []byte("x"))
		json.Unmarshal(b, &e)
		wantErr(t, status, e, 409, "", "cancelled")
		status = c.json("POST", "/v1/uploads/"+u.ID+"/cancel", nil, &e)
		wantErr(t, status, e, 409, "", "cancelled")
		status = c.json("POST", "/v1/uploads/upload_none/cancel", nil, &e)
		wantErr(t, status, e, 404, "", "No upload")
	})
}
