package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-batch/sluice/blob/azure/azuretest"
	"github.com/sluice-batch/sluice/postgres/pgtest"
)

// Three replicas share one PostgreSQL and one blob container. A batch created on one
// runs on all of them; one is killed with SIGKILL in the middle; the others take its
// lines over once its leases run out, and the batch completes with each custom_id's
// result once, read the same from every replica. Upstream calls repeated are at most
// the lines in flight on the dead replica.
func TestReplicasShareTheWorkAndSurviveAKill(t *testing.T) {
	t.Parallel()
	dsn := pgtest.MustNewSchema(t, pgtest.DSN(t))
	conn := azuretest.ConnectionString(t)
	container := azuretest.MustNewContainer(t, conn)
	s, url := slowSim(t, 10*time.Millisecond)
	const n, concurrency = 20_000, 16
	dir := t.TempDir()
	config := dir + "/config.yaml"
	writeFile(t, config, fmt.Sprintf(`
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: %s
        max_concurrency: %d
engine:
  lease_duration: 10s
`, url, concurrency))
	env := []string{"AZURE_STORAGE_CONNECTION_STRING=" + conn}
	var replicas []*apiClient
	var procs []interface{ Kill() error }
	for i := range 3 {
		c, cmd := startChildEnv(t, env, "--db", dsn, "--blob", "azblob://"+container, "--config", config, "--data", fmt.Sprintf("%s/r%d", dir, i))
		replicas = append(replicas, c)
		procs = append(procs, cmd.Process)
	}
	f := replicas[0].mustUpload(chatLines(n, "gpt-4o-mini"))
	b := replicas[1].mustCreateBatch(f.ID, "/v1/chat/completions")
	replicas[2].waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed >= n/4 })
	if err := procs[2].Kill(); err != nil { // SIGKILL: its leases are left to run out
		t.Fatal(err)
	}
	done := replicas[0].waitBatch(b.ID, terminal)
	if done.Status != "completed" || done.RequestCounts.Completed != n || done.RequestCounts.Failed != 0 {
		t.Fatalf("got %s %+v, want completed %d/%d", done.Status, done.RequestCounts, n, n)
	}
	var other batchObj
	replicas[1].json("GET", "/v1/batches/"+b.ID, nil, &other)
	if other.Status != done.Status || other.RequestCounts != done.RequestCounts || *other.OutputFileID != *done.OutputFileID {
		t.Errorf("replica 1 reads %s %+v, replica 0 %s %+v", other.Status, other.RequestCounts, done.Status, done.RequestCounts)
	}
	ids := customIDs(parseResults(t, replicas[1].content(*done.OutputFileID)))
	if len(ids) != n {
		t.Fatalf("output: %d lines, want %d", len(ids), n)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] == ids[i-1] {
			t.Fatalf("custom_id %s has two results", ids[i])
		}
	}
	// Only lines in flight at the kill, on the dead replica, may have been sent twice:
	// one per worker, plus the results it had not committed yet, at most a commit group
	// (512, the engine's CommitSize) unless its commits fell behind. (The bound was 3x16
	// until a run under the race detector on a busy machine sent 64 lines twice.) Sending
	// again what the dead replica had committed, some 1,700 lines, would fail it.
	const uncommitted = 512
	if sent := s.Stats().Requests; sent > n+concurrency+uncommitted {
		t.Errorf("upstream got %d requests for %d lines, want at most %d", sent, n, n+concurrency+uncommitted)
	}
}
