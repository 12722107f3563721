package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Cluster is a throwaway PostgreSQL cluster of one test's own, which the test may stop
// and start again: unlike the cluster scripts/postgres.sh shares between tests, taking
// it away harms no other test.
type Cluster struct {
	// DSN is the connection string of its database sluice_test.
	DSN string

	bin, dir, opts string
	asPostgres     bool // root runs the cluster as the user postgres, which it must
}

// MustStartCluster initdb's and starts a cluster in a folder of its own, with the
// binaries in $PGBIN (default /usr/lib/postgresql/15/bin, where Debian's postgresql-15
// puts them); it is stopped and deleted when the test ends. Without the binaries it
// skips the test, or fails it if EnvRequire is 1.
func MustStartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin := os.Getenv("PGBIN")
	if bin == "" {
		bin = "/usr/lib/postgresql/15/bin"
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		msg := "no PostgreSQL binaries in " + bin + " (set PGBIN, or install postgresql-15)"
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal(msg + " (" + EnvRequire + "=1 requires PostgreSQL)")
		}
		tb.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "sluice-pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{bin: bin, dir: dir, asPostgres: os.Geteuid() == 0}
	tb.Cleanup(func() {
		_ = c.pgCtl("-m", "immediate", "-w", "stop")
		os.RemoveAll(dir)
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if c.asPostgres {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Skipf("running as root and there is no user postgres to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"); err != nil {
		tb.Fatalf("initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		tb.Fatal(err)
	}
	c.opts = fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c full_page_writes=off", port, dir)
	c.MustStart(tb)
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	if err := exec(admin, "CREATE DATABASE sluice_test"); err != nil {
		tb.Fatal(err)
	}
	c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/sluice_test?sslmode=disable", port)
	return c
}

// MustStop stops the cluster as a crash would (pg_ctl stop -m immediate): clients' connections
// are cut and no checkpoint is written.
func (c *Cluster) MustStop(tb testing.TB) {
	tb.Helper()
	if err := c.pgCtl("-m", "immediate", "-w", "stop"); err != nil {
		tb.Fatal(err)
	}
}

// MustStart starts the cluster, on the port it had, and waits until it accepts connections.
func (c *Cluster) MustStart(tb testing.TB) {
	tb.Helper()
	if err := c.pgCtl("-l", filepath.Join(c.dir, "postgres.log"), "-w", "-t", "60", "-o", c.opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
		tb.Fatalf("%v\n%s", err, log)
	}
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) pgCtl(args ...string) error {
	out, err := c.run("pg_ctl", append([]string{"-D", c.data()}, args...)...)
	if err != nil {
		return fmt.Errorf("pg_ctl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// run runs one of the cluster's binaries, as the user postgres when we are root.
func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join(c.bin, name)
	if !c.asPostgres {
		return osexec.CommandContext(ctx, path, args...).CombinedOutput()
	}
	quoted := []string{shellQuote(path)}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	return osexec.CommandContext(ctx, "su", "postgres", "-s", "/bin/sh", "-c", strings.Join(quoted, " ")).CombinedOutput()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// freePort returns a loopback port nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
