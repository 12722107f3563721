package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

// readResults reads GET .../results from cursor and returns the lines and the next
// cursor.
func (c *apiClient) readResults(id, cursor, typ string) ([]resultLine, string) {
	c.tb.Helper()
	req, _ := http.NewRequest("GET", c.base+"/v1/batches/"+id+"/results?cursor="+cursor+"&type="+typ, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := fmt.Fprint(&b, ""); err != nil {
		c.tb.Fatal(err)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != 200 {
		c.tb.Fatalf("results of %s: %d %s", id, resp.StatusCode, b.String())
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/jsonl" {
		c.tb.Errorf("results Content-Type %q, want application/jsonl", ct)
	}
	return parseResults(c.tb, b.String()), resp.Header.Get("Sluice-Results-Cursor")
}

// Results read while a batch runs, resumed with the cursor across its end, are each
// line's result exactly once, and the same as the output file's.
func TestResultsSoFar(t *testing.T) {
	t.Parallel()
	_, url := slowSim(t, 30*time.Millisecond)
	c := MustRunMain(t, nil, "--upstream", url, "--deployment", "gpt-4o-mini", "--upstream-concurrency", "4")
	const n = 120
	f := c.mustUpload(chatLines(n, "gpt-4o-mini"))
	b := c.mustCreateBatch(f.ID, "/v1/chat/completions")
	var got []resultLine
	cursor := "0.0"
	reads, partial := 0, false
	for {
		var cur batchObj
		c.json("GET", "/v1/batches/"+b.ID, nil, &cur)
		lines, next := c.readResults(b.ID, cursor, "all")
		got, cursor, reads = append(got, lines...), next, reads+1
		if !terminal(cur) && len(got) > 0 && len(got) < n {
			partial = true
		}
		if terminal(cur) {
			lines, next := c.readResults(b.ID, cursor, "all")
			got, cursor = append(got, lines...), next
			break
		}
		time.Sleep(15 * time.Millisecond)
	}
	if !partial {
		t.Errorf("no read saw a part of the results while the batch ran (%d reads)", reads)
	}
	ids := customIDs(got)
	if len(ids) != n || len(slices.Compact(slices.Clone(ids))) != n {
		t.Fatalf("got %d results (%d distinct), want each of %d once", len(ids), len(slices.Compact(slices.Clone(ids))), n)
	}
	done := c.waitBatch(b.ID, terminal)
	out := c.content(*done.OutputFileID)
	if want := fmt.Sprintf("%d.0", len(out)); cursor != want {
		t.Errorf("final cursor %s, want %s (the output file's size)", cursor, want)
	}
	if again, next := c.readResults(b.ID, cursor, "all"); len(again) != 0 || next != cursor {
		t.Errorf("read at the end: %d lines, cursor %s; want none and the same cursor", len(again), next)
	}
	// From the start after the end: the output file, then the error file.
	all, _ := c.readResults(b.ID, "0.0", "output")
	if len(all) != n || all[0].ID != parseResults(t, out)[0].ID {
		t.Errorf("output from the start: %d lines", len(all))
	}
	var e apiError
	for _, bad := range []string{"x", "1", "-1.0", "1.x"} {
		if status := c.json("GET", "/v1/batches/"+b.ID+"/results?cursor="+bad, nil, &e); status != 400 || e.Error.Param == nil || *e.Error.Param != "cursor" {
			t.Errorf("cursor %q: got %d %+v, want 400 on cursor", bad, status, e)
		}
	}
	if status := c.json("GET", "/v1/batches/batch_none/results", nil, &e); status != 404 {
		t.Errorf("results of a missing batch: got %d, want 404", status)
	}
}

// A retry runs the lines that failed, and only those, as a new batch linked to the
// first.
func TestRetryFailedLines(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{FailRate: 0.4, Seed: 7})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, cfg, `
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: `+ts.URL+`/v1
        max_concurrency: 4
engine:
  max_attempts: 1
`)
	c := MustRunMain(t, nil, "--config", cfg)
	const n = 50
	f := c.mustUpload(chatLines(n, "gpt-4o-mini"))
	first := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	failed := first.RequestCounts.Failed
	if failed == 0 || failed == n {
		t.Fatalf("first run: %+v; want some lines failed and some not", first.RequestCounts)
	}
	var e apiError
	if status := c.json("POST", "/v1/batches/"+first.ID+"/retry", map[string]any{"lines": "bogus"}, &e); status != 400 {
		t.Errorf("retry with lines bogus: got %d", status)
	}
	var retry batchObj
	if status := c.json("POST", "/v1/batches/"+first.ID+"/retry", map[string]any{"lines": "failed"}, &retry); status != 200 {
		t.Fatalf("retry: got %d", status)
	}
	if retry.Metadata["retry_of"] != first.ID || retry.ID == first.ID {
		t.Errorf("retry metadata %v, want retry_of %s", retry.Metadata, first.ID)
	}
	second := c.waitBatch(retry.ID, terminal)
	if second.RequestCounts.Total != failed {
		t.Errorf("retry has %d lines, want the %d that failed", second.RequestCounts.Total, failed)
	}
	failedIDs := customIDs(parseResults(t, c.content(*first.ErrorFileID)))
	var retried []resultLine
	retried = append(retried, parseResults(t, c.content(*second.OutputFileID))...)
	retried = append(retried, parseResults(t, c.content(*second.ErrorFileID))...)
	if got := customIDs(retried); !slices.Equal(got, failedIDs) {
		t.Errorf("retried custom_ids %v, want the failed ones %v", got, failedIDs)
	}
	// A completed batch has no unfinished lines: nothing to retry, said so.
	if status := c.json("POST", "/v1/batches/"+first.ID+"/retry", map[string]any{"lines": "unfinished"}, &e); status != 400 || !strings.Contains(e.Error.Message, "no lines") {
		t.Errorf("retry of the unfinished lines of a completed batch: got %d %q, want 400 saying no lines", status, e.Error.Message)
	}
}
