package blob

import (
	"os"
	"syscall"
)

// fdatasync makes f's data durable without its metadata, but for its size.
func fdatasync(f *os.File) error { return syscall.Fdatasync(int(f.Fd())) }

// startWriteback asks the kernel to start writing a range of f to disk, without waiting
// (sync_file_range with SYNC_FILE_RANGE_WRITE). It is a hint: errors are ignored, and
// the sync that follows is what makes the bytes durable.
func startWriteback(f *os.File, off, n int64) {
	const syncFileRangeWrite = 2
	_, _, _ = syscall.Syscall6(syscall.SYS_SYNC_FILE_RANGE, f.Fd(), uintptr(off), uintptr(n), syncFileRangeWrite, 0, 0)
}
