package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the sluice binary in a child process, so the
// crash test kills a real separate process without a build step.
func TestMain(m *testing.M) {
	if os.Getenv("SLUICE_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startChild starts `sluice serve` as a child process and returns a client and the
// process.
func startChild(t *testing.T, args ...string) (*apiClient, *exec.Cmd) {
	t.Helper()
	return startChildEnv(t, nil, args...)
}

// startChildEnv is startChild with env added to the child's environment.
func startChildEnv(t *testing.T, env []string, args ...string) (*apiClient, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(append(os.Environ(), "SLUICE_TEST_AS_MAIN=1"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				lines <- m[1]
			}
		}
	}()
	select {
	case url := <-lines:
		return &apiClient{tb: t, base: url}, cmd
	case <-time.After(30 * time.Second):
		t.Fatal("child sluice did not start")
	}
	return nil, nil
}

func TestKillNineLosesNothing(t *testing.T) {
	t.Parallel()
	s, url := slowSim(t, 40*time.Millisecond)
	data := t.TempDir()
	const n, concurrency, limit = 300, 4, 10_000_000
	config := data + "/config.yaml"
	writeFile(t, config, fmt.Sprintf("deployments:\n  - name: gpt-4o-mini\n    enqueued_token_limit: %d\n"+
		"    upstreams:\n      - base_url: %s\n        max_concurrency: %d\n", limit, url, concurrency))
	args := []string{"--data", data, "--config", config}

	c, child := startChild(t, args...)
	content := chatLines(n, "gpt-4o-mini")
	need := fileTokens(t, content)
	f := c.mustUpload(content)
	b := c.mustCreateBatch(f.ID, "/v1/chat/completions")
	before := c.waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed >= 40 })
	if err := child.Process.Kill(); err != nil { // SIGKILL: no shutdown code runs
		t.Fatal(err)
	}
	_ = child.Wait()
	if before.RequestCounts.Completed >= n {
		t.Fatalf("the batch finished before the kill; slow the simulator down")
	}

	// The quota comes from stored state: right after the restart the running batch
	// holds its tokens, and once it ends it holds none.
	c, _ = startChild(t, args...)
	if d := c.deployment("gpt-4o-mini"); d.Quota.EnqueuedTokens != need || len(d.Batches) != 1 {
		var now batchObj
		c.json("GET", "/v1/batches/"+b.ID, nil, &now)
		if !terminal(now) {
			t.Errorf("after restart: deployment holds %d tokens in %d batches, want %d in 1", d.Quota.EnqueuedTokens, len(d.Batches), need)
		}
	}
	done := c.waitBatch(b.ID, terminal)
	if done.Status != "completed" || done.RequestCounts.Total != n || done.RequestCounts.Completed != n || done.RequestCounts.Failed != 0 {
		t.Fatalf("after restart: got %s %+v, want completed %d/%d", done.Status, done.RequestCounts, n, n)
	}
	results := parseResults(t, c.content(*done.OutputFileID))
	ids := customIDs(results)
	if len(ids) != n {
		t.Fatalf("output: got %d lines, want %d", len(ids), n)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("custom_id %s is in the output twice", id)
		}
		seen[id] = true
	}
	for i := range n {
		if !seen[fmt.Sprint("line-", i)] {
			t.Errorf("custom_id line-%d is missing from the output", i)
		}
	}
	// Usage counts each line once, though some lines ran twice.
	var u batchUsage
	c.json("GET", "/v1/batches/"+b.ID, nil, &u)
	prompt, completion := outputUsage(t, c.content(*done.OutputFileID))
	if u.Usage.InputTokens != prompt || u.Usage.OutputTokens != completion {
		t.Errorf("usage: got %d in, %d out; the output lines say %d, %d", u.Usage.InputTokens, u.Usage.OutputTokens, prompt, completion)
	}
	if d := c.deployment("gpt-4o-mini"); d.Quota.EnqueuedTokens != 0 {
		t.Errorf("after the batch ended the deployment holds %d tokens, want 0", d.Quota.EnqueuedTokens)
	}
	if got := c.content(*done.ErrorFileID); strings.TrimSpace(got) != "" {
		t.Errorf("error file: got %q, want empty", got)
	}
	// Lines committed before the kill are never sent again: only the lines in flight at
	// the kill (at most one per worker, plus results not yet committed, which the
	// committer takes at once) may be sent twice.
	if sent := s.Stats().Requests; sent > n+3*concurrency {
		t.Errorf("upstream got %d requests for %d lines, want at most %d", sent, n, n+3*concurrency)
	}
}
