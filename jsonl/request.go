package jsonl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluice-batch/sluice"
)

// The Batch API's validation error codes.
const (
	codeInvalidJSON   = "invalid_json_line"
	codeInvalidReq    = "invalid_request"
	codeDuplicateID   = "duplicate_custom_id"
	codeURLMismatch   = "url_mismatch"
	codeModelMismatch = "model_mismatch"
	codeTooMany       = "too_many_tasks"
	codeEmpty         = "empty_batch"
)

// Request is a parsed request line.
type Request struct {
	CustomID string
	Method   string
	URL      string
	Body     json.RawMessage // a copy of the body as written, a JSON object
}

// problem is what is wrong with one line. msg is a sentence without its subject:
// "Line 3 " or "The request line " goes before it.
type problem struct {
	code, param, msg string
}

// facts is what check learned of a line for the checks across lines, kept even
// when the line has a problem so that the scan can take the batch's url and model
// from it. The byte slices may alias the machine's captures.
type facts struct {
	id       []byte // the custom_id decoded, non-empty when hasID
	hasID    bool
	url      []byte
	hasURL   bool
	model    []byte
	hasModel bool
}

// check applies the checks that need only the line itself to what the machine read
// of it, in the order the package documents, and returns the first problem; code is
// "" when there is none. valid is the machine's verdict from eol.
func (m *machine) check(valid bool, f *facts) problem {
	if !valid {
		return problem{code: codeInvalidJSON, msg: "is not valid JSON."}
	}
	if m.root != '{' {
		return problem{code: codeInvalidReq, msg: "is not a JSON object."}
	}
	id, method, url := &m.f[mCustomID], &m.f[mMethod], &m.f[mURL]
	body, model, stream := &m.f[mBody], &m.f[mModel], &m.f[mStream]
	if id.kind == '"' && id.n > 0 && id.n <= maxMember {
		f.id, f.hasID = decodeString(id.raw), true
	}
	if url.kind == '"' && url.n <= maxMember {
		f.url, f.hasURL = decodeString(url.raw), true
	}
	if body.kind == '{' && model.kind == '"' && model.n <= maxMember {
		f.model, f.hasModel = decodeString(model.raw), true
	}

	switch {
	case id.kind == 0:
		return problem{codeInvalidReq, "custom_id", "has no custom_id; every request needs a non-empty string custom_id."}
	case id.kind != '"':
		return problem{codeInvalidReq, "custom_id", "has a custom_id that is not a string; custom_id must be a non-empty string."}
	case id.n > maxMember:
		return tooLong("custom_id")
	case !f.hasID:
		return problem{codeInvalidReq, "custom_id", "has an empty custom_id; custom_id must be a non-empty string."}
	case !utf8.Valid(id.raw):
		// Decoding would turn each bad byte into U+FFFD: two different ids could
		// collide, and results could not be matched to the id the file holds.
		return problem{codeInvalidReq, "custom_id", "has a custom_id that is not valid UTF-8; results are matched by custom_id, so it must be text."}
	}
	switch {
	case method.kind == 0:
		return problem{codeInvalidReq, "method", `has no method; method must be "POST".`}
	case method.kind != '"':
		return problem{codeInvalidReq, "method", "has method " + clip(string(method.raw)) + `; method must be "POST".`}
	case method.n > maxMember:
		return tooLong("method")
	case string(decodeString(method.raw)) != "POST":
		return problem{codeInvalidReq, "method", "has method " + clip(`"`+string(method.raw)+`"`) + `; method must be "POST".`}
	}
	switch {
	case url.kind == 0:
		return problem{codeInvalidReq, "url", `has no url; url must be a string such as "/v1/chat/completions".`}
	case url.kind != '"':
		return problem{codeInvalidReq, "url", `has a url that is not a string; url must be a string such as "/v1/chat/completions".`}
	case url.n > maxMember:
		return tooLong("url")
	case body.kind == 0:
		return problem{codeInvalidReq, "body", "has no body; body must be a JSON object."}
	case body.kind != '{':
		return problem{codeInvalidReq, "body", "has a body that is not a JSON object."}
	case model.kind == 0:
		return problem{codeInvalidReq, "body.model", "has no body.model; body.model must be a string naming the model or deployment."}
	case model.kind != '"':
		return problem{codeInvalidReq, "body.model", "has a body.model that is not a string; body.model must be a string naming the model or deployment."}
	case model.n > maxMember:
		return tooLong("body.model")
	case stream.kind == 't': // a valid value that begins with t is true
		return problem{codeInvalidReq, "body.stream", "sets body.stream to true; streaming is not supported in batches."}
	}
	return problem{}
}

// tooLong is the problem of a member longer than maxMember.
func tooLong(param string) problem {
	return problem{codeInvalidReq, param, fmt.Sprintf("has a %s longer than %d bytes.", param, maxMember)}
}

