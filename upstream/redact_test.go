package upstream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/upstream"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"},
		{"user-and-password", "https://alice:s3cret@llm.internal:8443/v1", "https://xxxxx@llm.internal:8443/v1"},
		{"user-only", "https://tok3n@llm.internal/v1", "https://xxxxx@llm.internal/v1"},
		{"password-with-space", `parse "http://u:pa ss@h/v1": net/url: invalid userinfo`, `parse "http://xxxxx@h/v1": net/url: invalid userinfo`},
		{"sas", "https://acct.blob.core.windows.net/c/in.jsonl?sv=2024-01-01&sp=r&sig=AbC%2Bd%3D", "https://acct.blob.core.windows.net/c/in.jsonl?sv=2024-01-01&sp=r&sig=xxxxx"},
		{"api-key", "https://x.openai.azure.com/openai?api-version=2024-10-21&api-key=K1#frag", "https://x.openai.azure.com/openai?api-version=2024-10-21&api-key=xxxxx#frag"},
		{"key-first-any-case", "http://h/v1?API-KEY=K1&Code=abc", "http://h/v1?API-KEY=xxxxx&Code=xxxxx"},
		{"in-prose", `Post "http://u:p@10.0.0.5:80/v1/chat/completions?token=T": dial tcp 10.0.0.5:80: connect: connection refused`,
			`Post "http://xxxxx@10.0.0.5:80/v1/chat/completions?token=xxxxx": dial tcp 10.0.0.5:80: connect: connection refused`},
		{"not-a-url", "the key was wrong", "the key was wrong"},
		{"email-is-not-a-url", "write to ops@example.com", "write to ops@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := upstream.Redact(tc.in); got != tc.want {
				t.Errorf("Redact(%q):\n got %q\nwant %q", tc.in, got, tc.want)
			}
		})
	}
}

// A base URL's user:password@ is sent as basic authentication, as an http.Client
// sends it, and is in no error.
func TestUserinfoIsBasicAuthAndNotInErrors(t *testing.T) {
	t.Parallel()
	got := make(chan string, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		io.WriteString(w, "{}")
	}))
	t.Cleanup(ts.Close)
	c := upstream.NewClient(sluice.Upstream{BaseURL: strings.Replace(ts.URL, "://", "://alice:s3cret@", 1) + "/v1", MaxConcurrency: 1}, nil)
	if _, err := c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil); err != nil {
		t.Fatal(err)
	}
	if a := <-got; a != "Basic YWxpY2U6czNjcmV0" {
		t.Errorf("Authorization %q, want basic authentication of alice:s3cret", a)
	}

	// An upstream that refuses connections: the error is the operator's, with the
	// address, but without the credentials.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c = upstream.NewClient(sluice.Upstream{BaseURL: "http://alice:s3cret@" + addr + "/v1", MaxConcurrency: 1}, nil)
	_, err = c.Do(t.Context(), "/chat/completions", []byte(`{}`), nil)
	if err == nil {
		t.Fatal("Do to a closed port: no error")
	}
	if strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "alice") {
		t.Errorf("error shows the credentials: %v", err)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error %v is not ECONNREFUSED any more", err)
	}
	if got, want := upstream.ErrorText(err), "the connection was refused"; got != want {
		t.Errorf("ErrorText: got %q, want %q", got, want)
	}
}

func TestErrorTextNamesNoAddress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"deadline", fmt.Errorf("post: %w", context.DeadlineExceeded), "it timed out"},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8000}, Err: syscall.ECONNREFUSED}, "the connection was refused"},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 8000}, Err: syscall.ECONNRESET}, "the connection was reset"},
		{"dns", &net.DNSError{Err: "no such host", Name: "llm.internal", IsNotFound: true}, "its host name could not be resolved"},
		{"unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.EHOSTUNREACH}, "its host could not be reached"},
		{"too-large", fmt.Errorf("read response: %w", upstream.ErrResponseTooLarge), "its answer was over the size limit"},
		{"other", errors.New("proxyconnect tcp: dial tcp 10.0.0.9:3128: i/o error"), "the connection failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := upstream.ErrorText(tc.err); got != tc.want {
				t.Errorf("ErrorText(%v): got %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}
