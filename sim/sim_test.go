package sim_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

type chatResponse struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason string          `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

type completionResponse struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text         string          `json:"text"`
		Index        int             `json:"index"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason string          `json:"finish_reason"`
	} `json:"choices"`
	Usage usage `json:"usage"`
}

// start serves a new simulator over HTTP for the length of the test.
func start(t *testing.T, opts sim.Options) (*sim.Server, *httptest.Server) {
	t.Helper()
	s := sim.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// send makes one request and returns the answer and its body.
func send(t *testing.T, ctx context.Context, c *http.Client, method, url, body string) (*http.Response, []byte, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// post sends a POST and fails the test unless the answer has status want.
func post(t *testing.T, srv *httptest.Server, path, body string, want int) (*http.Response, []byte) {
	t.Helper()
	resp, b, err := send(t, t.Context(), srv.Client(), http.MethodPost, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("POST %s: got status %d (%s), want %d", path, resp.StatusCode, b, want)
	}
	return resp, b
}

func chat(t *testing.T, srv *httptest.Server, body string) chatResponse {
	t.Helper()
	_, b := post(t, srv, "/v1/chat/completions", body, http.StatusOK)
	var out chatResponse
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func user(content any) map[string]any { return map[string]any{"role": "user", "content": content} }

// checkErrorBody fails the test unless b is an OpenAI error body of type typ whose param
// and code are present and equal want (nil for null).
func checkErrorBody(t *testing.T, b []byte, typ string, param, code any) {
	t.Helper()
	var got struct {
		Error map[string]any `json:"error"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := got.Error[k]; !ok {
			t.Errorf("error body %s: got no %q, want it present", b, k)
		}
	}
	if msg, _ := got.Error["message"].(string); msg == "" {
		t.Errorf("error message: got %v, want a non-empty string", got.Error["message"])
	}
	if got.Error["type"] != typ {
		t.Errorf("error type: got %v, want %v", got.Error["type"], typ)
	}
	if got.Error["param"] != param {
		t.Errorf("error param: got %v, want %v", got.Error["param"], param)
	}
	if got.Error["code"] != code {
		t.Errorf("error code: got %v, want %v", got.Error["code"], code)
	}
}

func TestCountTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"empty", "", 0},
		{"white-space-only", " \t\n ", 0},
		{"short-word", "the", 1},
		{"four-letters", "gate", 1},
		{"five-letters", "hello", 2},
		{"sentence", "Hello, world!", 6},
		{"digits", "1234567890", 3},
		{"words-and-spaces", "a b  c", 3},
		{"accented-letters", "héllo", 2},
		{"cjk-letters", "日本語", 1},
		{"emoji", "ok 👍", 2},
		{"invalid-utf8", "a\xffb", 3},
		{"underscore", "snake_case", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := sim.CountTokens(tt.in); got != tt.want {
				t.Errorf("CountTokens(%q): got %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestChatDeterminism(t *testing.T) {
	t.Parallel()
	// Two servers with different seeds: the text depends on the prompt only.
	_, a := start(t, sim.Options{Seed: 1})
	_, b := start(t, sim.Options{Seed: 2})
	tests := []struct {
		name     string
		x, y     []any
		wantSame bool
	}{
		{"same-prompt", []any{user("Tell me about rivers.")}, []any{user("Tell me about rivers.")}, true},
		{"same-parts-as-string", []any{user([]any{map[string]any{"type": "text", "text": "Hi"}})}, []any{user("Hi")}, true},
		{"different-prompt", []any{user("Tell me about rivers.")}, []any{user("Tell me about stones.")}, false},
		{"different-last-byte", []any{user("abc")}, []any{user("abd")}, false},
		{"different-role", []any{user("Hi")}, []any{map[string]any{"role": "system", "content": "Hi"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := chat(t, a, mustJSON(t, map[string]any{"model": "m", "messages": tt.x}))
			y := chat(t, b, mustJSON(t, map[string]any{"model": "m", "messages": tt.y}))
			xc, yc := x.Choices[0].Message.Content, y.Choices[0].Message.Content
			if same := xc == yc; same != tt.wantSame {
				t.Errorf("contents %q and %q: got same %v, want %v", xc, yc, same, tt.wantSame)
			}
		})
	}
}

func TestChatUsage(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	parts := []any{
		map[string]any{"type": "text", "text": "Describe this picture,"},
		map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://example.com/a.png"}},
		map[string]any{"type": "text", "text": "briefly please."},
	}
	tests := []struct {
		name        string
		messages    []any
		texts       [][]string // the text parts of each message, for prompt_tokens
		extra       map[string]any
		wantChoices int
		wantFinish  string // "" when either is fine
		wantMax     int    // most completion tokens in one choice
	}{
		{name: "default", messages: []any{user("Tell me about rivers.")}, texts: [][]string{{"Tell me about rivers."}},
			wantChoices: 1, wantFinish: "stop", wantMax: 16},
		{name: "system-and-user", messages: []any{map[string]any{"role": "system", "content": "You are terse."}, user("Why is the sky blue?")},
			texts: [][]string{{"You are terse."}, {"Why is the sky blue?"}}, wantChoices: 1, wantFinish: "stop", wantMax: 16},
		{name: "max-tokens-3", messages: []any{user("Count to ten.")}, texts: [][]string{{"Count to ten."}},
			extra: map[string]any{"max_tokens": 3}, wantChoices: 1, wantFinish: "length", wantMax: 3},
		{name: "max-completion-tokens-wins", messages: []any{user("Count to ten.")}, texts: [][]string{{"Count to ten."}},
			extra: map[string]any{"max_tokens": 100, "max_completion_tokens": 2}, wantChoices: 1, wantFinish: "length", wantMax: 2},
		{name: "large-max-tokens-stops", messages: []any{user("Count to ten.")}, texts: [][]string{{"Count to ten."}},
			extra: map[string]any{"max_tokens": 1000}, wantChoices: 1, wantFinish: "stop", wantMax: 16},
		{name: "n-3", messages: []any{user("Name a colour.")}, texts: [][]string{{"Name a colour."}},
			extra: map[string]any{"n": 3}, wantChoices: 3, wantMax: 16},
		{name: "n-2-max-tokens-3", messages: []any{user("Name a colour.")}, texts: [][]string{{"Name a colour."}},
			extra: map[string]any{"n": 2, "max_tokens": 3}, wantChoices: 2, wantFinish: "length", wantMax: 3},
		{name: "array-of-parts", messages: []any{user(parts)}, texts: [][]string{{"Describe this picture,", "briefly please."}},
			wantChoices: 1, wantFinish: "stop", wantMax: 16},
		{name: "null-content", messages: []any{user("Hi"), map[string]any{"role": "assistant", "content": nil}, user("Again")},
			texts: [][]string{{"Hi"}, {}, {"Again"}}, wantChoices: 1, wantFinish: "stop", wantMax: 16},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := map[string]any{"model": "gpt-test", "messages": tt.messages}
			for k, v := range tt.extra {
				req[k] = v
			}
			got := chat(t, srv, mustJSON(t, req))
			if !strings.HasPrefix(got.ID, "chatcmpl-") || got.Object != "chat.completion" || got.Model != "gpt-test" || got.Created <= 0 {
				t.Errorf("got id %q object %q model %q created %d, want chatcmpl-…, chat.completion, gpt-test, > 0",
					got.ID, got.Object, got.Model, got.Created)
			}
			if len(got.Choices) != tt.wantChoices {
				t.Fatalf("got %d choices, want %d", len(got.Choices), tt.wantChoices)
			}
			completion := 0
			for i, c := range got.Choices {
				n := sim.CountTokens(c.Message.Content)
				completion += n
				if c.Index != i || c.Message.Role != "assistant" || string(c.Logprobs) != "null" {
					t.Errorf("choice %d: got index %d role %q logprobs %s, want %d, assistant, null", i, c.Index, c.Message.Role, c.Logprobs, i)
				}
				if tt.wantFinish != "" && c.FinishReason != tt.wantFinish {
					t.Errorf("choice %d: got finish_reason %q, want %q", i, c.FinishReason, tt.wantFinish)
				}
				if n > tt.wantMax || c.FinishReason == "length" && n != tt.wantMax {
					t.Errorf("choice %d: got %d tokens (%q, %s), want at most %d, exactly when cut", i, n, c.Message.Content, c.FinishReason, tt.wantMax)
				}
			}
			prompt := 0
			for _, m := range tt.texts {
				for _, s := range m {
					prompt += sim.CountTokens(s)
				}
				prompt += 3
			}
			want := usage{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
			if got.Usage != want {
				t.Errorf("got usage %+v, want %+v", got.Usage, want)
			}
		})
	}
}

func TestCompletions(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	tests := []struct {
		name        string
		req         map[string]any
		wantChoices int
		wantPrompt  int
	}{
		{"string-prompt", map[string]any{"model": "m", "prompt": "Once upon a time"}, 1, sim.CountTokens("Once upon a time")},
		{"prompts-times-n", map[string]any{"model": "m", "prompt": []string{"Roses are red,", "Violets are"}, "n": 2}, 4,
			sim.CountTokens("Roses are red,") + sim.CountTokens("Violets are")},
		{"token-ids", map[string]any{"model": "m", "prompt": []int{1, 2, 3}}, 1, 3},
		{"max-tokens-2", map[string]any{"model": "m", "prompt": "Once upon a time", "max_tokens": 2}, 1, sim.CountTokens("Once upon a time")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := post(t, srv, "/v1/completions", mustJSON(t, tt.req), http.StatusOK)
			var got completionResponse
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(got.ID, "cmpl-") || got.Object != "text_completion" || got.Model != "m" {
				t.Errorf("got id %q object %q model %q, want cmpl-…, text_completion, m", got.ID, got.Object, got.Model)
			}
			if len(got.Choices) != tt.wantChoices {
				t.Fatalf("got %d choices, want %d", len(got.Choices), tt.wantChoices)
			}
			completion := 0
			for i, c := range got.Choices {
				completion += sim.CountTokens(c.Text)
				if c.Index != i || string(c.Logprobs) != "null" || c.FinishReason != "stop" && c.FinishReason != "length" {
					t.Errorf("choice %d: got index %d logprobs %s finish_reason %q, want %d, null, stop or length", i, c.Index, c.Logprobs, c.FinishReason, i)
				}
			}
			want := usage{PromptTokens: tt.wantPrompt, CompletionTokens: completion, TotalTokens: tt.wantPrompt + completion}
			if got.Usage != want {
				t.Errorf("got usage %+v, want %+v", got.Usage, want)
			}
		})
	}
}

func TestEmbeddings(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	tests := []struct {
		name       string
		req        map[string]any
		wantInputs []string
		wantDims   int
	}{
		{"string-input", map[string]any{"model": "e", "input": "hello world"}, []string{"hello world"}, 8},
		{"array-input-with-dimensions", map[string]any{"model": "e", "input": []string{"same", "same", "other"}, "dimensions": 3},
			[]string{"same", "same", "other"}, 3},
		{"base64", map[string]any{"model": "e", "input": []string{"same", "same"}, "encoding_format": "base64"}, []string{"same", "same"}, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := post(t, srv, "/v1/embeddings", mustJSON(t, tt.req), http.StatusOK)
			var got struct {
				Object string `json:"object"`
				Model  string `json:"model"`
				Data   []struct {
					Object    string          `json:"object"`
					Index     int             `json:"index"`
					Embedding json.RawMessage `json:"embedding"`
				} `json:"data"`
				Usage map[string]int `json:"usage"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if got.Object != "list" || got.Model != "e" || len(got.Data) != len(tt.wantInputs) {
				t.Fatalf("got object %q model %q %d embeddings, want list, e, %d", got.Object, got.Model, len(got.Data), len(tt.wantInputs))
			}
			vecs := make(map[string][]float32)
			prompt := 0
			for i, d := range got.Data {
				prompt += sim.CountTokens(tt.wantInputs[i])
				var v []float32
				var s string
				if err := json.Unmarshal(d.Embedding, &s); err == nil {
					raw, err := base64.StdEncoding.DecodeString(s)
					if err != nil {
						t.Fatal(err)
					}
					v = make([]float32, len(raw)/4)
					for k := range v {
						v[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
					}
				} else if err := json.Unmarshal(d.Embedding, &v); err != nil {
					t.Fatal(err)
				}
				if d.Object != "embedding" || d.Index != i || len(v) != tt.wantDims {
					t.Errorf("embedding %d: got object %q index %d dims %d, want embedding, %d, %d", i, d.Object, d.Index, len(v), i, tt.wantDims)
				}
				norm := 0.0
				for _, x := range v {
					norm += float64(x) * float64(x)
				}
				if math.Abs(norm-1) > 1e-4 {
					t.Errorf("embedding %d: got squared norm %v, want 1", i, norm)
				}
				if prev, ok := vecs[tt.wantInputs[i]]; ok && !equal(prev, v) {
					t.Errorf("embedding %d of %q: got %v, want %v as before", i, tt.wantInputs[i], v, prev)
				}
				vecs[tt.wantInputs[i]] = v
			}
			if got.Usage["prompt_tokens"] != prompt || got.Usage["total_tokens"] != prompt {
				t.Errorf("got usage %v, want prompt_tokens and total_tokens %d", got.Usage, prompt)
			}
		})
	}
}

func equal(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{Model: "my-model"})
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		wantBody  string // a substring of the answer
		wantModel string // for chat completions
	}{
		{name: "chat-v1", method: "POST", path: "/v1/chat/completions", body: `{"model":"x","messages":[{"role":"user","content":"hi"}]}`, wantModel: "x"},
		{name: "chat-no-prefix", method: "POST", path: "/chat/completions", body: `{"model":"x","messages":[{"role":"user","content":"hi"}]}`, wantModel: "x"},
		{name: "chat-azure-deployment", method: "POST", path: "/openai/deployments/my-deploy/chat/completions?api-version=2024-10-21",
			body: `{"messages":[{"role":"user","content":"hi"}]}`, wantModel: "my-deploy"},
		{name: "chat-azure-v1", method: "POST", path: "/openai/v1/chat/completions", body: `{"messages":[{"role":"user","content":"hi"}]}`, wantModel: "my-model"},
		{name: "models-v1", method: "GET", path: "/v1/models", wantBody: `"data":[{"id":"my-model","object":"model",`},
		{name: "models-no-prefix", method: "GET", path: "/models", wantBody: `"owned_by":"sluice-sim"`},
		{name: "model-by-id", method: "GET", path: "/v1/models/my-model", wantBody: `{"id":"my-model","object":"model"`},
		{name: "healthz", method: "GET", path: "/healthz", wantBody: "ok"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b, err := send(t, t.Context(), srv.Client(), tt.method, srv.URL+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got status %d (%s), want 200", resp.StatusCode, b)
			}
			if resp.Header.Get("x-request-id") == "" {
				t.Errorf("got no x-request-id, want one")
			}
			if !strings.Contains(string(b), tt.wantBody) {
				t.Errorf("got body %s, want it to contain %s", b, tt.wantBody)
			}
			if tt.wantModel != "" {
				var got chatResponse
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatal(err)
				}
				if got.Model != tt.wantModel {
					t.Errorf("got model %q, want %q", got.Model, tt.wantModel)
				}
			}
		})
	}
}

