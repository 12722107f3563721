package httpapi

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

// uploadJSON is an upload on the wire.
type uploadJSON struct {
	ID        string    `json:"id"`
	Object    string    `json:"object"`
	Bytes     int64     `json:"bytes"`
	CreatedAt int64     `json:"created_at"`
	Filename  string    `json:"filename"`
	Purpose   string    `json:"purpose"`
	Status    string    `json:"status"`
	ExpiresAt int64     `json:"expires_at"`
	File      *fileJSON `json:"file"`
}

func (s *Server) encodeUpload(u *sluice.Upload, f *sluice.File) uploadJSON {
	out := uploadJSON{
		ID: u.ID, Object: "upload", Bytes: u.Bytes, CreatedAt: u.CreatedAt.Unix(), Filename: u.Filename,
		Purpose: string(u.Purpose), Status: string(u.StatusAt(time.Now())), ExpiresAt: u.ExpiresAt.Unix(),
	}
	if f != nil {
		fj := encodeFile(f)
		out.File = &fj
	}
	return out
}

// uploadPartJSON is an upload part on the wire.
type uploadPartJSON struct {
	ID        string `json:"id"`
	Object    string `json:"object"`
	CreatedAt int64  `json:"created_at"`
	UploadID  string `json:"upload_id"`
}

type uploadCreateJSON struct {
	Filename     string `json:"filename"`
	Purpose      string `json:"purpose"`
	Bytes        *int64 `json:"bytes"`
	MimeType     string `json:"mime_type"`
	ExpiresAfter *struct {
		Anchor  string `json:"anchor"`
		Seconds int64  `json:"seconds"`
	} `json:"expires_after"`
}

// handleUploadCreate starts an upload in parts. Its expires_after, as a file upload's,
// is the lifetime of the file it becomes; the upload itself lives an hour on /v1 and
// two on Azure's routes, as the two services do.
func (s *Server) handleUploadCreate(w http.ResponseWriter, r *http.Request) error {
	var in uploadCreateJSON
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := checkPurpose(in.Purpose); err != nil {
		return err
	}
	if in.Bytes == nil {
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'bytes'.").WithParam("bytes")
	}
	name, err := cleanFilename(in.Filename)
	if err != nil {
		return paramed(err, "filename")
	}
	in.Filename = name
	c := sluice.UploadCreate{Project: callerOf(r).Project, Filename: in.Filename, Bytes: *in.Bytes, MimeType: in.MimeType, TTL: sluice.UploadTTLAzure}
	if family(r) == familyOpenAI {
		c.TTL = sluice.UploadTTLOpenAI
		c.FileExpiresAfter = sluice.MaxFileExpiry // as a direct upload's, unless told
	}
	if ea := in.ExpiresAfter; ea != nil {
		if ea.Anchor == "" {
			return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'expires_after.anchor'.").WithParam("expires_after.anchor")
		}
		if ea.Anchor != "created_at" {
			return sluice.Errorf(sluice.KindInvalid, "Invalid value for 'expires_after.anchor': %q. The only supported value is 'created_at'.", ea.Anchor).
				WithParam("expires_after.anchor")
		}
		if lo := minExpiry(r); ea.Seconds < lo || ea.Seconds > sluice.MaxFileExpiry {
			return sluice.Errorf(sluice.KindInvalid, "'expires_after.seconds' must be a whole number from %d (%s) to %d (30 days).",
				lo, expiryWords(lo), sluice.MaxFileExpiry).WithParam("expires_after.seconds")
		}
		c.FileExpiresAfter = ea.Seconds
	}
	u, err := s.service.CreateUpload(r.Context(), c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.encodeUpload(u, nil))
	return nil
}

// handleUploadPart stores the 'data' field of a multipart body as a part, streamed to
// the bucket.
func (s *Server) handleUploadPart(w http.ResponseWriter, r *http.Request) error {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" || params["boundary"] == "" {
		return sluice.Errorf(sluice.KindInvalid, "Parts must be sent as multipart/form-data with the field 'data'.")
	}
	if _, err := s.visibleUpload(r); err != nil {
		return err
	}
	mr := newFormReader(r.Body, params["boundary"], uploadBuffer)
	var part *sluice.UploadPart
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sluice.Errorf(sluice.KindInvalid, "The multipart body could not be read: %v.", err)
		}
		if p.FormName() != "data" {
			if _, err := io.Copy(io.Discard, io.LimitReader(p, maxFieldBytes+1)); err != nil {
				return sluice.Errorf(sluice.KindInvalid, "The multipart body could not be read: %v.", err)
			}
			continue
		}
		if part != nil {
			return sluice.Errorf(sluice.KindInvalid, "Send exactly one 'data' field.").WithParam("data")
		}
		if part, err = s.service.AddUploadPart(r.Context(), r.PathValue("upload_id"), p); err != nil {
			return err
		}
	}
	if part == nil {
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'data'.").WithParam("data")
	}
	writeJSON(w, http.StatusOK, uploadPartJSON{ID: part.ID, Object: "upload.part", CreatedAt: part.CreatedAt.Unix(), UploadID: part.UploadID})
	return nil
}

type uploadCompleteJSON struct {
	PartIDs []string `json:"part_ids"`
	MD5     string   `json:"md5"`
}

// handleUploadComplete makes the file of the parts. The file counts against the file
// limits as a direct upload does, checked before the parts are read.
func (s *Server) handleUploadComplete(w http.ResponseWriter, r *http.Request) error {
	var in uploadCompleteJSON
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.PartIDs == nil {
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'part_ids'.").WithParam("part_ids")
	}
	u, err := s.visibleUpload(r)
	if err != nil {
		return err
	}
	if err := s.checkFileCount(r, u.FileExpiresAfter > 0, false); err != nil {
		return err
	}
	u, f, err := s.service.CompleteUpload(r.Context(), r.PathValue("upload_id"), in.PartIDs, strings.TrimSpace(in.MD5))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.encodeUpload(u, f))
	return nil
}

func (s *Server) handleUploadCancel(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.visibleUpload(r); err != nil {
		return err
	}
	u, err := s.service.CancelUpload(r.Context(), r.PathValue("upload_id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.encodeUpload(u, nil))
	return nil
}

// visibleUpload returns the upload the path names, if r's caller may see it.
func (s *Server) visibleUpload(r *http.Request) (*sluice.Upload, error) {
	id := r.PathValue("upload_id")
	u, err := s.store.FindUploadByID(r.Context(), id)
	project := ""
	if u != nil {
		project = u.Project
	}
	if err = visible(r, project, "Upload", id, "upload_id", err); err != nil {
		if sluice.ErrorKind(err) == sluice.KindNotFound {
			// As the engine words it for an upload that is not there.
			err = sluice.Errorf(sluice.KindNotFound, "No upload with id %q; uploads are deleted once they expire.", id).WithParam("upload_id")
		}
		return nil, err
	}
	return u, nil
}

// paramed returns err, an *sluice.Error, naming param instead.
func paramed(err error, param string) error {
	if e, ok := asError(err); ok {
		c := *e
		c.Param = param
		return &c
	}
	return err
}
