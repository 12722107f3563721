package sim_test

import (
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-batch/sluice/sim"
)

// moderationCategories is the category set of the OpenAI spec's CreateModerationResponse.
var moderationCategories = []string{
	"hate", "hate/threatening", "harassment", "harassment/threatening", "illicit", "illicit/violent",
	"self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic",
}

// imageCategories are the categories the spec lets apply to images.
var imageCategories = []string{"self-harm", "self-harm/intent", "self-harm/instructions", "sexual", "violence", "violence/graphic"}

type moderationResult struct {
	Flagged                   bool                `json:"flagged"`
	Categories                map[string]bool     `json:"categories"`
	CategoryScores            map[string]float64  `json:"category_scores"`
	CategoryAppliedInputTypes map[string][]string `json:"category_applied_input_types"`
}

type moderationResponse struct {
	ID      string             `json:"id"`
	Model   string             `json:"model"`
	Results []moderationResult `json:"results"`
}

// moderate posts a moderations body and checks the answer's shape against the spec:
// its required members, every category in each of the three maps, and flagged and the
// categories agreeing with the scores and sim.FlagThreshold.
func moderate(t *testing.T, srv *httptest.Server, body string) moderationResponse {
	t.Helper()
	var got moderationResponse
	b := postJSON(t, srv, "/v1/moderations", body, &got)
	top := members(t, "moderation", b, "id", "model", "results")
	var results []json.RawMessage
	if err := json.Unmarshal(top["results"], &results); err != nil {
		t.Fatal(err)
	}
	for i, raw := range results {
		r := members(t, "result", raw, "flagged", "categories", "category_scores", "category_applied_input_types")
		for _, k := range []string{"categories", "category_scores", "category_applied_input_types"} {
			members(t, k, r[k], moderationCategories...)
		}
		res := got.Results[i]
		anyFlag := false
		for _, c := range moderationCategories {
			score := res.CategoryScores[c]
			if score < 0 || score > 1 {
				t.Errorf("result %d %s: got score %v, want it in [0,1]", i, c, score)
			}
			if want := score >= sim.FlagThreshold; res.Categories[c] != want {
				t.Errorf("result %d %s: got flagged %v with score %v, want %v", i, c, res.Categories[c], score, want)
			}
			anyFlag = anyFlag || res.Categories[c]
		}
		if res.Flagged != anyFlag {
			t.Errorf("result %d: got flagged %v, want %v as its categories say", i, res.Flagged, anyFlag)
		}
	}
	if !strings.HasPrefix(got.ID, "modr-") {
		t.Errorf("got id %q, want modr-…", got.ID)
	}
	return got
}

// flaggedOf returns the flagged categories of r.
func flaggedOf(r moderationResult) []string {
	var out []string
	for _, c := range moderationCategories {
		if r.Categories[c] {
			out = append(out, c)
		}
	}
	return out
}

