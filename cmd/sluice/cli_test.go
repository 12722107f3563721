package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/sluice-batch/sluice/client"
	"github.com/sluice-batch/sluice/sim"
)

// The CLI tests run the sluice binary as a child process, as a user would: the test
// binary itself, which TestMain (crash_test.go) turns into sluice when
// SLUICE_TEST_AS_MAIN=1, so main() and its exit codes are the real ones and no build
// step is needed. Servers are children too, `sluice serve --addr 127.0.0.1:0`.

// cliEnvOf returns the environment of a child: this process's, less anything that
// would point the client commands elsewhere, plus env.
func cliEnvOf(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SLUICE_") || strings.HasPrefix(k, "AZURE_OPENAI_") || k == "OPENAI_API_VERSION" {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "SLUICE_TEST_AS_MAIN=1")
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// cliServer runs `sluice serve` as a child on a free port with args, API key
// "cli-key", and returns its URL (no path).
func cliServer(t *testing.T, args ...string) string {
	t.Helper()
	full := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--sim-latency", "1ms", "--log-level", "warn"}, args...)
	cmd := exec.Command(os.Args[0], full...)
	cmd.Env = cliEnvOf(map[string]string{"SLUICE_API_KEYS": "cli-key"})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := cliListenRE.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case url := <-found:
		return url
	case <-time.After(30 * time.Second):
		t.Fatalf("sluice serve did not start:\n%s", stderr.String())
	}
	return ""
}

// cliResult is how a client command ended.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cliRun runs `sluice args...` as a child with env and returns what it printed and
// its exit code.
func cliRun(t *testing.T, env map[string]string, args ...string) cliResult {
	t.Helper()
	r, err := cliRunErr(env, args...)
	if err != nil {
		t.Fatalf("sluice %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// cliRunErr is cliRun for a goroutine other than the test's.
func cliRunErr(env map[string]string, args ...string) (cliResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = cliEnvOf(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var exitErr *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &exitErr) {
		return cliResult{}, err
	}
	return cliResult{stdout: stdout.String(), stderr: stderr.String(), code: cmd.ProcessState.ExitCode()}, nil
}

// want checks a command's exit code and that its stdout and stderr hold the strings.
func (r cliResult) want(t *testing.T, code int, stdout, stderr []string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout does not hold %q:\n%s", s, r.stdout)
		}
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr does not hold %q:\n%s", s, r.stderr)
		}
	}
}

// cliJSON decodes a command's stdout.
func cliJSON[T any](t *testing.T, r cliResult) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("stdout is not the JSON wanted: %v\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return v
}

// cliInput writes n chat lines for deployment gpt-4o-mini to a file and returns its
// path and content.
func cliInput(t *testing.T, n int) (string, string) {
	t.Helper()
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"line-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"question %d"}]}}`+"\n", i, i)
	}
	path := filepath.Join(t.TempDir(), "input.jsonl")
	writeFile(t, path, b.String())
	return path, b.String()
}

