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
