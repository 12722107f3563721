package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
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

// Azure's upload answers 201 Created with the file's URL in Location; OpenAI's 200.
func TestUploadStatusByFamily(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	for _, tc := range []struct {
		path, location string
		status         int
	}{
		{"/openai/files?api-version=2024-10-21", "/openai/files/%s?api-version=2024-10-21", 201},
		{"/openai/v1/files", "", 200},
		{"/v1/files", "", 200},
	} {
		req, ct := multipartUpload(t, chatLines(1, "gpt-4o-mini"))
		res, err := http.Post(c.base+tc.path, ct, req)
		if err != nil {
			t.Fatal(err)
		}
		var f fileObj
		_ = json.NewDecoder(res.Body).Decode(&f)
		res.Body.Close()
		want := ""
		if tc.location != "" {
			want = c.base + fmt.Sprintf(tc.location, f.ID)
		}
		if res.StatusCode != tc.status || res.Header.Get("Location") != want {
			t.Errorf("%s: got %d, Location %q; want %d, %q", tc.path, res.StatusCode, res.Header.Get("Location"), tc.status, want)
		}
	}
}

// multipartUpload returns a multipart body uploading content for a batch.
func multipartUpload(t *testing.T, content string) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	_, _ = fw.Write([]byte(content))
	_ = mw.WriteField("purpose", "batch")
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

// File lifetimes follow each family: on /v1 an hour is the shortest and batch input
// expires after 30 days by default, as OpenAI does; on /openai 14 days is the shortest
// and files are kept until deleted, as the product does.
func TestFileExpiryByFamily(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	content := chatLines(1, "gpt-4o-mini")
	hour := map[string]string{"purpose": "batch", "expires_after[seconds]": "3600", "expires_after[anchor]": "created_at"}
	for _, tc := range []struct {
		path    string
		fields  map[string]string
		status  int
		expires int64 // seconds after created_at; -1 for none
	}{
		{"/v1/files", map[string]string{"purpose": "batch"}, 200, 2592000},
		{"/v1/files", hour, 200, 3600},
		{"/openai/files?api-version=2024-10-21", map[string]string{"purpose": "batch"}, 201, -1},
		{"/openai/files?api-version=2024-10-21", hour, 400, 0},
	} {
		status, b := c.upload(tc.path, "in.jsonl", content, tc.fields)
		var f fileObj
		_ = json.Unmarshal(b, &f)
		if status != tc.status {
			t.Errorf("%s %v: got %d %s, want %d", tc.path, tc.fields, status, b, tc.status)
			continue
		}
		if status >= 300 {
			continue
		}
		switch {
		case tc.expires < 0 && f.ExpiresAt != nil:
			t.Errorf("%s: expires_at %d, want none", tc.path, *f.ExpiresAt)
		case tc.expires > 0 && (f.ExpiresAt == nil || *f.ExpiresAt-f.CreatedAt != tc.expires):
			t.Errorf("%s %v: expires_at %v, want created_at+%d", tc.path, tc.fields, f.ExpiresAt, tc.expires)
		}
	}
}

// GET /openai/batches honours $filter and $orderby, and refuses a malformed filter.
func TestBatchListFilters(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	good := c.mustUpload(chatLines(1, "gpt-4o-mini"))
	bad := c.mustUpload(chatLines(1, "no-such-deployment"))
	var ids []string
	for i := range 4 {
		f := good
		if i%2 == 1 {
			f = bad
		}
		ids = append(ids, c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal).ID)
	}
	list := func(query string) (int, []string) {
		var l struct {
			Data []batchObj `json:"data"`
		}
		status := c.json("GET", "/openai/batches?api-version=2024-10-21&"+query, nil, &l)
		var got []string
		for _, b := range l.Data {
			got = append(got, b.ID)
		}
		return status, got
	}
	if status, got := list("$filter=" + url.QueryEscape("status eq 'Completed'") + "&$orderby=created_at+asc"); status != 200 || !slices.Equal(got, []string{ids[0], ids[2]}) {
		t.Errorf("completed, oldest first: got %d %v, want %v", status, got, []string{ids[0], ids[2]})
	}
	if status, got := list("$filter=" + url.QueryEscape("status eq 'failed'")); status != 200 || !slices.Equal(got, []string{ids[3], ids[1]}) {
		t.Errorf("failed, newest first: got %d %v, want %v", status, got, []string{ids[3], ids[1]})
	}
	if status, got := list("$filter=" + url.QueryEscape("created_at gt 4000000000")); status != 200 || len(got) != 0 {
		t.Errorf("created in the future: got %d %v, want none", status, got)
	}
	var e apiError
	if status := c.json("GET", "/openai/batches?api-version=2024-10-21&$filter="+url.QueryEscape("garbage ("), nil, &e); status != 400 ||
		e.Error.Param == nil || *e.Error.Param != "$filter" {
		t.Errorf("malformed filter: got %d %+v, want 400 on $filter", status, e)
	}
}

