package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/postgres/pgtest"
)

// PostgreSQL is stopped mid-batch under a real `sluice serve` (pg_ctl stop -m
// immediate: connections cut, no checkpoint) and started again. While it is down an
// API call that needs it answers 503 storage_unavailable with the reason and
// Retry-After, never 500; /readyz says not ready and why; /healthz stays 200; the
// engine pauses. Once it is back everything resumes by itself: the batch completes
// with each custom_id's result once, and the upstream was sent each line at most once
// plus the lines in flight at the stop.
func TestPostgresStoppedMidBatchResumes(t *testing.T) {
	t.Parallel()
	pg := pgtest.MustStartCluster(t)
	s, url := slowSim(t, 30*time.Millisecond)
	const n, concurrency = 2000, 8
	dir := t.TempDir()
	config := dir + "/config.yaml"
	writeFile(t, config, fmt.Sprintf(`
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: %s
        max_concurrency: %d
`, url, concurrency))
	c, _ := startChild(t, "--db", pg.DSN, "--blob", "file://"+dir+"/blobs", "--config", config, "--data", dir+"/data")

	f := c.mustUpload(chatLines(n, "gpt-4o-mini"))
	b := c.mustCreateBatch(f.ID, "/v1/chat/completions")
	c.waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed >= n/10 })
	pg.MustStop(t)

	get := func(path string) (int, http.Header, []byte) {
		t.Helper()
		res, err := http.Get(c.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, res.Header, body
	}
	const reason = "the database does not answer"
	// Every call that needs the database answers 503, the first after the stop too
	// (its pooled connection was cut); /readyz says so once the engine's own writes
	// have met the fault ("since"), which shows the engine paused rather than failed
	// the lines.
	deadline := time.Now().Add(30 * time.Second)
	for paused := false; !paused; {
		status, h, body := get("/v1/batches/" + b.ID)
		var e apiError
		json.Unmarshal(body, &e)
		if status != http.StatusServiceUnavailable || e.Error.Code == nil || *e.Error.Code != "storage_unavailable" ||
			!strings.Contains(e.Error.Message, reason) || h.Get("Retry-After") != "30" || strings.Contains(string(body), "127.0.0.1") {
			t.Fatalf("GET /v1/batches/{id} with PostgreSQL stopped: got %d Retry-After %q %s, want 503 storage_unavailable saying %q, naming no address",
				status, h.Get("Retry-After"), body, reason)
		}
		status, h, body = get("/readyz")
		if status != http.StatusServiceUnavailable || h.Get("Retry-After") != "30" ||
			!strings.Contains(string(body), "not_ready") || !strings.Contains(string(body), reason) {
			t.Fatalf("/readyz with PostgreSQL stopped: got %d Retry-After %q %s, want 503 not_ready saying %q", status, h.Get("Retry-After"), body, reason)
		}
		paused = strings.Contains(string(body), "since")
		if time.Now().After(deadline) {
			t.Fatalf("/readyz with PostgreSQL stopped never told of the engine's writes failing: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, _, body := get("/healthz"); status != http.StatusOK {
		t.Errorf("/healthz with PostgreSQL stopped: %d %s, want 200", status, body)
	}
	// The engine pauses: the lines it had claimed before the stop are answered and kept
	// in memory, then it sends nothing more (none in flight, and no new request in a
	// span longer than an answer takes).
	for last := int64(-1); ; {
		st := s.Stats()
		if st.InFlight == 0 && st.Requests == last {
			t.Logf("paused with PostgreSQL stopped after %d upstream requests", st.Requests)
			break
		}
		last = st.Requests
		if time.Now().After(deadline) {
			t.Fatalf("the engine still sends lines with PostgreSQL stopped: %+v", st)
		}
		time.Sleep(200 * time.Millisecond)
	}

	pg.MustStart(t)
	done := c.waitBatch(b.ID, terminal)
	if done.Status != "completed" || done.RequestCounts.Completed != n || done.RequestCounts.Failed != 0 || done.OutputFileID == nil {
		t.Fatalf("after PostgreSQL is back: %s %+v, want completed %d/%d", done.Status, done.RequestCounts, n, n)
	}
	ids := customIDs(parseResults(t, c.content(*done.OutputFileID)))
	seen := make(map[string]bool, n)
	for _, id := range ids {
		if seen[id] {
			t.Errorf("custom_id %s has two results", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("%d distinct results, want %d", len(seen), n)
	}
	// Lines whose answers came while the database was down were kept, not asked again;
	// only those in flight at the stop may have been sent twice.
	if sent := s.Stats().Requests; sent > n+concurrency {
		t.Errorf("upstream got %d requests for %d lines, want at most %d", sent, n, n+concurrency)
	} else {
		t.Logf("upstream got %d requests for %d lines", sent, n)
	}
	for {
		status, _, body := get("/readyz")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("/readyz after PostgreSQL is back: %d %s, want 200", status, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.mustUpload(chatLines(2, "gpt-4o-mini"))
}
