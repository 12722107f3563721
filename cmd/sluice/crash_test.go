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
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "SLUICE_TEST_AS_MAIN=1")
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
	args := []string{"--data", data, "--upstream", url, "--deployment", "gpt-4o-mini", "--upstream-concurrency", "4"}
	const n, concurrency = 300, 4

	c, child := startChild(t, args...)
	f := c.mustUpload(chatLines(n, "gpt-4o-mini"))
	b := c.mustCreateBatch(f.ID, "/v1/chat/completions")
	before := c.waitBatch(b.ID, func(b batchObj) bool { return b.RequestCounts.Completed >= 40 })
	if err := child.Process.Kill(); err != nil { // SIGKILL: no shutdown code runs
		t.Fatal(err)
	}
	_ = child.Wait()
	if before.RequestCounts.Completed >= n {
		t.Fatalf("the batch finished before the kill; slow the simulator down")
	}

	c, _ = startChild(t, args...)
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
