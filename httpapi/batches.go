package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/sluice-batch/sluice"
)

// maxJSONBytes bounds a JSON request body.
const maxJSONBytes = 1 << 20

type batchCreateJSON struct {
	InputFileID        string            `json:"input_file_id"`
	Endpoint           string            `json:"endpoint"`
	CompletionWindow   string            `json:"completion_window"`
	Metadata           map[string]string `json:"metadata"`
	OutputExpiresAfter *struct {
		Seconds int64  `json:"seconds"`
		Anchor  string `json:"anchor"`
	} `json:"output_expires_after"`
	// Anchor at the top level is where the Azure guide's example puts the anchor of
	// output_expires_after; the Azure routes take it there too.
	Anchor string `json:"anchor"`
	DryRun bool   `json:"dry_run"`
	// Blob mode (Azure OpenAI): the input blob's URL and the folder for the results.
	InputBlob    string `json:"input_blob"`
	OutputFolder *struct {
		URL       string `json:"url"`
		Delimiter string `json:"delimiter"`
	} `json:"output_folder"`
}

func (s *Server) handleBatchCreate(w http.ResponseWriter, r *http.Request) error {
	var in batchCreateJSON
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	c := sluice.BatchCreate{
		Project:     callerOf(r).Project,
		InputFileID: in.InputFileID, Endpoint: in.Endpoint, CompletionWindow: in.CompletionWindow, Metadata: in.Metadata,
		DryRun: in.DryRun, Deployment: r.PathValue("deployment"), WindowPolicy: sluice.WindowContinue,
		InputBlob: in.InputBlob,
	}
	if in.OutputFolder != nil {
		c.OutputFolder, c.OutputDelimiter = in.OutputFolder.URL, in.OutputFolder.Delimiter
		if c.OutputFolder == "" {
			return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'output_folder.url'.").WithParam("output_folder.url")
		}
	}
	if family(r) == familyOpenAI {
		c.WindowPolicy = sluice.WindowExpire
	}
	if oe := in.OutputExpiresAfter; oe != nil {
		anchor := oe.Anchor
		if anchor == "" && family(r) != familyOpenAI {
			anchor = in.Anchor
		}
		switch anchor {
		case "created_at":
		case "":
			if family(r) == familyOpenAI {
				return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'output_expires_after.anchor'.").WithParam("output_expires_after.anchor")
			}
		default:
			return sluice.Errorf(sluice.KindInvalid, "Invalid value for 'output_expires_after.anchor': %q. The only supported value is 'created_at'.", anchor).
				WithParam("output_expires_after.anchor")
		}
		if oe.Seconds == 0 {
			return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'output_expires_after.seconds'.").WithParam("output_expires_after.seconds")
		}
		if lo := minExpiry(r); oe.Seconds < lo || oe.Seconds > sluice.MaxFileExpiry {
			return sluice.Errorf(sluice.KindInvalid, "'output_expires_after.seconds' must be from %d (%s) to %d (30 days).",
				lo, expiryWords(lo), sluice.MaxFileExpiry).WithParam("output_expires_after.seconds")
		}
		c.OutputExpiresAfter = oe.Seconds
	}
	b, a, err := s.service.CreateBatch(r.Context(), c)
	if a != nil {
		setQuotaHeaders(w.Header(), a)
	}
	if err != nil {
		return err
	}
	if c.DryRun {
		writeJSON(w, http.StatusOK, encodeDryRun(a))
		return nil
	}
	writeJSON(w, createdStatus(r), s.encodeBatch(b))
	return nil
}

// setQuotaHeaders sets the headers every create answer carries: the tokens the
// deployment's batches hold, and its limit ("unlimited" when it has none).
func setQuotaHeaders(h http.Header, a *sluice.Admission) {
	if a.Deployment == "" {
		return
	}
	h.Set("deployment-enqueued-tokens", strconv.FormatInt(a.Enqueued, 10))
	limit := "unlimited"
	if a.Limit > 0 {
		limit = strconv.FormatInt(a.Limit, 10)
	}
	h.Set("deployment-maximum-enqueued-tokens", limit)
}

// createdStatus is 201 on the Azure preview API versions, which answer a create so, and
// 200 on the GA version and on /v1, as OpenAI does.
func createdStatus(r *http.Request) int {
	if family(r) == familyAzure && strings.HasSuffix(r.URL.Query().Get("api-version"), "-preview") {
		return http.StatusCreated
	}
	return http.StatusOK
}