func TestModerations(t *testing.T) {
	t.Parallel()
	_, srv := start(t, sim.Options{Model: "omni-moderation-latest"})
	textOnly, textAndImage, imageOnly := map[string][]string{}, map[string][]string{}, map[string][]string{}
	for _, c := range moderationCategories {
		textOnly[c], textAndImage[c], imageOnly[c] = []string{"text"}, []string{"text"}, []string{}
		if slices.Contains(imageCategories, c) {
			textAndImage[c], imageOnly[c] = []string{"text", "image"}, []string{"image"}
		}
	}
	image := map[string]any{"type": "image_url", "image_url": map[string]any{"url": "https://example.com/a.png"}}
	tests := []struct {
		name        string
		req         map[string]any
		wantModel   string
		wantFlagged [][]string // the flagged categories of each result
		wantApplied []map[string][]string
	}{
		{name: "string", req: map[string]any{"input": "A calm river."}, wantModel: "omni-moderation-latest",
			wantFlagged: [][]string{nil}, wantApplied: []map[string][]string{textOnly}},
		{name: "strings", req: map[string]any{"model": "text-moderation-latest", "input": []string{"One.", "Two [flag:violence] here.", ""}},
			wantModel: "text-moderation-latest", wantFlagged: [][]string{nil, {"violence"}, nil},
			wantApplied: []map[string][]string{textOnly, textOnly, textOnly}},
		{name: "several-markers", req: map[string]any{"input": "[flag:hate/threatening][flag:self-harm/intent] [flag:nonsense] [flag:sexual"},
			wantModel: "omni-moderation-latest", wantFlagged: [][]string{{"hate/threatening", "self-harm/intent"}},
			wantApplied: []map[string][]string{textOnly}},
		{name: "text-and-image", req: map[string]any{"input": []any{map[string]any{"type": "text", "text": "look [flag:illicit]"}, image}},
			wantModel: "omni-moderation-latest", wantFlagged: [][]string{{"illicit"}}, wantApplied: []map[string][]string{textAndImage}},
		{name: "image-only", req: map[string]any{"input": []any{image}}, wantModel: "omni-moderation-latest",
			wantFlagged: [][]string{nil}, wantApplied: []map[string][]string{imageOnly}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := moderate(t, srv, mustJSON(t, tt.req))
			if got.Model != tt.wantModel || len(got.Results) != len(tt.wantFlagged) {
				t.Fatalf("got model %q and %d results, want %q and %d", got.Model, len(got.Results), tt.wantModel, len(tt.wantFlagged))
			}
			for i, r := range got.Results {
				if diff := cmp.Diff(tt.wantFlagged[i], flaggedOf(r)); diff != "" {
					t.Errorf("result %d flagged categories (-want +got):\n%s", i, diff)
				}
				if diff := cmp.Diff(tt.wantApplied[i], r.CategoryAppliedInputTypes); diff != "" {
					t.Errorf("result %d category_applied_input_types (-want +got):\n%s", i, diff)
				}
				for c, score := range r.CategoryScores {
					if !r.Categories[c] && score >= 0.01 {
						t.Errorf("result %d %s: got unflagged score %v, want it below 0.01", i, c, score)
					}
					if r.Categories[c] && score < 0.9 {
						t.Errorf("result %d %s: got flagged score %v, want at least 0.9", i, c, score)
					}
				}
			}
		})
	}
}

func TestModerationsDeterminism(t *testing.T) {
	t.Parallel()
	// Scores depend on the input only, not on the server or its seed.
	_, a := start(t, sim.Options{Seed: 1})
	_, b := start(t, sim.Options{Seed: 2})
	x := moderate(t, a, `{"input":["same text","other text","same text"]}`)
	y := moderate(t, b, `{"input":["same text"]}`)
	if diff := cmp.Diff(y.Results[0], x.Results[0]); diff != "" {
		t.Errorf("same text on two servers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(x.Results[0], x.Results[2]); diff != "" {
		t.Errorf("same text twice (-want +got):\n%s", diff)
	}
	if cmp.Equal(x.Results[0].CategoryScores, x.Results[1].CategoryScores) {
		t.Errorf("different texts: got the same scores %v, want different ones", x.Results[0].CategoryScores)
	}
}

func TestModerationsErrors(t *testing.T) {
	t.Parallel()
	checkErrors(t, "/v1/moderations", []errorCase{
		{name: "bad-json", body: `{"input"`},
		{name: "no-input", body: `{"model":"omni-moderation-latest"}`, wantParam: "input"},
		{name: "null-input", body: `{"input":null}`, wantParam: "input"},
		{name: "input-number", body: `{"input":7}`, wantParam: "input"},
		{name: "input-object", body: `{"input":{"text":"hi"}}`, wantParam: "input"},
		{name: "empty-array", body: `{"input":[]}`, wantParam: "input"},
		{name: "mixed-array", body: `{"input":["a",{"type":"text","text":"b"}]}`, wantParam: "input"},
		{name: "numbers", body: `{"input":[1,2]}`, wantParam: "input"},
		{name: "part-without-type", body: `{"input":[{"text":"b"}]}`, wantParam: "input[0].type"},
		{name: "part-bad-type", body: `{"input":[{"type":"audio"}]}`, wantParam: "input[0].type"},
		{name: "text-part-without-text", body: `{"input":[{"type":"text"}]}`, wantParam: "input[0].text"},
		{name: "image-part-without-url", body: `{"input":[{"type":"text","text":"a"},{"type":"image_url","image_url":{}}]}`, wantParam: "input[1].image_url"},
		{name: "model-number", body: `{"input":"a","model":1}`, wantParam: "model"},
	})
}
