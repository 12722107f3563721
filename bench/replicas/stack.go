package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

// usage is CPU seconds used so far, by component.
type usage struct {
	sluice   []float64 // each replica
	sims     float64   // all simulators
	postgres float64   // the postmaster and its children, live and reaped
	azurite  float64
	bench    float64 // this process
}

// minus returns u less an earlier reading u0.
func (u usage) minus(u0 usage) usage {
	out := usage{sims: u.sims - u0.sims, postgres: u.postgres - u0.postgres, azurite: u.azurite - u0.azurite, bench: u.bench - u0.bench}
	for i := range u.sluice {
		v := u.sluice[i]
		if i < len(u0.sluice) {
			v -= u0.sluice[i]
		}
		out.sluice = append(out.sluice, v)
	}
	return out
}

// cores returns u over d as cores, as table cells: sluice (all replicas), simulators,
// PostgreSQL, Azurite, this process and their sum.
func (u usage) cores(d time.Duration) string {
	var sluice float64
	for _, v := range u.sluice {
		sluice += v
	}
	sec := d.Seconds()
	sum := sluice + u.sims + u.postgres + u.azurite + u.bench
	return fmt.Sprintf("%.2f | %.2f | %.2f | %.2f | %.2f | %.2f", sluice/sec, u.sims/sec, u.postgres/sec, u.azurite/sec, u.bench/sec, sum/sec)
}

// stack is the PostgreSQL and Azurite processes a run uses, found by the ports in
// their command lines.
type stack struct {
	postmaster int // 0 when not found
	azurite    int
}

// findStack finds the postmaster listening on the database URL's port and the Azurite
// on the connection string's blob endpoint's port. Either may be missing (a server
// elsewhere): its CPU then reads 0.
func findStack(dsn, conn string) (stack, error) {
	var st stack
	u, err := url.Parse(dsn)
	if err != nil {
		return st, fmt.Errorf("-db: %w", err)
	}
	pgPort := u.Port()
	if pgPort == "" {
		pgPort = "5432"
	}
	azPort := ""
	for _, kv := range strings.Split(conn, ";") {
		if v, ok := strings.CutPrefix(kv, "BlobEndpoint="); ok {
			if bu, err := url.Parse(v); err == nil {
				azPort = bu.Port()
			}
		}
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		switch {
		case isPostmaster(args, pgPort):
			st.postmaster = pid
		case azPort != "" && isAzurite(args, azPort):
			st.azurite = pid
		}
	}
	return st, nil
}

// isPostmaster reports whether args are those of a postgres server on port: the
// postmaster runs the binary named postgres with -p PORT (its children rename
// themselves, "postgres: writer" and so on, as one argument).
func isPostmaster(args []string, port string) bool {
	if len(args) == 0 || filepath.Base(args[0]) != "postgres" {
		return false
	}
	i := slices.Index(args, "-p")
	return i >= 0 && i+1 < len(args) && args[i+1] == port
}

// isAzurite reports whether args are those of an Azurite blob service on port.
func isAzurite(args []string, port string) bool {
	if !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "azurite") }) {
		return false
	}
	i := slices.Index(args, "--blobPort")
	return i >= 0 && i+1 < len(args) && args[i+1] == port
}

// usage reads the CPU the stack's processes have used so far.
func (st stack) usage() usage {
	var u usage
	if st.postmaster != 0 {
		u.postgres = cpuWithChildren(st.postmaster)
		for _, c := range children(st.postmaster) {
			u.postgres += harness.CPU(c)
		}
	}
	if st.azurite != 0 {
		u.azurite = harness.CPU(st.azurite)
	}
	return u
}

// cpuWithChildren returns the CPU seconds of a process and of its children it has
// waited for (utime, stime, cutime and cstime of /proc/PID/stat).
func cpuWithChildren(pid int) float64 {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	var sum float64
	for _, v := range f[11:15] {
		x, _ := strconv.ParseFloat(v, 64)
		sum += x
	}
	return sum / 100 // clock ticks; 100 a second on Linux
}

// children returns the processes whose parent is pid.
func children(pid int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		c, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if f := statFields(c); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, c)
		}
	}
	return out
}

// statFields returns the fields of /proc/PID/stat after the command name: state, ppid, …
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return nil
	}
	return strings.Fields(string(b[i+2:]))
}
