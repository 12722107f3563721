// Package postgres is a sluice.Store on PostgreSQL, for replicas that share one
// database. It keeps the SQLite store's coordination-only data model (a row per file,
// batch, 256-line chunk, extent and segment; none per request line) and coordinates
// replicas in the database alone:
//
//   - ClaimChunks leases chunks with one UPDATE over a SELECT ... FOR UPDATE SKIP
//     LOCKED, so concurrent claimers never wait for each other nor get one chunk twice.
//     A lease ran out when its lease_until is before the database's clock (or
//     Options.NowFunc's, when set).
//   - CommitResults locks the chunks the owner still holds (FOR UPDATE, in key order),
//     sets their done bits in Go, and writes chunks, counts and extents in one
//     transaction. Extents take their sequence numbers after the batch row is locked,
//     so a batch's extents are numbered in commit order.
//   - AdmitBatch sums and inserts under a transaction-scoped advisory lock keyed by the
//     deployment, so concurrent admissions, on any connection of any replica, decide
//     one after another.
//   - StartIdempotent is one INSERT ... ON CONFLICT DO UPDATE ... WHERE, so of
//     concurrent starts with one key exactly one wins.
//
// Every statement that locks several rows locks them in key order, so the committer,
// the heartbeat and releases of one replica, and those of others, never deadlock.
// The schema is versioned in schema_version and migrated at Open from embedded SQL.
package postgres
