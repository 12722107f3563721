//go:build linux || darwin || freebsd || netbsd || openbsd

package upstream

import "syscall"

// peekWouldBlock reports whether a socket has nothing to read and is not closed: a
// non-blocking peek finds no byte and no end.
func peekWouldBlock(fd uintptr, b []byte) bool {
	_, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
