package engine_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/engine"
	"github.com/sluice-batch/sluice/sqlite"
)

// corpusDir holds the bad-input corpus: one file per case of TestBadInputCorpus.
const corpusDir = "testdata/badinput"

// corpusError is one entry of a failed batch's errors, without its message.
type corpusError struct {
	Code string
	Line int
}

// corpusCase is an input file a user could upload and what must become of a batch made
// from it.
type corpusCase struct {
	name        string        // the file corpusDir/<name>.jsonl, or a generated case
	gen         func() string // builds a generated case's input; nil reads the file
	endpoint    string        // the batch's endpoint; "" means /chat/completions
	maxRequests int           // engine.Options.MaxRequests; 0 means the default
	status      sluice.Status

	// Of a failed batch:
	code     string        // the first error's code
	line     int           // the first error's 1-based line; 0 for none
	errs     int           // how many errors are reported; 0 means 1
	then     []corpusError // the errors after the first, when their order is the point
	lastLine int           // the last error's line, when checked

	// Of a completed batch: the custom_ids of its output, sorted. Every request must
	// complete, so the batch's total is len(ids) too.
	ids []string
}

// knownIssues are cases whose row states the behaviour believed right while the
// product does otherwise; each is skipped with its reason until it passes, and then
// fails so that it is taken off this list.
var knownIssues = map[string]string{}

