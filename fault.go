package sluice

import (
	"errors"
	"syscall"
)

// A FaultFunc says whether err is a fault of the server's own storage that should
// pass (a full disk, a read-only folder, a database or bucket that does not answer),
// and if so what, in a few words a client may be shown: no paths, no addresses. The
// request that met it may be retried; nothing it had stored is lost.
type FaultFunc func(err error) (reason string, ok bool)

// StorageFault is the FaultFunc of the operating system's errors: a disk or quota
// that is full, a file system that is read-only or failing.
func StorageFault(err error) (string, bool) {
	switch {
	case err == nil:
		return "", false
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "the disk is full", true
	case errors.Is(err, syscall.EROFS):
		return "the data folder is read-only", true
	case errors.Is(err, syscall.EIO):
		return "the disk reported an I/O error", true
	}
	return "", false
}

// Faults returns a FaultFunc that asks each of fns in turn.
func Faults(fns ...FaultFunc) FaultFunc {
	return func(err error) (string, bool) {
		if err == nil {
			return "", false
		}
		for _, fn := range fns {
			if fn == nil {
				continue
			}
			if reason, ok := fn(err); ok {
				return reason, true
			}
		}
		return "", false
	}
}
