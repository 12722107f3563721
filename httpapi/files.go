package httpapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

// maxFieldBytes bounds a non-file multipart field.
const maxFieldBytes = 4 << 10

// uploadBuffer is the read buffer of an upload's multipart reader: the body comes in
// few large reads of the connection.
const uploadBuffer = 256 << 10

// handleFileUpload streams a multipart upload into the service: the file part is never
// held in memory. Fields may come before or after the file part, as SDKs differ.
func (s *Server) handleFileUpload(w http.ResponseWriter, r *http.Request) error {
	ct, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "multipart/form-data" {
		return sluice.Errorf(sluice.KindInvalid, "Uploads must be sent as multipart/form-data with the fields 'purpose' and 'file'.")
	}
	if params["boundary"] == "" {
		return sluice.Errorf(sluice.KindInvalid, "The multipart body could not be read: the Content-Type has no boundary.")
	}
	mr := newFormReader(r.Body, params["boundary"], uploadBuffer)
	var (
		file           *sluice.File
		purpose        string
		expiresSeconds string
		expiresAnchor  string
	)
	// Whatever goes wrong after the file is stored, the upload did not happen.
	drop := func(err error) error {
		if file != nil {
			_ = s.service.DeleteFile(context.WithoutCancel(r.Context()), file.ID)
		}
		return err
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return drop(sluice.Errorf(sluice.KindInvalid, "The multipart body could not be read: %v.", err))
		}
		name := part.FormName()
		if name == "file" {
			if file != nil {
				return drop(sluice.Errorf(sluice.KindInvalid, "Send exactly one 'file' part.").WithParam("file"))
			}
			if purpose != "" {
				if err := checkPurpose(purpose); err != nil {
					return err
				}
			}
			filename, err := cleanFilename(part.FileName())
			if err != nil {
				return err
			}
			file, err = s.service.UploadFile(r.Context(), sluice.FileUpload{Project: callerOf(r).Project, Filename: filename, Purpose: sluice.PurposeBatch, Body: part})
			if err != nil {
				return err
			}
			continue
		}
		b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		if err != nil {
			return drop(sluice.Errorf(sluice.KindInvalid, "The multipart body could not be read: %v.", err))
		}
		if len(b) > maxFieldBytes {
			return drop(sluice.Errorf(sluice.KindInvalid, "The field %q is too long.", name).WithParam(name))
		}
		v := strings.TrimSpace(string(b))
		switch name {
		case "purpose":
			purpose = v
		case "expires_after.seconds", "expires_after[seconds]":
			expiresSeconds = v
		case "expires_after.anchor", "expires_after[anchor]":
			expiresAnchor = v
		}
	}
	if file == nil {
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'file'.").WithParam("file")
	}
	if err := checkPurpose(purpose); err != nil {
		return drop(err)
	}
	var expires *time.Time
	switch {
	case expiresSeconds != "" || expiresAnchor != "":
		at, err := fileExpiry(file.CreatedAt, expiresSeconds, expiresAnchor, minExpiry(r))
		if err != nil {
			return drop(err)
		}
		expires = &at
	case family(r) == familyOpenAI:
		// OpenAI's batch input files expire after 30 days unless told otherwise; the
		// Azure product keeps them until deleted.
		expires = sluice.Ptr(file.CreatedAt.Add(sluice.MaxFileExpiry * time.Second))
	}
	if err := s.checkFileCount(r, expires != nil, true); err != nil {
		return drop(err)
	}
	if expires != nil {
		var err error
		if file, err = s.store.UpdateFile(r.Context(), file.ID, sluice.FileUpdate{ExpiresAt: expires}); err != nil {
			return drop(err)
		}
	}
	status := http.StatusOK
	if family(r) == familyAzure {
		// Azure's Files_Upload answers 201 Created with the file's URL, absolute as
		// the spec's example is, from the host the client asked.
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		loc := scheme + "://" + r.Host + "/openai/files/" + file.ID
		if v := r.URL.Query().Get("api-version"); v != "" {
			loc += "?api-version=" + url.QueryEscape(v)
		}
		w.Header().Set("Location", loc)
		status = http.StatusCreated
	}
	writeJSON(w, status, encodeFile(file))
	return nil
}

// checkFileCount refuses a new file of r's caller's project when the project's files of
// its kind (with an expiry or without) are at their limit; stored says the new file is
// in the store already, with no expiry yet. Output files count too. Two uploads at once
// may both pass at the limit; the limit bounds storage, it is not a reservation.
func (s *Server) checkFileCount(r *http.Request, expiring, stored bool) error {
	limit, kind := s.maxFiles, "without an expiry"
	if expiring {
		limit, kind = s.maxExpiringFiles, "with an expiry"
	}
	if limit <= 0 {
		return nil
	}
	project := sluice.ProjectName(callerOf(r).Project)
	n, err := s.store.CountFiles(r.Context(), sluice.FileFilter{Project: project, Expiring: sluice.Ptr(expiring)})
	if err != nil {
		return err
	}
	if stored && !expiring {
		n-- // the new file, which has no expiry yet
	}
	if n < limit {
		return nil
	}
	hint := "delete files you no longer need, or upload with expires_after"
	if expiring {
		hint = "delete files you no longer need, or wait for some to expire"
	}
	return sluice.Errorf(sluice.KindInvalid, "Project %s has %d files %s, the most this server keeps for a project; %s.", project, n, kind, hint).WithCode("quotaExceeded")
}