func TestEscaping(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	tests := []struct {
		name      string
		path      string
		body      string
		wantModel string
	}{
		{"quote-backslash-newline", "/v1/chat/completions", `{"model":"a\"b\\c\nd\te","messages":[{"role":"user","content":"x\ny"}]}`, "a\"b\\c\nd\te"},
		{"control-character", "/v1/chat/completions", `{"model":"a\u0001b","messages":[{"role":"user","content":"hi"}]}`, "a\x01b"},
		{"line-separators", "/v1/chat/completions", `{"model":"a\u2028b\u2029c","messages":[{"role":"user","content":"hi"}]}`, "a\u2028b\u2029c"},
		{"non-ascii", "/v1/chat/completions", `{"model":"modèle-日本","messages":[{"role":"user","content":"hi"}]}`, "modèle-日本"},
		{"invalid-utf8-deployment", "/openai/deployments/a%FFb/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := post(t, srv, tt.path, tt.body, http.StatusOK)
			var got chatResponse
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("decode %s: %v", b, err)
			}
			if got.Model != tt.wantModel {
				t.Errorf("got model %q, want %q", got.Model, tt.wantModel)
			}
		})
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	if got := sim.New(sim.Options{Seed: 7}).Seed(); got != 7 {
		t.Errorf("got seed %d, want 7", got)
	}
	if got := sim.New(sim.Options{}).Seed(); got == 0 {
		t.Errorf("got seed %d, want one picked from the clock", got)
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	seen := make(map[string]bool)
	for range 10 {
		resp, b := post(t, srv, "/v1/chat/completions", body, http.StatusOK)
		var got chatResponse
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		id := resp.Header.Get("x-request-id")
		if id == "" || seen[id] || seen[got.ID] {
			t.Fatalf("got x-request-id %q and id %q, want new ones", id, got.ID)
		}
		seen[id], seen[got.ID] = true, true
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		wantStatus int
		wantParam  any // nil for null
		wantCode   any // nil for null
		wantAllow  string
	}{
		{name: "unknown-path", method: "POST", path: "/v1/nope", wantStatus: 404},
		{name: "unknown-root-path", method: "GET", path: "/", wantStatus: 404},
		{name: "unknown-deployment-path", method: "POST", path: "/openai/deployments/d", wantStatus: 404},
		{name: "unknown-model", method: "GET", path: "/v1/models/gpt-9", wantStatus: 404, wantParam: "model", wantCode: "model_not_found"},
		{name: "get-chat", method: "GET", path: "/v1/chat/completions", wantStatus: 405, wantAllow: "POST"},
		{name: "post-models", method: "POST", path: "/v1/models", wantStatus: 405, wantAllow: "GET, HEAD"},
		{name: "bad-json", method: "POST", path: "/v1/chat/completions", body: `{"messages":`, wantStatus: 400},
		{name: "empty-body", method: "POST", path: "/v1/chat/completions", wantStatus: 400},
		{name: "not-an-object", method: "POST", path: "/v1/chat/completions", body: `[1]`, wantStatus: 400},
		{name: "stream", method: "POST", path: "/v1/chat/completions", body: `{"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 400, wantParam: "stream"},
		{name: "no-messages", method: "POST", path: "/v1/chat/completions", body: `{"messages":[]}`, wantStatus: 400, wantParam: "messages"},
		{name: "messages-not-array", method: "POST", path: "/v1/chat/completions", body: `{"messages":"hi"}`, wantStatus: 400, wantParam: "messages"},
		{name: "content-number", method: "POST", path: "/v1/chat/completions", body: `{"messages":[{"role":"user","content":7}]}`,
			wantStatus: 400, wantParam: "messages"},
		{name: "n-zero", method: "POST", path: "/v1/chat/completions", body: `{"n":0,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 400, wantParam: "n"},
		{name: "max-tokens-zero", method: "POST", path: "/v1/chat/completions", body: `{"max_tokens":0,"messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 400, wantParam: "max_tokens"},
		{name: "completions-stream", method: "POST", path: "/v1/completions", body: `{"prompt":"hi","stream":true}`, wantStatus: 400, wantParam: "stream"},
		{name: "completions-no-prompt", method: "POST", path: "/v1/completions", body: `{}`, wantStatus: 400, wantParam: "prompt"},
		{name: "embeddings-no-input", method: "POST", path: "/v1/embeddings", body: `{"model":"e"}`, wantStatus: 400, wantParam: "input"},
		{name: "embeddings-bad-input", method: "POST", path: "/v1/embeddings", body: `{"input":{"a":1}}`, wantStatus: 400, wantParam: "input"},
		{name: "embeddings-zero-dimensions", method: "POST", path: "/v1/embeddings", body: `{"input":"a","dimensions":0}`,
			wantStatus: 400, wantParam: "dimensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b, err := send(t, t.Context(), srv.Client(), tt.method, srv.URL+tt.path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", got)
			}
			if resp.Header.Get("x-request-id") == "" {
				t.Errorf("got no x-request-id, want one")
			}
			if got := resp.Header.Get("Allow"); got != tt.wantAllow {
				t.Errorf("got Allow %q, want %q", got, tt.wantAllow)
			}
			checkErrorBody(t, b, "invalid_request_error", tt.wantParam, tt.wantCode)
			if tt.wantParam == "stream" && !strings.Contains(string(b), "stream is not supported by the simulator") {
				t.Errorf("got body %s, want the stream message", b)
			}
		})
	}
}

func TestMaxConcurrency(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Options{Latency: time.Hour, MaxConcurrency: 2})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type result struct {
		resp *http.Response
		body []byte
		err  error
	}
	const total = 5
	results := make(chan result, total)
	for range total {
		go func() {
			resp, b, err := send(t, ctx, srv.Client(), http.MethodPost, srv.URL+"/v1/chat/completions",
				`{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
			results <- result{resp, b, err}
		}()
	}
	// The 429s come at once; the two admitted requests wait out the latency until canceled.
	for range total - 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("got error %v, want a 429", r.err)
		}
		if r.resp.StatusCode != http.StatusTooManyRequests || r.resp.Header.Get("Retry-After") != "1" {
			t.Fatalf("got status %d Retry-After %q, want 429 and 1", r.resp.StatusCode, r.resp.Header.Get("Retry-After"))
		}
		checkErrorBody(t, r.body, "rate_limit_error", nil, "rate_limit_exceeded")
	}
	if st := s.Stats(); st.InFlight != 2 || st.MaxInFlight != 2 || st.Faults.OverConcurrency != 3 {
		t.Errorf("got InFlight %d MaxInFlight %d OverConcurrency %d, want 2, 2, 3", st.InFlight, st.MaxInFlight, st.Faults.OverConcurrency)
	}
	cancel()
	for range 2 {
		if r := <-results; !errors.Is(r.err, context.Canceled) {
			t.Errorf("admitted request: got %v, want %v", r.err, context.Canceled)
		}
	}
	st := waitIdle(t, s)
	want := sim.Stats{Requests: 5, Canceled: 2, Faults: sim.Faults{OverConcurrency: 3}, MaxInFlight: 2}
	if st != want {
		t.Errorf("got stats %+v, want %+v", st, want)
	}
}

