package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
	"github.com/sluice-batch/sluice/tokens"
	"go.yaml.in/yaml/v3"
)

// fileTokens counts the input tokens of a file of chat lines as the upload scan must.
func fileTokens(tb testing.TB, content string) int64 {
	tb.Helper()
	c, err := tokens.New("")
	if err != nil {
		tb.Fatal(err)
	}
	var total int64
	for _, line := range strings.Split(strings.TrimSpace(content), "\n") {
		var req struct {
			Body json.RawMessage `json:"body"`
		}
		if err := json.Unmarshal([]byte(line), &req); err != nil {
			tb.Fatal(err)
		}
		n, err := c.Request("/v1/chat/completions", req.Body)
		if err != nil {
			tb.Fatal(err)
		}
		total += int64(n)
	}
	return total
}

// quotaServer runs sluice with one deployment, gpt-4o-mini, on upstream url with the
// given extra deployment settings in YAML.
func quotaServer(t *testing.T, url, extra string) *apiClient {
	t.Helper()
	path := t.TempDir() + "/config.yaml"
	writeFile(t, path, fmt.Sprintf("deployments:\n  - name: gpt-4o-mini\n%s    upstreams:\n      - base_url: %s\n        max_concurrency: 2\n", extra, url))
	return MustRunMain(t, nil, "--config", path)
}

