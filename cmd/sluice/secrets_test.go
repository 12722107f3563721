package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// An error line says what failed; the upstream's address is the operator's.
func TestErrorFileNamesNoUpstreamAddress(t *testing.T) {
	t.Parallel()
	addr := closedAddr(t)
	cfg := filepath.Join(t.TempDir(), "sluice.yaml")
	writeFile(t, cfg, `
deployments:
  - name: gpt-4o-mini
    upstreams:
      - base_url: http://`+addr+`/v1
engine:
  max_attempts: 1
`)
	c := MustRunMain(t, nil, "--config", cfg)
	f := c.mustUpload(chatLines(1, "gpt-4o-mini"))
	b := c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	if b.ErrorFileID == nil {
		t.Fatalf("batch %s %+v has no error file", b.Status, b.RequestCounts)
	}
	errs := c.content(*b.ErrorFileID)
	if !strings.Contains(errs, "the connection was refused") || !strings.Contains(errs, `"code":"connection_refused"`) {
		t.Errorf("error file %s: want connection_refused, the connection was refused", errs)
	}
	_, port, _ := net.SplitHostPort(addr)
	for _, leak := range []string{addr, ":" + port, "127.0.0.1", "dial tcp"} {
		if strings.Contains(errs, leak) {
			t.Errorf("error file shows %q: %s", leak, errs)
		}
	}
}

// Credentials in an upstream's URL are not printed: not in the banner, not in a
// config error.
func TestURLCredentialsAreNotPrinted(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[]}`)
	}))
	t.Cleanup(ts.Close)
	withUser := strings.Replace(ts.URL, "://", "://alice:s3cret@", 1)

	t.Run("banner", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(context.Background())
		out := &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(),
				"--upstream", withUser + "/v1?api-key=K9", "--deployment", "d"}, func(string) string { return "" }, out, io.Discard)
		}()
		waitFor(t, func() bool { return listenRE.MatchString(out.String()) }, done)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if s := out.String(); strings.Contains(s, "s3cret") || strings.Contains(s, "alice") || strings.Contains(s, "K9") || !strings.Contains(s, "xxxxx@") {
			t.Errorf("banner shows the credentials, or no redacted URL:\n%s", s)
		}
	})
	t.Run("config-error", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "c.yaml")
		writeFile(t, path, "deployments:\n  - name: d\n    upstreams:\n      - base_url: 'http://alice:s3 cret@llm.internal/v1'\n")
		err := run(context.Background(), []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--config", path},
			func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "deployments[0].upstreams[0].base_url") || strings.Contains(err.Error(), "s3 cret") {
			t.Errorf("got %v, want an error naming the field without the password", err)
		}
	})
	t.Run("flag-error", func(t *testing.T) {
		t.Parallel()
		err := run(context.Background(), []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(),
			"--upstream", "http://alice:s3 cret@llm.internal/v1", "--deployment", "d"}, func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--upstream") || strings.Contains(err.Error(), "s3 cret") {
			t.Errorf("got %v, want an error naming --upstream without the password", err)
		}
	})
}

// waitFor polls cond until it holds, for 30 seconds at most; it fails the test if
// done delivers first.
func waitFor(tb testing.TB, cond func() bool, done chan error) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatal("timed out waiting")
		}
		select {
		case err := <-done:
			tb.Fatalf("sluice serve exited: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The upstream key can come from a file or the environment, not only from a flag,
// which the process list shows; and the flag's help does not print the environment's
// key as its default.
func TestUpstreamKeySources(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag", nil, []string{"--upstream-key", "from-flag"}, "from-flag"},
		{"file", nil, []string{"--upstream-key-file", keyFile}, "from-file"},
		{"env", map[string]string{"SLUICE_UPSTREAM_KEY": "from-env"}, nil, "from-env"},
		{"file-over-env", map[string]string{"SLUICE_UPSTREAM_KEY": "from-env"}, []string{"--upstream-key-file", keyFile}, "from-file"},
		{"env-file", map[string]string{"SLUICE_UPSTREAM_KEY_FILE": keyFile}, nil, "from-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key := upstreamKeySeen(t, tc.env, tc.args...)
			if key != tc.want {
				t.Errorf("upstream got key %q, want %q", key, tc.want)
			}
		})
	}
	t.Run("flag-and-file", func(t *testing.T) {
		t.Parallel()
		err := run(context.Background(), []string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(),
			"--upstream", "http://127.0.0.1:1/v1", "--deployment", "d", "--upstream-key", "a", "--upstream-key-file", keyFile},
			func(string) string { return "" }, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "--upstream-key-file") {
			t.Errorf("got %v, want an error saying to give one of them", err)
		}
	})
	t.Run("help-hides-env", func(t *testing.T) {
		t.Parallel()
		var help strings.Builder
		_ = run(context.Background(), []string{"sluice", "serve", "-h"},
			func(k string) string { return map[string]string{"SLUICE_UPSTREAM_KEY": "sk-secret-env"}[k] }, io.Discard, &help)
		if strings.Contains(help.String(), "sk-secret-env") || !strings.Contains(help.String(), "--upstream-key-file") && !strings.Contains(help.String(), "-upstream-key-file") {
			t.Errorf("serve -h shows the key, or not --upstream-key-file:\n%s", help.String())
		}
	})
}

// upstreamKeySeen runs a server whose one upstream records the api-key it gets, runs
// one line, and returns that key.
func upstreamKeySeen(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	got := make(chan string, 8)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("api-key"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"x","object":"chat.completion","choices":[]}`)
	}))
	t.Cleanup(ts.Close)
	c := MustRunMain(t, env, append([]string{"--upstream", ts.URL + "/v1", "--deployment", "d"}, args...)...)
	f := c.mustUpload(chatLines(1, "d"))
	c.waitBatch(c.mustCreateBatch(f.ID, "/v1/chat/completions").ID, terminal)
	return <-got
}

