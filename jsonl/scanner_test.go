package jsonl_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

// bad is a short problem: a BatchError without its message.
type bad struct {
	Code  string
	Param string
	Line  int
}

// scanCase is one input file and what a scan of it must find.
type scanCase struct {
	name     string
	input    string
	want     []bad
	requests int
	entries  []int // lines of the entries, when want is empty
	url      string
	model    string
	bom      bool
}

// short drops the messages of problems.
func short(ps []sluice.BatchError) []bad {
	var out []bad
	for _, p := range ps {
		out = append(out, bad{p.Code, p.Param, p.Line})
	}
	return out
}

func scanCases() []scanCase {
	const chat = "/v1/chat/completions"
	long := req("long", chat, "gpt-4o")
	long = strings.Replace(long, "Say hi.", strings.Repeat("abcdefgh", 1<<18), 1) // 2 MiB
	var hundredFifty strings.Builder
	var capped []bad
	for i := 1; i <= 150; i++ {
		hundredFifty.WriteString("{nope\n")
		if i <= sluice.MaxBatchErrors {
			capped = append(capped, bad{"invalid_json_line", "", i})
		}
	}
	atCap := strings.Repeat("x", 65536)
	overCap := atCap + "x"
	escapedOverCap := strings.Repeat(`\u0061`, 10923) // 65538 bytes as written, 10923 decoded
	deep := func(arrays int) string {
		return `{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","x":` +
			strings.Repeat("[", arrays) + strings.Repeat("]", arrays) + "}}"
	}
	return []scanCase{
		{
			name:     "clean",
			input:    lines(good("a"), good("b"), good("c")),
			requests: 3, entries: []int{1, 2, 3}, url: chat, model: "gpt-4o",
		},
		{
			name:     "blank-lines-shift-numbers",
			input:    "\n" + good("a") + "\n  \t\n\r\n" + "not json\n" + good("b") + "\n\n",
			want:     []bad{{"invalid_json_line", "", 5}},
			requests: 3, url: chat, model: "gpt-4o",
		},
		{
			name:     "blank-lines-in-clean-file",
			input:    "\n\n" + good("a") + "\n \n" + good("b"),
			requests: 2, entries: []int{3, 5}, url: chat, model: "gpt-4o",
		},
		{
			name:     "crlf",
			input:    good("a") + "\r\n" + good("b") + "\r\n\r\n",
			requests: 2, entries: []int{1, 2}, url: chat, model: "gpt-4o",
		},
		{
			name:     "crlf-bad-line",
			input:    good("a") + "\r\n{\r\n",
			want:     []bad{{"invalid_json_line", "", 2}},
			requests: 2, url: chat, model: "gpt-4o",
		},
		{
			name:     "bom",
			input:    "\xEF\xBB\xBF" + lines(good("a"), good("b")),
			requests: 2, entries: []int{1, 2}, url: chat, model: "gpt-4o", bom: true,
		},
		{
			name:     "bom-not-at-start-is-invalid",
			input:    lines(good("a"), "\xEF\xBB\xBF"+good("b")),
			want:     []bad{{"invalid_json_line", "", 2}},
			requests: 2, url: chat, model: "gpt-4o",
		},
		{
			name:     "partial-bom",
			input:    "\xEF\xBB",
			want:     []bad{{"invalid_json_line", "", 1}},
			requests: 1,
		},
		{
			name:     "last-line-without-newline",
			input:    good("a") + "\n" + good("b"),
			requests: 2, entries: []int{1, 2}, url: chat, model: "gpt-4o",
		},
		{
			name:     "last-line-without-newline-bad",
			input:    good("a") + "\n" + `{"custom_id":`,
			want:     []bad{{"invalid_json_line", "", 2}},
			requests: 2, url: chat, model: "gpt-4o",
		},
		{
			name:     "invalid-json-each-line",
			input:    lines(good("a"), "{", good("b"), `{"custom_id":"c",}`, "}"),
			want:     []bad{{"invalid_json_line", "", 2}, {"invalid_json_line", "", 4}, {"invalid_json_line", "", 5}},
			requests: 5, url: chat, model: "gpt-4o",
		},
		{
			name:     "not-an-object",
			input:    lines(`[1,2]`, `"text"`, `42`, `null`),
			want:     []bad{{"invalid_request", "", 1}, {"invalid_request", "", 2}, {"invalid_request", "", 3}, {"invalid_request", "", 4}},
			requests: 4,
		},
		{
			name: "custom-id",
			input: lines(
				`{"method":"POST","url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"custom_id":7,"method":"POST","url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"custom_id":"","method":"POST","url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"custom_id":null,"method":"POST","url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"Custom_ID":"x","method":"POST","url":"/v1/embeddings","body":{"model":"e"}}`,
				"{\"custom_id\":\"row-\xe9\",\"method\":\"POST\",\"url\":\"/v1/embeddings\",\"body\":{\"model\":\"e\"}}",
			),
			want: []bad{
				{"invalid_request", "custom_id", 1}, {"invalid_request", "custom_id", 2},
				{"invalid_request", "custom_id", 3}, {"invalid_request", "custom_id", 4},
				{"invalid_request", "custom_id", 5}, {"invalid_request", "custom_id", 6},
			},
			requests: 6, url: "/v1/embeddings", model: "e",
		},
		{
			name: "method",
			input: lines(
				`{"custom_id":"a","url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"custom_id":"b","method":"GET","url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"custom_id":"c","method":"post","url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"custom_id":"d","method":1,"url":"/v1/embeddings","body":{"model":"e"}}`,
				`{"custom_id":"e","method":"GET","method":"POST","url":"/v1/embeddings","body":{"model":"e"}}`,
			),
			want: []bad{
				{"invalid_request", "method", 1}, {"invalid_request", "method", 2},
				{"invalid_request", "method", 3}, {"invalid_request", "method", 4},
			},
			requests: 5, url: "/v1/embeddings", model: "e",
		},
		{
			name: "url",
			input: lines(
				`{"custom_id":"a","method":"POST","body":{"model":"e"}}`,
				`{"custom_id":"b","method":"POST","url":5,"body":{"model":"e"}}`,
				`{"custom_id":"c","method":"POST","url":"/v1/embeddings","body":{"model":"e"}}`,
			),
			want:     []bad{{"invalid_request", "url", 1}, {"invalid_request", "url", 2}},
			requests: 3, url: "/v1/embeddings", model: "e",
		},
		{
			name: "body",
			input: lines(
				`{"custom_id":"a","method":"POST","url":"/v1/embeddings"}`,
				`{"custom_id":"b","method":"POST","url":"/v1/embeddings","body":"x"}`,
				`{"custom_id":"c","method":"POST","url":"/v1/embeddings","body":[{"model":"e"}]}`,
				`{"custom_id":"d","method":"POST","url":"/v1/embeddings","body":null}`,
			),
			want: []bad{
				{"invalid_request", "body", 1}, {"invalid_request", "body", 2},
				{"invalid_request", "body", 3}, {"invalid_request", "body", 4},
			},
			requests: 4, url: "/v1/embeddings",
		},
		{
			name: "body-model",
			input: lines(
				`{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{}}`,
				`{"custom_id":"b","method":"POST","url":"/v1/embeddings","body":{"model":5}}`,
				`{"custom_id":"c","method":"POST","url":"/v1/embeddings","body":{"model":null}}`,
				`{"custom_id":"d","method":"POST","url":"/v1/embeddings","body":{"Model":"e"}}`,
				`{"custom_id":"e","method":"POST","url":"/v1/embeddings","body":{"input":{"model":"e"}}}`,
			),
			want: []bad{
				{"invalid_request", "body.model", 1}, {"invalid_request", "body.model", 2},
				{"invalid_request", "body.model", 3}, {"invalid_request", "body.model", 4},
				{"invalid_request", "body.model", 5},
			},
			requests: 5, url: "/v1/embeddings",
		},
		{
			name: "body-stream",
			input: lines(
				`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m","stream":false}}`,
				`{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"model":"m","stream":true}}`,
				`{"custom_id":"c","method":"POST","url":"/v1/chat/completions","body":{"model":"m","stream":null}}`,
			),
			want:     []bad{{"invalid_request", "body.stream", 2}},
			requests: 3, url: chat, model: "m",
		},
		{
			name:     "escaped-member-names",
			input:    lines(`{"custom\u005fid":"a","method":"POST","url":"/v1/embeddings","body":{"mod\u0065l":"e"}}`),
			requests: 1, entries: []int{1}, url: "/v1/embeddings", model: "e",
		},
		{
			name:     "duplicate-custom-id",
			input:    lines(good("a"), good("b"), good("a"), good("b"), good("a")),
			want:     []bad{{"duplicate_custom_id", "custom_id", 3}, {"duplicate_custom_id", "custom_id", 4}, {"duplicate_custom_id", "custom_id", 5}},
			requests: 5, url: chat, model: "gpt-4o",
		},
		{
			name:     "duplicate-of-line-with-problem",
			input:    lines(`{"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{"model":"gpt-4o"}}`, good("a")),
			want:     []bad{{"invalid_request", "method", 1}, {"duplicate_custom_id", "custom_id", 2}},
			requests: 2, url: chat, model: "gpt-4o",
		},
		{
			name:     "endpoint-forms-are-not-a-mismatch",
			input:    lines(req("a", "/chat/completions", "m"), req("b", "/v1/chat/completions", "m"), req("c", "/chat/completions", "m")),
			requests: 3, entries: []int{1, 2, 3}, url: "/chat/completions", model: "m",
		},
		{
			name:     "url-mismatch",
			input:    lines(req("a", chat, "m"), req("b", "/v1/embeddings", "m"), req("c", "/chat/completions", "m"), req("d", "/v1/responses", "m")),
			want:     []bad{{"url_mismatch", "url", 2}, {"url_mismatch", "url", 4}},
			requests: 4, url: chat, model: "m",
		},
		{
			name:     "unknown-urls-compare-raw",
			input:    lines(req("a", "/v1/foo", "m"), req("b", "/v1/foo", "m"), req("c", "/foo", "m"), req("d", "/v1/chat/completions/", "m")),
			want:     []bad{{"url_mismatch", "url", 3}, {"url_mismatch", "url", 4}},
			requests: 4, url: "/v1/foo", model: "m",
		},
		{
			name:     "url-reference-from-line-with-problem",
			input:    lines(`{"method":"POST","url":"/v1/embeddings","body":{"model":"m"}}`, req("b", chat, "m")),
			want:     []bad{{"invalid_request", "custom_id", 1}, {"url_mismatch", "url", 2}},
			requests: 2, url: "/v1/embeddings", model: "m",
		},
		{
			name:     "model-mismatch",
			input:    lines(req("a", chat, "m1"), req("b", chat, "m2"), req("c", chat, "m1"), req("d", chat, "M1")),
			want:     []bad{{"model_mismatch", "body.model", 2}, {"model_mismatch", "body.model", 4}},
			requests: 4, url: chat, model: "m1",
		},
		{
			name: "first-problem-of-a-line-wins",
			input: lines(
				good("a"),
				`{"method":"GET","url":5,"body":3}`,
				`{"custom_id":"c","method":"GET","body":{"model":"x","stream":true}}`,
				`{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{"stream":true}}`,
				`{"custom_id":"e","method":"POST","url":"/v1/chat/completions","body":{"model":"x","stream":true}}`,
				req("a", "/v1/embeddings", "other"),
				req("f", "/v1/embeddings", "other"),
			),
			want: []bad{
				{"invalid_request", "custom_id", 2}, {"invalid_request", "method", 3},
				{"invalid_request", "body.model", 4}, {"invalid_request", "body.stream", 5},
				{"duplicate_custom_id", "custom_id", 6}, {"url_mismatch", "url", 7},
			},
			requests: 7, url: chat, model: "gpt-4o",
		},
		{
			name:  "empty-file",
			input: "",
			want:  []bad{{"empty_batch", "", 0}},
		},
		{
			name:  "only-blank-lines",
			input: "\n \n\t\r\n\r",
			want:  []bad{{"empty_batch", "", 0}},
		},
		{
			name:  "only-bom",
			input: "\xEF\xBB\xBF",
			want:  []bad{{"empty_batch", "", 0}},
			bom:   true,
		},
		{
			name:     "line-over-1mib",
			input:    lines(good("a"), long, good("b")),
			requests: 3, entries: []int{1, 2, 3}, url: chat, model: "gpt-4o",
		},
		{
			name:     "invalid-line-over-1mib",
			input:    lines(good("a"), long[:len(long)-1], good("b")),
			want:     []bad{{"invalid_json_line", "", 2}},
			requests: 3, url: chat, model: "gpt-4o",
		},
		{
			name:     "newline-in-string-ends-the-line",
			input:    lines(good("a"), `{"custom_id":"b`, `c","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o"}}`, good("d")),
			want:     []bad{{"invalid_json_line", "", 2}, {"invalid_json_line", "", 3}},
			requests: 4, url: chat, model: "gpt-4o",
		},
		{
			name:     "nesting-10000-deep",
			input:    lines(good("a"), deep(9998)),
			requests: 2, entries: []int{1, 2}, url: chat, model: "gpt-4o",
		},
		{
			name:     "nesting-10001-deep",
			input:    lines(good("a"), deep(9999)),
			want:     []bad{{"invalid_json_line", "", 2}},
			requests: 2, url: chat, model: "gpt-4o",
		},
		{
			name:     "members-at-cap",
			input:    lines(req(atCap, "/"+atCap[1:], atCap), `{"custom_id":"b","method":"POST","url":"/`+atCap[1:]+`","body":{"model":"`+atCap+`"}}`),
			requests: 2, entries: []int{1, 2}, url: "/" + atCap[1:], model: atCap,
		},
		{
			name:     "custom-id-over-cap",
			input:    lines(good("a"), good(overCap), good(overCap), strings.Replace(good("a"), `"a"`, `"`+escapedOverCap+`"`, 1)),
			want:     []bad{{"invalid_request", "custom_id", 2}, {"invalid_request", "custom_id", 3}, {"invalid_request", "custom_id", 4}},
			requests: 4, url: chat, model: "gpt-4o",
		},
		{
			name:     "method-over-cap",
			input:    lines(strings.Replace(good("a"), `"POST"`, `"`+overCap+`"`, 1), good("b")),
			want:     []bad{{"invalid_request", "method", 1}},
			requests: 2, url: chat, model: "gpt-4o",
		},
		{
			name:     "url-over-cap-is-not-the-batch-url",
			input:    lines(req("a", "/"+overCap[1:], "m"), req("b", "/v1/embeddings", "m"), req("c", chat, "m")),
			want:     []bad{{"invalid_request", "url", 1}, {"url_mismatch", "url", 3}},
			requests: 3, url: "/v1/embeddings", model: "m",
		},
		{
			name:     "model-over-cap-is-not-the-batch-model",
			input:    lines(req("a", chat, overCap), req("b", chat, "m"), req("c", chat, "n")),
			want:     []bad{{"invalid_request", "body.model", 1}, {"model_mismatch", "body.model", 3}},
			requests: 3, url: chat, model: "m",
		},
		{
			name:     "cap-of-100-problems",
			input:    hundredFifty.String() + good("a") + "\n",
			want:     capped,
			requests: 151, url: chat, model: "gpt-4o",
		},
	}
}

