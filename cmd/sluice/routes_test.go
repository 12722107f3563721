package main

import (
	"encoding/json"
	"testing"
)

// Azure's /openai/v1 family serves the same objects with api-version optional, and a
// create addressed to a deployment must name the deployment its file's lines name.
func TestAzureRouteFamilies(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	f := c.mustUpload(seedFile("gpt-4o-mini", "/chat/completions"))
	create := map[string]any{"input_file_id": f.ID, "endpoint": "/chat/completions", "completion_window": "24h"}

	for _, path := range []string{"/openai/v1/batches", "/openai/v1/batches?api-version=preview", "/openai/v1/batches?api-version=latest"} {
		var b batchObj
		if status := c.json("POST", path, create, &b); status != 200 || b.ID == "" {
			t.Errorf("POST %s: got %d %+v, want 200 and a batch", path, status, b)
		}
	}
	var list struct {
		Object string     `json:"object"`
		Data   []batchObj `json:"data"`
	}
	if status := c.json("GET", "/openai/v1/batches", nil, &list); status != 200 || list.Object != "list" || len(list.Data) != 3 {
		t.Errorf("GET /openai/v1/batches: got %d, %d batches", status, len(list.Data))
	}
	if status := c.json("GET", "/openai/v1/files/"+f.ID, nil, nil); status != 200 {
		t.Errorf("GET /openai/v1/files/%s: got %d", f.ID, status)
	}

	var b batchObj
	if status := c.json("POST", "/openai/deployments/gpt-4o-mini/batches?api-version=2024-10-21", create, &b); status != 200 || b.ID == "" {
		t.Errorf("create through the deployment: got %d %+v", status, b)
	}
	var e apiError
	status := c.json("POST", "/openai/deployments/gpt-4o/batches?api-version=2024-10-21", create, &e)
	if status != 400 || e.Error.Code == nil || *e.Error.Code != "model_mismatch" {
		t.Errorf("create through another deployment: got %d %+v, want 400 model_mismatch", status, e)
	}
}

// On /openai every error carries a code from Azure's ErrorCode list when it has none
// of its own; /v1 keeps OpenAI's null.
func TestAzureErrorCodes(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		code         any
	}{
		{"GET", "/openai/batches/batch_nope?api-version=2024-10-21", nil, 404, "notFound"},
		{"GET", "/openai/files/file-nope?api-version=2024-10-21", nil, 404, "notFound"},
		{"POST", "/openai/batches?api-version=2024-10-21", map[string]any{"endpoint": "/chat/completions"}, 400, "invalidPayload"},
		{"GET", "/openai/batches", nil, 400, "invalidPayload"},
		{"GET", "/v1/batches/batch_nope", nil, 404, nil},
		{"GET", "/openai/v1/batches/batch_nope", nil, 404, nil},
	} {
		var raw map[string]map[string]any
		status := c.json(tc.method, tc.path, tc.body, &raw)
		if status != tc.status || raw["error"]["code"] != tc.code {
			b, _ := json.Marshal(raw)
			t.Errorf("%s %s: got %d %s, want %d with code %v", tc.method, tc.path, status, b, tc.status, tc.code)
		}
	}
}
