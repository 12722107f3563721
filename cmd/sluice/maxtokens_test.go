package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// A deployment's max_tokens sets a limit on lines that name none and caps those that
// name more; the upstream sees the bounded bodies.
func TestDeploymentMaxTokens(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	seen := map[string]any{} // custom content -> max_tokens sent
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body struct {
			MaxTokens any `json:"max_tokens"`
			Messages  []struct{ Content string }
		}
		_ = json.Unmarshal(b, &body)
		mu.Lock()
		seen[body.Messages[0].Content] = body.MaxTokens
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	t.Cleanup(ts.Close)
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, cfg, `
deployments:
  - name: gpt-4o-mini
    max_tokens: {default: 64, max: 1000}
    upstreams:
      - base_url: `+ts.URL+`/v1
`)
	c := MustRunMain(t, nil, "--config", cfg)
	line := func(id, extra string) string {
		return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini"%s,"messages":[{"role":"user","content":%q}]}}`, id, extra, id)
	}
	in := strings.Join([]string{line("none", ""), line("small", `,"max_tokens":10`), line("big", `,"max_tokens":50000`)}, "\n") + "\n"
	b := c.waitBatch(c.mustCreateBatch(c.mustUpload(in).ID, "/v1/chat/completions").ID, terminal)
	if b.Status != "completed" || b.RequestCounts.Completed != 3 {
		t.Fatalf("batch %s %+v", b.Status, b.RequestCounts)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, want := range map[string]float64{"none": 64, "small": 10, "big": 1000} {
		if got, _ := seen[id].(float64); got != want {
			t.Errorf("line %s: the upstream got max_tokens %v, want %v", id, seen[id], want)
		}
	}
}

// An upstream with max_tokens_only (Ollama reads max_tokens and ignores
// max_completion_tokens) gets max_tokens beside a line's max_completion_tokens, at the
// same value, capped by the deployment's max; other upstreams get the line as it is.
func TestUpstreamMaxTokensOnly(t *testing.T) {
	t.Parallel()
	type sent struct{ maxTokens, maxCompletion any }
	var mu sync.Mutex
	seen := map[string]sent{} // upstream and custom content -> what it got
	server := func(name string) *httptest.Server {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			var body struct {
				MaxTokens           any `json:"max_tokens"`
				MaxCompletionTokens any `json:"max_completion_tokens"`
				Messages            []struct{ Content string }
			}
			_ = json.Unmarshal(b, &body)
			mu.Lock()
			seen[name+"/"+body.Messages[0].Content] = sent{body.MaxTokens, body.MaxCompletionTokens}
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
		}))
		t.Cleanup(ts.Close)
		return ts
	}
	ollama, other := server("ollama"), server("other")
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, cfg, `
deployments:
  - name: local
    max_tokens: {max: 100}
    upstreams:
      - base_url: `+ollama.URL+`/v1
        max_tokens_only: true
  - name: hosted
    max_tokens: {max: 100}
    upstreams:
      - base_url: `+other.URL+`/v1
`)
	c := MustRunMain(t, nil, "--config", cfg)
	line := func(model, id, extra string) string {
		return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/v1/chat/completions","body":{"model":%q%s,"messages":[{"role":"user","content":%q}]}}`, id, model, extra, id)
	}
	for _, model := range []string{"local", "hosted"} {
		in := strings.Join([]string{
			line(model, "completion", `,"max_completion_tokens":20`),
			line(model, "completion-over", `,"max_completion_tokens":5000`),
			line(model, "both", `,"max_tokens":30,"max_completion_tokens":20`),
			line(model, "none", ""),
		}, "\n") + "\n"
		b := c.waitBatch(c.mustCreateBatch(c.mustUpload(in).ID, "/v1/chat/completions").ID, terminal)
		if b.Status != "completed" || b.RequestCounts.Completed != 4 {
			t.Fatalf("%s: batch %s %+v", model, b.Status, b.RequestCounts)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for key, want := range map[string]sent{
		"ollama/completion":      {20.0, 20.0},
		"ollama/completion-over": {100.0, 100.0},
		"ollama/both":            {30.0, 20.0},
		"ollama/none":            {nil, nil},
		"other/completion":       {nil, 20.0},
		"other/completion-over":  {nil, 100.0},
		"other/both":             {30.0, 20.0},
		"other/none":             {nil, nil},
	} {
		if got := seen[key]; got != want {
			t.Errorf("%s: the upstream got max_tokens %v, max_completion_tokens %v; want %v, %v",
				key, got.maxTokens, got.maxCompletion, want.maxTokens, want.maxCompletion)
		}
	}
}