// createRaw creates a batch and returns the status, the quota headers and the body.
func (c *apiClient) createRaw(path string, in map[string]any) (int, http.Header, []byte) {
	c.tb.Helper()
	b, _ := json.Marshal(in)
	req, err := http.NewRequest("POST", c.base+path, strings.NewReader(string(b)))
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		c.tb.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// wantQuotaHeaders checks the headers every create answer carries.
func wantQuotaHeaders(tb testing.TB, h http.Header, enqueued, maximum int64) {
	tb.Helper()
	if got := h.Get("deployment-enqueued-tokens"); got != strconv.FormatInt(enqueued, 10) {
		tb.Errorf("deployment-enqueued-tokens: got %q, want %d", got, enqueued)
	}
	if got := h.Get("deployment-maximum-enqueued-tokens"); got != strconv.FormatInt(maximum, 10) {
		tb.Errorf("deployment-maximum-enqueued-tokens: got %q, want %d", got, maximum)
	}
}

type deploymentObj struct {
	ID    string `json:"id"`
	Model string `json:"model"`
	Quota struct {
		EnqueuedTokens        int64  `json:"enqueued_tokens"`
		MaximumEnqueuedTokens *int64 `json:"maximum_enqueued_tokens"`
		AvailableTokens       *int64 `json:"available_tokens"`
		Idle                  bool   `json:"idle"`
	} `json:"quota"`
	Batches []struct {
		ID          string `json:"id"`
		InputTokens int64  `json:"input_tokens"`
	} `json:"batches"`
}

func (c *apiClient) deployment(name string) deploymentObj {
	c.tb.Helper()
	var d deploymentObj
	if status := c.json("GET", "/v1/deployments/"+name, nil, &d); status != 200 {
		c.tb.Fatalf("GET deployment %s: got %d", name, status)
	}
	return d
}

func (c *apiClient) batchCount() int {
	c.tb.Helper()
	var l struct {
		Data []batchObj `json:"data"`
	}
	c.json("GET", "/v1/batches?limit=100", nil, &l)
	return len(l.Data)
}

// A second batch is refused at once while the first holds the quota, with the headers
// and a message that says what to do; a dry run says the same and creates nothing; once
// the first is cancelled the second is admitted.
func TestQuotaRefusesThenAdmits(t *testing.T) {
	t.Parallel()
	_, url := slowSim(t, 200*time.Millisecond)
	content := chatLines(40, "gpt-4o-mini")
	need := fileTokens(t, content)
	limit := need + need/2
	c := quotaServer(t, url, fmt.Sprintf("    enqueued_token_limit: %d\n", limit))
	f := c.mustUpload(content)
	create := map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"}

	status, h, body := c.createRaw("/v1/batches", create)
	if status != 200 {
		t.Fatalf("first create: got %d %s", status, body)
	}
	wantQuotaHeaders(t, h, need, limit)
	var first batchObj
	_ = json.Unmarshal(body, &first)

	dry := map[string]any{"dry_run": true}
	for k, v := range create {
		dry[k] = v
	}
	status, h, body = c.createRaw("/v1/batches", dry)
	var dr struct {
		Object          string `json:"object"`
		Admitted        bool   `json:"admitted"`
		InputTokens     int64  `json:"input_tokens"`
		EnqueuedTokens  int64  `json:"enqueued_tokens"`
		AvailableTokens *int64 `json:"available_tokens"`
	}
	if err := json.Unmarshal(body, &dr); status != 200 || err != nil {
		t.Fatalf("dry run: got %d %s", status, body)
	}
	if dr.Object != "batch.dry_run" || dr.Admitted || dr.InputTokens != need || dr.EnqueuedTokens != need ||
		dr.AvailableTokens == nil || *dr.AvailableTokens != limit-need {
		t.Errorf("dry run: got %s, want not admitted, %d tokens needed, %d enqueued, %d available", body, need, need, limit-need)
	}
	wantQuotaHeaders(t, h, need, limit)

	for _, path := range []string{"/v1/batches", "/openai/batches?api-version=2024-10-21"} {
		status, h, body = c.createRaw(path, create)
		var e apiError
		_ = json.Unmarshal(body, &e)
		if status != 400 || e.Error.Code == nil || *e.Error.Code != "token_limit_exceeded" {
			t.Fatalf("%s second create: got %d %s, want 400 token_limit_exceeded", path, status, body)
		}
		for _, want := range []string{"gpt-4o-mini", strconv.FormatInt(need, 10), "free", "Retry"} {
			if !strings.Contains(e.Error.Message, want) {
				t.Errorf("%s: message %q does not say %q", path, e.Error.Message, want)
			}
		}
		wantQuotaHeaders(t, h, need, limit)
	}
	if n := c.batchCount(); n != 1 {
		t.Errorf("got %d batches after a dry run and two refusals, want 1", n)
	}
	d := c.deployment("gpt-4o-mini")
	if d.Quota.EnqueuedTokens != need || d.Quota.MaximumEnqueuedTokens == nil || *d.Quota.MaximumEnqueuedTokens != limit ||
		len(d.Batches) != 1 || d.Batches[0].ID != first.ID || d.Batches[0].InputTokens != need {
		t.Errorf("deployment: got %+v, want %d of %d held by %s", d, need, limit, first.ID)
	}

	c.json("POST", "/v1/batches/"+first.ID+"/cancel", nil, nil)
	c.waitBatch(first.ID, terminal)
	status, h, body = c.createRaw("/v1/batches", create)
	if status != 200 {
		t.Fatalf("create after the cancel: got %d %s", status, body)
	}
	wantQuotaHeaders(t, h, need, limit)
}

// Twenty concurrent creates never admit more than the limit.
func TestQuotaConcurrentCreates(t *testing.T) {
	t.Parallel()
	_, url := slowSim(t, time.Second)
	content := chatLines(5, "gpt-4o-mini")
	need := fileTokens(t, content)
	const fit = 5
	c := quotaServer(t, url, fmt.Sprintf("    enqueued_token_limit: %d\n", fit*need+need/2))
	f := c.mustUpload(content)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for range 20 {
		wg.Go(func() {
			status, h, body := c.createRaw("/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
			if h.Get("deployment-enqueued-tokens") == "" || h.Get("deployment-maximum-enqueued-tokens") == "" {
				t.Errorf("create answered %d without the quota headers", status)
			}
			switch status {
			case 200:
				mu.Lock()
				admitted++
				mu.Unlock()
			case 400:
				if !strings.Contains(string(body), "token_limit_exceeded") {
					t.Errorf("refusal: %s", body)
				}
			default:
				t.Errorf("create: got %d %s", status, body)
			}
		})
	}
	wg.Wait()
	if admitted != fit {
		t.Errorf("admitted %d of 20, want %d", admitted, fit)
	}
	if got := c.deployment("gpt-4o-mini").Quota.EnqueuedTokens; got != fit*need {
		t.Errorf("enqueued %d, want %d", got, fit*need)
	}
}

// usageObj is the usage of a batch or of a result line's body.
type usageObj struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens   int64 `json:"output_tokens"`
	TotalTokens    int64 `json:"total_tokens"`
	EstimatedLines int64 `json:"estimated_lines"`
}

type batchUsage struct {
	Model *string  `json:"model"`
	Usage usageObj `json:"usage"`
	Cost  *struct {
		Currency string  `json:"currency"`
		Amount   float64 `json:"amount"`
		Discount float64 `json:"discount"`
	} `json:"cost"`
	EnqueuedTokens int64 `json:"enqueued_tokens"`
}

// outputUsage sums the usage the upstream reported in an output file's lines.
func outputUsage(tb testing.TB, out string) (prompt, completion int64) {
	tb.Helper()
	for _, r := range parseResults(tb, out) {
		var body struct {
			Usage struct {
				PromptTokens     int64 `json:"prompt_tokens"`
				CompletionTokens int64 `json:"completion_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(r.Response.Body, &body); err != nil {
			tb.Fatal(err)
		}
		prompt += body.Usage.PromptTokens
		completion += body.Usage.CompletionTokens
	}
	return prompt, completion
}

// The batch's usage is the sum of its output lines' usage, its model is the
// deployment's, and its cost follows the deployment's prices with the batch discount.
func TestUsageAndCost(t *testing.T) {
	t.Parallel()
	_, url := slowSim(t, 0)
	c := quotaServer(t, url, "    model: gpt-4o-mini-2024-07-18\n    price: {input: 0.15, output: 0.6}\n")
	f := c.mustUpload(chatLines(300, "gpt-4o-mini"))
	b := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	var u batchUsage
	c.json("GET", "/v1/batches/"+b.ID, nil, &u)
	prompt, completion := outputUsage(t, c.content(*b.OutputFileID))
	if u.Usage.InputTokens != prompt || u.Usage.OutputTokens != completion || u.Usage.TotalTokens != prompt+completion || u.Usage.EstimatedLines != 0 {
		t.Errorf("usage: got %+v, want %d in and %d out as the output lines say", u.Usage, prompt, completion)
	}
	if u.Model == nil || *u.Model != "gpt-4o-mini-2024-07-18" {
		t.Errorf("model: got %v, want gpt-4o-mini-2024-07-18", u.Model)
	}
	want := (float64(prompt)*0.15 + float64(completion)*0.6) / 1e6 * 0.5
	if u.Cost == nil || u.Cost.Currency != "USD" || u.Cost.Discount != 0.5 || math.Abs(u.Cost.Amount-want) > 1e-12 {
		t.Errorf("cost: got %+v, want USD %g at a 0.5 discount", u.Cost, want)
	}
	if u.EnqueuedTokens != 0 {
		t.Errorf("a completed batch holds %d tokens, want 0", u.EnqueuedTokens)
	}
}

// When the upstream reports no usage, Sluice counts the line's input with its
// tokenizer, counts the answer's text, and says how many lines it counted itself.
func TestUsageCountedWhenUpstreamHasNone(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(sim.New(sim.Options{NoUsage: true}))
	t.Cleanup(ts.Close)
	c := quotaServer(t, ts.URL+"/v1", "")
	content := chatLines(20, "gpt-4o-mini")
	f := c.mustUpload(content)
	b := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	var u batchUsage
	c.json("GET", "/v1/batches/"+b.ID, nil, &u)
	if u.Usage.EstimatedLines != 20 || u.Usage.InputTokens != fileTokens(t, content) || u.Usage.OutputTokens <= 0 {
		t.Errorf("usage: got %+v, want 20 estimated lines, %d input tokens and some output", u.Usage, fileTokens(t, content))
	}
}

func TestTokenLimitParsing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want TokenLimit
	}{
		{"200000000", TokenLimit{N: 200_000_000}},
		{"200M", TokenLimit{N: 200_000_000}},
		{"1.5B", TokenLimit{N: 1_500_000_000}},
		{"90K", TokenLimit{N: 90_000}},
		{"default", TokenLimit{Default: true}},
	} {
		var got TokenLimit
		if err := yaml.Unmarshal([]byte(tc.in), &got); err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		typ, model string
		want       int64
	}{
		{"global", "gpt-4o-mini-2024-07-18", 1e9},
		{"global", "gpt-4o", 200e6},
		{"global", "gpt-4.1-nano", 1e9},
		{"global", "gpt-4", 30e6},
		{"datazone", "gpt-4o", 30e6},
		{"datazone", "gpt-4o-mini", 100e6},
	} {
		if got, ok := defaultLimit(tc.typ, tc.model); !ok || got != tc.want {
			t.Errorf("%s %s: got %d, %t; want %d", tc.typ, tc.model, got, ok, tc.want)
		}
	}
	if _, ok := defaultLimit("datazone", "gpt-35-turbo"); ok {
		t.Error("datazone gpt-35-turbo has a default; the product lists none")
	}
}

// Dynamic quota lends a deployment its limit plus a share of it while its upstreams
// have idle capacity, never while they are busy, and never when it is off.
func TestDynamicQuota(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		dynamic     bool
		concurrency int // of the upstream: 40 lines in flight on 2 slots keep it busy
		wantAdmit   bool
	}{
		{"idle, on", true, 100, true},
		{"idle, off", false, 100, false},
		{"busy, on", true, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, url := slowSim(t, 2*time.Second)
			content := chatLines(40, "gpt-4o-mini")
			need := fileTokens(t, content)
			path := t.TempDir() + "/config.yaml"
			writeFile(t, path, fmt.Sprintf("deployments:\n  - name: gpt-4o-mini\n    enqueued_token_limit: %d\n    dynamic_quota: %t\n"+
				"    dynamic_quota_share: 1\n    upstreams:\n      - base_url: %s\n        max_concurrency: %d\n",
				need+need/2, tc.dynamic, url, tc.concurrency))
			c := MustRunMain(t, nil, "--config", path)
			f := c.mustUpload(content)
			first := c.mustCreateBatch(f.ID, "/v1/chat/completions")
			c.waitBatch(first.ID, func(b batchObj) bool { return b.Status == "in_progress" })
			// Wait until the deployment shows what the dispatcher's claims make it.
			for deadline := time.Now().Add(10 * time.Second); c.deployment("gpt-4o-mini").Quota.Idle != (tc.concurrency > 40); {
				if time.Now().After(deadline) {
					t.Fatalf("the deployment never became idle=%t", tc.concurrency > 40)
				}
				time.Sleep(10 * time.Millisecond)
			}
			status, h, body := c.createRaw("/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
			if got := status == 200; got != tc.wantAdmit {
				t.Errorf("second create: got %d %s, want admitted %t", status, body, tc.wantAdmit)
			}
			enqueued := need
			if tc.wantAdmit {
				enqueued = 2 * need
			}
			wantQuotaHeaders(t, h, enqueued, need+need/2)
		})
	}
}

// A deployment whose model takes text only refuses an input with an image, at the
// line of the first image; one that takes images runs it.
func TestInputFormats(t *testing.T) {
	t.Parallel()
	_, url := slowSim(t, 0)
	image := `{"custom_id":"img","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":[` +
		`{"type":"text","text":"what is in it?"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}}` + "\n"
	content := chatLines(2, "gpt-4o-mini") + image
	for _, tc := range []struct {
		formats    string
		wantStatus string
	}{
		{"[text]", "failed"},
		{"[text, image]", "completed"},
	} {
		c := quotaServer(t, url, "    input_formats: "+tc.formats+"\n")
		f := c.mustUpload(content)
		b := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
		if b.Status != tc.wantStatus {
			t.Errorf("%s: got %s, want %s", tc.formats, b.Status, tc.wantStatus)
			continue
		}
		if tc.wantStatus == "failed" {
			if b.Errors == nil || len(b.Errors.Data) != 1 || b.Errors.Data[0].Code != "invalid_request" ||
				b.Errors.Data[0].Line == nil || *b.Errors.Data[0].Line != 3 {
				t.Errorf("%s: got errors %+v, want invalid_request at line 3", tc.formats, b.Errors)
			}
		}
	}
}
