package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
)

// quotaService answers creates with a fixed admission and lists fixed deployments;
// the HTTP layer's encoding of them is what these tests check.
type quotaService struct {
	sluice.Service
	admission *sluice.Admission
	err       error
	deps      []*sluice.DeploymentStatus
}

func (q *quotaService) CreateBatch(ctx context.Context, c sluice.BatchCreate) (*sluice.Batch, *sluice.Admission, error) {
	if q.err != nil || c.DryRun {
		return nil, q.admission, q.err
	}
	return &sluice.Batch{ID: "batch_1", Status: sluice.StatusValidating, Deployment: "dep", Model: "dep-model", InputTokens: 40}, q.admission, nil
}

func (q *quotaService) Deployments(ctx context.Context) ([]*sluice.DeploymentStatus, error) {
	return q.deps, nil
}

func call(t *testing.T, s *Server, method, path, body string) (*http.Response, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	res := rec.Result()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

const createBody = `{"input_file_id":"file-1","endpoint":"/v1/chat/completions","completion_window":"24h"}`

func TestCreateCarriesQuotaHeaders(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		admission     *sluice.Admission
		err           error
		wantStatus    int
		wantEnqueued  string
		wantMaximum   string
		wantInMessage string
	}{
		{"admitted", &sluice.Admission{Deployment: "dep", Tokens: 40, Enqueued: 140, Limit: 1000, Allowed: 1000, Admitted: true},
			nil, 200, "140", "1000", ""},
		{"no limit", &sluice.Admission{Deployment: "dep", Tokens: 40, Enqueued: 40, Admitted: true}, nil, 200, "40", "unlimited", ""},
		{"refused", &sluice.Admission{Deployment: "dep", Tokens: 900, Enqueued: 500, Limit: 1000, Allowed: 1000},
			sluice.Errorf(sluice.KindInvalid, "no room").WithCode("token_limit_exceeded"), 400, "500", "1000", "token_limit_exceeded"},
		{"no deployment", nil, nil, 200, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := NewServer(nil, &quotaService{admission: tc.admission, err: tc.err}, nil)
			for _, path := range []string{"/v1/batches", "/openai/batches?api-version=2024-10-21"} {
				res, body := call(t, s, "POST", path, createBody)
				if res.StatusCode != tc.wantStatus || !strings.Contains(body, tc.wantInMessage) {
					t.Errorf("%s: got %d %s, want %d with %q", path, res.StatusCode, body, tc.wantStatus, tc.wantInMessage)
				}
				if got := res.Header.Get("deployment-enqueued-tokens"); got != tc.wantEnqueued {
					t.Errorf("%s: deployment-enqueued-tokens %q, want %q", path, got, tc.wantEnqueued)
				}
				if got := res.Header.Get("deployment-maximum-enqueued-tokens"); got != tc.wantMaximum {
					t.Errorf("%s: deployment-maximum-enqueued-tokens %q, want %q", path, got, tc.wantMaximum)
				}
			}
		})
	}
}

func TestDryRunAnswer(t *testing.T) {
	t.Parallel()
	a := &sluice.Admission{Deployment: "dep", Tokens: 700, Enqueued: 500, Limit: 1000, Allowed: 1100,
		Problems: []sluice.BatchError{{Code: "duplicate_custom_id", Message: "Line 3 repeats.", Param: "custom_id", Line: 3}}}
	s := NewServer(nil, &quotaService{admission: a}, nil)
	res, body := call(t, s, "POST", "/v1/batches", strings.Replace(createBody, "{", `{"dry_run":true,`, 1))
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s", res.StatusCode, body)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"object": "batch.dry_run", "admitted": false, "deployment": "dep", "input_tokens": 700.0, "enqueued_tokens": 500.0,
		"maximum_enqueued_tokens": 1000.0, "available_tokens": 600.0,
		"errors": map[string]any{"object": "list", "data": []any{map[string]any{
			"code": "duplicate_custom_id", "message": "Line 3 repeats.", "param": "custom_id", "line": 3.0}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("dry run (-want +got):\n%s", diff)
	}
}

func TestDeploymentsAnswer(t *testing.T) {
	t.Parallel()
	deps := []*sluice.DeploymentStatus{
		{Deployment: sluice.Deployment{Name: "a", Type: "global", Encoding: "o200k_base", Endpoints: []string{"/v1/chat/completions"},
			InputFormats: []string{"text"}, Quota: sluice.Quota{EnqueuedTokenLimit: 1000, Dynamic: true, DynamicShare: 0.5},
			Price: sluice.Price{Currency: "USD", Input: 1, CachedInput: 0.5, Output: 4, BatchDiscount: 0.5}},
			Enqueued: 1200, Allowed: 1500, Idle: true,
			Batches: []*sluice.Batch{{ID: "batch_1", Status: sluice.StatusInProgress, InputTokens: 1200}}},
		{Deployment: sluice.Deployment{Name: "b", Type: "datazone", Zone: "eu", Model: "m"}},
	}
	s := NewServer(nil, &quotaService{deps: deps}, nil)
	res, body := call(t, s, "GET", "/openai/deployments/a?api-version=2024-10-21", "")
	var a map[string]any
	if err := json.Unmarshal([]byte(body), &a); res.StatusCode != 200 || err != nil {
		t.Fatalf("got %d %s", res.StatusCode, body)
	}
	quota := map[string]any{"enqueued_tokens": 1200.0, "maximum_enqueued_tokens": 1000.0, "available_tokens": 300.0,
		"dynamic_quota": true, "dynamic_share": 0.5, "idle": true}
	if diff := cmp.Diff(quota, a["quota"]); diff != "" {
		t.Errorf("quota (-want +got):\n%s", diff)
	}
	if a["model"] != "a" || a["batches"].([]any)[0].(map[string]any)["input_tokens"] != 1200.0 || a["price"] == nil {
		t.Errorf("deployment a: %s", body)
	}

	res, body = call(t, s, "GET", "/v1/deployments", "")
	var list struct {
		Data []struct {
			ID    string         `json:"id"`
			Model string         `json:"model"`
			Zone  *string        `json:"zone"`
			Quota map[string]any `json:"quota"`
			Price any            `json:"price"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &list); res.StatusCode != 200 || err != nil || len(list.Data) != 2 {
		t.Fatalf("list: got %d %s", res.StatusCode, body)
	}
	b := list.Data[1]
	if b.Model != "m" || b.Zone == nil || *b.Zone != "eu" || b.Quota["maximum_enqueued_tokens"] != nil || b.Quota["available_tokens"] != nil || b.Price != nil {
		t.Errorf("deployment b without a limit or prices: got %+v", b)
	}

	res, body = call(t, s, "GET", "/v1/deployments/nope", "")
	if res.StatusCode != 404 || !strings.Contains(body, `"param":"deployment"`) {
		t.Errorf("unknown deployment: got %d %s", res.StatusCode, body)
	}
}
