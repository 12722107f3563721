//go:build unix

package blob

import (
	"os"
	"syscall"
)

// shared reports whether the file has more than one name: Compose linked it.
// canLink says Compose may link: Append can tell a linked file by its link count.
const canLink = true

func shared(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Nlink > 1
}
