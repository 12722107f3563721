package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/postgres"
	"github.com/sluice-batch/sluice/postgres/pgtest"
)

// A server that refuses connections, and the server's own fault codes, are faults;
// a constraint violation or a plain error is not.
func TestFault(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, refused := pgconn.Connect(ctx, fmt.Sprintf("postgres://u@%s/db?connect_timeout=5", addr))
	if refused == nil {
		t.Fatal("connected to nothing")
	}
	for _, tc := range []struct {
		err    error
		want   string
		wantOK bool
	}{
		{refused, "the database does not answer", true},
		{fmt.Errorf("admit: %w", &pgconn.PgError{Code: "53100"}), "the database's disk is full", true},
		{&pgconn.PgError{Code: "53300"}, "the database is out of resources", true},
		{&pgconn.PgError{Code: "57P01"}, "the database does not answer", true},
		{&pgconn.PgError{Code: "25006"}, "the database is read-only", true},
		{&pgconn.PgError{Code: "23505"}, "", false},
		{errors.New("the database's disk is full"), "", false},
	} {
		got, ok := postgres.Fault(tc.err)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%v: got %q, %t; want %q, %t", tc.err, got, ok, tc.want, tc.wantOK)
		}
	}
}

// A connection the server cut (pg_ctl stop -m immediate) is a fault, on the first call
// after the stop too, which meets a pooled connection that reads end-of-file; a bare
// io.ErrUnexpectedEOF, as a client's upload cut short gives, is not one. Once the server
// is back the pool reconnects by itself.
func TestFaultWhenTheServerStops(t *testing.T) {
	t.Parallel()
	pg := pgtest.MustStartCluster(t)
	ctx := context.Background()
	s := MustOpen(t, pg.DSN, nil)
	if _, _, err := s.FindBatches(ctx, sluice.BatchFilter{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	pg.MustStop(t)
	for i := range 3 {
		_, _, err := s.FindBatches(ctx, sluice.BatchFilter{Limit: 1})
		if reason, ok := postgres.Fault(err); reason != "the database does not answer" || !ok {
			t.Errorf("call %d with the server stopped: %v: got %q, %t; want a fault: the database does not answer", i, err, reason, ok)
		}
	}
	if reason, ok := postgres.Fault(fmt.Errorf("read upload: %w", io.ErrUnexpectedEOF)); ok {
		t.Errorf("an upload cut short: got the fault %q", reason)
	}
	pg.MustStart(t)
	if _, _, err := s.FindBatches(ctx, sluice.BatchFilter{Limit: 1}); err != nil {
		t.Errorf("with the server back: %v", err)
	}
}
