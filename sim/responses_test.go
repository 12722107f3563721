package sim_test

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-batch/sluice/sim"
)

type responseObject struct {
	ID                string          `json:"id"`
	Object            string          `json:"object"`
	CreatedAt         int64           `json:"created_at"`
	Status            string          `json:"status"`
	CompletedAt       *int64          `json:"completed_at"`
	Error             json.RawMessage `json:"error"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Instructions      *string         `json:"instructions"`
	MaxOutputTokens   *int            `json:"max_output_tokens"`
	Model             string          `json:"model"`
	ParallelToolCalls bool            `json:"parallel_tool_calls"`
	Temperature       float64         `json:"temperature"`
	TopP              float64         `json:"top_p"`
	Tools             json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	Metadata          json.RawMessage `json:"metadata"`
	Text              json.RawMessage `json:"text"`
	Output            []struct {
		ID      string `json:"id"`
		Type    string `json:"type"`
		Role    string `json:"role"`
		Status  string `json:"status"`
		Content []struct {
			Type        string          `json:"type"`
			Text        string          `json:"text"`
			Annotations json.RawMessage `json:"annotations"`
			Logprobs    json.RawMessage `json:"logprobs"`
		} `json:"content"`
	} `json:"output"`
	Usage responseUsage `json:"usage"`
}

type responseUsage struct {
	InputTokens        int `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens     int `json:"cached_tokens"`
		CacheWriteTokens int `json:"cache_write_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int `json:"total_tokens"`
}

// text returns the response's one output text, failing the test unless the output is
// one assistant message of one output_text part as the spec shapes them.
func (r responseObject) text(t *testing.T, b []byte) string {
	t.Helper()
	var raw struct {
		Output []json.RawMessage `json:"output"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if len(r.Output) != 1 || len(raw.Output) != 1 {
		t.Fatalf("got %d output items, want 1", len(r.Output))
	}
	msg := members(t, "output message", raw.Output[0], "id", "type", "role", "content", "status")
	var parts []json.RawMessage
	if err := json.Unmarshal(msg["content"], &parts); err != nil || len(parts) != 1 {
		t.Fatalf("got content %s, want one part", msg["content"])
	}
	members(t, "output_text", parts[0], "type", "text", "annotations", "logprobs")
	o := r.Output[0]
	c := o.Content[0]
	if o.Type != "message" || o.Role != "assistant" || !strings.HasPrefix(o.ID, "msg_") || o.Status != r.Status {
		t.Errorf("got output type %q role %q id %q status %q, want message, assistant, msg_…, %q", o.Type, o.Role, o.ID, o.Status, r.Status)
	}
	if c.Type != "output_text" || string(c.Annotations) != "[]" || string(c.Logprobs) != "[]" {
		t.Errorf("got part type %q annotations %s logprobs %s, want output_text, [], []", c.Type, c.Annotations, c.Logprobs)
	}
	return c.Text
}