// Config upstreams take their key from the environment (api_key_env) or a file
// (api_key_file); a missing one is an error naming the field.
func TestConfigUpstreamKeySources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	writeFile(t, keyFile, "  from-file \n")
	load := func(yaml string, env map[string]string) (*Config, error) {
		path := filepath.Join(t.TempDir(), "c.yaml")
		writeFile(t, path, yaml)
		return loadConfig(path, func(k string) string { return env[k] })
	}
	dep := func(up string) string {
		return "deployments:\n  - name: d\n    upstreams:\n      - base_url: http://a/v1\n" + up
	}
	c, err := load(dep("        api_key_env: MY_KEY\n"), map[string]string{"MY_KEY": "from-env"})
	if err != nil || c.Deployments[0].Upstreams[0].APIKey != "from-env" {
		t.Errorf("api_key_env: got %v, %v; want the key from-env", c, err)
	}
	c, err = load(dep("        api_key_file: "+keyFile+"\n"), nil)
	if err != nil || c.Deployments[0].Upstreams[0].APIKey != "from-file" {
		t.Errorf("api_key_file: got %v, %v; want the key from-file", c, err)
	}
	for _, tc := range []struct{ name, up, want string }{
		{"env-unset", "        api_key_env: NOT_SET\n", "deployments[0].upstreams[0].api_key_env: NOT_SET is not set"},
		{"file-missing", "        api_key_file: " + filepath.Join(dir, "nope") + "\n", "deployments[0].upstreams[0].api_key_file"},
		{"two-sources", "        api_key: k\n        api_key_env: MY_KEY\n", "deployments[0].upstreams[0]: give one of api_key, api_key_env and api_key_file"},
	} {
		if _, err := load(dep(tc.up), map[string]string{"MY_KEY": "k"}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// A project's keys come from the config, the environment, a file or a hash; the
	// top-level keys are the default project's admins.
	c, err = load("api_keys: [root]\nprojects:\n  - name: a\n    api_keys: [plain]\n    keys:\n      - key_env: MY_KEY\n        role: admin\n      - key_file: "+keyFile+
		"\n      - key_sha256: "+strings.Repeat("ab", 32)+"\n", map[string]string{"MY_KEY": "from-env"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range c.Keys() {
		got = append(got, fmt.Sprintf("%s/%t/%s/%s", k.Secret, k.SHA256 != "", k.Caller.Project, k.Caller.Role))
	}
	want := []string{"plain/false/a/user", "from-env/false/a/admin", "from-file/false/a/user", "/true/a/user"}
	if !slices.Equal(got, want) {
		t.Errorf("project keys: got %v, want %v", got, want)
	}
	if c.firstKey() != "root" {
		t.Errorf("first key %q, want the admin key root", c.firstKey())
	}
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "\n")
	if _, err := load(dep("        api_key_file: "+empty+"\n"), nil); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty key file: got %v, want an error saying it is empty", err)
	}
}
