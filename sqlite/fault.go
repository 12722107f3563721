package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Fault is the sluice.FaultFunc of SQLite's errors: a full disk, a database that
// became read-only, an I/O error, a file that cannot be opened. Each passes once the
// operator frees space or mends the folder; the store needs no restart.
func Fault(err error) (string, bool) {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return "", false
	}
	switch se.Code() & 0xff { // the primary code of an extended one
	case sqlite3.SQLITE_FULL:
		return "the database's disk is full", true
	case sqlite3.SQLITE_READONLY:
		return "the database is read-only", true
	case sqlite3.SQLITE_IOERR:
		return "the database had an I/O error", true
	case sqlite3.SQLITE_CANTOPEN:
		return "the database cannot be opened", true
	}
	return "", false
}