func TestResponses(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	parts := []any{
		map[string]any{"type": "input_text", "text": "Describe this picture,"},
		map[string]any{"type": "input_image", "image_url": "https://example.com/a.png"},
		map[string]any{"type": "input_text", "text": "briefly please."},
	}
	tests := []struct {
		name      string
		req       map[string]any
		chat      []any // the chat conversation that gets the same reply
		wantInput int
	}{
		{name: "string-input", req: map[string]any{"input": "Tell me about rivers."},
			chat: []any{user("Tell me about rivers.")}, wantInput: sim.CountTokens("Tell me about rivers.") + 3},
		{name: "instructions", req: map[string]any{"instructions": "You are terse.", "input": "Why is the sky blue?"},
			chat:      []any{map[string]any{"role": "system", "content": "You are terse."}, user("Why is the sky blue?")},
			wantInput: sim.CountTokens("You are terse.") + sim.CountTokens("Why is the sky blue?") + 6},
		{name: "easy-messages", req: map[string]any{"input": []any{user("Hi"), map[string]any{"role": "assistant", "content": "Hello."}, user("Again")}},
			chat:      []any{user("Hi"), map[string]any{"role": "assistant", "content": "Hello."}, user("Again")},
			wantInput: sim.CountTokens("Hi") + sim.CountTokens("Hello.") + sim.CountTokens("Again") + 9},
		{name: "message-items-with-parts", req: map[string]any{"input": []any{map[string]any{"type": "message", "role": "user", "content": parts}}},
			chat: []any{user([]any{map[string]any{"type": "text", "text": "Describe this picture,"},
				map[string]any{"type": "text", "text": "briefly please."}})},
			wantInput: sim.CountTokens("Describe this picture,") + sim.CountTokens("briefly please.") + 3},
		{name: "assistant-output-text", req: map[string]any{"input": []any{
			map[string]any{"type": "message", "role": "assistant", "content": []any{map[string]any{"type": "output_text", "text": "Earlier."}}},
			user("Go on.")}},
			chat:      []any{map[string]any{"role": "assistant", "content": "Earlier."}, user("Go on.")},
			wantInput: sim.CountTokens("Earlier.") + sim.CountTokens("Go on.") + 6},
		{name: "tool-call-and-output", req: map[string]any{"input": []any{user("Weather?"),
			map[string]any{"type": "function_call", "call_id": "c1", "name": "weather", "arguments": `{"city":"Oslo"}`},
			map[string]any{"type": "function_call_output", "call_id": "c1", "output": "cold"},
			map[string]any{"type": "reasoning", "id": "rs_1", "summary": []any{}}}},
			wantInput: sim.CountTokens("Weather?") + sim.CountTokens("weather") + sim.CountTokens(`{"city":"Oslo"}`) + sim.CountTokens("cold") + 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := map[string]any{"model": "gpt-test"}
			for k, v := range tt.req {
				req[k] = v
			}
			var got responseObject
			b := postJSON(t, srv, "/v1/responses", mustJSON(t, req), &got)
			members(t, "response", b, "id", "object", "created_at", "error", "incomplete_details", "instructions", "model",
				"tools", "output", "parallel_tool_calls", "metadata", "tool_choice", "temperature", "top_p",
				"status", "completed_at", "usage", "text", "reasoning", "max_output_tokens", "previous_response_id",
				"store", "truncation", "service_tier", "background", "user")
			text := got.text(t, b)
			if !strings.HasPrefix(got.ID, "resp_") || got.Object != "response" || got.Model != "gpt-test" || got.CreatedAt <= 0 {
				t.Errorf("got id %q object %q model %q created_at %d, want resp_…, response, gpt-test, > 0",
					got.ID, got.Object, got.Model, got.CreatedAt)
			}
			if got.Status != "completed" || got.CompletedAt == nil || *got.CompletedAt < got.CreatedAt ||
				string(got.Error) != "null" || got.IncompleteDetails != nil {
				t.Errorf("got status %q completed_at %v error %s incomplete_details %v, want completed, set, null, null",
					got.Status, got.CompletedAt, got.Error, got.IncompleteDetails)
			}
			if !got.ParallelToolCalls || got.Temperature != 1 || got.TopP != 1 || string(got.Tools) != "[]" ||
				string(got.ToolChoice) != `"auto"` || string(got.Metadata) != "{}" || got.MaxOutputTokens != nil {
				t.Errorf("got defaults parallel_tool_calls %v temperature %v top_p %v tools %s tool_choice %s metadata %s max_output_tokens %v, want true, 1, 1, [], auto, {}, null",
					got.ParallelToolCalls, got.Temperature, got.TopP, got.Tools, got.ToolChoice, got.Metadata, got.MaxOutputTokens)
			}
			out := sim.CountTokens(text)
			if out < 1 || out > 16 {
				t.Errorf("got %d output tokens (%q), want 1 to 16", out, text)
			}
			var want responseUsage
			want.InputTokens, want.OutputTokens, want.TotalTokens = tt.wantInput, out, tt.wantInput+out
			if diff := cmp.Diff(want, got.Usage); diff != "" {
				t.Errorf("usage (-want +got):\n%s", diff)
			}
			if tt.chat != nil {
				c := chat(t, srv, mustJSON(t, map[string]any{"model": "gpt-test", "messages": tt.chat}))
				if c.Choices[0].Message.Content != text {
					t.Errorf("got text %q, want %q as chat answers the same conversation", text, c.Choices[0].Message.Content)
				}
			}
		})
	}
}

