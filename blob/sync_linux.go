package blob

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable without its metadata, but for its size.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }
