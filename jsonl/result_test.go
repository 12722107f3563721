package jsonl_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice/jsonl"
)

// resultLine is the shape of a result line.
type resultLine struct {
	ID       string `json:"id"`
	CustomID string `json:"custom_id"`
	Response *struct {
		StatusCode int             `json:"status_code"`
		RequestID  string          `json:"request_id"`
		Body       json.RawMessage `json:"body"`
	} `json:"response"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// decodeResult checks that line is one line of valid JSON and decodes it.
func decodeResult(t *testing.T, line []byte) resultLine {
	t.Helper()
	if bytes.ContainsAny(line, "\r\n") {
		t.Fatalf("got a line break in %q, want one line", line)
	}
	if !json.Valid(line) {
		t.Fatalf("got invalid JSON %s", line)
	}
	var r resultLine
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("got error %v decoding %s, want nil", err, line)
	}
	return r
}

var trickyIDs = []string{
	"plain",
	`with "quotes" and \backslashes\`,
	"new\nline\r\ttab\x00nul\x1fus\x7fdel",
	"ünïcödé 模型 😀 \u2028\u2029",
	"</script><&>",
	"",
}

func TestAppendResponse(t *testing.T) {
	t.Parallel()
	got := jsonl.AppendResponse(nil, "batch_req_1", "req-1", 200, "req_abc", []byte(`{"id":"chatcmpl-1","object":"chat.completion"}`))
	want := `{"id":"batch_req_1","custom_id":"req-1","response":{"status_code":200,"request_id":"req_abc","body":{"id":"chatcmpl-1","object":"chat.completion"}},"error":null}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestAppendResponseCustomIDs(t *testing.T) {
	t.Parallel()
	for _, id := range trickyIDs {
		line := jsonl.AppendResponse([]byte("prefix"), "batch_req_\"1", id, 429, "rid\n", []byte(`{"ok":true}`))
		if !bytes.HasPrefix(line, []byte("prefix")) {
			t.Fatalf("got %q, want dst kept as a prefix", line)
		}
		r := decodeResult(t, line[len("prefix"):])
		if r.CustomID != id || r.ID != "batch_req_\"1" || r.Response.RequestID != "rid\n" || r.Response.StatusCode != 429 {
			t.Errorf("got %+v, want custom_id %q round-tripped", r, id)
		}
		if r.Error != nil {
			t.Errorf("got error %+v, want null", r.Error)
		}
	}
}

func TestAppendResponseBody(t *testing.T) {
	t.Parallel()
	html := "<html>\n<body>502 Bad Gateway \"nginx\"</body>\n</html>\n"
	long := strings.Repeat("é", 3000) // 6000 bytes
	tests := []struct {
		name string
		body string
		want string // the body member, exactly
	}{
		{"compact-json-raw", `{"a":1}`, `{"a":1}`},
		{"inner-spaces-kept", ` { "a" : [1, 2] } `, `{ "a" : [1, 2] }`},
		{"trailing-newline-dropped", "{\"a\":1}\n", `{"a":1}`},
		{"crlf-dropped", "{\"a\":1}\r\n", `{"a":1}`},
		{"pretty-printed-compacted", "{\n  \"a\": 1,\r\n  \"b\": [\n    \"x y\"\n  ]\n}\n", `{"a":1,"b":["x y"]}`},
		{"array", `[1,2]`, `[1,2]`},
		{"line-separator-kept", "{\"a\":\"\u2028\"}", "{\"a\":\"\u2028\"}"},
		{"html", html, `{"error":{"message":"\u003chtml\u003e\n\u003cbody\u003e502 Bad Gateway \"nginx\"\u003c/body\u003e\n\u003c/html\u003e","type":"upstream_error","param":null,"code":null}}`},
		{"plain-text", "Internal Server Error", `{"error":{"message":"Internal Server Error","type":"upstream_error","param":null,"code":null}}`},
		{"truncated-json", `{"a":`, `{"error":{"message":"{\"a\":","type":"upstream_error","param":null,"code":null}}`},
		{"empty", "", `{"error":{"message":"empty response body","type":"upstream_error","param":null,"code":null}}`},
		{"whitespace-only", " \r\n", `{"error":{"message":"empty response body","type":"upstream_error","param":null,"code":null}}`},
		{"long-text-truncated", long, `{"error":{"message":"` + long[:4096] + `","type":"upstream_error","param":null,"code":null}}`},
		{"invalid-utf8", "\xff oops", `{"error":{"message":"\ufffd oops","type":"upstream_error","param":null,"code":null}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			line := jsonl.AppendResponse(nil, "id", "c", 502, "r", []byte(tc.body))
			r := decodeResult(t, line)
			var gotMember, wantMember any
			if err := json.Unmarshal(r.Response.Body, &gotMember); err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if err := json.Unmarshal([]byte(tc.want), &wantMember); err != nil {
				t.Fatalf("bad test: %v", err)
			}
			if diff := cmp.Diff(wantMember, gotMember); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if !strings.Contains(string(line), `"body":`+tc.want[:min(len(tc.want), 20)]) {
				t.Errorf("got %s, want the body member to begin %s", line, tc.want[:min(len(tc.want), 20)])
			}
		})
	}
}

func TestAppendError(t *testing.T) {
	t.Parallel()
	got := jsonl.AppendError(nil, "batch_req_2", "req-2", "batch_expired", "This request could not be executed before the completion window expired.")
	want := `{"id":"batch_req_2","custom_id":"req-2","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}`
	if string(got) != want {
		t.Errorf("got %s, want %s", got, want)
	}
	for _, id := range trickyIDs {
		r := decodeResult(t, jsonl.AppendError(nil, "x", id, "c\"ode", "multi\nline"))
		if r.CustomID != id || r.Response != nil || r.Error == nil || r.Error.Code != "c\"ode" || r.Error.Message != "multi\nline" {
			t.Errorf("got %+v, want custom_id %q round-tripped", r, id)
		}
	}
}