func TestResponsesEcho(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{})
	body := `{"model":"m","input":"hi","instructions":"Be brief.","temperature":0.2,"top_p":0.9,"parallel_tool_calls":false,
		"tools":[ {"type": "function", "name": "f", "parameters": {"type": "object"}} ],"tool_choice":{"type":"function","name":"f"},
		"metadata":{"k": "v"},"text":{"format":{"type":"json_schema","name":"out","schema":{"type":"object"}},"verbosity":"low"},
		"max_output_tokens":64,"store":false,"truncation":"auto","user":"u-1","service_tier":"flex"}`
	var got map[string]json.RawMessage
	postJSON(t, srv, "/v1/responses", body, &got)
	want := map[string]string{
		"instructions":        `"Be brief."`,
		"temperature":         `0.2`,
		"top_p":               `0.9`,
		"parallel_tool_calls": `false`,
		"tools":               `[{"type":"function","name":"f","parameters":{"type":"object"}}]`,
		"tool_choice":         `{"type":"function","name":"f"}`,
		"metadata":            `{"k":"v"}`,
		"text":                `{"format":{"type":"json_schema","name":"out","schema":{"type":"object"}},"verbosity":"low"}`,
		"max_output_tokens":   `64`,
		"store":               `false`,
		"truncation":          `"auto"`,
		"user":                `"u-1"`,
		"service_tier":        `"flex"`,
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("%s: got %s, want %s", k, got[k], v)
		}
	}
}

func TestResponsesIncomplete(t *testing.T) {
	t.Parallel()
	// With MaxTokens 1000 the natural length of a reply is almost surely above 16.
	_, srv := start(t, sim.Options{MaxTokens: 1000})
	var got responseObject
	b := postJSON(t, srv, "/v1/responses", `{"model":"m","input":"Tell me a long story.","max_output_tokens":16}`, &got)
	text := got.text(t, b)
	if got.Status != "incomplete" || got.IncompleteDetails == nil || got.IncompleteDetails.Reason != "max_output_tokens" || got.CompletedAt != nil {
		t.Errorf("got status %q incomplete_details %+v completed_at %v, want incomplete, max_output_tokens, null", got.Status, got.IncompleteDetails, got.CompletedAt)
	}
	if n := sim.CountTokens(text); n != 16 || got.Usage.OutputTokens != 16 {
		t.Errorf("got %d tokens (%q) and output_tokens %d, want 16", n, text, got.Usage.OutputTokens)
	}
}