// minExpiry is the shortest file lifetime a route family accepts: an hour on /v1, as
// OpenAI does, and 14 days on the Azure routes, as the product does.
func minExpiry(r *http.Request) int64 {
	if family(r) == familyOpenAI {
		return sluice.MinFileExpiryOpenAI
	}
	return sluice.MinFileExpiry
}

func expiryWords(seconds int64) string {
	if seconds == sluice.MinFileExpiryOpenAI {
		return "1 hour"
	}
	return "14 days"
}

// decodeJSON reads a JSON object body into v. Unknown members are ignored, as the
// Azure guides show some (a top-level "anchor") that clients copy. A body that is
// not JSON by its Content-Type, not one object, or has anything after it, is refused.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return sluice.Errorf(sluice.KindInvalid, "The request body has Content-Type %q; send a JSON object with 'Content-Type: application/json'.", ct)
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	err := dec.Decode(v)
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tooBig *http.MaxBytesError
	)
	switch {
	case err == nil:
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			if errors.As(err, &tooBig) {
				return sluice.Errorf(sluice.KindTooLarge, "The request body is larger than %d bytes.", maxJSONBytes)
			}
			return sluice.Errorf(sluice.KindInvalid, "The request body has more after its JSON object (at byte %d); send one object.", dec.InputOffset())
		}
		return nil
	case errors.Is(err, io.EOF):
		return sluice.Errorf(sluice.KindInvalid, "The request body is empty; send a JSON object.")
	case errors.As(err, &tooBig):
		return sluice.Errorf(sluice.KindTooLarge, "The request body is larger than %d bytes.", maxJSONBytes)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return sluice.Errorf(sluice.KindInvalid, "The request body is a JSON %s; send a JSON object.", typ.Value)
		}
		return sluice.Errorf(sluice.KindInvalid, "Invalid type for '%s': expected %s, but got %s.", typ.Field, jsonKind(typ.Type), article(typ.Value)).
			WithParam(typ.Field)
	case errors.As(err, &syntax):
		return sluice.Errorf(sluice.KindInvalid, "The request body is not valid JSON (at byte %d).", syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return sluice.Errorf(sluice.KindInvalid, "The request body ends inside its JSON object.")
	}
	return sluice.Errorf(sluice.KindInvalid, "The request body could not be read as a JSON object.").WithErr(err)
}

// jsonKind names the JSON kind of value a Go type is decoded from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "an object"
}

// article puts "a" or "an" before a JSON kind as encoding/json names it.
func article(kind string) string {
	switch {
	case kind == "":
		return "something else"
	case strings.HasPrefix(kind, "number"):
		return "a " + kind
	case strings.IndexByte("aeiou", kind[0]) >= 0:
		return "an " + kind
	}
	return "a " + kind
}

func (s *Server) handleBatchGet(w http.ResponseWriter, r *http.Request) error {
	b, err := s.visibleBatch(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.encodeBatch(b))
	return nil
}

// visibleBatch returns the batch the path names, if r's caller may see it.
func (s *Server) visibleBatch(r *http.Request) (*sluice.Batch, error) {
	id := r.PathValue("batch_id")
	b, err := s.store.FindBatchByID(r.Context(), id)
	if err = visible(r, projectOf(b), "Batch", id, "batch_id", err); err != nil {
		return nil, err
	}
	return b, nil
}

// projectOf returns the project of b, or "" for nil.
func projectOf(b *sluice.Batch) string {
	if b == nil {
		return ""
	}
	return b.Project
}

func (s *Server) handleBatchCancel(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.visibleBatch(r); err != nil {
		return err
	}
	b, err := s.service.CancelBatch(r.Context(), r.PathValue("batch_id"))
	if err != nil {
		return withParam(err, "batch_id")
	}
	writeJSON(w, http.StatusOK, s.encodeBatch(b))
	return nil
}

func (s *Server) handleBatchList(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit, err := intParam(q.Get("limit"), "limit", 20, 1, 100)
	if err != nil {
		return err
	}
	filter := sluice.BatchFilter{Project: projectFilter(r), After: q.Get("after"), Limit: limit}
	possible, err := parseBatchFilter(q.Get("$filter"), &filter)
	if err != nil {
		return err
	}
	if filter.Asc, err = parseOrderBy(q.Get("$orderby")); err != nil {
		return err
	}
	var (
		batches []*sluice.Batch
		more    bool
	)
	if possible {
		if batches, more, err = s.store.FindBatches(r.Context(), filter); err != nil {
			return err
		}
	}
	data := make([]batchJSON, len(batches))
	for i, b := range batches {
		data[i] = s.encodeBatch(b)
	}
	writeJSON(w, http.StatusOK, newList(data, func(b batchJSON) string { return b.ID }, more))
	return nil
}
