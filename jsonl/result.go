package jsonl

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// maxWrappedBody is the most bytes of a body that is not JSON that AppendResponse
// keeps in the error message it wraps the body in.
const maxWrappedBody = 4096

// AppendResponse appends to dst the result line of a request that got an HTTP
// response, one JSON object without a trailing newline:
//
//	{"id":"<id>","custom_id":"<customID>","response":{"status_code":<status>,"request_id":"<requestID>","body":<body>},"error":null}
//
// Strings are escaped as encoding/json escapes them, except that <, > and & are left
// as they are. A body that is valid JSON once the whitespace around it is dropped is
// embedded as it is, compacted when it spans lines. A body that is not JSON (an HTML error page, say) or is empty is replaced by
// an OpenAI-style error object,
// {"error":{"message":...,"type":"upstream_error","param":null,"code":null}}, whose
// message is the body's first 4096 bytes, or "empty response body".
func AppendResponse(dst []byte, id, customID string, status int, requestID string, body []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"custom_id":`...)
	dst = appendString(dst, customID)
	dst = append(dst, `,"response":{"status_code":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"request_id":`...)
	dst = appendString(dst, requestID)
	dst = append(dst, `,"body":`...)
	dst = appendBody(dst, body)
	return append(dst, `},"error":null}`...)
}

// AppendError appends to dst the result line of a request that failed without an HTTP
// response, one JSON object without a trailing newline:
//
//	{"id":"<id>","custom_id":"<customID>","response":null,"error":{"code":"<code>","message":"<message>"}}
func AppendError(dst []byte, id, customID, code, message string) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, id)
	dst = append(dst, `,"custom_id":`...)
	dst = appendString(dst, customID)
	dst = append(dst, `,"response":null,"error":{"code":`...)
	dst = appendString(dst, code)
	dst = append(dst, `,"message":`...)
	dst = appendString(dst, message)
	return append(dst, `}}`...)
}

// appendBody appends an upstream response body as one line of JSON. Servers commonly
// end a compact body with a newline; the whitespace around the value is dropped, and a
// body that is then one line is checked once and copied as it is.
func appendBody(dst []byte, body []byte) []byte {
	body = bytes.Trim(body, " \t\r\n")
	if len(body) == 0 {
		return appendUpstreamError(dst, "empty response body")
	}
	if bytes.IndexByte(body, '\n') < 0 && bytes.IndexByte(body, '\r') < 0 {
		if valid(body) {
			return append(dst, body...)
		}
	} else {
		// Compact validates as it goes; on an error it leaves dst as it was.
		buf := bytes.NewBuffer(dst)
		if json.Compact(buf, body) == nil {
			return buf.Bytes()
		}
		dst = buf.Bytes()[:len(dst)]
	}
	if len(body) > maxWrappedBody {
		body = body[:maxWrappedBody+1]
	}
	msg, _ := truncate(string(body), maxWrappedBody)
	return appendUpstreamError(dst, msg)
}

// appendUpstreamError appends the error object that stands for a body that is not JSON.
func appendUpstreamError(dst []byte, msg string) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = appendString(dst, msg)
	return append(dst, `,"type":"upstream_error","param":null,"code":null}}`...)
}
