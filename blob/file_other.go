//go:build !unix

package blob

import "os"

// shared reports whether the file has more than one name. Without the link count at
// hand it says no; Compose links only where it can tell (see link).
// canLink says Compose may not link: Append could not tell a linked file.
const canLink = false

func shared(os.FileInfo) bool { return false }