func corpusCases() []corpusCase {
	const (
		done   = sluice.StatusCompleted
		failed = sluice.StatusFailed
	)
	task := func(n int) []string {
		ids := make([]string, n)
		for i := range ids {
			ids[i] = fmt.Sprintf("task-%d", i)
		}
		slices.Sort(ids)
		return ids
	}
	var overCap []corpusError
	for i := 2; i <= sluice.MaxBatchErrors; i++ {
		overCap = append(overCap, corpusError{"invalid_json_line", i})
	}
	idAtCap := strings.Repeat("x", 65536)
	return []corpusCase{
		// Good edge cases: they validate and complete.
		{name: "good-bom", status: done, ids: task(3)},
		{name: "good-bom-crlf", status: done, ids: task(3)},
		{name: "good-crlf", status: done, ids: task(3)},
		{name: "good-no-final-newline", status: done, ids: task(2)},
		{name: "good-blank-lines", status: done, ids: task(3)},
		{name: "good-leading-whitespace", status: done, ids: task(2)},
		{name: "good-v1-prefix-mixed", status: done, ids: task(2)},
		{name: "good-endpoint-with-v1", endpoint: "/v1/chat/completions", status: done, ids: task(2)},
		{name: "good-moderations", endpoint: "/v1/moderations", status: done, ids: []string{"m1", "m2"}},
		{name: "good-escaped-names", status: done, ids: []string{"task-0", "task-é☃"}},
		{name: "good-duplicate-keys-last-wins", status: done, ids: task(2)},
		{name: "good-escaped-nul-and-separators", status: done, ids: task(1)},
		{name: "good-invalid-utf8-in-content", status: done, ids: task(1)},
		{name: "good-model-seed-example", status: done, ids: task(2)},
		{name: "custom-id-at-64KiB", gen: func() string { return corpusRequest(idAtCap, "") }, status: done, ids: []string{idAtCap}},
		{name: "nesting-at-10000", gen: func() string { return corpusNested(10000) }, status: done, ids: []string{"deep", "task-0"}},
		{name: "line-longer-than-scan-chunk", gen: func() string {
			return corpusRequest("big", strings.Repeat("lorem ipsum ", 50_000)) // 600 KB, past the 256 KiB read chunk
		}, status: done, ids: []string{"big"}},

		// empty_batch: no request line at all.
		{name: "empty", status: failed, code: "empty_batch"},
		{name: "only-blank-lines", status: failed, code: "empty_batch"},
		{name: "only-bom", status: failed, code: "empty_batch"},
		{name: "only-bom-and-newlines", status: failed, code: "empty_batch"},

		// invalid_json_line.
		{name: "invalid-json-missing-brace", status: failed, code: "invalid_json_line", line: 2},
		{name: "single-quotes-python-repr", status: failed, code: "invalid_json_line", line: 1},
		{name: "trailing-comma", status: failed, code: "invalid_json_line", line: 1},
		{name: "nan-value", status: failed, code: "invalid_json_line", line: 2},
		{name: "python-literals", status: failed, code: "invalid_json_line", line: 1},
		{name: "comment-line", status: failed, code: "invalid_json_line", line: 1},
		{name: "trailing-garbage", status: failed, code: "invalid_json_line", line: 2},
		{name: "two-objects-one-line", status: failed, code: "invalid_json_line", line: 1},
		{name: "pretty-printed", status: failed, code: "invalid_json_line", line: 1, errs: 14},
		{name: "truncated-last-line", status: failed, code: "invalid_json_line", line: 3},
		{name: "unescaped-newline-in-string", status: failed, code: "invalid_json_line", line: 2,
			errs: 2, then: []corpusError{{"invalid_json_line", 3}}},
		{name: "raw-tab-in-string", status: failed, code: "invalid_json_line", line: 1},
		{name: "nul-in-string", status: failed, code: "invalid_json_line", line: 2},
		{name: "nul-padding-at-end", status: failed, code: "invalid_json_line", line: 3},
		{name: "nul-only-line", status: failed, code: "invalid_json_line", line: 2},
		{name: "cr-only-line-endings", status: failed, code: "invalid_json_line", line: 1},
		// UTF-16 (Windows PowerShell's "> file"): its NUL bytes break every line, and the
		// NUL after the last "\n" is a line of its own.
		{name: "utf16le-bom", status: failed, code: "invalid_json_line", line: 1, errs: 3},
		{name: "bom-mid-file", status: failed, code: "invalid_json_line", line: 2},
		{name: "double-bom", status: failed, code: "invalid_json_line", line: 1},
		{name: "non-json-whitespace-lines", status: failed, code: "invalid_json_line", line: 2,
			errs: 2, then: []corpusError{{"invalid_json_line", 4}}},
		{name: "nesting-over-10000", gen: func() string { return corpusNested(10001) },
			status: failed, code: "invalid_json_line", line: 2},
		{name: "blank-lines-past-scan-chunk", gen: func() string {
			return corpusRequest("task-0", "") + strings.Repeat("\n", 300_000) + "{oops\n"
		}, status: failed, code: "invalid_json_line", line: 300_002},

		// invalid_request: a line that is JSON but not a request.
		{name: "json-array-one-line", status: failed, code: "invalid_request", line: 1},
		{name: "top-level-scalars", status: failed, code: "invalid_request", line: 1, errs: 4},
		{name: "empty-object", status: failed, code: "invalid_request", line: 1},
		{name: "chat-body-without-envelope", status: failed, code: "invalid_request", line: 1, errs: 2},
		{name: "finetune-format", status: failed, code: "invalid_request", line: 1},
		{name: "missing-custom-id", status: failed, code: "invalid_request", line: 2},
		{name: "empty-custom-id", status: failed, code: "invalid_request", line: 2},
		{name: "custom-id-number", status: failed, code: "invalid_request", line: 1},
		{name: "custom-id-null", status: failed, code: "invalid_request", line: 1},
		{name: "custom-id-over-64KiB", gen: func() string { return corpusRequest(idAtCap+"x", "") },
			status: failed, code: "invalid_request", line: 1},
		{name: "missing-method", status: failed, code: "invalid_request", line: 1},
		{name: "method-get", status: failed, code: "invalid_request", line: 1},
		{name: "method-lowercase", status: failed, code: "invalid_request", line: 1},
		{name: "method-not-string", status: failed, code: "invalid_request", line: 1},
		{name: "missing-url", status: failed, code: "invalid_request", line: 1},
		{name: "url-not-string", status: failed, code: "invalid_request", line: 1},
		{name: "missing-body", status: failed, code: "invalid_request", line: 1},
		{name: "body-double-encoded-string", status: failed, code: "invalid_request", line: 1},
		{name: "body-null", status: failed, code: "invalid_request", line: 1},
		// The fields each endpoint requires, and their JSON types.
		{name: "body-missing-messages", status: failed, code: "invalid_request", line: 2},
		{name: "body-content-number", status: failed, code: "invalid_request", line: 3},
		{name: "image-edit-without-images", endpoint: "/v1/images/edits", status: failed, code: "invalid_request", line: 1},
		{name: "missing-model", status: failed, code: "invalid_request", line: 1},
		{name: "model-not-string", status: failed, code: "invalid_request", line: 1},
		{name: "model-outside-body", status: failed, code: "invalid_request", line: 1},
		{name: "stream-true", status: failed, code: "invalid_request", line: 2},
		// The deployment exists but does not serve the endpoint.
		{name: "deployment-not-serving-endpoint", endpoint: "/v1/embeddings", status: failed, code: "invalid_request", line: 1},

		// duplicate_custom_id.
		{name: "duplicate-custom-id", status: failed, code: "duplicate_custom_id", line: 4},
		{name: "duplicate-custom-id-escaped", status: failed, code: "duplicate_custom_id", line: 2},
		{name: "duplicate-keys-custom-id", status: failed, code: "duplicate_custom_id", line: 2},
		{name: "invalid-utf8-custom-ids-collide", status: failed, code: "invalid_request", line: 1,
			errs: 2, then: []corpusError{{"invalid_request", 2}}},

		// url_mismatch, between lines and against the batch's endpoint.
		{name: "url-mismatch-between-lines", status: failed, code: "url_mismatch", line: 3},
		{name: "url-mismatch-endpoint", status: failed, code: "url_mismatch", line: 1},
		{name: "url-mismatch-endpoint-after-blank-lines", status: failed, code: "url_mismatch", line: 3},
		{name: "url-trailing-slash", status: failed, code: "url_mismatch", line: 1},
		{name: "url-absolute-azure", status: failed, code: "url_mismatch", line: 1},
		// The first line sets the url the others are compared with: it is named too.
		{name: "url-typo-first-line", status: failed, code: "url_mismatch", line: 1, errs: 4},

		// model_not_found and model_mismatch.
		{name: "model-not-found", status: failed, code: "model_not_found", line: 1},
		{name: "model-placeholder-from-guide", status: failed, code: "model_not_found", line: 1},
		{name: "model-mismatch", status: failed, code: "model_mismatch", line: 3},
		// The first line sets the model the others are compared with: it is named too.
		{name: "model-typo-first-line", status: failed, code: "model_not_found", line: 1, errs: 3,
			then: []corpusError{{"model_mismatch", 2}, {"model_mismatch", 3}}},
		{name: "problem-on-line-200", gen: func() string {
			var s strings.Builder
			for i := range 199 {
				s.WriteString(corpusRequest(fmt.Sprintf("task-%d", i), ""))
			}
			s.WriteString(strings.Replace(corpusRequest("task-199", ""), `"model":"dep"`, `"model":"other"`, 1))
			return s.String()
		}, status: failed, code: "model_mismatch", line: 200},

		// too_many_tasks: 6 requests over 7 lines where 5 are allowed.
		{name: "too-many-tasks", maxRequests: 5, status: failed, code: "too_many_tasks", line: 7},

		// Several problems: each line's first, in line order, at most MaxBatchErrors.
		{name: "problems-in-line-order", status: failed, code: "invalid_request", line: 2, errs: 4, then: []corpusError{
			{"invalid_json_line", 4}, {"duplicate_custom_id", 5}, {"model_mismatch", 6},
		}},
		{name: "problem-after-blank-lines", status: failed, code: "duplicate_custom_id", line: 6},
		{name: "crlf-problem-line-numbers", status: failed, code: "invalid_request", line: 3},
		{name: "bom-then-missing-custom-id", status: failed, code: "invalid_request", line: 1, errs: 2,
			then: []corpusError{{"duplicate_custom_id", 3}}},
		{name: "over-100-problems", status: failed, code: "invalid_json_line", line: 1,
			errs: sluice.MaxBatchErrors, then: overCap, lastLine: sluice.MaxBatchErrors},
	}
}

