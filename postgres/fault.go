package postgres

import (
	"errors"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Fault is the sluice.FaultFunc of PostgreSQL's errors: a server that does not answer
// or went away, one that is starting or shutting down, one out of disk or
// connections. Each passes when the server is back; the pool reconnects by itself.
func Fault(err error) (string, bool) {
	var (
		pgErr   *pgconn.PgError
		connErr *pgconn.ConnectError
		netErr  net.Error
	)
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &pgErr):
		switch {
		case pgErr.Code == "53100": // disk_full
			return "the database's disk is full", true
		case strings.HasPrefix(pgErr.Code, "53"): // insufficient resources: memory, connections
			return "the database is out of resources", true
		case strings.HasPrefix(pgErr.Code, "08"), strings.HasPrefix(pgErr.Code, "57P"): // connection; shutdown, starting
			return "the database does not answer", true
		case pgErr.Code == "25006": // read_only_sql_transaction: a standby, or read-only mode
			return "the database is read-only", true
		}
		return "", false
	case errors.As(err, &connErr), errors.As(err, &netErr), pgconn.SafeToRetry(err):
		return "the database does not answer", true
	}
	return "", false
}
