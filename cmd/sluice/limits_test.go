package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// serveLogged runs `sluice serve` with args and returns its address (host:port) and
// its log.
func serveLogged(t *testing.T, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	full := append([]string{"sluice", "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, args...)
	go func() { done <- run(ctx, full, func(string) string { return "" }, stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v\n%s", err, stderr.String())
		}
	})
	waitFor(t, func() bool { return listenRE.MatchString(stdout.String()) }, done)
	return strings.TrimPrefix(listenRE.FindStringSubmatch(stdout.String())[1], "http://"), stderr
}

// closedByServer reports whether the server closes conn before 10 seconds pass.
func closedByServer(t *testing.T, conn net.Conn, r *bufio.Reader) bool {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := r.ReadByte()
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestServerTimeouts(t *testing.T) {
	t.Parallel()
	addr, _ := serveLogged(t, "--idle-timeout", "100ms", "--read-header-timeout", "100ms")
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		// One request, then the connection kept open and idle, as in the attack that
		// used up the file descriptors.
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(conn)
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		if !closedByServer(t, conn, r) {
			t.Error("an idle connection is still open after 10 seconds")
		}
	})
	t.Run("header", func(t *testing.T) {
		t.Parallel()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // and no end of the headers
		if !closedByServer(t, conn, bufio.NewReader(conn)) {
			t.Error("a connection sending headers slowly is still open after 10 seconds")
		}
	})
}

func TestStalledUploadIsCutAndLoggedAsTheClients(t *testing.T) {
	t.Parallel()
	addr, logs := serveLogged(t, "--stall-timeout", "100ms")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n"+
		"--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"+
		"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n"+chatLines(3, "gpt-4o-mini"))
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled upload: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 400 || !strings.Contains(string(b), "request_timeout") {
		t.Errorf("got %d %s, want 400 request_timeout", res.StatusCode, b)
	}
	if s := logs.String(); strings.Contains(s, "level=ERROR") || !strings.Contains(s, "request body too slow") {
		t.Errorf("want the cut logged as the client's, not as an error:\n%s", s)
	}
}

func TestClientGoneMidUploadIsLoggedAsTheClients(t *testing.T) {
	t.Parallel()
	addr, logs := serveLogged(t)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "POST /v1/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 100000\r\n\r\n"+
		"--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"+
		"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n"+chatLines(3, "gpt-4o-mini"))
	conn.Close()
	waitFor(t, func() bool { return strings.Contains(logs.String(), "client went away") }, nil)
	if s := logs.String(); strings.Contains(s, "level=ERROR") || !strings.Contains(s, "level=WARN msg=\"client went away") {
		t.Errorf("want the client's going logged at WARN, not as an error:\n%s", s)
	}
}

func TestRefusalNamesTheAddressAsGiven(t *testing.T) {
	t.Parallel()
	err := run(context.Background(), []string{"sluice", "serve", "--addr", "0.0.0.0:0", "--data", t.TempDir()},
		func(string) string { return "" }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "0.0.0.0:0 is reachable") {
		t.Errorf("got %v, want the refusal to name 0.0.0.0:0", err)
	}
}

func TestServeHelpNamesTheLimits(t *testing.T) {
	t.Parallel()
	var help strings.Builder
	_ = run(context.Background(), []string{"sluice", "serve", "-h"}, func(string) string { return "" }, io.Discard, &help)
	for _, flag := range []string{"-read-header-timeout", "-idle-timeout", "-stall-timeout", "-min-rate", "-max-conns",
		"-max-uploads", "-max-uploads-per-key", "-rate-limit", "-rate-burst", "-upstream-key-file"} {
		if !strings.Contains(help.String(), flag+" ") {
			t.Errorf("serve -h does not name %s", flag)
		}
	}
}