// TestBadInputCorpus uploads each input of the corpus, creates a batch from it, and
// checks how the batch ends: failed with the first problem at its line, or completed.
func TestBadInputCorpus(t *testing.T) {
	t.Parallel()
	cases := corpusCases()

	// The corpus and the table cannot drift: every file has a row and every row's file
	// exists (its subtest fails reading it otherwise).
	rows := make(map[string]bool)
	for _, tc := range cases {
		if rows[tc.name] {
			t.Errorf("case %s is listed twice", tc.name)
		}
		rows[tc.name] = true
	}
	entries, err := os.ReadDir(corpusDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == ".gitattributes" {
			continue
		}
		name, isJSONL := strings.CutSuffix(e.Name(), ".jsonl")
		if !isJSONL || !rows[name] {
			t.Errorf("%s/%s has no row in the table", corpusDir, e.Name())
		}
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			input := ""
			if tc.gen != nil {
				input = tc.gen()
			} else {
				b, err := os.ReadFile(filepath.Join(corpusDir, tc.name+".jsonl"))
				if err != nil {
					t.Fatalf("read the case's file: %v", err)
				}
				input = string(b)
			}
			e := MustCorpusEngine(t, tc.maxRequests)
			got := MustCorpusRun(t, e, input, tc.endpoint)
			diffs := tc.check(got)
			if reason, known := knownIssues[tc.name]; known {
				if len(diffs) == 0 {
					t.Fatalf("passes now: remove it from knownIssues (%s)", reason)
				}
				t.Skipf("known issue: %s; %s", reason, strings.Join(diffs, "; "))
			}
			for _, d := range diffs {
				t.Error(d)
			}
		})
	}
}

