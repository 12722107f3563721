package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ollamaEnv names the base URL of a real Ollama to test against (scripts/ollama.sh
// sets it); ollamaRequire, set to 1, makes its absence a failure (make test sets it).
const (
	ollamaEnv     = "OLLAMA_URL"
	ollamaRequire = "SLUICE_REQUIRE_OLLAMA"
)

// ollamaURL returns the base URL of the Ollama to test against, or skips the test (fails
// it under SLUICE_REQUIRE_OLLAMA=1) when there is none.
func ollamaURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(ollamaEnv)
	if u == "" {
		msg := ollamaEnv + " is not set: run the test under scripts/ollama.sh, e.g. bash scripts/ollama.sh go test -run Ollama ./cmd/sluice/"
		if os.Getenv(ollamaRequire) == "1" {
			tb.Fatal(msg + " (" + ollamaRequire + "=1 requires Ollama)")
		}
		tb.Skip(msg)
	}
	return strings.TrimRight(u, "/")
}

// upstreamLog is a proxy between Sluice and the real server that notes what passed.
type upstreamLog struct {
	mu       sync.Mutex
	paths    map[string]int
	statuses map[int]int
	ids      map[string]int // the answers' own "id"s
}

func newUpstreamLog(tb testing.TB, target string) (*upstreamLog, string) {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	l := &upstreamLog{paths: map[string]int{}, statuses: map[int]int{}, ids: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(resp *http.Response) error {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var answer struct{ ID string }
		_ = json.Unmarshal(b, &answer)
		l.mu.Lock()
		l.paths[resp.Request.URL.Path]++
		l.statuses[resp.StatusCode]++
		if answer.ID != "" {
			l.ids[answer.ID]++
		}
		l.mu.Unlock()
		return nil
	}
	ts := httptest.NewServer(rp)
	tb.Cleanup(ts.Close)
	return l, ts.URL
}

// take returns what passed since the last take, and forgets it.
func (l *upstreamLog) take() (paths map[string]int, statuses map[int]int, ids map[string]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	paths, statuses, ids = l.paths, l.statuses, l.ids
	l.paths, l.statuses, l.ids = map[string]int{}, map[int]int{}, map[string]int{}
	return paths, statuses, ids
}

// ollamaAnswer is what the test reads of a chat completion.
type ollamaAnswer struct {
	ID      string `json:"id"`
	Choices []struct {
		FinishReason *string `json:"finish_reason"`
		Message      struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int64 `json:"prompt_tokens"`
		CompletionTokens int64 `json:"completion_tokens"`
	} `json:"usage"`
}

// TestOllama runs batches through Sluice against a real engine, Ollama serving a tiny
// random-weight model (scripts/ollama.sh), and checks what the simulator cannot show:
// a model still loading answers 503 without Retry-After, which Sluice waits out; a
// loaded one queues without limit and never refuses; max_completion_tokens, which
// Ollama ignores, still bounds the answer (max_tokens_only); an answer cut off for
// repeating one token (200, finish_reason null, usage 0) is kept and its tokens
// counted; the answers' ids repeat, which nothing minds; and a batch made on the Azure
// routes goes to the server's /v1 path.
func TestOllama(t *testing.T) {
	t.Parallel()
	base := ollamaURL(t)
	model := os.Getenv("OLLAMA_MODEL")
	if model == "" {
		model = "tiny"
	}
	proxy, proxyURL := newUpstreamLog(t, base)

	// Two deployments on the one server: a fixed 16 in flight, so the first requests
	// find the model loading together, and an adaptive one (1 to 16), as a deployment
	// on a real server should be.
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, cfg, fmt.Sprintf(`
deployments:
  - name: cold
    max_tokens: {default: 16, max: 16}
    upstreams:
      - {base_url: %[1]s/v1, model: %[2]s, max_concurrency: 16}
  - name: tiny
    max_tokens: {default: 32, max: 400}
    upstreams:
      - {base_url: %[1]s/v1, model: %[2]s, min_concurrency: 1, max_concurrency: 16, max_tokens_only: true}
engine:
  backoff_base: 100ms
  backoff_max: 2s
  max_attempts: 3
`, proxyURL, model))
	c := MustRunMain(t, nil, "--config", cfg)

	// 1. The model is not loaded: Ollama queues 1 + OLLAMA_MAX_QUEUE requests while it
	// loads and answers the rest 503 "server busy" at once, with no Retry-After. Every
	// line still succeeds, though there are more busy answers than max_attempts.
	unload(t, base, model)
	in := chatLines(40, "cold")
	b := c.waitOllama(c.mustCreateBatch(c.mustUpload(in).ID, "/v1/chat/completions").ID)
	if b.Status != "completed" || b.RequestCounts.Completed != 40 || b.RequestCounts.Failed != 0 {
		t.Fatalf("cold start: batch %s %+v, want 40 completed", b.Status, b.RequestCounts)
	}
	_, statuses, _ := proxy.take()
	t.Logf("cold start: the server answered %v", statuses)
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Errorf("cold start: no 503 from the server (answers %v); the test did not find the model loading", statuses)
	}

	// 2. The model is loaded: a few hundred lines with every kind of token limit, made
	// and read on the Azure routes.
	var lines []string
	limits := map[string]int64{} // custom_id -> the most completion tokens it may have
	add := func(id string, limit int64, extra string) {
		limits[id] = limit
		lines = append(lines, fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":"/chat/completions","body":{"model":"tiny","messages":[{"role":"user","content":"Say something about request %s."}]%s}}`, id, id, extra))
	}
	for i := range 300 {
		n := 8 + i%41
		add(fmt.Sprintf("plain-%d", i), int64(n), fmt.Sprintf(`,"max_tokens":%d`, n))
	}
	for i := range 10 {
		add(fmt.Sprintf("completion-%d", i), 24, `,"max_completion_tokens":24`) // Ollama ignores it alone
		add(fmt.Sprintf("default-%d", i), 32, ``)                               // the deployment's default
		add(fmt.Sprintf("over-%d", i), 400, `,"max_tokens":100000`)             // the deployment's max
		// Greedy decoding of random weights falls into loops, which Ollama cuts off.
		add(fmt.Sprintf("greedy-%d", i), 400, `,"max_tokens":400,"temperature":0`)
	}
	fileID := c.mustUploadAzure(strings.Join(lines, "\n") + "\n")
	var created batchObj
	if status := c.json("POST", "/openai/batches?api-version=2024-10-21", map[string]any{
		"input_file_id": fileID, "endpoint": "/chat/completions", "completion_window": "24h"}, &created); status != 200 && status != 201 {
		t.Fatalf("create batch on /openai: status %d", status)
	}
	b = c.waitOllama(created.ID)
	if b.Status != "completed" || b.RequestCounts.Completed != len(lines) || b.RequestCounts.Failed != 0 {
		t.Fatalf("batch %s %+v, want %d completed", b.Status, b.RequestCounts, len(lines))
	}
	if got := c.content(*b.ErrorFileID); got != "" {
		t.Errorf("error file: %.500s", got)
	}
	paths, statuses, ids := proxy.take()
	if len(paths) != 1 || paths["/v1/chat/completions"] == 0 {
		t.Errorf("the server was sent to %v, want /v1/chat/completions only", paths)
	}
	if len(statuses) != 1 || statuses[http.StatusOK] == 0 {
		t.Errorf("the server answered %v, want 200 only: a loaded model queues, it does not refuse", statuses)
	}

	// One result per custom_id, each the server's answer, with real usage within its
	// limit; answers cut off for looping keep their finish_reason null and usage 0.
	results := parseResults(t, c.content(*b.OutputFileID))
	seen := map[string]bool{}
	var prompt, completion, cut int64
	for _, r := range results {
		if seen[r.CustomID] {
			t.Errorf("%s: a second result", r.CustomID)
		}
		seen[r.CustomID] = true
		if r.Response == nil || r.Response.StatusCode != 200 {
			t.Errorf("%s: no 200 answer: %+v", r.CustomID, r)
			continue
		}
		var a ollamaAnswer
		if err := json.Unmarshal(r.Response.Body, &a); err != nil || len(a.Choices) != 1 {
			t.Errorf("%s: answer %s: %v", r.CustomID, r.Response.Body, err)
			continue
		}
		long := strings.HasPrefix(r.CustomID, "greedy-") || strings.HasPrefix(r.CustomID, "over-")
		if a.Choices[0].FinishReason == nil {
			cut++
			if a.Usage.PromptTokens != 0 || a.Usage.CompletionTokens != 0 {
				t.Errorf("%s: finish_reason null with usage %+v", r.CustomID, a.Usage)
			}
			continue
		}
		if a.Usage.PromptTokens <= 0 || a.Usage.CompletionTokens <= 0 || a.Usage.CompletionTokens > limits[r.CustomID] {
			t.Errorf("%s: usage %+v, want real counts with at most %d completion tokens", r.CustomID, a.Usage, limits[r.CustomID])
		}
		if want := limits[r.CustomID]; !long && (*a.Choices[0].FinishReason != "length" || a.Usage.CompletionTokens != want) {
			t.Errorf("%s: finish_reason %s after %d tokens, want length after %d", r.CustomID, *a.Choices[0].FinishReason, a.Usage.CompletionTokens, want)
		}
		prompt += a.Usage.PromptTokens
		completion += a.Usage.CompletionTokens
	}
	if len(seen) != len(lines) {
		t.Errorf("%d results for %d lines", len(seen), len(lines))
	}
	if cut == 0 {
		t.Error("no answer was cut off for looping; the greedy lines were meant to")
	}

	// The batch's usage is the reported counts plus Sluice's own count of the cut-off
	// answers (estimated lines), never their zeros.
	var u batchUsage
	c.json("GET", "/v1/batches/"+b.ID, nil, &u)
	if u.Usage.EstimatedLines != cut || u.Usage.InputTokens <= prompt || u.Usage.OutputTokens <= completion {
		t.Errorf("batch usage %+v; the answers reported %d prompt and %d completion tokens, and %d were cut off",
			u.Usage, prompt, completion, cut)
	}

	// The answers' own ids repeat (chatcmpl- and a number below 999); the results' do not.
	repeated := 0
	for _, n := range ids {
		repeated += n - 1
	}
	resultIDs := map[string]bool{}
	for _, r := range results {
		resultIDs[r.ID] = true
	}
	t.Logf("%d lines: %d answers cut off for looping; %d answers repeated an id", len(lines), cut, repeated)
	if repeated == 0 {
		t.Errorf("no answer id repeated among %d; expected Ollama's to", len(lines))
	}
	if len(resultIDs) != len(results) {
		t.Errorf("%d distinct result ids for %d results", len(resultIDs), len(results))
	}
}

