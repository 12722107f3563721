package jsonl_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

func TestParseRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want jsonl.Request
	}{
		{
			name: "chat",
			line: good("req-1"),
			want: jsonl.Request{CustomID: "req-1", Method: "POST", URL: "/v1/chat/completions",
				Body: json.RawMessage(`{"model":"gpt-4o","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hi."}],"max_tokens":16}`)},
		},
		{
			name: "whitespace-and-order",
			line: ` { "body" : { "model" : "m" } , "url" : "/embeddings", "method":"POST", "custom_id" : "a\"b" } `,
			want: jsonl.Request{CustomID: `a"b`, Method: "POST", URL: "/embeddings", Body: json.RawMessage(`{ "model" : "m" }`)},
		},
		{
			name: "escapes-and-unicode",
			line: `{"custom_id":"\u00fc\n\ud83d\ude00","method":"POST","url":"\/v1\/responses","body":{"model":"m","input":"x"}}`,
			want: jsonl.Request{CustomID: "ü\n😀", Method: "POST", URL: "/v1/responses", Body: json.RawMessage(`{"model":"m","input":"x"}`)},
		},
		{
			name: "newlines-between-tokens",
			line: "{\"custom_id\":\"a\",\n\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":\n{\"model\":\"m\"}\n}\n",
			want: jsonl.Request{CustomID: "a", Method: "POST", URL: "/v1/embeddings", Body: json.RawMessage(`{"model":"m"}`)},
		},
		{
			name: "members-at-cap",
			line: req(strings.Repeat("i", 65536), "/v1/embeddings", "m"),
			want: jsonl.Request{CustomID: strings.Repeat("i", 65536), Method: "POST", URL: "/v1/embeddings",
				Body: json.RawMessage(`{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hi."}],"max_tokens":16}`)},
		},
		{
			name: "last-duplicate-member-wins",
			line: `{"custom_id":"a","custom_id":"b","method":"POST","url":"/v1/embeddings","body":{"model":"m"}}`,
			want: jsonl.Request{CustomID: "b", Method: "POST", URL: "/v1/embeddings", Body: json.RawMessage(`{"model":"m"}`)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			line := []byte(tc.line)
			got, err := jsonl.ParseRequest(line)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("request (-want +got):\n%s", diff)
			}
			for i := range line {
				line[i] = 'X'
			}
			if diff := cmp.Diff(tc.want.Body, got.Body); diff != "" {
				t.Errorf("body changed with the line, want a copy (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRequestErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		line      string
		wantCode  string
		wantParam string
	}{
		{"empty", "", "invalid_json_line", ""},
		{"invalid-json", `{"custom_id":"a"`, "invalid_json_line", ""},
		{"array", `[]`, "invalid_request", ""},
		{"no-custom-id", `{"method":"POST","url":"/v1/embeddings","body":{"model":"m"}}`, "invalid_request", "custom_id"},
		{"bad-method", `{"custom_id":"a","method":"PUT","url":"/v1/embeddings","body":{"model":"m"}}`, "invalid_request", "method"},
		{"bad-url", `{"custom_id":"a","method":"POST","url":[],"body":{"model":"m"}}`, "invalid_request", "url"},
		{"bad-body", `{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":"{}"}`, "invalid_request", "body"},
		{"no-model", `{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{}}`, "invalid_request", "body.model"},
		{"stream", `{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"m","stream":true}}`, "invalid_request", "body.stream"},
		{"newline-in-string", "{\"custom_id\":\"a\nb\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{\"model\":\"m\"}}", "invalid_json_line", ""},
		{"custom-id-over-cap", req(strings.Repeat("i", 65537), "/v1/embeddings", "m"), "invalid_request", "custom_id"},
		{"method-over-cap", strings.Replace(req("a", "/v1/embeddings", "m"), `"POST"`, `"`+strings.Repeat("P", 65537)+`"`, 1), "invalid_request", "method"},
		{"url-over-cap", req("a", strings.Repeat("u", 65537), "m"), "invalid_request", "url"},
		{"model-over-cap", req("a", "/v1/embeddings", strings.Repeat("m", 65537)), "invalid_request", "body.model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := jsonl.ParseRequest([]byte(tc.line))
			var e *sluice.Error
			if !errors.As(err, &e) {
				t.Fatalf("got error %v, want a *sluice.Error", err)
			}
			if e.Kind != sluice.KindInvalid || e.Code != tc.wantCode || e.Param != tc.wantParam {
				t.Errorf("got kind %q code %q param %q, want %q %q %q", e.Kind, e.Code, e.Param, sluice.KindInvalid, tc.wantCode, tc.wantParam)
			}
			if !strings.HasPrefix(e.Message, "The request line ") {
				t.Errorf("got message %q, want a sentence about the request line", e.Message)
			}
		})
	}
}

func TestNormalizeEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"/chat/completions", "/v1/chat/completions"},
		{"/v1/chat/completions", "/v1/chat/completions"},
		{"/completions", "/v1/completions"},
		{"/v1/completions", "/v1/completions"},
		{"/embeddings", "/v1/embeddings"},
		{"/v1/embeddings", "/v1/embeddings"},
		{"/responses", "/v1/responses"},
		{"/v1/responses", "/v1/responses"},
		{"", ""},
		{"/v1", ""},
		{"/v1/", ""},
		{"/v1/v1/chat/completions", ""},
		{"/v2/chat/completions", ""},
		{"chat/completions", ""},
		{"/chat/completions/", ""},
		{"/Chat/Completions", ""},
		{"/v1/chat/completions?x=1", ""},
		{"/v1/audio/speech", ""},
		{"/v1/images/generations", "/v1/images/generations"},
		{"/images/edits", "/v1/images/edits"},
		{"/moderations", "/v1/moderations"},
		{"/v1/videos", "/v1/videos"},
	}
	for _, tc := range tests {
		if got := jsonl.NormalizeEndpoint(tc.in); got != tc.want {
			t.Errorf("NormalizeEndpoint(%q): got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSetModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		model string
		want  string
	}{
		{"replace", `{"model":"a","messages":[]}`, "b", `{"model":"b","messages":[]}`},
		{"keeps-member-order", `{"temperature":0.5,"model":"gpt-4o","max_tokens":3,"n":1}`, "llama", `{"temperature":0.5,"model":"llama","max_tokens":3,"n":1}`},
		{
			name:  "nested-model-keys-untouched",
			body:  `{"messages":[{"role":"user","content":"\"model\":\"x\"","model":"x"}],"tools":{"model":"y"},"model":"a","z":["model"]}`,
			model: "b",
			want:  `{"messages":[{"role":"user","content":"\"model\":\"x\"","model":"x"}],"tools":{"model":"y"},"model":"b","z":["model"]}`,
		},
		{"escapes-new-value", `{"model":"a"}`, "q\"b\\s\n\u2028<&>", `{"model":"q\"b\\s\n\u2028<&>"}`},
		{"escaped-key", `{"mod\u0065l":"a","x":1}`, "b", `{"mod\u0065l":"b","x":1}`},
		{"escaped-old-value", `{"model":"a\"\u00e9\\"}`, "b", `{"model":"b"}`},
		{"whitespace", " {\n\t\"model\" :\r\n \"a\" , \"x\" : 1 }\n", "b", " {\n\t\"model\" :\r\n \"b\" , \"x\" : 1 }\n"},
		{"non-string-model", `{"model":{"name":"a"},"x":[1,{"model":2}]}`, "b", `{"model":"b","x":[1,{"model":2}]}`},
		{"null-model", `{"model":null}`, "b", `{"model":"b"}`},
		{"missing-model", `{"x":1}`, "b", `{"model":"b","x":1}`},
		{"empty-object", `{}`, "b", `{"model":"b"}`},
		{"empty-object-space", ` { } `, "b", ` {"model":"b" } `},
		{"case-differs", `{"Model":"a"}`, "b", `{"model":"b","Model":"a"}`},
		{"duplicate-model-members", `{"model":"a","x":1,"model":"c"}`, "b", `{"model":"b","x":1,"model":"b"}`},
		{"duplicate-one-equal", `{"model":"b","model":"c"}`, "b", `{"model":"b","model":"b"}`},
		{"unicode", `{"model":"a"}`, "模型-ü", `{"model":"模型-ü"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := jsonl.SetModel([]byte(tc.body), tc.model)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
			if !json.Valid(got) {
				t.Errorf("got invalid JSON %s", got)
			}
		})
	}
}

func TestSetModelUnchanged(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		body  string
		model string
	}{
		{"plain", `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`, "gpt-4o"},
		{"spaces", ` { "model" : "gpt-4o" } `, "gpt-4o"},
		{"escaped-equal", `{"model":"g\u0070t"}`, "gpt"},
		{"duplicates-all-equal", `{"model":"m","model":"m"}`, "m"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := []byte(tc.body)
			got, err := jsonl.SetModel(body, tc.model)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if len(got) != len(body) || &got[0] != &body[0] {
				t.Errorf("got a new slice %s, want body itself", got)
			}
		})
	}
}

func TestSetModelErrors(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", " ", `[{"model":"a"}]`, `"model"`, `{"model":"a"`, `{"model":"a"} {}`, `null`} {
		if got, err := jsonl.SetModel([]byte(body), "b"); err == nil {
			t.Errorf("SetModel(%q): got %q and nil error, want an error", body, got)
		}
	}
}

func TestDispatchBody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, line, model, want string
		wantErr                 bool
	}{
		{name: "same-model-untouched", line: `{"custom_id":"a","body":{"model":"m","messages":[]},"url":"/v1/chat/completions"}`, model: "m", want: `{"model":"m","messages":[]}`},
		{name: "model-replaced", line: `{"custom_id":"a","method":"POST","body": {"messages":[{"model":"inner"}],"model":"dep"}}`, model: "Qwen/Q", want: `{"messages":[{"model":"inner"}],"model":"Qwen/Q"}`},
		{name: "no-body", line: `{"custom_id":"a"}`, model: "m", wantErr: true},
		{name: "not-object", line: `["body"]`, model: "m", wantErr: true},
		{name: "truncated", line: `{"custom_id":"a","body":{"model":"m"`, model: "m", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := jsonl.DispatchBody([]byte(tc.line), tc.model)
			if (err != nil) != tc.wantErr {
				t.Fatalf("got error %v, want error %v", err, tc.wantErr)
			}
			if !tc.wantErr && string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// DispatchBodyLimit reads the token limit in the walk that sets the model: the
// smallest whole number among the named top-level members, 0 when none.
func TestDispatchBodyLimit(t *testing.T) {
	t.Parallel()
	chat := jsonl.TokenFields["/v1/chat/completions"].Fields
	for _, tc := range []struct {
		name, line string
		fields     []string
		want       int
		wantBody   string
	}{
		{name: "max-tokens", line: `{"body":{"model":"m","max_tokens":300}}`, fields: chat, want: 300, wantBody: `{"model":"m","max_tokens":300}`},
		{name: "smaller-of-two", line: `{"body":{"max_completion_tokens":50,"model":"x","max_tokens":300}}`, fields: chat, want: 50, wantBody: `{"max_completion_tokens":50,"model":"m","max_tokens":300}`},
		{name: "none", line: `{"body":{"model":"m","messages":[{"max_tokens":9}]}}`, fields: chat, want: 0},
		{name: "not-a-whole-number", line: `{"body":{"model":"m","max_tokens":null}}`, fields: chat, want: 0},
		{name: "no-fields", line: `{"body":{"model":"m","max_tokens":300}}`, want: 0},
		{name: "model-inserted", line: `{"body":{"max_output_tokens":12}}`, fields: []string{"max_output_tokens"}, want: 12, wantBody: `{"model":"m","max_output_tokens":12}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body, n, err := jsonl.DispatchBodyLimit([]byte(tc.line), "m", tc.fields)
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.want {
				t.Errorf("limit: got %d, want %d", n, tc.want)
			}
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Errorf("body: got %s, want %s", body, tc.wantBody)
			}
		})
	}
}