func TestScanner(t *testing.T) {
	t.Parallel()
	for _, tc := range scanCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sum := scan(t, []byte(tc.input), 0)
			var got []bad
			for _, p := range sum.Problems {
				got = append(got, bad{p.Code, p.Param, p.Line})
				if p.Line > 0 && !strings.HasPrefix(p.Message, fmt.Sprintf("Line %d ", p.Line)) {
					t.Errorf("got message %q, want it to start with %q", p.Message, fmt.Sprintf("Line %d ", p.Line))
				}
				if !strings.HasSuffix(p.Message, ".") {
					t.Errorf("got message %q, want a full sentence", p.Message)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if sum.Requests != tc.requests {
				t.Errorf("got Requests %d, want %d", sum.Requests, tc.requests)
			}
			if sum.URL != tc.url {
				t.Errorf("got URL %q, want %q", sum.URL, tc.url)
			}
			if sum.Model != tc.model {
				t.Errorf("got Model %q, want %q", sum.Model, tc.model)
			}
			if sum.BOM != tc.bom {
				t.Errorf("got BOM %v, want %v", sum.BOM, tc.bom)
			}
			checkEntriesBeforeProblems(t, sum)
			if len(tc.want) > 0 {
				return
			}
			var gotLines []int
			for _, e := range sum.Entries {
				gotLines = append(gotLines, e.Line)
			}
			if diff := cmp.Diff(tc.entries, gotLines); diff != "" {
				t.Errorf("entry lines (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScannerMessages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  []string // substrings of the one problem's message
	}{
		{"duplicate-names-earlier-line", lines(good("x"), good("a"), "", good("a")), []string{"Line 4 ", `"a"`, "line 2"}},
		{"url-mismatch-names-both", lines(good("a"), req("b", "/v1/embeddings", "gpt-4o")), []string{"Line 2 ", `"/v1/embeddings"`, "line 1", `"/v1/chat/completions"`}},
		{"model-mismatch-names-both", lines(good("a"), req("b", "/v1/chat/completions", "o3")), []string{"Line 2 ", `"o3"`, "line 1", `"gpt-4o"`}},
		{"method-shows-value", lines(`{"custom_id":"a","method":"GET","url":"/v1/embeddings","body":{"model":"e"}}`), []string{"Line 1 ", `"GET"`, "POST"}},
		{"stream", lines(`{"custom_id":"a","method":"POST","url":"/v1/embeddings","body":{"model":"e","stream":true}}`), []string{"body.stream", "streaming"}},
		{"custom-id-over-cap", lines(good(strings.Repeat("z", 65537))), []string{"Line 1 ", "has a custom_id longer than 65536 bytes."}},
		{"method-over-cap", lines(strings.Replace(good("a"), `"POST"`, `"`+strings.Repeat("P", 70000)+`"`, 1)), []string{"Line 1 ", "has a method longer than 65536 bytes."}},
		{"url-over-cap", lines(req("a", strings.Repeat("/", 65537), "m")), []string{"Line 1 ", "has a url longer than 65536 bytes."}},
		{"model-over-cap", lines(req("a", "/v1/embeddings", strings.Repeat("m", 65537))), []string{"Line 1 ", "has a body.model longer than 65536 bytes."}},
		{"long-custom-id-is-clipped", lines(good("a"), good(strings.Repeat("z", 5000)), good(strings.Repeat("z", 5000))), []string{"Line 3 ", "…", "line 2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sum := scan(t, []byte(tc.input), 0)
			if len(sum.Problems) != 1 {
				t.Fatalf("got %d problems, want 1: %+v", len(sum.Problems), sum.Problems)
			}
			msg := sum.Problems[0].Message
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("got message %q, want it to contain %q", msg, w)
				}
			}
			if len(msg) > 400 {
				t.Errorf("got a message of %d bytes, want at most 400", len(msg))
			}
		})
	}
}

func TestScannerChunks(t *testing.T) {
	t.Parallel()
	for _, tc := range scanCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := []byte(tc.input)
			want := scan(t, data, 0)
			sizes := []int{1, 2, 3, 7, 4096}
			if len(data) > 1<<20 {
				sizes = []int{7, 4096, 1 << 16}
			}
			for _, n := range sizes {
				if diff := cmp.Diff(want, scan(t, data, n)); diff != "" {
					t.Errorf("chunks of %d bytes (-whole +chunked):\n%s", n, diff)
				}
			}
		})
	}
}