// waitOllama waits for a batch against the real server to end: longer than waitBatch,
// since the machine may be busy.
func (c *apiClient) waitOllama(id string) batchObj {
	c.tb.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	var b batchObj
	for time.Now().Before(deadline) {
		c.json("GET", "/v1/batches/"+id, nil, &b)
		if terminal(b) {
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.tb.Fatalf("batch %s: still %s with %+v", id, b.Status, b.RequestCounts)
	return b
}

// mustUploadAzure uploads a batch input on the Azure route and returns its ID.
func (c *apiClient) mustUploadAzure(content string) string {
	c.tb.Helper()
	status, b := c.upload("/openai/files?api-version=2024-10-21", "input.jsonl", content, map[string]string{"purpose": "batch"})
	var f fileObj
	if (status != 200 && status != 201) || json.Unmarshal(b, &f) != nil {
		c.tb.Fatalf("upload on /openai: got %d %s", status, b)
	}
	return f.ID
}

// unload asks Ollama to unload the model now and waits until it lists none loaded.
func unload(tb testing.TB, base, model string) {
	tb.Helper()
	body := fmt.Sprintf(`{"model":%q,"keep_alive":0}`, model)
	resp, err := http.Post(base+"/api/generate", "application/json", strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/api/ps")
		if err != nil {
			tb.Fatal(err)
		}
		var ps struct{ Models []any }
		err = json.NewDecoder(resp.Body).Decode(&ps)
		resp.Body.Close()
		if err == nil && len(ps.Models) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatal("the model did not unload")
}