func checkPurpose(p string) error {
	switch p {
	case string(sluice.PurposeBatch):
		return nil
	case "":
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'purpose'.").WithParam("purpose")
	}
	return sluice.Errorf(sluice.KindInvalid, "Invalid value for 'purpose': %q. Sluice stores files for batches: use 'batch'.", p).WithParam("purpose")
}

func fileExpiry(created time.Time, seconds, anchor string, lo int64) (time.Time, error) {
	if anchor != "" && anchor != "created_at" {
		return time.Time{}, sluice.Errorf(sluice.KindInvalid, "Invalid value for 'expires_after.anchor': %q. The only supported value is 'created_at'.", anchor).
			WithParam("expires_after.anchor")
	}
	n, err := strconv.ParseInt(seconds, 10, 64)
	if err != nil || n < lo || n > sluice.MaxFileExpiry {
		return time.Time{}, sluice.Errorf(sluice.KindInvalid, "'expires_after.seconds' must be a whole number from %d (%s) to %d (30 days).",
			lo, expiryWords(lo), sluice.MaxFileExpiry).WithParam("expires_after.seconds")
	}
	return created.Add(time.Duration(n) * time.Second), nil
}

func (s *Server) handleFileGet(w http.ResponseWriter, r *http.Request) error {
	f, err := s.listedFile(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, encodeFile(f))
	return nil
}

func (s *Server) handleFileList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit", 10000, 1, 10000)
	if err != nil {
		return err
	}
	filter := sluice.FileFilter{Project: projectFilter(r), Purpose: sluice.Purpose(q.Get("purpose")), After: q.Get("after"), Limit: limit}
	switch q.Get("order") {
	case "", "desc":
	case "asc":
		filter.Asc = true
	default:
		return sluice.Errorf(sluice.KindInvalid, "Invalid value for 'order': %q. Use 'asc' or 'desc'.", q.Get("order")).WithParam("order")
	}
	files, more, err := s.store.FindFiles(r.Context(), filter)
	if err != nil {
		return err
	}
	data := make([]fileJSON, len(files))
	for i, f := range files {
		data[i] = encodeFile(f)
	}
	writeJSON(w, http.StatusOK, newList(data, func(f fileJSON) string { return f.ID }, more))
	return nil
}

func (s *Server) handleFileDelete(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("file_id")
	if _, err := s.listedFile(r); err != nil {
		return err
	}
	if err := s.service.DeleteFile(r.Context(), id); err != nil {
		return withParam(err, "file_id")
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "file", "deleted": true})
	return nil
}

func (s *Server) handleFileContent(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.listedFile(r); err != nil {
		return err
	}
	f, rc, err := s.service.FileContent(r.Context(), r.PathValue("file_id"))
	if err != nil {
		return withParam(err, "file_id")
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Bytes, 10))
	w.WriteHeader(http.StatusOK)
	_, _ = io.Copy(w, rc) // a client that goes away mid-download just stops it
	return nil
}

// listedFile returns the file the path names. The file a blob-mode batch reads its
// input through is the batch's own: to callers it does not exist.
func (s *Server) listedFile(r *http.Request) (*sluice.File, error) {
	id := r.PathValue("file_id")
	f, err := s.store.FindFileByID(r.Context(), id)
	if err == nil && f.Source != "" {
		err = sluice.Errorf(sluice.KindNotFound, "No such File object: %s", id)
	}
	if err == nil {
		err = visible(r, f.Project, "File", id, "file_id", nil)
	}
	if err != nil {
		return nil, withParam(err, "file_id")
	}
	return f, nil
}

// withParam names the path parameter a not-found error is about.
func withParam(err error, param string) error {
	if e, ok := asError(err); ok && e.Kind == sluice.KindNotFound && e.Param == "" {
		c := *e
		c.Param = param
		return &c
	}
	return err
}

// intParam parses an optional integer query parameter within [lo, hi].
func intParam(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, sluice.Errorf(sluice.KindInvalid, "Invalid value for '%s': %q. It must be a whole number from %d to %d.", name, v, lo, hi).WithParam(name)
	}
	return n, nil
}

type fileImportJSON struct {
	Purpose    string `json:"purpose"`
	Filename   string `json:"filename"`
	ContentURL string `json:"content_url"`
}

// handleFileImport creates a file from a blob of a configured storage account (Azure's
// Files_Import), stored and scanned as an upload is.
func (s *Server) handleFileImport(w http.ResponseWriter, r *http.Request) error {
	var in fileImportJSON
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if err := checkPurpose(in.Purpose); err != nil {
		return err
	}
	if in.ContentURL == "" {
		return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'content_url'.").WithParam("content_url")
	}
	name, err := cleanFilename(in.Filename)
	if err != nil {
		return paramed(err, "filename")
	}
	in.Filename = name
	if err := s.checkFileCount(r, false, false); err != nil {
		return err
	}
	f, err := s.service.ImportFile(r.Context(), in.ContentURL, in.Filename, callerOf(r).Project)
	if err != nil {
		return err
	}
	writeJSON(w, createdStatus(r), encodeFile(f))
	return nil
}
