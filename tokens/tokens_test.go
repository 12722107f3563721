package tokens_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-batch/sluice/tokens"
	"github.com/tiktoken-go/tokenizer"
)

const (
	chat        = "/v1/chat/completions"
	completions = "/v1/completions"
	embeddings  = "/v1/embeddings"
	responses   = "/v1/responses"
)

var encodings = []string{"o200k_base", "cl100k_base", "p50k_base", "r50k_base"}

// MustNew returns a Counter for encoding.
func MustNew(tb testing.TB, encoding string) *tokens.Counter {
	tb.Helper()
	c, err := tokens.New(encoding)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// lib counts s with the tokenizer library directly, bypassing the package.
func lib(tb testing.TB, encoding string, s string) int {
	tb.Helper()
	codec, err := tokenizer.Get(tokenizer.Encoding(encoding))
	if err != nil {
		tb.Fatal(err)
	}
	n, err := codec.Count(s)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// o200k counts texts with o200k_base and adds them up.
func o200k(tb testing.TB, texts ...string) int {
	tb.Helper()
	n := 0
	for _, s := range texts {
		n += lib(tb, "o200k_base", s)
	}
	return n
}

// js encodes v as JSON.
func js(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

type obj = map[string]any

// MustDataURL returns a base64 data URL of a w x h image in format png, jpeg or gif.
func MustDataURL(tb testing.TB, format string, w, h int) string {
	tb.Helper()
	img := image.NewGray(image.Rect(0, 0, w, h))
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	default:
		tb.Fatalf("unknown image format %q", format)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return "data:image/" + format + ";base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, encoding, want string
	}{
		{name: "default", encoding: "", want: "o200k_base"},
		{name: "o200k", encoding: "o200k_base", want: "o200k_base"},
		{name: "cl100k", encoding: "cl100k_base", want: "cl100k_base"},
		{name: "p50k", encoding: "p50k_base", want: "p50k_base"},
		{name: "r50k", encoding: "r50k_base", want: "r50k_base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MustNew(t, tc.encoding).Encoding(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		_, err := tokens.New("gpt2")
		if err == nil {
			t.Fatal("got no error, want one")
		}
		for _, e := range encodings {
			if !strings.Contains(err.Error(), e) {
				t.Errorf("error %q does not list %s", err, e)
			}
		}
	})
}

func TestText(t *testing.T) {
	t.Parallel()
	// The counts are those OpenAI's cookbook prints for each encoding.
	for _, tc := range []struct {
		encoding, text string
		want           int
	}{
		{"o200k_base", "", 0},
		{"o200k_base", "hello world", 2},
		{"cl100k_base", "hello world", 2},
		{"r50k_base", "hello world", 2},
		{"o200k_base", "tiktoken is great!", 6},
		{"cl100k_base", "tiktoken is great!", 6},
		{"o200k_base", "antidisestablishmentarianism", 6},
		{"cl100k_base", "antidisestablishmentarianism", 6},
		{"p50k_base", "antidisestablishmentarianism", 5},
		{"r50k_base", "antidisestablishmentarianism", 5},
		{"o200k_base", "2 + 2 = 4", 7},
		{"p50k_base", "2 + 2 = 4", 5},
		{"o200k_base", "お誕生日おめでとう", 8},
		{"cl100k_base", "お誕生日おめでとう", 9},
		{"r50k_base", "お誕生日おめでとう", 14},
	} {
		t.Run(tc.encoding+"/"+tc.text, func(t *testing.T) {
			t.Parallel()
			c := MustNew(t, tc.encoding)
			// Twice: the second count comes from the cache.
			for range 2 {
				if got := c.Text(tc.text); got != tc.want {
					t.Errorf("got %d, want %d", got, tc.want)
				}
			}
			if got := lib(t, tc.encoding, tc.text); got != tc.want {
				t.Errorf("library counts %d, want %d", got, tc.want)
			}
		})
	}
}

func TestTextMatchesLibrary(t *testing.T) {
	t.Parallel()
	texts := []string{
		strings.Repeat("The quick brown fox jumps over the lazy dog. ", 50),
		"func main() {\n\tfmt.Println(\"héllo, 世界\")\n}\n\n\n   trailing   ",
		"Numbers 1234567890 3.14159 -42 1e10, emoji 👍🏽🇫🇷, and <|endoftext|> as plain text.",
		"I'LL DO IT'S THEY'RE we've you'd",
	}
	for _, e := range encodings {
		t.Run(e, func(t *testing.T) {
			t.Parallel()
			c := MustNew(t, e)
			for _, s := range texts {
				want := lib(t, e, s)
				for range 2 { // the second count comes from the cache
					if got := c.Text(s); got != want {
						t.Errorf("%.20q: got %d, want %d", s, got, want)
					}
				}
			}
		})
	}
}

// The examples of OpenAI's cookbook "How to count tokens with tiktoken", whose counts
// the cookbook checked against the API's usage.prompt_tokens.
var (
	cookbookMessages = `{"model":"gpt-4o","messages":[
		{"role":"system","content":"You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
		{"role":"system","name":"example_user","content":"New synergies will help drive top-line growth."},
		{"role":"system","name":"example_assistant","content":"Things working well together will increase revenue."},
		{"role":"system","name":"example_user","content":"Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
		{"role":"system","name":"example_assistant","content":"Let's talk later when we're less busy about how to do better."},
		{"role":"user","content":"This late pivot means we don't have time to boil the ocean for the client deliverable."}]}`
	cookbookTools = `{"model":"gpt-4o","messages":[
		{"role":"system","content":"You are a helpful assistant that can answer to questions about the weather."},
		{"role":"user","content":"What's the weather like in San Francisco?"}],
		"tools":[{"type":"function","function":{"name":"get_current_weather",
			"description":"Get the current weather in a given location",
			"parameters":{"type":"object","properties":{
				"location":{"type":"string","description":"The city and state, e.g. San Francisco, CA"},
				"unit":{"type":"string","description":"The unit of temperature to return","enum":["celsius","fahrenheit"]}},
			"required":["location"]}}}]}`
)

func TestRequestCookbook(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, encoding, body string
		want                 int
	}{
		{"messages-gpt-4o", "o200k_base", cookbookMessages, 124},
		{"messages-gpt-4", "cl100k_base", cookbookMessages, 129},
		{"tools-gpt-4o", "o200k_base", cookbookTools, 101},
		{"tools-gpt-4", "cl100k_base", cookbookTools, 105},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := MustNew(t, tc.encoding).Request(chat, []byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRequest(t *testing.T) {
	t.Parallel()
	const (
		sys   = "You are a helpful assistant."
		hello = "hello world"
	)
	schema := `{"type":"object","properties":{"answer":{"type":"string"}},"required":["answer"]}`
	args := `{"city":"Paris","unit":"celsius"}`
	png1024 := MustDataURL(t, "png", 1024, 1024)
	for _, tc := range []struct {
		name, endpoint, body string
		want                 int
	}{
		{
			name:     "chat-system-user",
			endpoint: chat,
			body:     js(t, obj{"model": "m", "messages": []obj{{"role": "system", "content": sys}, {"role": "user", "content": hello}}}),
			want:     3 + o200k(t, "system", sys) + 3 + o200k(t, "user", hello) + 3,
		},
		{
			name:     "chat-name",
			endpoint: chat,
			body:     js(t, obj{"messages": []obj{{"role": "user", "name": "bob", "content": hello}}}),
			want:     3 + o200k(t, "user", "bob", hello) + 1 + 3,
		},
		{
			name:     "chat-null-name-and-content",
			endpoint: chat,
			body:     `{"messages":[{"role":"assistant","name":null,"content":null}]}`,
			want:     3 + o200k(t, "assistant") + 3,
		},
		{
			name:     "chat-escapes-decoded",
			endpoint: chat,
			body:     `{"messages":[{"role":"user","content":"caf\u00e9 \"quoted\"\nnext line \ud83d\ude00"}]}`,
			want:     3 + o200k(t, "user", "café \"quoted\"\nnext line 😀") + 3,
		},
		{
			name:     "chat-text-parts",
			endpoint: chat,
			body:     js(t, obj{"messages": []obj{{"role": "user", "content": []obj{{"type": "text", "text": sys}, {"type": "text", "text": hello}}}}}),
			want:     3 + o200k(t, "user", sys, hello) + 3,
		},
		{
			name:     "chat-image-and-audio-parts",
			endpoint: chat,
			body: js(t, obj{"messages": []obj{{"role": "user", "content": []obj{
				{"type": "text", "text": hello},
				{"type": "image_url", "image_url": obj{"url": png1024, "detail": "high"}},
				{"type": "input_audio", "input_audio": obj{"data": "AAAA", "format": "wav"}},
			}}}}),
			want: 3 + o200k(t, "user", hello) + 765 + 3,
		},
		{
			name:     "chat-tool-calls",
			endpoint: chat,
			body: js(t, obj{"messages": []obj{
				{"role": "assistant", "content": nil, "tool_calls": []obj{{"id": "call_1", "type": "function", "function": obj{"name": "get_weather", "arguments": args}}}},
				{"role": "tool", "tool_call_id": "call_1", "content": "18C"},
			}}),
			want: 3 + o200k(t, "assistant", "get_weather", args) + 3 + o200k(t, "tool", "call_1", "18C") + 3,
		},
		{
			name:     "chat-response-format",
			endpoint: chat,
			body:     `{"messages":[{"role":"user","content":"hello world"}],"response_format":{"type":"json_schema","json_schema":{"name":"a","strict":true,"schema":` + indent(t, schema) + `}}}`,
			want:     3 + o200k(t, "user", hello) + 3 + o200k(t, schema),
		},
		{
			name:     "chat-legacy-functions",
			endpoint: chat,
			body:     js(t, obj{"messages": []obj{}, "functions": []obj{{"name": "ping", "description": "Ping a host."}}}),
			want:     3 + 7 + o200k(t, "ping:Ping a host") + 12,
		},
		{
			name:     "chat-tool-nested-schema",
			endpoint: chat,
			body: js(t, obj{"messages": []obj{}, "tools": []obj{{"type": "function", "function": obj{"name": "f", "description": "d", "parameters": obj{
				"type": "object", "properties": obj{"tags": obj{"type": "array", "items": obj{"type": "string"}}},
			}}}}}),
			want: 3 + 7 + o200k(t, "f:d") + 3 + 3 + o200k(t, "tags:array:", `items:{"type":"string"}`) + 12,
		},
		{
			name:     "chat-tool-type-array",
			endpoint: chat,
			body: `{"messages":[],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{
				"type":"object","properties":{"u":{"type": ["string", "null"],"description":"The unit."}}}}}]}`,
			want: 3 + 7 + o200k(t, "f:d") + 3 + 3 + o200k(t, `u:["string","null"]:The unit`) + 12,
		},
		{
			name:     "chat-unknown-fields-skipped",
			endpoint: chat,
			body:     `{"model":"m","temperature":0.5,"n":2,"stop":["x"],"logit_bias":{"1":-100},"stream":false,"messages":[]}`,
			want:     3,
		},
		{
			name:     "completions-string",
			endpoint: completions,
			body:     js(t, obj{"model": "m", "prompt": hello, "max_tokens": 5}),
			want:     o200k(t, hello),
		},
		{
			name:     "completions-strings-and-suffix",
			endpoint: completions,
			body:     js(t, obj{"prompt": []string{hello, sys}, "suffix": "end"}),
			want:     o200k(t, hello, sys, "end"),
		},
		{
			name:     "completions-token-ids",
			endpoint: completions,
			body:     `{"prompt":[1,2,3,40000]}`,
			want:     4,
		},
		{
			name:     "completions-token-id-arrays",
			endpoint: completions,
			body:     `{"prompt":[[1,2],[3],[]]}`,
			want:     3,
		},
		{
			name:     "embeddings-string",
			endpoint: embeddings,
			body:     js(t, obj{"model": "m", "input": hello}),
			want:     o200k(t, hello),
		},
		{
			name:     "embeddings-strings",
			endpoint: embeddings,
			body:     js(t, obj{"input": []string{hello, sys, ""}}),
			want:     o200k(t, hello, sys),
		},
		{
			name:     "embeddings-token-ids",
			endpoint: embeddings,
			body:     `{"input":[5,6,7]}`,
			want:     3,
		},
		{
			name:     "embeddings-token-id-arrays",
			endpoint: embeddings,
			body:     `{"input":[[5,6,7],[8]], "dimensions": 256}`,
			want:     4,
		},
		{
			name:     "responses-string-input",
			endpoint: responses,
			body:     js(t, obj{"model": "m", "instructions": sys, "input": hello}),
			want:     3 + o200k(t, "system", sys) + 3 + o200k(t, "user", hello) + 3,
		},
		{
			name:     "responses-items",
			endpoint: responses,
			body: js(t, obj{"input": []obj{
				{"role": "user", "content": hello},
				{"type": "message", "role": "user", "content": []obj{{"type": "input_text", "text": sys}, {"type": "input_image", "image_url": png1024, "detail": "low"}}},
				{"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": args},
				{"type": "function_call_output", "call_id": "c1", "output": "18C"},
				{"type": "reasoning", "id": "rs_1", "summary": []obj{{"type": "summary_text", "text": hello}}},
			}}),
			want: 3 + o200k(t, "user", hello) + 3 + o200k(t, "user", sys) + 85 + 3 + o200k(t, "get_weather", args) + 3 + o200k(t, "18C") + 3,
		},
		{
			name:     "responses-tools-and-format",
			endpoint: responses,
			body: js(t, obj{"input": []obj{}, "tools": []obj{
				{"type": "function", "name": "ping", "description": "Ping a host.", "parameters": obj{"type": "object", "properties": obj{}}},
				{"type": "web_search"},
			}, "text": obj{"format": obj{"type": "json_schema", "name": "a", "schema": json.RawMessage(schema)}}}),
			want: 7 + o200k(t, "ping:Ping a host") + 12 + o200k(t, schema) + 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := MustNew(t, "o200k_base")
			for range 2 { // the second count hits the cache
				got, err := c.Request(tc.endpoint, []byte(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want {
					t.Errorf("got %d, want %d", got, tc.want)
				}
			}
		})
	}
}

// indent re-encodes a JSON text with indentation, which counts must not see.
func indent(tb testing.TB, s string) string {
	tb.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(s), "", "  "); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}

func TestRequestImages(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, url, detail string
		want              int
	}{
		{"png-1024x1024-high", MustDataURL(t, "png", 1024, 1024), "high", 765},
		{"png-1024x1024-auto", MustDataURL(t, "png", 1024, 1024), "auto", 765},
		{"png-1024x1024-no-detail", MustDataURL(t, "png", 1024, 1024), "", 765},
		{"png-2048x4096-high", MustDataURL(t, "png", 2048, 4096), "high", 1105},
		{"png-512x512-low", MustDataURL(t, "png", 512, 512), "low", 85},
		{"png-512x512-high", MustDataURL(t, "png", 512, 512), "high", 255},
		{"jpeg-300x200-high", MustDataURL(t, "jpeg", 300, 200), "high", 255},
		{"jpeg-1600x900-high", MustDataURL(t, "jpeg", 1600, 900), "high", 85 + 170*6},
		{"gif-100x1200-high", MustDataURL(t, "gif", 100, 1200), "high", 85 + 170*3},
		{"remote-url", "https://example.com/cat.png", "high", 765},
		{"remote-url-low", "https://example.com/cat.png", "low", 85},
		{"webp", "data:image/webp;base64,UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAwA0JaQAA3AA/vuUAAA=", "high", 765},
		{"bad-base64", "data:image/png;base64,!!!!", "high", 765},
		{"not-base64", "data:image/png,abc", "high", 765},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := MustNew(t, "o200k_base")
			chatPart := obj{"url": tc.url}
			respPart := obj{"type": "input_image", "image_url": tc.url}
			if tc.detail != "" {
				chatPart["detail"] = tc.detail
				respPart["detail"] = tc.detail
			}
			for _, b := range []struct{ endpoint, body string }{
				{chat, js(t, obj{"messages": []obj{{"content": []obj{{"type": "image_url", "image_url": chatPart}}}}})},
				{responses, js(t, obj{"input": []obj{{"type": "message", "content": []obj{respPart}}}})},
			} {
				got, err := c.Request(b.endpoint, []byte(b.body))
				if err != nil {
					t.Fatal(err)
				}
				// Both bodies hold one message with no role, primed for the reply.
				if got -= 3 + 3; got != tc.want {
					t.Errorf("%s: got %d image tokens, want %d", b.endpoint, got, tc.want)
				}
			}
		})
	}
	t.Run("file-id", func(t *testing.T) {
		t.Parallel()
		body := `{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file-1"}]}]}`
		got, err := MustNew(t, "o200k_base").Request(responses, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if want := 3 + o200k(t, "user") + 765 + 3; got != want {
			t.Errorf("got %d, want %d", got, want)
		}
	})
}

func TestRequestErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, endpoint, body, want string
	}{
		{"unknown-endpoint", "/v1/audio/speech", `{}`, "unknown endpoint"},
		{"chat-no-messages", chat, `{"model":"m"}`, "missing required field 'messages'"},
		{"chat-null-messages", chat, `{"model":"m","messages":null}`, "missing required field 'messages'"},
		{"completions-no-prompt", completions, `{"model":"m"}`, "missing required field 'prompt'"},
		{"embeddings-no-input", embeddings, `{"model":"m","nested":{"input":"x"}}`, "missing required field 'input'"},
		{"moderations-no-input", "/v1/moderations", `{}`, "missing required field 'input'"},
		{"moderations-input-number", "/v1/moderations", `{"input":1}`, "'input': got a number, want a string or an array"},
		{"moderations-part-number", "/v1/moderations", `{"input":[{"type":"text","text":1}]}`, "'input[0].text': got a number"},
		{"image-no-prompt", "/v1/images/generations", `{"n":1}`, "missing required field 'prompt'"},
		{"image-prompt-number", "/v1/images/generations", `{"prompt":1}`, "'prompt': got a number, want a string"},
		{"edit-no-image", "/v1/images/edits", `{"prompt":"p"}`, "missing required field 'images' or 'image'"},
		{"edit-no-prompt", "/v1/images/edits", `{"images":[{"image_url":"https://x/y.png"}]}`, "missing required field 'prompt'"},
		{"edit-images-object", "/v1/images/edits", `{"prompt":"p","images":{}}`, "'images': got an object, want an array"},
		{"edit-image-number", "/v1/images/edits", `{"prompt":"p","images":[1]}`, "'images[0]': got a number, want an object or a string"},
		{"video-no-prompt", "/v1/videos", `{"seconds":"4"}`, "missing required field 'prompt'"},
		{"empty-body", chat, ``, "invalid JSON"},
		{"array-body", chat, `[]`, "got an array, want an object"},
		{"string-body", embeddings, `"hi"`, "got a string, want an object"},
		{"null-body", completions, `null`, "got null, want an object"},
		{"invalid-json", chat, `{"messages":[}`, "invalid JSON"},
		{"truncated", chat, `{"messages":[{"role":"user"`, "invalid JSON"},
		{"trailing-data", chat, `{"messages":[]} x`, "invalid JSON"},
		{"bad-skipped-value", chat, `{"temperature":01,"messages":[]}`, "invalid JSON"},
		{"bad-escape", chat, `{"messages":[{"role":"user","content":"\q"}]}`, "invalid JSON"},
		{"messages-object", chat, `{"messages":{}}`, "'messages': got an object, want an array"},
		{"message-string", chat, `{"messages":["hi"]}`, "'messages[0]': got a string, want an object"},
		{"content-number", chat, `{"messages":[{"role":"user","content":5}]}`, "'messages[0].content': got a number, want a string or an array"},
		{"role-number", chat, `{"messages":[{"role":1}]}`, "'messages[0].role': got a number, want a string"},
		{"part-text-bool", chat, `{"messages":[{"role":"user","content":[{"type":"text","text":true}]}]}`, "'messages[0].content[0].text': got a boolean"},
		{"image-url-number", chat, `{"messages":[{"content":[{"type":"image_url","image_url":3}]}]}`, "'messages[0].content[0].image_url': got a number"},
		{"tool-calls-object", chat, `{"messages":[{"role":"assistant","tool_calls":{}}]}`, "'messages[0].tool_calls': got an object, want an array"},
		{"arguments-object", chat, `{"messages":[{"tool_calls":[{"function":{"name":"f","arguments":{}}}]}]}`, "'messages[0].tool_calls[0].function.arguments': got an object"},
		{"tools-object", chat, `{"messages":[],"tools":{}}`, "'tools': got an object, want an array"},
		{"tool-name-number", chat, `{"messages":[],"tools":[{"type":"function","function":{"name":1}}]}`, "'tools[0].function.name': got a number"},
		{"response-format-string", chat, `{"messages":[],"response_format":"json"}`, "'response_format': got a string, want an object"},
		{"prompt-number", completions, `{"prompt":5}`, "'prompt': got a number, want a string or an array"},
		{"prompt-mixed", completions, `{"prompt":["a",1]}`, "'prompt[1]': got a number"},
		{"prompt-fraction", completions, `{"prompt":[1,2.5]}`, "'prompt[1]': got a fraction, want an integer"},
		{"prompt-nested-strings", completions, `{"prompt":[["a"]]}`, "'prompt[0][0]': got a string, want an integer"},
		{"suffix-number", completions, `{"prompt":"a","suffix":1}`, "'suffix': got a number"},
		{"input-object", embeddings, `{"input":{}}`, "'input': got an object, want a string or an array"},
		{"input-array-of-objects", embeddings, `{"input":[{}]}`, "'input[0]': got an object"},
		{"instructions-array", responses, `{"instructions":[]}`, "'instructions': got an array, want a string"},
		{"responses-input-number", responses, `{"input":1}`, "'input': got a number, want a string or an array"},
		{"item-string", responses, `{"input":["hi"]}`, "'input[0]': got a string, want an object"},
		{"item-content-number", responses, `{"input":[{"role":"user","content":1}]}`, "'input[0].content': got a number"},
		{"item-type-number", responses, `{"input":[{"type":1}]}`, "'input[0].type': got a number, want a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n, err := MustNew(t, "o200k_base").Request(tc.endpoint, []byte(tc.body))
			if err == nil {
				t.Fatalf("got %d tokens and no error, want an error containing %q", n, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got error %q, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestOutput(t *testing.T) {
	t.Parallel()
	const hi = "Hello there! How can I help you today?"
	args := `{"city":"Paris"}`
	for _, tc := range []struct {
		name, endpoint, body string
		want                 int
	}{
		{
			name:     "chat-content",
			endpoint: chat,
			body:     js(t, obj{"id": "x", "choices": []obj{{"index": 0, "message": obj{"role": "assistant", "content": hi, "refusal": nil}, "finish_reason": "stop"}}}),
			want:     o200k(t, hi),
		},
		{
			name:     "chat-n-2-parts-refusal-tools",
			endpoint: chat,
			body: js(t, obj{"choices": []obj{
				{"message": obj{"role": "assistant", "content": []obj{{"type": "text", "text": hi}}}},
				{"message": obj{"role": "assistant", "content": nil, "refusal": "I can't.", "tool_calls": []obj{{"id": "c", "type": "function", "function": obj{"name": "get_weather", "arguments": args}}}}},
			}}),
			want: o200k(t, hi, "I can't.", "get_weather", args),
		},
		{
			name:     "chat-reasoning-content",
			endpoint: chat,
			body:     js(t, obj{"choices": []obj{{"message": obj{"content": hi, "reasoning_content": "Let me think."}}}}),
			want:     o200k(t, hi, "Let me think."),
		},
		{
			name:     "completions",
			endpoint: completions,
			body:     js(t, obj{"choices": []obj{{"text": hi, "index": 0, "logprobs": nil}, {"text": "bye", "index": 1}}}),
			want:     o200k(t, hi, "bye"),
		},
		{
			name:     "responses",
			endpoint: responses,
			body: js(t, obj{"id": "resp_1", "object": "response", "output": []obj{
				{"type": "reasoning", "id": "rs_1", "summary": []obj{{"type": "summary_text", "text": "Thinking."}}},
				{"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": []obj{{"type": "output_text", "text": hi, "annotations": []obj{}}}},
				{"type": "function_call", "id": "fc_1", "call_id": "c", "name": "get_weather", "arguments": args, "status": "completed"},
			}}),
			want: o200k(t, "Thinking.", hi, "get_weather", args),
		},
		{
			name:     "embeddings",
			endpoint: embeddings,
			body:     `{"object":"list","data":[{"object":"embedding","embedding":[0.1,0.2],"index":0}]}`,
			want:     0,
		},
		{"unknown-endpoint", "/v1/other", `{"choices":[{"text":"hi"}]}`, 0},
		{"not-json", chat, `not json`, 0},
		{"array-body", completions, `[{"text":"hi"}]`, 0},
		{"wrong-types", chat, `{"choices":[{"message":{"content":5,"tool_calls":"x"}},7]}`, 0},
		{
			name:     "truncated-counts-what-was-read",
			endpoint: completions,
			body:     `{"choices":[{"text":"hello world"},{"text":"tru`,
			want:     o200k(t, "hello world"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MustNew(t, "o200k_base").Output(tc.endpoint, []byte(tc.body)); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// TestConcurrent counts overlapping texts from many goroutines sharing one Counter; run
// it with -race.
func TestConcurrent(t *testing.T) {
	t.Parallel()
	c := MustNew(t, "o200k_base")
	system := strings.Repeat("You are a careful assistant. ", 20)
	bodies := make([]string, 50)
	wants := make([]int, len(bodies))
	for i := range bodies {
		user := fmt.Sprintf("Question %d: what is %d times %d?", i, i, i+1)
		bodies[i] = js(t, obj{"messages": []obj{{"role": "system", "content": system}, {"role": "user", "content": user}}})
		wants[i] = 3 + o200k(t, "system", system) + 3 + o200k(t, "user", user) + 3
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for k := range 200 {
				i := (g*7 + k) % len(bodies)
				got, err := c.Request(chat, []byte(bodies[i]))
				if err == nil && got != wants[i] {
					err = fmt.Errorf("body %d: got %d, want %d", i, got, wants[i])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzRequest checks that Request and Output never panic, and that Request accepts only
// JSON objects.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		cookbookMessages, cookbookTools, `{}`, `[]`, `{"prompt":[[1],[2]]}`, `{"input":"x"}`,
		`{"input":[{"role":"user","content":[{"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo="}]}]}`,
		`{"choices":[{"message":{"content":"hi","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}}]}`,
		`{"output":[{"type":"message","content":[{"type":"output_text","text":"hi"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	c := MustNew(f, "o200k_base")
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, endpoint := range []string{chat, completions, embeddings, responses} {
			n, err := c.Request(endpoint, body)
			if err == nil && (!json.Valid(body) || bytes.TrimSpace(body)[0] != '{') {
				t.Errorf("%s: %q: got %d tokens and no error for a body that is not a JSON object", endpoint, body, n)
			}
			if n < 0 {
				t.Errorf("%s: %q: got %d tokens", endpoint, body, n)
			}
			if n := c.Output(endpoint, body); n < 0 {
				t.Errorf("%s: %q: got %d output tokens", endpoint, body, n)
			}
		}
	})
}

// The new endpoints count their text as OpenAI counts a prompt's: the tokens of the
// string, images as the vision pricing says.
func TestRequestGenerationEndpoints(t *testing.T) {
	t.Parallel()
	c := MustNew(t, "o200k_base")
	fox := o200k(t, "a red fox")
	for _, tc := range []struct {
		endpoint, body string
		want           int
	}{
		{"/v1/images/generations", `{"model":"m","prompt":"a red fox","n":2}`, fox},
		{"/v1/videos", `{"prompt":"a red fox"}`, fox},
		{"/v1/moderations", `{"input":"a red fox"}`, fox},
		{"/v1/moderations", `{"input":["a red fox","a red fox"]}`, 2 * fox},
		{"/v1/moderations", `{"input":[{"type":"text","text":"a red fox"},{"type":"image_url","image_url":{"url":"https://example.com/a.png","detail":"low"}}]}`, fox + 85},
		{"/v1/images/edits", `{"prompt":"a red fox","images":[{"file_id":"file-1"}]}`, fox + 765},
	} {
		got, err := c.Request(tc.endpoint, []byte(tc.body))
		if err != nil || got != tc.want {
			t.Errorf("%s %s: got %d, %v; want %d", tc.endpoint, tc.body, got, err, tc.want)
		}
	}
}

// Measure counts what Request counts, and the image parts of the prompt.
func TestMeasureCountsImages(t *testing.T) {
	t.Parallel()
	c, err := tokens.New("")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		endpoint, body string
		images         int
	}{
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 0},
		{"/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"text","text":"what is this"},
			{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]},
			{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/b.png","detail":"low"}}]}]}`, 2},
		{"/v1/responses", `{"input":[{"role":"user","content":[{"type":"input_image","image_url":"https://example.com/c.png"}]}]}`, 1},
		{"/v1/embeddings", `{"input":"text"}`, 0},
		{"/v1/moderations", `{"input":["a","b"]}`, 0},
		{"/v1/moderations", `{"input":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"https://example.com/d.png"}}]}`, 1},
		{"/v1/images/generations", `{"prompt":"a red fox"}`, 0},
		{"/v1/images/edits", `{"prompt":"make it blue","images":[{"image_url":"https://example.com/e.png"},{"file_id":"file-1"}],"mask":{"image_url":"https://example.com/m.png"}}`, 3},
		{"/v1/images/edits", `{"prompt":"make it blue","image":"https://example.com/e.png"}`, 1},
		{"/v1/videos", `{"prompt":"a fox running","seconds":"4"}`, 0},
	} {
		p, err := c.Measure(tc.endpoint, []byte(tc.body))
		if err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		n, _ := c.Request(tc.endpoint, []byte(tc.body))
		if p.Images != tc.images || p.Tokens != n {
			t.Errorf("%s: got %+v, want %d images and Request's %d tokens", tc.body, p, tc.images, n)
		}
	}
}
