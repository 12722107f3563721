package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/sluice-batch/sluice"
)

// codes maps each Kind to its HTTP status: the one table of it.
var codes = map[sluice.Kind]int{
	sluice.KindInvalid:          http.StatusBadRequest,
	sluice.KindUnauthorized:     http.StatusUnauthorized,
	sluice.KindForbidden:        http.StatusForbidden,
	sluice.KindNotFound:         http.StatusNotFound,
	sluice.KindMethodNotAllowed: http.StatusMethodNotAllowed,
	sluice.KindConflict:         http.StatusConflict,
	sluice.KindTooLarge:         http.StatusRequestEntityTooLarge,
	sluice.KindRateLimited:      http.StatusTooManyRequests,
	sluice.KindUnavailable:      http.StatusServiceUnavailable,
	sluice.KindInternal:         http.StatusInternalServerError,
}

// azureCodes maps each Kind to the code of Azure OpenAI's ErrorCode list that the
// /openai routes send when the error has no code of its own.
var azureCodes = map[sluice.Kind]string{
	sluice.KindInvalid:          "invalidPayload",
	sluice.KindUnauthorized:     "unauthorized",
	sluice.KindForbidden:        "forbidden",
	sluice.KindNotFound:         "notFound",
	sluice.KindMethodNotAllowed: "invalidPayload",
	sluice.KindConflict:         "conflict",
	sluice.KindTooLarge:         "invalidPayload",
	sluice.KindRateLimited:      "tooManyRequests",
	sluice.KindUnavailable:      "serviceUnavailable",
	sluice.KindInternal:         "internalFailure",
}

// StatusCode returns the HTTP status for err.
func StatusCode(err error) int {
	if c, ok := codes[sluice.ErrorKind(err)]; ok {
		return c
	}
	return http.StatusInternalServerError
}

type errorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"` // no omitempty: null is part of the contract
	Code    *string `json:"code"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// writeError answers with err in the OpenAI error shape. Only internal errors are
// logged: the others are the caller's, and their message says all.
func writeError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	status := StatusCode(err)
	body := errorBody{Message: sluice.ErrorMessage(err), Type: "invalid_request_error"}
	if status >= 500 {
		body.Type = "server_error"
		logger.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e, ok := asError(err); ok {
		body.Param, body.Code = nullable(e.Param), nullable(e.Code)
	}
	if body.Code == nil && family(r) == familyAzure {
		// Azure's error shape requires a code from its ErrorCode list.
		body.Code = nullable(azureCodes[sluice.ErrorKind(err)])
	}
	if status == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		// Something the server depends on did not answer (blob storage, say): the
		// request may work shortly.
		w.Header().Set("Retry-After", "10")
	}
	if status == http.StatusConflict {
		// The official SDKs retry 409 by default; a conflict here (cancel an ended
		// batch, delete a running batch's input) answers the same on every try.
		w.Header().Set("x-should-retry", "false")
	}
	writeJSON(w, status, map[string]errorBody{"error": body})
}

func asError(err error) (*sluice.Error, bool) {
	var e *sluice.Error
	ok := errors.As(err, &e)
	return e, ok
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client went away if this fails; nothing to do
}