// corpusResult is how a batch ended.
type corpusResult struct {
	batch  *sluice.Batch
	output []string // custom_ids of the output file, sorted
	failed int      // lines of the error file
}

// check returns how got differs from the case, one message per difference.
func (tc corpusCase) check(got corpusResult) []string {
	var diffs []string
	b := got.batch
	if b.Status != tc.status {
		diffs = append(diffs, fmt.Sprintf("status: got %s with errors %+v, want %s", b.Status, corpusErrors(b.Errors), tc.status))
		return diffs
	}
	if tc.status == sluice.StatusCompleted {
		n := len(tc.ids)
		if want := (sluice.RequestCounts{Total: n, Completed: n}); b.RequestCounts != want {
			diffs = append(diffs, fmt.Sprintf("request counts: got %+v, want %+v", b.RequestCounts, want))
		}
		if d := cmp.Diff(tc.ids, got.output); d != "" {
			diffs = append(diffs, fmt.Sprintf("output custom_ids (-want +got):\n%s", d))
		}
		if got.failed != 0 {
			diffs = append(diffs, fmt.Sprintf("error file: got %d lines, want 0", got.failed))
		}
		return diffs
	}
	errs := corpusErrors(b.Errors)
	wantN := max(tc.errs, 1)
	if len(errs) != wantN {
		diffs = append(diffs, fmt.Sprintf("errors: got %d, want %d", len(errs), wantN))
	}
	if len(errs) == 0 {
		return diffs
	}
	if want := (corpusError{tc.code, tc.line}); errs[0] != want {
		diffs = append(diffs, fmt.Sprintf("first error: got %+v (%q), want %+v", errs[0], b.Errors[0].Message, want))
	}
	if tc.then != nil {
		if d := cmp.Diff(tc.then, errs[1:]); d != "" {
			diffs = append(diffs, fmt.Sprintf("errors after the first (-want +got):\n%s", d))
		}
	}
	if tc.lastLine != 0 && errs[len(errs)-1].Line != tc.lastLine {
		diffs = append(diffs, fmt.Sprintf("last error: got line %d, want %d", errs[len(errs)-1].Line, tc.lastLine))
	}
	for i := 1; i < len(errs); i++ {
		if errs[i].Line <= errs[i-1].Line {
			diffs = append(diffs, fmt.Sprintf("errors out of line order: %+v", errs))
			break
		}
	}
	return diffs
}

// corpusErrors drops the messages of a batch's errors.
func corpusErrors(errs []sluice.BatchError) []corpusError {
	out := make([]corpusError, len(errs))
	for i, e := range errs {
		out[i] = corpusError{e.Code, e.Line}
	}
	return out
}