func TestScannerTeeReader(t *testing.T) {
	t.Parallel()
	data := []byte("\xEF\xBB\xBF" + lines(good("a"), good("b")))
	var entries []jsonl.Entry
	s := jsonl.NewScanner(&jsonl.ScanOptions{EntryFunc: func(e jsonl.Entry) error {
		entries = append(entries, e)
		return nil
	}})
	var disk bytes.Buffer
	if _, err := io.Copy(&disk, io.TeeReader(bytes.NewReader(data), s)); err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	sum, err := s.Close()
	if err != nil {
		t.Fatalf("got Close error %v, want nil", err)
	}
	if len(entries) != 2 || len(sum.Problems) != 0 {
		t.Errorf("got %d entries and problems %+v, want 2 entries and none", len(entries), sum.Problems)
	}
	if again, err := s.Close(); again != sum || err != nil {
		t.Errorf("got a different summary or error %v from a second Close, want the same", err)
	}
}

func TestScannerEntriesSliceBack(t *testing.T) {
	t.Parallel()
	data := []byte("\xEF\xBB\xBF" + good("first") + "\r\n\n  \n" + good(`q"uote\back`) + "\n" +
		good("ünï\u2028cödé") + "\r\n\t\r\n" + good("x\n\ty") + "\n" + good("last"))
	for _, chunk := range []int{0, 1, 5} {
		sum := scan(t, data, chunk)
		if len(sum.Problems) != 0 {
			t.Fatalf("got problems %+v, want none", sum.Problems)
		}
		wantIDs := []string{"first", `q"uote\back`, "ünï\u2028cödé", "x\n\ty", "last"}
		wantLines := []int{1, 4, 5, 7, 8}
		if len(sum.Entries) != len(wantIDs) {
			t.Fatalf("got %d entries, want %d", len(sum.Entries), len(wantIDs))
		}
		physical := strings.Split(string(data[3:]), "\n")
		for i, e := range sum.Entries {
			line := data[e.Offset : e.Offset+int64(e.Length)]
			r, err := jsonl.ParseRequest(line)
			if err != nil {
				t.Fatalf("entry %d: got error %v, want nil", i, err)
			}
			if r.CustomID != e.CustomID || e.CustomID != wantIDs[i] {
				t.Errorf("entry %d: got custom_id %q parsed and %q indexed, want %q", i, r.CustomID, e.CustomID, wantIDs[i])
			}
			if e.Line != wantLines[i] {
				t.Errorf("entry %d: got line %d, want %d", i, e.Line, wantLines[i])
			}
			if got, want := string(line), strings.TrimSuffix(physical[e.Line-1], "\r"); got != want {
				t.Errorf("entry %d: got line text %q, want %q", i, got, want)
			}
		}
	}
}