// waitIdle polls until no request is in flight and returns the stats then.
func waitIdle(t *testing.T, s *sim.Server) sim.Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := s.Stats()
		if st.InFlight == 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d requests in flight after 10s, want 0", st.InFlight)
		}
		time.Sleep(time.Millisecond) // polling, not waiting for a duration
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		opts           sim.Options
		wantStatus     int
		wantType       string
		wantCode       any
		wantRetryAfter string
		wantFaults     sim.Faults
	}{
		{"fail-rate-1", sim.Options{FailRate: 1}, 500, "server_error", nil, "", sim.Faults{ServerError: 1}},
		{"rate-limit-rate-1", sim.Options{RateLimitRate: 1}, 429, "rate_limit_error", "rate_limit_exceeded", "1", sim.Faults{RateLimited: 1}},
		{"retry-after-rounds-up", sim.Options{RateLimitRate: 1, RetryAfter: 1500 * time.Millisecond}, 429, "rate_limit_error", "rate_limit_exceeded", "2",
			sim.Faults{RateLimited: 1}},
		{"rate-limit-before-fail", sim.Options{RateLimitRate: 1, FailRate: 1}, 429, "rate_limit_error", "rate_limit_exceeded", "1", sim.Faults{RateLimited: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, tt.opts)
			resp, b := post(t, srv, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hi"}]}`, tt.wantStatus)
			checkErrorBody(t, b, tt.wantType, nil, tt.wantCode)
			if got := resp.Header.Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("got Retry-After %q, want %q", got, tt.wantRetryAfter)
			}
			if got := s.Stats(); got.Faults != tt.wantFaults || got.Faults.Total() != 1 || got.Requests != 1 || got.Completed != 0 {
				t.Errorf("got stats %+v, want 1 request, 0 completed, faults %+v", got, tt.wantFaults)
			}
		})
	}
}

