package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// projectsServer runs sluice with two projects, alpha (key ka) and beta (keys kb, and
// kb2 given by its hash, limited to one batch at a time), and the admin key root, on a
// simulator answering after latency.
func projectsServer(t *testing.T, latency time.Duration) *apiClient {
	t.Helper()
	_, url := slowSim(t, latency)
	sum := sha256.Sum256([]byte("kb2"))
	path := t.TempDir() + "/config.yaml"
	writeFile(t, path, fmt.Sprintf(`api_keys: [root]
projects:
  - name: alpha
    api_keys: [ka]
  - name: beta
    keys:
      - key: kb
      - key_sha256: %s
    max_batches: 1
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: %s
        max_concurrency: 4
`, hex.EncodeToString(sum[:]), url))
	return MustRunMain(t, nil, "--config", path)
}

// as returns a client of c's server that presents key.
func (c *apiClient) as(t *testing.T, key string) *apiClient {
	cc := *c
	cc.tb, cc.key = t, key
	return &cc
}

// listIDs returns the ids of a list answer at path.
func (c *apiClient) listIDs(path string) []string {
	c.tb.Helper()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if status := c.json("GET", path, nil, &list); status != 200 {
		c.tb.Fatalf("GET %s: status %d", path, status)
	}
	var ids []string
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	return ids
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// Another project's files, batches and uploads do not exist for a project's key: every
// route that names one answers 404 in the error shape (a batch create names the file
// as a bad input_file_id), lists leave them out, and nothing of them changes. An
// admin key sees every project's.
func TestProjectsIsolate(t *testing.T) {
	t.Parallel()
	srv := projectsServer(t, 0)
	alpha, beta, root := srv.as(t, "ka"), srv.as(t, "kb"), srv.as(t, "root")

	content := chatLines(5, "gpt-4o-mini")
	f := alpha.mustUpload(content)
	b := alpha.mustCreateBatch(f.ID, "/v1/chat/completions")
	b = alpha.waitBatch(b.ID, terminal)
	if b.Status != "completed" || b.OutputFileID == nil {
		t.Fatalf("alpha's batch: %s, want completed with an output file", b.Status)
	}
	var up struct {
		ID string `json:"id"`
	}
	if status := alpha.json("POST", "/v1/uploads", map[string]any{"filename": "in.jsonl", "purpose": "batch", "bytes": len(content), "mime_type": "text/jsonl"}, &up); status != 200 {
		t.Fatalf("alpha's upload create: status %d", status)
	}

	for _, prefix := range []string{"/v1", "/openai", "/openai/v1"} {
		q := ""
		if prefix == "/openai" {
			q = "?api-version=2024-10-21"
		}
		for _, tc := range []struct {
			method, path string
			body         any
			param        string
		}{
			{"GET", "/files/" + f.ID, nil, "file_id"},
			{"GET", "/files/" + f.ID + "/content", nil, "file_id"},
			{"GET", "/files/" + *b.OutputFileID, nil, "file_id"},
			{"GET", "/files/" + *b.OutputFileID + "/content", nil, "file_id"},
			{"DELETE", "/files/" + f.ID, nil, "file_id"},
			{"GET", "/batches/" + b.ID, nil, "batch_id"},
			{"POST", "/batches/" + b.ID + "/cancel", nil, "batch_id"},
			{"GET", "/batches/" + b.ID + "/results", nil, "batch_id"},
			{"POST", "/batches/" + b.ID + "/retry", map[string]any{}, "batch_id"},
			{"POST", "/uploads/" + up.ID + "/complete", map[string]any{"part_ids": []string{}}, "upload_id"},
			{"POST", "/uploads/" + up.ID + "/cancel", nil, "upload_id"},
		} {
			t.Run(prefix+" "+tc.method+" "+tc.path, func(t *testing.T) {
				var e apiError
				if status := beta.as(t, "kb").json(tc.method, prefix+tc.path+q, tc.body, &e); status != http.StatusNotFound {
					t.Fatalf("got %d %+v, want 404", status, e.Error)
				}
				// The answer is the one for an ID that exists nowhere, word for word.
				var want apiError
				for _, r := range []struct{ id, nowhere string }{{*b.OutputFileID, "file-nowhere"}, {f.ID, "file-nowhere"}, {b.ID, "batch_nowhere"}, {up.ID, "upload_nowhere"}} {
					if strings.Contains(tc.path, r.id) {
						beta.as(t, "kb").json(tc.method, prefix+strings.Replace(tc.path, r.id, r.nowhere, 1)+q, tc.body, &want)
						want.Error.Message = strings.Replace(want.Error.Message, r.nowhere, r.id, 1)
						break
					}
				}
				if e.Error.Param == nil || *e.Error.Param != tc.param || e.Error.Message != want.Error.Message {
					t.Errorf("got error %+v, want %q about %s", e.Error, want.Error.Message, tc.param)
				}
			})
		}
		t.Run(prefix+" parts", func(t *testing.T) {
			if status, body := beta.as(t, "kb").addPart(prefix+"/uploads/"+up.ID+"/parts"+q, []byte("x")); status != http.StatusNotFound {
				t.Errorf("add a part to another project's upload: got %d %s, want 404", status, body)
			}
		})
	}

	// A batch of another project's file: the file does not exist.
	var e apiError
	if status := beta.json("POST", "/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"}, &e); status != 400 ||
		e.Error.Param == nil || *e.Error.Param != "input_file_id" || !strings.Contains(e.Error.Message, "No such File") {
		t.Errorf("beta's batch of alpha's file: got %d %+v, want 400 No such File about input_file_id", status, e.Error)
	}

	// Lists: beta sees none of alpha's; root sees them.
	for _, path := range []string{"/v1/files", "/v1/batches"} {
		if ids := beta.listIDs(path); contains(ids, f.ID) || contains(ids, b.ID) {
			t.Errorf("beta's %s lists alpha's objects: %v", path, ids)
		}
	}
	if ids := root.listIDs("/v1/files"); !contains(ids, f.ID) || !contains(ids, *b.OutputFileID) {
		t.Errorf("root's file list %v lacks alpha's %s and %s", ids, f.ID, *b.OutputFileID)
	}
	if ids := root.listIDs("/v1/batches"); !contains(ids, b.ID) {
		t.Errorf("root's batch list %v lacks alpha's %s", ids, b.ID)
	}
	var rb batchObj
	if status := root.json("GET", "/v1/batches/"+b.ID, nil, &rb); status != 200 || rb.ID != b.ID {
		t.Errorf("root reads alpha's batch: got %d %+v", status, rb)
	}

	// Nothing of alpha's changed: its file is still there, whole; its upload pending.
	if got := alpha.content(f.ID); got != content {
		t.Errorf("alpha's file content changed:\n%s", got)
	}
	var u struct {
		Status string `json:"status"`
	}
	if status := alpha.json("POST", "/v1/uploads/"+up.ID+"/cancel", nil, &u); status != 200 || u.Status != "cancelled" {
		t.Errorf("alpha cancels its own upload: got %d %s", status, u.Status)
	}
	if got := parseResults(t, alpha.content(*b.OutputFileID)); len(got) != 5 {
		t.Errorf("alpha's output holds %d lines, want 5", len(got))
	}
}