func TestResponsesDeterminism(t *testing.T) {
	t.Parallel()
	// Two servers with different seeds: the text depends on the input only.
	_, a := start(t, sim.Options{Seed: 1})
	_, b := start(t, sim.Options{Seed: 2})
	text := func(t *testing.T, srv *httptest.Server, req map[string]any) string {
		t.Helper()
		var got responseObject
		return got.text(t, postJSON(t, srv, "/v1/responses", mustJSON(t, req), &got))
	}
	tests := []struct {
		name     string
		x, y     map[string]any
		wantSame bool
	}{
		{"same-input", map[string]any{"input": "Tell me about rivers."}, map[string]any{"input": "Tell me about rivers."}, true},
		{"string-as-message", map[string]any{"input": "Hi"}, map[string]any{"input": []any{user("Hi")}}, true},
		{"model-does-not-matter", map[string]any{"model": "a", "input": "Hi"}, map[string]any{"model": "b", "input": "Hi"}, true},
		{"different-input", map[string]any{"input": "Tell me about rivers."}, map[string]any{"input": "Tell me about stones."}, false},
		{"instructions-matter", map[string]any{"input": "Hi"}, map[string]any{"input": "Hi", "instructions": "Be terse."}, false},
		{"role-matters", map[string]any{"input": []any{user("Hi")}}, map[string]any{"input": []any{map[string]any{"role": "developer", "content": "Hi"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x, y := text(t, a, tt.x), text(t, b, tt.y)
			if same := x == y; same != tt.wantSame {
				t.Errorf("texts %q and %q: got same %v, want %v", x, y, same, tt.wantSame)
			}
		})
	}
}

func TestResponsesErrors(t *testing.T) {
	t.Parallel()
	checkErrors(t, "/v1/responses", []errorCase{
		{name: "bad-json", body: `{"input":`},
		{name: "not-an-object", body: `[1]`},
		{name: "no-input", body: `{"model":"m"}`, wantParam: "input"},
		{name: "null-input", body: `{"input":null}`, wantParam: "input"},
		{name: "input-number", body: `{"input":7}`, wantParam: "input"},
		{name: "input-empty-array", body: `{"input":[]}`, wantParam: "input"},
		{name: "item-not-object", body: `{"input":["hi"]}`, wantParam: "input[0]"},
		{name: "item-without-type-or-role", body: `{"input":[{"content":"hi"}]}`, wantParam: "input[0]"},
		{name: "message-without-role", body: `{"input":[{"role":"user","content":"a"},{"type":"message","content":"hi"}]}`, wantParam: "input[1].role"},
		{name: "message-bad-role", body: `{"input":[{"role":"robot","content":"hi"}]}`, wantParam: "input[0].role"},
		{name: "message-without-content", body: `{"input":[{"role":"user"}]}`, wantParam: "input[0].content"},
		{name: "content-number", body: `{"input":[{"role":"user","content":7}]}`, wantParam: "input[0].content"},
		{name: "part-without-type", body: `{"input":[{"role":"user","content":[{"text":"hi"}]}]}`, wantParam: "input[0].content[0].type"},
		{name: "instructions-number", body: `{"input":"hi","instructions":7}`, wantParam: "instructions"},
		{name: "max-output-tokens-below-16", body: `{"input":"hi","max_output_tokens":15}`, wantParam: "max_output_tokens", wantCode: "integer_below_min_value"},
		{name: "max-output-tokens-string", body: `{"input":"hi","max_output_tokens":"16"}`, wantParam: "max_output_tokens"},
		{name: "temperature-3", body: `{"input":"hi","temperature":3}`, wantParam: "temperature"},
		{name: "top-p-2", body: `{"input":"hi","top_p":2}`, wantParam: "top_p"},
		{name: "stream", body: `{"input":"hi","stream":true}`, wantParam: "stream"},
		{name: "background", body: `{"input":"hi","background":true}`, wantParam: "background"},
		{name: "previous-response", body: `{"input":"hi","previous_response_id":"resp_1"}`, wantParam: "previous_response_id", wantCode: "previous_response_not_found"},
		{name: "stored-prompt", body: `{"prompt":{"id":"pmpt_1"}}`, wantParam: "prompt"},
		{name: "tools-object", body: `{"input":"hi","tools":{}}`, wantParam: "tools"},
		{name: "tool-choice-bad", body: `{"input":"hi","tool_choice":"sometimes"}`, wantParam: "tool_choice"},
		{name: "metadata-array", body: `{"input":"hi","metadata":[]}`, wantParam: "metadata"},
		{name: "format-bad-type", body: `{"input":"hi","text":{"format":{"type":"yaml"}}}`, wantParam: "text.format.type"},
		{name: "format-schema-without-name", body: `{"input":"hi","text":{"format":{"type":"json_schema","schema":{}}}}`, wantParam: "text.format.name"},
		{name: "format-schema-without-schema", body: `{"input":"hi","text":{"format":{"type":"json_schema","name":"x"}}}`, wantParam: "text.format.schema"},
		{name: "truncation-bad", body: `{"input":"hi","truncation":"middle"}`, wantParam: "truncation"},
	})
}