func TestResetRate(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Options{ResetRate: 1})
	resp, _, err := send(t, t.Context(), srv.Client(), http.MethodPost, srv.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	if err == nil || resp != nil {
		t.Fatalf("got response %v and error %v, want a connection error", resp, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want a connection error, not a context one", err)
	}
	if got := s.Stats().Faults; got != (sim.Faults{Reset: 1}) {
		t.Errorf("got faults %+v, want one reset", got)
	}
}

func TestHangs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts sim.Options
		want sim.Stats
	}{
		{"hang-rate-1", sim.Options{HangRate: 1}, sim.Stats{Requests: 1, Faults: sim.Faults{Hang: 1}, MaxInFlight: 1}},
		{"latency", sim.Options{Latency: time.Hour}, sim.Stats{Requests: 1, Canceled: 1, MaxInFlight: 1}},
		{"slow-generation", sim.Options{TokensPerSecond: 1e-6}, sim.Stats{Requests: 1, Canceled: 1, MaxInFlight: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, srv := start(t, tt.opts)
			// The client gives up once the server holds its request, so the test
			// needs no guess at how long the request takes to arrive.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				for s.Stats().InFlight == 0 && ctx.Err() == nil {
					time.Sleep(time.Millisecond) // polling
				}
				cancel()
			}()
			resp, _, err := send(t, ctx, srv.Client(), http.MethodPost, srv.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
			if resp != nil || !errors.Is(err, context.Canceled) {
				t.Fatalf("got response %v and error %v, want no response and %v", resp, err, context.Canceled)
			}
			if got := waitIdle(t, s); got != tt.want {
				t.Errorf("got stats %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestHangRateMeetsClientTimeout(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{HangRate: 1})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, _, err := send(t, ctx, srv.Client(), http.MethodPost, srv.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want %v", err, context.DeadlineExceeded)
	}
}

func TestFaultSequenceFollowsSeed(t *testing.T) {
	t.Parallel()
	statuses := func(seed int64) string {
		_, srv := start(t, sim.Options{Seed: seed, FailRate: 0.5})
		var sb strings.Builder
		for range 32 {
			resp, _, err := send(t, t.Context(), srv.Client(), http.MethodPost, srv.URL+"/v1/embeddings", `{"input":"x"}`)
			if err != nil {
				t.Fatal(err)
			}
			switch resp.StatusCode {
			case http.StatusOK:
				sb.WriteByte('.')
			case http.StatusInternalServerError:
				sb.WriteByte('F')
			default:
				t.Fatalf("got status %d, want 200 or 500", resp.StatusCode)
			}
		}
		return sb.String()
	}
	a, b, c := statuses(42), statuses(42), statuses(43)
	if a != b {
		t.Errorf("seed 42 twice: got %s and %s, want the same faults", a, b)
	}
	if a == c {
		t.Errorf("seeds 42 and 43: got %s for both, want different faults", a)
	}
	if !strings.Contains(a, "F") || !strings.Contains(a, ".") {
		t.Errorf("got %s, want both faults and answers at rate 0.5", a)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	s, srv := start(t, sim.Options{})
	body := `{"model":"m","messages":[{"role":"user","content":"hi"}]}`
	for range 3 {
		post(t, srv, "/v1/chat/completions", body, http.StatusOK)
	}
	post(t, srv, "/v1/embeddings", `{"input":"x"}`, http.StatusOK)
	post(t, srv, "/v1/chat/completions", `{`, http.StatusBadRequest)
	for _, path := range []string{"/v1/models", "/v1/chat/completions", "/healthz"} { // not POSTs: not counted
		if _, _, err := send(t, t.Context(), srv.Client(), http.MethodGet, srv.URL+path, ""); err != nil {
			t.Fatal(err)
		}
	}
	want := sim.Stats{Requests: 5, Completed: 4, Invalid: 1, MaxInFlight: 1}
	if got := s.Stats(); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      sim.Options
		wantField string // "" for valid
	}{
		{"zero", sim.Options{}, ""},
		{"rates-at-bounds", sim.Options{FailRate: 1, RateLimitRate: 0, HangRate: 0.5, ResetRate: 1}, ""},
		{"fail-rate-1.5", sim.Options{FailRate: 1.5}, "FailRate"},
		{"rate-limit-rate-negative", sim.Options{RateLimitRate: -0.1}, "RateLimitRate"},
		{"hang-rate-nan", sim.Options{HangRate: math.NaN()}, "HangRate"},
		{"reset-rate-2", sim.Options{ResetRate: 2}, "ResetRate"},
		{"negative-latency", sim.Options{Latency: -time.Second}, "Latency"},
		{"negative-tokens-per-second", sim.Options{TokensPerSecond: -1}, "TokensPerSecond"},
		{"negative-max-concurrency", sim.Options{MaxConcurrency: -1}, "MaxConcurrency"},
		{"negative-retry-after", sim.Options{RetryAfter: -time.Second}, "RetryAfter"},
		{"negative-max-tokens", sim.Options{MaxTokens: -1}, "MaxTokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.opts.Validate()
			if tt.wantField == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantField+" ") {
				t.Errorf("got %v, want an error naming %s", err, tt.wantField)
			}
		})
	}
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want sim.Options
	}{
		{"defaults", nil, sim.Options{RetryAfter: time.Second, MaxTokens: 16, Model: "sim"}},
		{"latency-concurrency-fail-rate", []string{"-latency", "150ms", "-max-concurrency", "4", "-fail-rate", "0.1"},
			sim.Options{Latency: 150 * time.Millisecond, MaxConcurrency: 4, FailRate: 0.1, RetryAfter: time.Second, MaxTokens: 16, Model: "sim"}},
		{"every-flag", []string{"-latency", "1s", "-tokens-per-second", "50", "-max-concurrency", "8", "-retry-after", "3s",
			"-fail-rate", "0.1", "-rate-limit-rate", "0.2", "-hang-rate", "0.01", "-reset-rate", "0.02", "-seed", "7",
			"-max-tokens", "64", "-model", "gpt-sim"},
			sim.Options{Latency: time.Second, TokensPerSecond: 50, MaxConcurrency: 8, RetryAfter: 3 * time.Second, FailRate: 0.1,
				RateLimitRate: 0.2, HangRate: 0.01, ResetRate: 0.02, Seed: 7, MaxTokens: 64, Model: "gpt-sim"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got sim.Options
			fs := flag.NewFlagSet("sim", flag.ContinueOnError)
			got.RegisterFlags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// reusableBody is a request body the benchmark rewinds instead of reallocating.
type reusableBody struct{ *bytes.Reader }

func (reusableBody) Close() error { return nil }

func BenchmarkChatCompletion(b *testing.B) {
	s := sim.New(sim.Options{})
	payload := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say hello."}],"max_tokens":16}`)
	body := reusableBody{bytes.NewReader(payload)}
	req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", body)
	b.ReportAllocs()
	for b.Loop() {
		body.Reset(payload)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("got status %d, want 200", rec.Code)
		}
	}
}

func BenchmarkChatCompletionParallel(b *testing.B) {
	s := sim.New(sim.Options{})
	payload := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}`)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		body := reusableBody{bytes.NewReader(payload)}
		req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", body)
		for pb.Next() {
			body.Reset(payload)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("got status %d, want 200", rec.Code)
				return
			}
		}
	})
}

// With NoUsage every endpoint answers valid JSON without a usage object, and the
// rest of the answer is as before.
func TestNoUsage(t *testing.T) {
	t.Parallel()
	_, plain := start(t, sim.Options{Seed: 7})
	_, bare := start(t, sim.Options{Seed: 7, NoUsage: true})
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"hello there"}]}`},
		{"/v1/completions", `{"model":"m","prompt":"hello there"}`},
		{"/v1/embeddings", `{"model":"m","input":"hello there"}`},
	} {
		_, with := post(t, plain, tc.path, tc.body, 200)
		_, without := post(t, bare, tc.path, tc.body, 200)
		var w, wo map[string]json.RawMessage
		if err := json.Unmarshal(with, &w); err != nil {
			t.Fatalf("%s: %v: %s", tc.path, err, with)
		}
		if err := json.Unmarshal(without, &wo); err != nil {
			t.Fatalf("%s with NoUsage: %v: %s", tc.path, err, without)
		}
		if _, ok := w["usage"]; !ok {
			t.Errorf("%s: the default answer has no usage: %s", tc.path, with)
		}
		if _, ok := wo["usage"]; ok {
			t.Errorf("%s: NoUsage answered with usage: %s", tc.path, without)
		}
		if len(w) != len(wo)+1 {
			t.Errorf("%s: got members %d with usage and %d without, want one fewer", tc.path, len(w), len(wo))
		}
	}
}
