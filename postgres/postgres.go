package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/sluice-batch/sluice"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options are the optional settings of Open. Nil means the defaults.
type Options struct {
	// NowFunc, when set, is the clock by which a claim tells whether a lease ran out.
	// By default claims use the database's clock, so every replica judges leases by one
	// clock whatever its own says.
	NowFunc func() time.Time
	// Logger receives the store's logs; nil discards them.
	Logger *slog.Logger
}

// Store is a sluice.Store on PostgreSQL. It keeps nothing of the database in memory:
// other replicas write the same rows.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time // nil: the database's clock
	log  *slog.Logger
}

var _ sluice.Store = (*Store)(nil)

// Advisory lock classes, the first key of pg_advisory_xact_lock(int, int); the second
// is a hash of the schema (and of the deployment, for admission), so stores in other
// schemas of one database do not wait for each other.
const (
	lockMigrate int32 = 0x736c0001
	lockAdmit   int32 = 0x736c0002
	// lockAdmitProject is taken after lockAdmit, never before.
	lockAdmitProject int32 = 0x736c0003
)

// Open connects to the database dsn names (a postgres:// URL or keyword/value string;
// pgxpool's settings such as pool_max_conns may be added to it) and brings its schema,
// the first schema on the search_path, to the version this package knows.
func Open(ctx context.Context, dsn string, opts *Options) (*Store, error) {
	if opts == nil {
		opts = &Options{}
	}
	s := &Store{now: opts.NowFunc, log: opts.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	// Every statement here is a short lookup by key, which a generic plan serves as
	// well as a custom one; planning the joins over unnest() for every custom plan cost
	// more than running them. The DSN may say otherwise.
	if _, ok := cfg.ConnConfig.RuntimeParams["plan_cache_mode"]; !ok {
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
	}
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return serverConn{conn, network}, nil
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	if err := migrate(ctx, s.pool, s.log); err != nil {
		s.pool.Close()
		return nil, err
	}
	return s, nil
}

// Close implements sluice.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// migration is one file of migrations/, NNN_name.sql, which brings the schema to
// version NNN.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: name is not NNN_name.sql", e.Name())
		}
		b, err := migrations.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", m.name, i+1)
		}
	}
	return out, nil
}

// migrate applies the migrations the schema lacks, in one transaction. The advisory
// lock makes replicas that start together take turns: the first migrates, the others
// then find the schema current.
func migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))`, lockMigrate); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	if version > len(ms) {
		return fmt.Errorf("the database has schema version %d, newer than this sluice knows (%d); run a newer sluice", version, len(ms))
	}
	if version == len(ms) {
		return nil
	}
	for _, m := range ms[version:] {
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("migrate postgres: %s: %w", m.name, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM schema_version`); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) VALUES ($1)`, len(ms)); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate postgres: %w", err)
	}
	log.InfoContext(ctx, "migrated postgres schema", "from", version, "to", len(ms))
	return nil
}

// interpret translates driver errors into sluice kinds, once, for every method.
func interpret(err error, what, id string) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return sluice.Errorf(sluice.KindNotFound, "No such %s object: %s", what, id).WithErr(err)
	case errors.As(err, &pgErr) && pgErr.Code == "23505": // unique_violation
		return sluice.Errorf(sluice.KindConflict, "The %s %s already exists.", what, id).WithErr(err)
	}
	return fmt.Errorf("%s %s: %w", what, id, err)
}

// serverConn is a connection to the server whose reads end, when the server closes it,
// with a net.Error saying so rather than io.EOF. pgx turns io.EOF into a bare
// io.ErrUnexpectedEOF, which Fault could not tell from a client's upload cut short; a
// pooled connection that a stopped or restarted server cut would then answer 500, not
// 503, on the first call after the stop.
type serverConn struct {
	net.Conn
	network string
}

// errServerClosed is the cause of a read from a connection the server closed.
var errServerClosed = errors.New("the server closed the connection")

func (c serverConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if errors.Is(err, io.EOF) {
		err = &net.OpError{Op: "read", Net: c.network, Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: errServerClosed}
	}
	return n, err
}

// querier is what a pool and a transaction share.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// params collects the parameters of a query built piece by piece.
type params []any

// add appends v and returns its placeholder.
func (p *params) add(v any) string {
	*p = append(*p, v)
	return "$" + strconv.Itoa(len(*p))
}

// placeholders returns "$from, ..., $(from+n-1)".
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("$" + strconv.Itoa(from+i))
	}
	return b.String()
}

// sec returns t in whole seconds, UTC: the API shows unix seconds, and the SQLite store
// keeps them so, so both stores return the same times.
func sec(t time.Time) time.Time { return t.Truncate(time.Second).UTC() }

func secPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := sec(*t)
	return &v
}

// utc returns t in UTC; pgx returns times in the local zone.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

// toStrings returns the values of a slice of string type as []string, which pgx sends as
// text[].
func toStrings[S ~string](in []S) []string {
	out := make([]string, len(in))
	for i, v := range in {
		out[i] = string(v)
	}
	return out
}