// A create repeated with its Idempotency-Key gets the first answer and creates
// nothing; the key used for another request is refused; an upload likewise.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil)
	f := c.mustUpload(chatLines(2, "gpt-4o-mini"))
	post := func(path, key string, body string, ct string) (*http.Response, []byte) {
		req, _ := http.NewRequest("POST", c.base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Idempotency-Key", key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, b
	}
	create := fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h"}`, f.ID)
	res1, b1 := post("/v1/batches", "key-1", create, "application/json")
	res2, b2 := post("/v1/batches", "key-1", create, "application/json")
	if res1.StatusCode != 200 || res2.StatusCode != 200 || string(b1) != string(b2) || res2.Header.Get("Idempotent-Replayed") != "true" ||
		res2.Header.Get("deployment-enqueued-tokens") == "" {
		t.Errorf("repeat: got %d then %d %q (replayed %q), want the same answer replayed", res1.StatusCode, res2.StatusCode, b2, res2.Header.Get("Idempotent-Replayed"))
	}
	if n := c.batchCount(); n != 1 {
		t.Errorf("%d batches after a repeated create, want 1", n)
	}
	other := strings.Replace(create, "24h", "24h\",\"metadata\":{\"x\":\"y", 1)
	if res, b := post("/v1/batches", "key-1", other, "application/json"); res.StatusCode != 400 || !strings.Contains(string(b), "idempotency_key_reused") {
		t.Errorf("key reused for another body: got %d %s", res.StatusCode, b)
	}
	if res, _ := post("/v1/batches", "key-2", create, "application/json"); res.StatusCode != 200 || c.batchCount() != 2 {
		t.Errorf("a new key: got %d and %d batches, want 200 and 2", res.StatusCode, c.batchCount())
	}
	// A refusal is not kept: the same key runs again.
	res, _ := post("/v1/batches", "key-3", `{"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"}`, "application/json")
	res2, _ = post("/v1/batches", "key-3", `{"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"}`, "application/json")
	if res.StatusCode != 400 || res2.StatusCode != 400 || res2.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("refusal repeated: got %d then %d (replayed %q), want 400 twice, run twice", res.StatusCode, res2.StatusCode, res2.Header.Get("Idempotent-Replayed"))
	}

	body, ct := multipartUpload(t, chatLines(1, "gpt-4o-mini"))
	u1, ub1 := post("/v1/files", "up-1", body.String(), ct)
	body, ct = multipartUpload(t, chatLines(1, "gpt-4o-mini"))
	u2, ub2 := post("/v1/files", "up-1", body.String(), ct)
	if u1.StatusCode != 200 || u2.StatusCode != 200 || string(ub1) != string(ub2) {
		t.Errorf("repeated upload: got %d %s then %d %s, want the same file", u1.StatusCode, ub1, u2.StatusCode, ub2)
	}
}

// Files kept without an expiry are limited (the product's 500; 2 here), output files
// included; a refused upload leaves nothing, and files with an expiry count apart.
func TestFileCountLimit(t *testing.T) {
	t.Parallel()
	c := MustRunMain(t, nil, "--max-files", "3", "--max-expiring-files", "1")
	const azure = "/openai/files?api-version=2024-10-21"
	content := seedFile("gpt-4o-mini", "/chat/completions")
	var first fileObj
	status, b := c.upload(azure, "a.jsonl", content, map[string]string{"purpose": "batch"})
	if status != 201 || json.Unmarshal(b, &first) != nil {
		t.Fatalf("first upload: got %d %s", status, b)
	}
	// Its batch's output and error files make three files without an expiry.
	batch := c.waitBatch(c.mustCreateBatch(first.ID, "/chat/completions").ID, terminal)
	if batch.Status != "completed" {
		t.Fatalf("batch %s", batch.Status)
	}
	var e apiError
	status, b = c.upload(azure, "b.jsonl", content, map[string]string{"purpose": "batch"})
	_ = json.Unmarshal(b, &e)
	if status != 400 || e.Error.Code == nil || *e.Error.Code != "quotaExceeded" {
		t.Fatalf("upload over the limit: got %d %s, want 400 quotaExceeded", status, b)
	}
	var list struct {
		Data []fileObj `json:"data"`
	}
	c.json("GET", "/v1/files", nil, &list)
	if len(list.Data) != 3 {
		t.Errorf("after the refusal: %d files, want 3", len(list.Data))
	}
	// Files with an expiry have their own limit.
	if status, b := c.upload("/v1/files", "c.jsonl", content, map[string]string{"purpose": "batch"}); status != 200 {
		t.Errorf("first expiring upload: got %d %s", status, b)
	}
	if status, _ := c.upload("/v1/files", "d.jsonl", content, map[string]string{"purpose": "batch"}); status != 400 {
		t.Errorf("second expiring upload: got %d, want 400", status)
	}
	// Deleting a file makes room.
	if status := c.json("DELETE", "/v1/files/"+*batch.ErrorFileID, nil, nil); status != 200 {
		t.Fatalf("delete: %d", status)
	}
	if status, b := c.upload(azure, "e.jsonl", content, map[string]string{"purpose": "batch"}); status != 201 {
		t.Errorf("upload after a delete: got %d %s", status, b)
	}
}
