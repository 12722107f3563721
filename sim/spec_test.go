package sim_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-batch/sluice/sim"
)

// members decodes the JSON object raw, and fails the test unless it has every key of
// keys: the members the OpenAI spec marks required for what.
func members(t *testing.T, what string, raw []byte, keys ...string) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: decode %s: %v", what, raw, err)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s %s: got no %q, want it present", what, raw, k)
		}
	}
	return m
}

// postJSON posts body to path, fails the test unless the answer is 200, and decodes the
// answer into v.
func postJSON(t *testing.T, srv *httptest.Server, path, body string, v any) []byte {
	t.Helper()
	_, b := post(t, srv, path, body, http.StatusOK)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return b
}

// errorCase is a request body the simulator must refuse with a 400 naming param.
type errorCase struct {
	name      string
	body      string
	wantParam any // nil for null
	wantCode  any // nil for null
}

// checkErrors posts each case to path and checks its OpenAI-shaped 400, and that each
// counts as Invalid.
func checkErrors(t *testing.T, path string, tests []errorCase) {
	t.Helper()
	s, srv := start(t, sim.Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, b, err := send(t, t.Context(), srv.Client(), http.MethodPost, srv.URL+path, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("got status %d (%s), want 400", resp.StatusCode, b)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", got)
			}
			checkErrorBody(t, b, "invalid_request_error", tt.wantParam, tt.wantCode)
		})
	}
	t.Cleanup(func() {
		if st := s.Stats(); st.Invalid != int64(len(tests)) || st.Requests != st.Invalid {
			t.Errorf("got stats %+v, want %d requests, all invalid", st, len(tests))
		}
	})
}
