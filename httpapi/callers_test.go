package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-batch/sluice"
)

// Each key makes its request its project's and role's: a key given in the clear or by
// its hash, a project key with no role a user, an APIKeys key an admin of the default
// project; a malformed hash is no key at all.
func TestAuthenticateSetsCaller(t *testing.T) {
	t.Parallel()
	sum := sha256.Sum256([]byte("hashed"))
	s := NewServer(nil, &quotaService{}, &Options{
		APIKeys: []string{"root"},
		Keys: []Key{
			{Secret: "ka", Caller: sluice.Caller{Project: "alpha"}},
			{SHA256: hex.EncodeToString(sum[:]), Caller: sluice.Caller{Project: "beta", Role: sluice.RoleAdmin}},
			{SHA256: "not-hex", Caller: sluice.Caller{Project: "gamma"}},
		},
	})
	var got sluice.Caller
	h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = callerOf(r) }))
	for _, tc := range []struct {
		key    string
		status int
		want   sluice.Caller
	}{
		{"root", 200, sluice.Caller{Project: sluice.DefaultProject, Role: sluice.RoleAdmin}},
		{"ka", 200, sluice.Caller{Project: "alpha", Role: sluice.RoleUser}},
		{"hashed", 200, sluice.Caller{Project: "beta", Role: sluice.RoleAdmin}},
		{"not-hex", 401, sluice.Caller{}},
		{"", 401, sluice.Caller{}},
	} {
		got = sluice.Caller{}
		req := httptest.NewRequest("GET", "/v1/batches", nil)
		if tc.key != "" {
			req.Header.Set("Authorization", "Bearer "+tc.key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || got != tc.want {
			t.Errorf("key %q: got %d %+v, want %d %+v", tc.key, rec.Code, got, tc.status, tc.want)
		}
	}
}

// Without keys every caller is an admin of the default project, whose lists are not
// filtered; a user's lists are its project's.
func TestProjectFilter(t *testing.T) {
	t.Parallel()
	s := NewServer(nil, &quotaService{}, nil)
	var filter string
	h := s.authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { filter = projectFilter(r) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/files", nil))
	if filter != "" {
		t.Errorf("open API: filter %q, want none", filter)
	}
	user := withCaller(httptest.NewRequest("GET", "/v1/files", nil), sluice.Caller{Project: "alpha", Role: sluice.RoleUser})
	if got := projectFilter(user); got != "alpha" {
		t.Errorf("user of alpha: filter %q, want alpha", got)
	}
}