// cliAPI returns a Go client of a test server, for setting up and checking what the
// commands did.
func cliAPI(t *testing.T, url string) *client.Client {
	t.Helper()
	c, err := client.New(url, "cli-key", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// timestamped is a progress line printed when stdout is not a terminal.
var timestamped = regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) batch_\S+ (in_progress|completed) `)

func TestCLIFilesAndBatches(t *testing.T) {
	t.Parallel()
	url := cliServer(t)
	env := map[string]string{"SLUICE_URL": url + "/v1", "SLUICE_API_KEY": "cli-key"}
	input, content := cliInput(t, 3)

	up := cliRun(t, env, "files", "upload", input)
	up.want(t, 0, []string{"ID", "FILENAME", "SIZE", "STATUS", "input.jsonl", "processed"}, nil)
	file := cliJSON[client.File](t, cliRun(t, env, "files", "upload", input, "--json"))
	if file.Object != "file" || file.Bytes != int64(len(content)) || !strings.HasPrefix(file.ID, "file-") {
		t.Fatalf("files upload --json: got %+v", file)
	}

	cliRun(t, env, "files", "list").want(t, 0, []string{"ID  ", file.ID}, nil)
	list := cliJSON[struct {
		Object string            `json:"object"`
		Data   []json.RawMessage `json:"data"`
	}](t, cliRun(t, env, "files", "list", "--json"))
	if list.Object != "list" || len(list.Data) != 2 {
		t.Errorf("files list --json: got %s with %d files, want a list of 2", list.Object, len(list.Data))
	}
	cliRun(t, env, "files", "list", "--limit", "1").want(t, 0, nil, []string{"more files follow: --after "})
	cliRun(t, env, "files", "get", file.ID).want(t, 0, []string{file.ID, "input.jsonl"}, nil)
	cliRun(t, env, "files", "download", file.ID).want(t, 0, []string{content}, nil)
	dl := filepath.Join(t.TempDir(), "copy.jsonl")
	cliRun(t, env, "files", "download", file.ID, "-o", dl).want(t, 0, nil, []string{"wrote"})
	if b, _ := os.ReadFile(dl); string(b) != content {
		t.Errorf("files download -o: got %q", b)
	}

	// Not on a terminal, --wait prints timestamped lines; flags may follow the input.
	r := cliRun(t, env, "batches", "create", file.ID, "--wait", "--interval", "20ms", "--metadata", "job=cli")
	r.want(t, 0, []string{"completed 3/3 done, 0 failed", "download: sluice batches download"}, nil)
	if !timestamped.MatchString(r.stdout) || strings.Contains(r.stdout, "\r") {
		t.Errorf("batches create --wait: want timestamped lines and no bar:\n%s", r.stdout)
	}
	batches := cliJSON[struct{ Data []client.Batch }](t, cliRun(t, env, "batches", "list", "--json"))
	if len(batches.Data) != 1 || batches.Data[0].Metadata["job"] != "cli" {
		t.Fatalf("batches list --json: got %+v", batches.Data)
	}
	b := batches.Data[0]
	cliRun(t, env, "batches", "list").want(t, 0, []string{"ID", "STATUS", b.ID, "completed"}, nil)
	cliRun(t, env, "batches", "get", b.ID).want(t, 0, []string{"status             completed", "3 total, 3 completed, 0 failed", "metadata job"}, nil)
	if got := cliJSON[client.Batch](t, cliRun(t, env, "batches", "get", b.ID, "--json")); got.Status != client.StatusCompleted {
		t.Errorf("batches get --json: got %s", got.Status)
	}
	cliRun(t, env, "batches", "wait", b.ID).want(t, 0, []string{"completed 3/3"}, nil)

	dir := t.TempDir()
	out, errs := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "errors.jsonl")
	cliRun(t, env, "batches", "download", b.ID, "-o", out, "--errors", errs).want(t, 0, nil, []string{"wrote output", "wrote errors"})
	if got, _ := os.ReadFile(out); strings.Count(string(got), `"status_code":200`) != 3 {
		t.Errorf("output: got\n%s", got)
	}
	if st, err := os.Stat(errs); err != nil || st.Size() != 0 {
		t.Errorf("error file: got %v, %v; want an empty file", st, err)
	}
	r = cliRun(t, env, "batches", "results", b.ID, "--type", "output")
	r.want(t, 0, []string{`"custom_id":"line-0"`}, []string{"cursor "})

	cliRun(t, env, "batches", "cancel", b.ID).want(t, 1, nil, []string{"409", b.ID})
	cliRun(t, env, "batches", "get", "batch_nope").want(t, 1, nil, []string{"404", "batch_id"})

	cliRun(t, env, "deployments", "list").want(t, 0, []string{"NAME", "gpt-4o-mini", "global", "1000000000"}, nil)
	deps := cliJSON[struct{ Data []client.Deployment }](t, cliRun(t, env, "deployments", "list", "--json"))
	if len(deps.Data) != 1 || deps.Data[0].ID != "gpt-4o-mini" {
		t.Errorf("deployments list --json: got %+v", deps.Data)
	}

	// The Azure names select the /openai routes.
	azure := map[string]string{"AZURE_OPENAI_ENDPOINT": url, "AZURE_OPENAI_API_KEY": "cli-key"}
	cliRun(t, azure, "files", "get", file.ID).want(t, 0, []string{file.ID}, nil)
	cliRun(t, azure, "batches", "get", "batch_nope").want(t, 1, nil, []string{"404 notFound"})

	cliRun(t, env, "files", "delete", file.ID).want(t, 0, []string{"deleted " + file.ID}, nil)
	cliRun(t, env, "files", "get", file.ID).want(t, 1, nil, []string{"404"})
}

func TestCLIBadUsage(t *testing.T) {
	t.Parallel()
	env := map[string]string{"SLUICE_URL": "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no-command", []string{"files"}, "no command given"},
		{"unknown-command", []string{"batches", "frobnicate"}, `unknown command "batches frobnicate"`},
		{"unknown-flag", []string{"files", "list", "--bogus"}, "flag provided but not defined: -bogus"},
		{"missing-argument", []string{"batches", "get"}, "usage: sluice batches get [flags] BATCH_ID"},
		{"too-many-arguments", []string{"batches", "wait", "a", "b"}, "too many arguments: b"},
		{"bad-duration", []string{"batches", "wait", "a", "--interval", "soon"}, `invalid value "soon" for flag -interval`},
		{"bad-type", []string{"batches", "results", "a", "--type", "all-of-it"}, `--type "all-of-it"`},
		{"bad-limit", []string{"batches", "list", "--limit", "1000"}, "--limit must be from 1 to 100"},
		{"run-without-output", []string{"run", "input.jsonl"}, "--output (-o) is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := cliRun(t, env, tc.args...)
			r.want(t, exitUsage, nil, []string{tc.want})
			if r.stdout != "" {
				t.Errorf("stdout: got %q, want nothing", r.stdout)
			}
		})
	}
	t.Run("no-server", func(t *testing.T) {
		t.Parallel()
		cliRun(t, nil, "files", "list").want(t, exitUsage, nil, []string{"no server given: pass --url or set SLUICE_URL"})
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Parallel()
		cliRun(t, env, "files", "list").want(t, exitError, nil, []string{"connection refused"})
	})
	t.Run("help", func(t *testing.T) {
		t.Parallel()
		var names [][]string
		for _, cmds := range cliGroups {
			for _, c := range cmds {
				names = append(names, strings.Fields(c.name))
			}
		}
		names = append(names, []string{"run"})
		for _, name := range names {
			r := cliRun(t, nil, append(name, "--help")...)
			r.want(t, 0, []string{"usage: sluice " + strings.Join(name, " "), "Example:", "  sluice " + name[0], "--url"}, nil)
		}
		cliRun(t, nil, "batches", "--help").want(t, 0, []string{"wait", "download", "retry"}, nil)
		cliRun(t, nil, "help").want(t, 0, []string{"files", "batches", "deployments", "run"}, nil)
		cliRun(t, nil, "batches", "wait", "-h").want(t, 0, []string{"Exit codes:", "5  the batch was cancelled"}, nil)
	})
}

func TestCLIWrongKey(t *testing.T) {
	t.Parallel()
	url := cliServer(t)
	cliRun(t, map[string]string{"SLUICE_URL": url, "SLUICE_API_KEY": "wrong"}, "files", "list").
		want(t, exitError, nil, []string{"401 invalid_api_key: Incorrect API key provided."})
	cliRun(t, map[string]string{"SLUICE_URL": url}, "batches", "list").
		want(t, exitError, nil, []string{"401: You didn't provide an API key."})
	cliRun(t, nil, "files", "list", "--url", url+"/openai", "--api-key", "wrong").
		want(t, exitError, nil, []string{"401 unauthorized"})
	cliRun(t, nil, "files", "list", "--url", url, "--api-key", "cli-key", "--api-version", "1999-01-01").
		want(t, exitError, nil, []string{"400 invalidPayload: Unsupported api-version '1999-01-01'."})
}

// slowServer runs sluice with deployment gpt-4o-mini on a simulated upstream that
// answers after latency, two requests at a time.
func slowServer(t *testing.T, latency time.Duration, extra ...string) string {
	t.Helper()
	up := httptest.NewServer(sim.New(sim.Options{Latency: latency}))
	t.Cleanup(up.Close)
	return cliServer(t, append([]string{"--upstream", up.URL + "/v1", "--deployment", "gpt-4o-mini", "--upstream-concurrency", "2"}, extra...)...)
}

func TestCLIExitCodes(t *testing.T) {
	t.Parallel()
	url := slowServer(t, 100*time.Millisecond, "--cancel-grace", "100ms")
	env := map[string]string{"SLUICE_URL": url, "SLUICE_API_KEY": "cli-key"}
	api := cliAPI(t, url)

	t.Run("failed", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "nope.jsonl")
		writeFile(t, path, `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"no-such-model","messages":[]}}`+"\n")
		r := cliRun(t, env, "batches", "create", path, "--wait", "--interval", "20ms")
		r.want(t, exitFailed, []string{" failed "}, []string{"failed: ", "no-such-model"})
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		input, _ := cliInput(t, 40)
		b := cliJSON[client.Batch](t, cliRun(t, env, "batches", "create", input, "--json"))
		waiting := make(chan cliResult, 1)
		go func() {
			r, err := cliRunErr(env, "batches", "wait", b.ID, "--interval", "20ms")
			if err != nil {
				r.stderr = err.Error()
			}
			waiting <- r
		}()
		cliRun(t, env, "batches", "cancel", b.ID).want(t, 0, []string{b.ID}, nil)
		(<-waiting).want(t, exitCancelled, []string{"cancelled"}, []string{"batch " + b.ID + " cancelled"})
		done, err := api.GetBatch(context.Background(), b.ID)
		if err != nil || done.Status != client.StatusCancelled {
			t.Errorf("got %+v, %v; want cancelled", done, err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		input, _ := cliInput(t, 40)
		b := cliJSON[client.Batch](t, cliRun(t, env, "batches", "create", input, "--json"))
		cliRun(t, env, "batches", "wait", b.ID, "--interval", "20ms", "--timeout", "100ms", "--quiet").
			want(t, exitTimeout, nil, []string{"has not ended after 100ms"})
		cliRun(t, env, "batches", "download", b.ID).want(t, exitError, nil, []string{"its files exist once it ends"})
		cliRun(t, env, "batches", "cancel", b.ID).want(t, 0, nil, nil)
	})
}

func TestCLIWaitForQuota(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(sim.New(sim.Options{Latency: 400 * time.Millisecond}))
	t.Cleanup(up.Close)
	input, content := cliInput(t, 4)
	limit := fileTokens(t, content) * 3 / 2 // one batch of the input fits, two do not
	config := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, config, fmt.Sprintf("deployments:\n  - name: gpt-4o-mini\n    enqueued_token_limit: %d\n    upstreams:\n      - base_url: %s/v1\n        max_concurrency: 1\n", limit, up.URL))
	url := cliServer(t, "--config", config)
	env := map[string]string{"SLUICE_URL": url, "SLUICE_API_KEY": "cli-key"}

	// The first batch holds the quota for about 1.6s, four lines one after another.
	first := cliJSON[client.Batch](t, cliRun(t, env, "batches", "create", input, "--json"))
	cliRun(t, env, "batches", "create", first.InputFileID).want(t, exitError, nil, []string{"400 token_limit_exceeded", "--wait-for-quota"})
	r := cliRun(t, env, "batches", "create", first.InputFileID, "--wait-for-quota", "--quota-backoff", "100ms", "--wait", "--interval", "50ms")
	r.want(t, 0, []string{"quota full: ", "Trying again in 100ms.", "Trying again in 200ms.", "completed 4/4 done"}, nil)
	if got, err := cliAPI(t, url).GetBatch(context.Background(), first.ID); err != nil || got.Status != client.StatusCompleted {
		t.Errorf("first batch: got %+v, %v; want it completed", got, err)
	}
}

// TestCLIProgressBar runs a wait on a pseudo-terminal, where it draws a live bar.
func TestCLIProgressBar(t *testing.T) {
	t.Parallel()
	url := slowServer(t, 40*time.Millisecond)
	input, _ := cliInput(t, 30)
	cmd := exec.Command(os.Args[0], "batches", "create", input, "--wait", "--interval", "50ms")
	cmd.Env = cliEnvOf(map[string]string{"SLUICE_URL": url, "SLUICE_API_KEY": "cli-key", "TERM": "xterm"})
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 160})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	var out bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&out, tty); close(copied) }() // ends with EIO when the child exits
	waitErr := cmd.Wait()
	select {
	case <-copied:
	case <-time.After(10 * time.Second):
		t.Fatal("the terminal's output did not end")
	}
	screen := out.String()
	if waitErr != nil {
		t.Fatalf("exit: %v\n%s", waitErr, screen)
	}
	for _, want := range []string{"% |", "█", "(30/30)", "lines/s, ETA ", "in_progress", "\r", "completed 30/30 done, 0 failed"} {
		if !strings.Contains(screen, want) {
			t.Errorf("terminal output does not hold %q:\n%q", want, screen)
		}
	}
	if timestamped.MatchString(screen) {
		t.Errorf("terminal output has the plain lines of a non-terminal:\n%s", screen)
	}
}

// TestCLIProgressLines runs the same wait with stdout a pipe, where it prints
// timestamped lines.
func TestCLIProgressLines(t *testing.T) {
	t.Parallel()
	url := slowServer(t, 40*time.Millisecond)
	input, _ := cliInput(t, 30)
	r := cliRun(t, map[string]string{"SLUICE_URL": url, "SLUICE_API_KEY": "cli-key"}, "batches", "create", input, "--wait", "--interval", "50ms")
	r.want(t, 0, []string{"uploaded ", " in_progress ", "completed 30/30 done, 0 failed"}, nil)
	if !timestamped.MatchString(r.stdout) || strings.ContainsAny(r.stdout, "\r█") {
		t.Errorf("want timestamped lines and no bar:\n%s", r.stdout)
	}
	// With --json the progress goes to stderr and stdout is the ended batch.
	r = cliRun(t, map[string]string{"SLUICE_URL": url, "SLUICE_API_KEY": "cli-key"}, "batches", "create", input, "--wait", "--json", "--interval", "50ms")
	if b := cliJSON[client.Batch](t, r); b.Status != client.StatusCompleted || !timestamped.MatchString(r.stderr) {
		t.Errorf("--wait --json: got %s, stderr:\n%s", b.Status, r.stderr)
	}
}

func TestCLIRun(t *testing.T) {
	t.Parallel()
	input, _ := cliInput(t, 3)
	dir := t.TempDir()
	out, errs := filepath.Join(dir, "out.jsonl"), filepath.Join(dir, "errors.jsonl")

	t.Run("embedded", func(t *testing.T) {
		t.Parallel()
		data := t.TempDir()
		r := cliRun(t, nil, "run", input, "-o", out, "--errors", errs, "--interval", "20ms", "--data", data)
		r.want(t, 0, []string{"no server given (--url, SLUICE_URL): running one at http://127.0.0.1:", "completed 3/3 done"}, []string{"wrote output"})
		if got, _ := os.ReadFile(out); strings.Count(string(got), "\n") != 3 {
			t.Errorf("output: got\n%s", got)
		}
		if _, err := os.Stat(filepath.Join(data, "sluice.db")); err != nil {
			t.Errorf("--data: %v", err)
		}
	})
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		url := cliServer(t)
		r := cliRun(t, map[string]string{"SLUICE_API_KEY": "cli-key"}, "run", input, "-o", "-", "--url", url+"/v1", "--deployment", "gpt-4o-mini", "--interval", "20ms")
		r.want(t, 0, []string{`"custom_id":"line-2"`}, []string{"completed 3/3 done"})
		if strings.Contains(r.stdout, "running one at") {
			t.Errorf("ran its own server though one was given:\n%s", r.stderr)
		}
	})
	t.Run("deployment-mismatch", func(t *testing.T) {
		t.Parallel()
		r := cliRun(t, nil, "run", input, "-o", filepath.Join(t.TempDir(), "o.jsonl"), "--deployment", "nope", "--interval", "20ms")
		r.want(t, exitFailed, nil, []string{`"nope"`})
	})
}

func TestCLIRetry(t *testing.T) {
	t.Parallel()
	up := httptest.NewServer(sim.New(sim.Options{FailRate: 1, Seed: 1}))
	t.Cleanup(up.Close)
	config := filepath.Join(t.TempDir(), "config.yaml")
	writeFile(t, config, fmt.Sprintf("deployments:\n  - name: gpt-4o-mini\n    upstreams:\n      - base_url: %s/v1\nengine:\n  max_attempts: 1\n", up.URL))
	url := cliServer(t, "--config", config)
	env := map[string]string{"SLUICE_URL": url, "SLUICE_API_KEY": "cli-key"}
	input, _ := cliInput(t, 3)

	// Failed lines do not fail the batch: it completes, and says so.
	r := cliRun(t, env, "batches", "create", input, "--wait", "--json", "--quiet")
	first := cliJSON[client.Batch](t, r)
	if first.Status != client.StatusCompleted || first.RequestCounts.Failed != 3 || r.code != 0 {
		t.Fatalf("got %s %+v exit %d, want completed with 3 failed, exit 0", first.Status, first.RequestCounts, r.code)
	}
	out := filepath.Join(t.TempDir(), "out.jsonl")
	cliRun(t, env, "batches", "download", first.ID, "-o", out).want(t, 0, nil, []string{"3 lines failed: --errors FILE downloads them"})
	cliRun(t, env, "batches", "results", first.ID, "--type", "error").want(t, 0, []string{`"custom_id":"line-0"`}, nil)

	retry := cliJSON[client.Batch](t, cliRun(t, env, "batches", "retry", first.ID, "--lines", "failed", "--json"))
	if retry.ID == first.ID || retry.Metadata["retry_of"] != first.ID {
		t.Errorf("retry: got %s with metadata %v, want a new batch with retry_of %s", retry.ID, retry.Metadata, first.ID)
	}
	cliRun(t, env, "batches", "retry", first.ID, "--lines", "most").want(t, exitUsage, nil, []string{`--lines "most"`})
}

// TestCLIExitOfStatus checks the exit code of every ended status.
func TestCLIExitOfStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status client.Status
		want   int
	}{
		{client.StatusCompleted, 0}, {client.StatusFailed, exitFailed}, {client.StatusExpired, exitExpired}, {client.StatusCancelled, exitCancelled},
	} {
		err := endedError(&client.Batch{ID: "batch_1", Status: tc.status})
		code := 0
		if err != nil {
			code = err.(*cliExit).ExitCode() //nolint:errorlint // endedError returns it unwrapped
		}
		if code != tc.want {
			t.Errorf("%s: got exit code %d, want %d", tc.status, code, tc.want)
		}
	}
}

func TestCLIRewriteModel(t *testing.T) {
	t.Parallel()
	src := filepath.Join(t.TempDir(), "in.jsonl")
	writeFile(t, src, `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"x","messages":[{"role":"user","content":"<b> & </b>"}]}}`+"\n\n"+
		`{"custom_id":"b","method":"POST","url":"/v1/chat/completions","body":{"messages":[]}}`)
	path, err := rewriteModel(src, "dep-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	got, _ := os.ReadFile(path)
	want := `{"body":{"messages":[{"role":"user","content":"<b> & </b>"}],"model":"dep-1"},"custom_id":"a","method":"POST","url":"/v1/chat/completions"}` + "\n" +
		`{"body":{"messages":[],"model":"dep-1"},"custom_id":"b","method":"POST","url":"/v1/chat/completions"}` + "\n"
	if string(got) != want || filepath.Base(path) != "in.jsonl" {
		t.Errorf("got %s:\n%s\nwant:\n%s", filepath.Base(path), got, want)
	}
	writeFile(t, src, "not json\n")
	if _, err := rewriteModel(src, "dep-1"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("not JSON: got %v, want an error naming line 1", err)
	}
}