// truncate cuts s to at most n bytes at a rune boundary and reports whether it cut.
func truncate(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

// clip shortens raw text from a user's file for a message.
func clip(s string) string {
	if t, cut := truncate(s, 64); cut {
		return t + "…"
	}
	return s
}

// quote quotes a string from a user's file for a message, shortened.
func quote(s string) string {
	if t, cut := truncate(s, 64); cut {
		return strconv.Quote(t) + "…"
	}
	return strconv.Quote(s)
}

// ParseRequest parses one request line, as stored in an input file, without its
// newline. It applies every check the Scanner applies to a line on its own (not the
// checks across lines: duplicates, url and model mismatches), so any line a clean scan
// gave an Entry for parses. The error is a *sluice.Error of KindInvalid with the Batch API code
// and param of the first problem.
func ParseRequest(line []byte) (Request, error) {
	var m machine
	m.whole = true
	m.reset()
	m.run(line)
	var f facts
	if p := m.check(m.eol(), &f); p.code != "" {
		return Request{}, &sluice.Error{
			Kind:    sluice.KindInvalid,
			Message: "The request line " + p.msg,
			Param:   p.param,
			Code:    p.code,
		}
	}
	body := line[m.bodyStart:m.bodyEnd]
	return Request{CustomID: string(f.id), Method: "POST", URL: string(f.url), Body: bytes.Clone(body)}, nil
}

// SetModel returns body, a JSON object, with its top-level "model" member set to
// model. When every top-level "model" member already equals model it returns body
// itself, not re-encoded. Otherwise only the bytes of the model values change: other
// members, their order and whitespace stay as written. Every top-level "model" member
// is rewritten when the name repeats; a body with none gets one inserted first. model
// is encoded as a JSON string; invalid UTF-8 in it becomes U+FFFD.
func SetModel(body []byte, model string) ([]byte, error) {
	if !json.Valid(body) {
		return nil, errors.New("jsonl: set model: body is not valid JSON")
	}
	out, _, err := setModel(body, model, nil)
	return out, err
}

// DispatchBody returns the body of a request line, with its model set, ready to send
// upstream. It is the hot path's parse: the line was validated when its file was
// scanned, so it only walks the line's top-level members and does not validate again.
// Malformed input gives an error, never a panic.
func DispatchBody(line []byte, model string) ([]byte, error) {
	body, _, err := DispatchBodyLimit(line, model, nil)
	return body, err
}

// DispatchBodyLimit is DispatchBody that also returns the request's token limit: the
// smallest whole number among the body's top-level members named in fields (as
// TokenFields lists them), or 0 when there is none. It is read in the same walk of
// the body that sets the model, so knowing it costs no second parse.
func DispatchBodyLimit(line []byte, model string, fields []string) ([]byte, int, error) {
	obj, ok := openObject(line)
	if !ok {
		return nil, 0, errors.New("jsonl: request line is not a JSON object")
	}
	var body []byte
	for key, a, b, ok := obj.next(); ok; key, a, b, ok = obj.next() {
		if string(memberName(key)) == "body" {
			body = line[a:b]
		}
	}
	if obj.bad || body == nil {
		return nil, 0, errors.New("jsonl: request line has no readable body")
	}
	return setModel(body, model, fields)
}

// setModel sets body's model (see SetModel) and returns the token limit among fields
// (see DispatchBodyLimit).
func setModel(body []byte, model string, fields []string) ([]byte, int, error) {
	obj, ok := openObject(body)
	if !ok {
		return nil, 0, errors.New("jsonl: set model: body is not a JSON object")
	}
	var buf [2][2]int
	spans := buf[:0]
	same := true
	limit := 0
	for key, a, b, ok := obj.next(); ok; key, a, b, ok = obj.next() {
		name := memberName(key)
		if string(name) != "model" {
			for _, f := range fields {
				if string(name) == f {
					if n, ok := count(body[a:b]); ok && n > 0 && (limit == 0 || int(n) < limit) {
						limit = int(n)
					}
				}
			}
			continue
		}
		spans = append(spans, [2]int{a, b})
		if same {
			s, ok := stringBytes(body[a:b])
			same = ok && string(s) == model
		}
	}
	if obj.bad {
		return nil, 0, errors.New("jsonl: set model: body is not valid JSON")
	}
	if len(spans) > 0 && same {
		return body, limit, nil
	}
	n := len(body) + len(model) + 16
	if len(spans) == 0 {
		out := make([]byte, 0, n)
		out = append(out, body[:obj.open+1]...)
		out = append(out, `"model":`...)
		out = appendString(out, model)
		if obj.members > 0 {
			out = append(out, ',')
		}
		return append(out, body[obj.open+1:]...), limit, nil
	}
	out := make([]byte, 0, n)
	prev := 0
	for _, sp := range spans {
		out = append(out, body[prev:sp[0]]...)
		out = appendString(out, model)
		prev = sp[1]
	}
	return append(out, body[prev:]...), limit, nil
}

// NormalizeEndpoint returns the "/v1/..." form of a Batch API endpoint: it maps
// "/chat/completions" and "/v1/chat/completions" to "/v1/chat/completions", and
// likewise every endpoint of sluice.Endpoints. It returns "" for anything else,
// matching exactly: no trailing slash, query or change of case.
func NormalizeEndpoint(s string) string {
	switch strings.TrimPrefix(s, "/v1") {
	case "/chat/completions":
		return "/v1/chat/completions"
	case "/completions":
		return "/v1/completions"
	case "/embeddings":
		return "/v1/embeddings"
	case "/responses":
		return "/v1/responses"
	case "/moderations":
		return "/v1/moderations"
	case "/images/generations":
		return "/v1/images/generations"
	case "/images/edits":
		return "/v1/images/edits"
	case "/videos":
		return "/v1/videos"
	}
	return ""
}

// lineMessage puts the line number in front of a problem's message.
func lineMessage(line int, msg string) string {
	return fmt.Sprintf("Line %d %s", line, msg)
}
