// Package pgtest gives tests a PostgreSQL to run against: the cluster that
// scripts/postgres.sh starts, and a schema of their own in it; or, for a test that
// stops and starts the server, a cluster of its own (MustStartCluster).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// EnvDSN names the variable holding the connection string of the database to test
// against; scripts/postgres.sh sets it.
const EnvDSN = "SLUICE_TEST_POSTGRES"

// EnvRequire names the variable that, set to 1, makes a missing database a failure
// rather than a skip; make test sets it.
const EnvRequire = "SLUICE_REQUIRE_POSTGRES"

// DSN returns the connection string of the database to test against. When none is set
// it skips the test, or fails it if EnvRequire is 1.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		msg := EnvDSN + " is not set: run the test under scripts/postgres.sh, e.g. bash scripts/postgres.sh go test ./postgres/"
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal(msg + " (" + EnvRequire + "=1 requires PostgreSQL)")
		}
		tb.Skip(msg)
	}
	return dsn
}

// MustNewSchema creates a schema no other test uses and returns dsn with that schema as
// its search_path, so a store opened with it creates its tables there. The schema, with
// everything in it, is dropped when the test ends.
func MustNewSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "sluice_test_" + hex.EncodeToString(r[:])
	if err := exec(dsn, "CREATE SCHEMA "+name); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := exec(dsn, "DROP SCHEMA IF EXISTS "+name+" CASCADE"); err != nil {
			tb.Error(err)
		}
	})
	return WithSearchPath(tb, dsn, name)
}

// WithSearchPath returns dsn with its search_path set to schema.
func WithSearchPath(tb testing.TB, dsn, schema string) string {
	tb.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("parse %s: %v", EnvDSN, err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// exec runs one statement on a connection of its own.
func exec(dsn, sql string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("connect to postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}
