//go:build !linux

package blob

import "os"

// fdatasync makes f's data durable; without fdatasync, with a full sync.
func fdatasync(f *os.File) error { return f.Sync() }
