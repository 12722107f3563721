package sluice

import (
	"errors"
	"fmt"
)

// Kind says what went wrong. httpapi maps it to an HTTP status. Never rename a value.
type Kind string

// The kinds of error. The comment gives the HTTP status httpapi sends.
const (
	KindInvalid          Kind = "invalid"            // 400
	KindUnauthorized     Kind = "unauthorized"       // 401
	KindForbidden        Kind = "forbidden"          // 403
	KindNotFound         Kind = "not_found"          // 404
	KindMethodNotAllowed Kind = "method_not_allowed" // 405
	KindConflict         Kind = "conflict"           // 409, e.g. cancel a completed batch
	KindTooLarge         Kind = "too_large"          // 413
	KindRateLimited      Kind = "rate_limited"       // 429
	KindUnavailable      Kind = "unavailable"        // 503, retryable
	KindInternal         Kind = "internal"           // 500; everything unclassified
)

// Error is an error whose Message is safe to show to API callers.
type Error struct {
	Kind    Kind
	Message string // a full sentence, shown to callers
	Param   string // OpenAI "param"; "" is sent as null
	Code    string // OpenAI "code", e.g. "invalid_file_format"; "" is sent as null
	Err     error  // the cause; logged, never shown
}

// Error returns "kind: message: cause".
func (e *Error) Error() string {
	s := string(e.Kind) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// WithParam sets Param and returns e, for chaining.
func (e *Error) WithParam(param string) *Error { e.Param = param; return e }

// WithCode sets Code and returns e, for chaining.
func (e *Error) WithCode(code string) *Error { e.Code = code; return e }

// WithErr sets the cause and returns e, for chaining.
func (e *Error) WithErr(err error) *Error { e.Err = err; return e }

// ErrorKind returns the Kind of err: "" for nil, the Kind of an *Error in its chain,
// and KindInternal for anything else.
func ErrorKind(err error) Kind {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// ErrorMessage returns the caller-safe message of err. Errors that are not an *Error
// get a generic sentence, so causes never leak to callers.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "The server had an error while processing your request. Sorry about that!"
}

// ErrClaimLost reports that a request's lease passed to another worker before its result
// was committed. It is control flow between packages, never shown to callers.
var ErrClaimLost = errors.New("sluice: claim lost")