// corpusRequest returns one request line for deployment dep, with its newline;
// content "" asks a short question.
func corpusRequest(customID, content string) string {
	if content == "" {
		content = "Question " + customID + "?"
	}
	line, err := json.Marshal(map[string]any{
		"custom_id": customID, "method": "POST", "url": "/chat/completions",
		"body": map[string]any{"model": "dep", "messages": []any{map[string]string{"role": "user", "content": content}}},
	})
	if err != nil {
		panic(err) // only strings and maps: cannot fail
	}
	return string(line) + "\n"
}

// corpusNested returns a good line, then a request line whose JSON nests depth
// arrays and objects deep, counting the line's own object and its body.
func corpusNested(depth int) string {
	arrays := depth - 2
	return corpusRequest("task-0", "") +
		`{"custom_id":"deep","method":"POST","url":"/chat/completions","body":{"model":"dep","messages":[{"role":"user","content":"Hi"}],"metadata_x":` +
		strings.Repeat("[", arrays) + strings.Repeat("]", arrays) + "}}\n"
}

// MustCorpusEngine starts an engine as setup does, over SQLite in a temporary directory
// and an in-memory bucket, with a fake upstream that answers every request. It serves
// two deployments: dep, on every endpoint, and chat-only, on chat completions only.
func MustCorpusEngine(tb testing.TB, maxRequests int) corpusEngine {
	tb.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}`)
	}))
	tb.Cleanup(ts.Close)
	up := sluice.Upstream{BaseURL: ts.URL + "/v1", MaxConcurrency: 4}
	store, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "db"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	deps := []sluice.Deployment{
		{Name: "dep", Upstreams: []sluice.Upstream{up}},
		{Name: "chat-only", Upstreams: []sluice.Upstream{up}, Endpoints: []string{"/v1/chat/completions"}},
	}
	e, err := engine.New(store, blob.NewMem(), deps, &engine.Options{MaxRequests: maxRequests, PollInterval: 10 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := e.Stop(ctx); err != nil {
			tb.Errorf("stop: %v", err)
		}
	})
	return corpusEngine{eng: e, store: store}
}

// corpusEngine is an engine and the Store it runs on, where batches are read.
type corpusEngine struct {
	eng   *engine.Engine
	store *sqlite.Store
}

// MustCorpusRun uploads input, creates a batch from it on endpoint ("" means
// /chat/completions), waits until the batch ends, and reads its result files.
func MustCorpusRun(tb testing.TB, e corpusEngine, input, endpoint string) corpusResult {
	tb.Helper()
	if endpoint == "" {
		endpoint = "/chat/completions"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	f, err := e.eng.UploadFile(ctx, sluice.FileUpload{Filename: "input.jsonl", Body: strings.NewReader(input)})
	if err != nil {
		tb.Fatalf("upload: %v", err)
	}
	b, _, err := e.eng.CreateBatch(ctx, sluice.BatchCreate{InputFileID: f.ID, Endpoint: endpoint, CompletionWindow: "24h"})
	if err != nil {
		tb.Fatalf("create batch: %v", err)
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !b.Status.Terminal() {
		select {
		case <-ctx.Done():
			tb.Fatalf("batch still %s after 30s", b.Status)
		case <-tick.C:
		}
		if b, err = e.store.FindBatchByID(ctx, b.ID); err != nil {
			tb.Fatal(err)
		}
	}
	res := corpusResult{batch: b, output: MustReadCustomIDs(tb, e, b.OutputFileID)}
	slices.Sort(res.output)
	res.failed = len(MustReadCustomIDs(tb, e, b.ErrorFileID))
	return res
}

// MustReadCustomIDs returns the custom_id of every line of a result file; none when
// id is "".
func MustReadCustomIDs(tb testing.TB, e corpusEngine, id string) []string {
	tb.Helper()
	if id == "" {
		return nil
	}
	_, rc, err := e.eng.FileContent(context.Background(), id)
	if err != nil {
		tb.Fatal(err)
	}
	defer rc.Close()
	var ids []string
	sc := bufio.NewScanner(rc)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			tb.Fatalf("result line %q: %v", sc.Text(), err)
		}
		ids = append(ids, line.CustomID)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return ids
}
