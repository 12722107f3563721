package sqlite_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/sluice-batch/sluice/sqlite"
	_ "modernc.org/sqlite"
)

// A database that cannot grow fails its insert with SQLite's own SQLITE_FULL, which
// Fault reads as a full disk; other errors are not faults.
func TestFaultFullDatabase(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "full.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`CREATE TABLE t (v BLOB)`, `PRAGMA max_page_count = 3`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var full error
	for range 100 {
		if _, full = db.Exec(`INSERT INTO t VALUES (zeroblob(4096))`); full != nil {
			break
		}
	}
	if full == nil {
		t.Fatal("the database never filled")
	}
	if reason, ok := sqlite.Fault(full); !ok || reason != "the database's disk is full" {
		t.Errorf("%v: got %q, %t; want the database's disk is full", full, reason, ok)
	}
	_, syntax := db.Exec(`SELEC 1`)
	if _, ok := sqlite.Fault(syntax); ok || syntax == nil {
		t.Errorf("a syntax error (%v) is a fault", syntax)
	}
	if _, ok := sqlite.Fault(errors.New("database or disk is full")); ok {
		t.Error("a plain error with the words is a fault")
	}
}
