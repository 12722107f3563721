package upstream_test

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/upstream"
)

// hangingAddr returns an address where a connect hangs: a listener with a backlog of
// 0 that never accepts, its queue filled.
func hangingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := (&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: sa.(*syscall.SockaddrInet4).Port}).String()
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond)
		if err != nil {
			return addr // the queue is full: this connect hung
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Skip("could not make a connect hang here")
	return ""
}

// A deadline that passes while the connection is being made is the context's deadline,
// whichever of the socket's timer and the context's fires first.
func TestH1DeadlineWhileConnecting(t *testing.T) {
	t.Parallel()
	c := upstream.NewClient(sluice.Upstream{BaseURL: "http://" + hangingAddr(t) + "/v1", MaxConcurrency: 1}, nil)
	for i := range 20 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
		_, err := c.Do(ctx, "/chat/completions", []byte(`{}`), nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || upstream.ErrorCode(err) != "timeout" {
			t.Fatalf("try %d: err = %v (code %q), want a deadline exceeded, code timeout", i, err, upstream.ErrorCode(err))
		}
	}
}
