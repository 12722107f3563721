package httpapi

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
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
	DryRun bool `json:"dry_run"`
}

func (s *Server) handleBatchCreate(w http.ResponseWriter, r *http.Request) error {
	var in batchCreateJSON
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	c := sluice.BatchCreate{
		InputFileID: in.InputFileID, Endpoint: in.Endpoint, CompletionWindow: in.CompletionWindow, Metadata: in.Metadata,
		DryRun: in.DryRun, Deployment: r.PathValue("deployment"),
	}
	if oe := in.OutputExpiresAfter; oe != nil {
		if oe.Anchor != "" && oe.Anchor != "created_at" {
			return sluice.Errorf(sluice.KindInvalid, "Invalid value for 'output_expires_after.anchor': %q. The only supported value is 'created_at'.", oe.Anchor).
				WithParam("output_expires_after.anchor")
		}
		if oe.Seconds == 0 {
			return sluice.Errorf(sluice.KindInvalid, "Missing required parameter: 'output_expires_after.seconds'.").WithParam("output_expires_after.seconds")
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

// decodeJSON reads a JSON object body into v. Unknown members are ignored, as the
// Azure guides show some (a top-level "anchor") that clients copy.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxJSONBytes))
	err := dec.Decode(v)
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		tooBig *http.MaxBytesError
	)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF):
		return sluice.Errorf(sluice.KindInvalid, "The request body is empty; send a JSON object.")
	case errors.As(err, &tooBig):
		return sluice.Errorf(sluice.KindTooLarge, "The request body is larger than %d bytes.", maxJSONBytes)
	case errors.As(err, &typ):
		return sluice.Errorf(sluice.KindInvalid, "Invalid type for '%s': expected %s.", typ.Field, typ.Type).WithParam(typ.Field)
	case errors.As(err, &syntax):
		return sluice.Errorf(sluice.KindInvalid, "The request body is not valid JSON (at byte %d).", syntax.Offset)
	}
	return sluice.Errorf(sluice.KindInvalid, "The request body could not be read as JSON: %v.", err)
}

func (s *Server) handleBatchGet(w http.ResponseWriter, r *http.Request) error {
	b, err := s.store.FindBatchByID(r.Context(), r.PathValue("batch_id"))
	if err != nil {
		return withParam(err, "batch_id")
	}
	writeJSON(w, http.StatusOK, s.encodeBatch(b))
	return nil
}

func (s *Server) handleBatchCancel(w http.ResponseWriter, r *http.Request) error {
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
	batches, more, err := s.store.FindBatches(r.Context(), sluice.BatchFilter{After: q.Get("after"), Limit: limit})
	if err != nil {
		return err
	}
	data := make([]batchJSON, len(batches))
	for i, b := range batches {
		data[i] = s.encodeBatch(b)
	}
	writeJSON(w, http.StatusOK, newList(data, func(b batchJSON) string { return b.ID }, more))
	return nil
}