// An Idempotency-Key is a project's own: the same key from two projects creates two
// batches, each its project's.
func TestProjectsIdempotencyKeys(t *testing.T) {
	t.Parallel()
	srv := projectsServer(t, 0)
	create := func(c *apiClient) string {
		f := c.mustUpload(chatLines(2, "gpt-4o-mini"))
		var b batchObj
		in, _ := json.Marshal(map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
		req, err := http.NewRequest("POST", c.base+"/v1/batches", strings.NewReader(string(in)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("api-key", c.key)
		req.Header.Set("Idempotency-Key", "same-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&b); err != nil || resp.StatusCode != 200 {
			t.Fatalf("create with an idempotency key: %d %v", resp.StatusCode, err)
		}
		return b.ID
	}
	alpha, beta := srv.as(t, "ka"), srv.as(t, "kb2")
	a := create(alpha)
	bb := create(beta)
	if a == bb {
		t.Fatalf("two projects' creates with one Idempotency-Key gave one batch %s", a)
	}
	var e apiError
	if status := beta.json("GET", "/v1/batches/"+a, nil, &e); status != 404 {
		t.Errorf("beta reads alpha's batch: %d, want 404", status)
	}
}

// A project's batch limit refuses a batch past it at once, with 429 and a message
// that names the project; when a batch ends the next is admitted. Other projects are
// not held to it. A key given by its hash acts for its project.
func TestProjectsBatchLimit(t *testing.T) {
	t.Parallel()
	srv := projectsServer(t, 300*time.Millisecond)
	beta, beta2, alpha := srv.as(t, "kb"), srv.as(t, "kb2"), srv.as(t, "ka")
	f := beta.mustUpload(chatLines(40, "gpt-4o-mini"))
	first := beta.mustCreateBatch(f.ID, "/v1/chat/completions")

	var e apiError
	status := beta2.json("POST", "/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"}, &e)
	if status != http.StatusTooManyRequests || e.Error.Code == nil || *e.Error.Code != "batch_limit_exceeded" || !strings.Contains(e.Error.Message, "beta") {
		t.Errorf("second batch of beta: got %d %+v, want 429 batch_limit_exceeded naming beta", status, e.Error)
	}
	// A dry run says so, with what the project holds.
	var dry struct {
		Admitted bool `json:"admitted"`
		Project  *struct {
			ID             string `json:"id"`
			Batches        int    `json:"batches"`
			MaximumBatches *int   `json:"maximum_batches"`
		} `json:"project"`
	}
	status = beta.json("POST", "/v1/batches", map[string]any{"input_file_id": f.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h", "dry_run": true}, &dry)
	if status != 200 || dry.Admitted || dry.Project == nil || dry.Project.ID != "beta" || dry.Project.Batches != 1 ||
		dry.Project.MaximumBatches == nil || *dry.Project.MaximumBatches != 1 {
		t.Errorf("dry run: got %d %+v, want not admitted, beta holding 1 of 1 batches", status, dry)
	}
	af := alpha.mustUpload(chatLines(2, "gpt-4o-mini"))
	alpha.mustCreateBatch(af.ID, "/v1/chat/completions") // alpha has no limit

	var cancelled batchObj
	if status := beta.json("POST", "/v1/batches/"+first.ID+"/cancel", nil, &cancelled); status != 200 {
		t.Fatalf("cancel: %d", status)
	}
	beta.waitBatch(first.ID, terminal)
	second := beta2.mustCreateBatch(f.ID, "/v1/chat/completions")
	if second.ID == first.ID {
		t.Errorf("the second batch is the first")
	}
}

// A deployment's claims are shared by project, not by batch: while alpha runs four
// batches of 1,000 lines, beta's one batch of 1,000 gets half the turns, and is done
// while alpha has finished well under the 4,000 lines a share by batch would let it.
func TestProjectsShareDispatch(t *testing.T) {
	t.Parallel()
	srv := projectsServer(t, 5*time.Millisecond)
	alpha, beta := srv.as(t, "ka"), srv.as(t, "kb")
	var mine []string
	for range 4 {
		f := alpha.mustUpload(chatLines(1000, "gpt-4o-mini"))
		mine = append(mine, alpha.mustCreateBatch(f.ID, "/v1/chat/completions").ID)
	}
	for _, id := range mine {
		alpha.waitBatch(id, func(b batchObj) bool { return b.Status != "validating" })
	}
	f := beta.mustUpload(chatLines(1000, "gpt-4o-mini"))
	theirs := beta.mustCreateBatch(f.ID, "/v1/chat/completions")
	if b := beta.waitBatch(theirs.ID, terminal); b.Status != "completed" {
		t.Fatalf("beta's batch: %s", b.Status)
	}
	done := 0
	for _, id := range mine {
		var b batchObj
		alpha.json("GET", "/v1/batches/"+id, nil, &b)
		done += b.RequestCounts.Completed
	}
	// A fair share gives alpha about as many lines as beta's 1,000 meanwhile, plus what
	// it finished before beta's batch began and what was already queued.
	if done >= 3000 {
		t.Errorf("alpha finished %d lines while beta finished 1,000: shared by batch, not by project", done)
	}
	t.Logf("alpha finished %d lines while beta finished 1,000", done)
}