func TestScannerTooManyTasks(t *testing.T) {
	t.Parallel()
	tiny := func(i int) string {
		return fmt.Sprintf(`{"custom_id":"r%d","method":"POST","url":"/v1/embeddings","body":{"model":"e","input":"x"}}`, i)
	}
	build := func(n int, tail ...string) []byte {
		var b bytes.Buffer
		for i := 1; i <= n; i++ {
			b.WriteString(tiny(i))
			b.WriteByte('\n')
		}
		for _, l := range tail {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		return b.Bytes()
	}
	tests := []struct {
		name     string
		data     []byte
		requests int
		want     []bad
	}{
		{"exactly-the-most", build(sluice.MaxRequests), sluice.MaxRequests, nil},
		{"one-over", build(sluice.MaxRequests + 1), sluice.MaxRequests + 1, []bad{{"too_many_tasks", "", sluice.MaxRequests + 1}}},
		{
			name:     "over-with-later-problems",
			data:     build(sluice.MaxRequests, "{", tiny(100002), "{", tiny(1)),
			requests: sluice.MaxRequests + 4,
			want: []bad{
				{"too_many_tasks", "", sluice.MaxRequests + 1},
				{"invalid_json_line", "", sluice.MaxRequests + 3},
				{"duplicate_custom_id", "custom_id", sluice.MaxRequests + 4},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sum := scan(t, tc.data, 1<<16)
			if sum.Requests != tc.requests {
				t.Errorf("got Requests %d, want %d", sum.Requests, tc.requests)
			}
			if diff := cmp.Diff(tc.want, short(sum.Problems), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if len(sum.Entries) != sluice.MaxRequests {
				t.Errorf("got %d entries, want the first %d", len(sum.Entries), sluice.MaxRequests)
			}
		})
	}
}

func TestScannerEntryFunc(t *testing.T) {
	t.Parallel()
	t.Run("stops-at-first-problem", func(t *testing.T) {
		t.Parallel()
		data := []byte(lines(good("a"), "", good("b"), "{", good("c"), good("a")))
		for _, chunk := range []int{0, 1, 7} {
			sum := scan(t, data, chunk)
			var gotLines []int
			for _, e := range sum.Entries {
				gotLines = append(gotLines, e.Line)
			}
			if diff := cmp.Diff([]int{1, 3}, gotLines); diff != "" {
				t.Errorf("chunks of %d: entry lines (-want +got):\n%s", chunk, diff)
			}
			want := []bad{{"invalid_json_line", "", 4}, {"duplicate_custom_id", "custom_id", 6}}
			if diff := cmp.Diff(want, short(sum.Problems)); diff != "" {
				t.Errorf("chunks of %d: problems (-want +got):\n%s", chunk, diff)
			}
		}
	})
	t.Run("empty-batch-gets-none", func(t *testing.T) {
		t.Parallel()
		sum := scan(t, []byte("\n \n"), 0)
		if len(sum.Entries) != 0 {
			t.Errorf("got entries %+v, want none", sum.Entries)
		}
	})
	t.Run("error-stops-calls", func(t *testing.T) {
		t.Parallel()
		errStop := errors.New("stop")
		calls := 0
		s := jsonl.NewScanner(&jsonl.ScanOptions{EntryFunc: func(jsonl.Entry) error {
			calls++
			if calls == 2 {
				return errStop
			}
			return nil
		}})
		_, _ = s.Write([]byte(lines(good("a"), good("b"), good("c"), good("d"))))
		sum, err := s.Close()
		if !errors.Is(err, errStop) {
			t.Errorf("got Close error %v, want %v", err, errStop)
		}
		if calls != 2 {
			t.Errorf("got %d calls, want 2", calls)
		}
		if sum.Requests != 4 || len(sum.Problems) != 0 {
			t.Errorf("got %d requests and problems %+v, want 4 and none: the scan goes on", sum.Requests, sum.Problems)
		}
		if _, again := s.Close(); !errors.Is(again, errStop) {
			t.Errorf("got error %v from a second Close, want %v", again, errStop)
		}
	})
	t.Run("nil-options", func(t *testing.T) {
		t.Parallel()
		s := jsonl.NewScanner(nil)
		_, _ = s.Write([]byte(lines(good("a"))))
		if sum, err := s.Close(); err != nil || sum.Requests != 1 || len(sum.Problems) != 0 {
			t.Errorf("got %+v, %v, want one clean request", sum, err)
		}
	})
}

func TestScannerMaxRequests(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		max     int
		input   string
		want    []bad
		entries int
	}{
		{"exactly-the-most", 3, lines(good("a"), good("b"), "", good("c")), nil, 3},
		{"one-over", 3, lines(good("a"), good("b"), good("c"), good("d")), []bad{{"too_many_tasks", "", 4}}, 3},
		{
			name:  "past-the-most-duplicates-only-of-the-first",
			max:   2,
			input: lines(good("a"), good("b"), good("c"), good("d"), good("d"), good("a"), "{"),
			want: []bad{
				{"too_many_tasks", "", 3},
				{"duplicate_custom_id", "custom_id", 6},
				{"invalid_json_line", "", 7},
			},
			entries: 2,
		},
		{"one", 1, lines(good("a"), good("b")), []bad{{"too_many_tasks", "", 2}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, chunk := range []int{0, 5} {
				sum := scanMax(t, []byte(tc.input), chunk, tc.max)
				if diff := cmp.Diff(tc.want, short(sum.Problems)); diff != "" {
					t.Errorf("chunks of %d: problems (-want +got):\n%s", chunk, diff)
				}
				if len(sum.Entries) != tc.entries {
					t.Errorf("chunks of %d: got %d entries, want %d", chunk, len(sum.Entries), tc.entries)
				}
				if tc.want != nil && tc.want[0].Code == "too_many_tasks" {
					wantMsg := fmt.Sprintf("a batch holds at most %d requests.", tc.max)
					if msg := sum.Problems[0].Message; !strings.HasSuffix(msg, wantMsg) {
						t.Errorf("got message %q, want it to end %q", msg, wantMsg)
					}
				}
			}
		})
	}
}

func TestScannerDuplicatesPastDefaultMax(t *testing.T) {
	t.Parallel()
	const n = 130_000 // past sluice.MaxRequests, within the raised limit
	id := func(i int) string { return fmt.Sprintf("request-%d", i) }
	var b bytes.Buffer
	for i := 1; i <= n; i++ {
		b.WriteString(req(id(i), "/v1/embeddings", "e"))
		b.WriteByte('\n')
	}
	b.WriteString(lines(req(id(1), "/v1/embeddings", "e"), req(id(120_000), "/v1/embeddings", "e"), req("fresh", "/v1/embeddings", "e")))
	sum := scanMax(t, b.Bytes(), 1<<16, 200_000)
	want := []bad{{"duplicate_custom_id", "custom_id", n + 1}, {"duplicate_custom_id", "custom_id", n + 2}}
	if diff := cmp.Diff(want, short(sum.Problems)); diff != "" {
		t.Fatalf("problems (-want +got):\n%s", diff)
	}
	if got, want := sum.Problems[1].Message, "of line 120000;"; !strings.Contains(got, want) {
		t.Errorf("got message %q, want it to contain %q", got, want)
	}
	if sum.Requests != n+3 || len(sum.Entries) != n {
		t.Errorf("got %d requests and %d entries, want %d and %d", sum.Requests, len(sum.Entries), n+3, n)
	}
}
