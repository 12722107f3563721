// Package harness is what the benchmark commands under bench/ share: it starts Sluice
// and its simulator as child processes, reads their costs from /proc, speaks the parts
// of the Batch API the benchmarks drive, and checks result files.
package harness

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options are optional settings for Start.
type Options struct {
	// Env is added to the bench process's environment, e.g. "GODEBUG=gctrace=1".
	Env []string
	// Stderr receives the child's stderr, line by line; nil discards it.
	Stderr io.Writer
	// StartTimeout bounds the wait for the URL line; default 30s.
	StartTimeout time.Duration
}

// Child is a running child process.
type Child struct {
	// URL is the first submatch of the pattern given to Start.
	URL string
	// PID is the process ID, for reading /proc.
	PID int

	name string
	cmd  *exec.Cmd
	gcs  atomic.Int64
	done chan struct{} // closed when the process has exited
	err  error         // the exit status, once done is closed

	mu     sync.Mutex
	tail   []string // the last stderr lines that are not GC traces
	stdout []string // the stdout lines up to the one Start waited for

	cleanup func() // run once the process has exited; may be nil
}

// tailLines is how many stderr lines a Child keeps for Tail.
const tailLines = 20

// Start runs bin with args and waits until a line of its stdout matches pattern, whose
// first submatch becomes the Child's URL. It fails with the child's last stderr lines
// when the child exits first, which is how a flag unknown to an older binary shows up.
func Start(bin, pattern string, opts *Options, args ...string) (*Child, error) {
	if opts == nil {
		opts = &Options{}
	}
	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, err
	}
	c := &Child{name: bin + " " + firstArg(args), done: make(chan struct{})}
	c.cmd = exec.Command(bin, args...)
	if len(opts.Env) > 0 {
		c.cmd.Env = append(os.Environ(), opts.Env...)
	}
	// The pipes are ours rather than exec's, and WaitDelay bounds the wait for them,
	// so a grandchild that keeps them open cannot hold up Stop.
	outR, outW := io.Pipe()
	errR, errW := io.Pipe()
	c.cmd.Stdout, c.cmd.Stderr = outW, errW
	c.cmd.WaitDelay = time.Second
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	c.PID = c.cmd.Process.Pid

	found := make(chan string, 1)
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			c.mu.Lock()
			if len(c.stdout) < 100 {
				c.stdout = append(c.stdout, sc.Text())
			}
			c.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); len(m) > 1 {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, outR)
	}()
	go func() {
		defer readers.Done()
		c.readStderr(errR, opts.Stderr)
	}()
	go func() {
		c.err = c.cmd.Wait()
		outW.Close()
		errW.Close()
		readers.Wait() // so Tail has the last lines before done says the child exited
		close(c.done)
	}()

	select {
	case u := <-found:
		c.URL = u
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before it listened (%v): %s", c.name, c.err, c.Tail(lastLines))
	case <-time.After(timeout):
		c.Stop()
		return nil, fmt.Errorf("%s printed no line matching %q in %s: %s", c.name, pattern, timeout, c.Tail(lastLines))
	}
}

// StdoutMatch returns the first submatch of pattern in the stdout lines the child printed
// up to the line Start waited for, or "".
func (c *Child) StdoutMatch(pattern string) string {
	re := regexp.MustCompile(pattern)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.stdout {
		if m := re.FindStringSubmatch(l); len(m) > 1 {
			return m[1]
		}
	}
	return ""
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// readStderr counts the runtime's GC trace lines ("gc 12 @3.4s ...", printed under
// GODEBUG=gctrace=1), keeps the last other lines and copies all of them to w.
func (c *Child) readStderr(r io.Reader, w io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			if strings.HasPrefix(line, "gc ") {
				c.gcs.Add(1)
			} else {
				c.mu.Lock()
				c.tail = append(c.tail, strings.TrimRight(line, "\n"))
				if len(c.tail) > tailLines {
					c.tail = c.tail[len(c.tail)-tailLines:]
				}
				c.mu.Unlock()
			}
			if w != nil {
				_, _ = io.WriteString(w, line)
			}
		}
		if err != nil {
			return
		}
	}
}

// GCs returns how many GC trace lines the child has printed so far. It counts only
// when the child runs with GODEBUG=gctrace=1.
func (c *Child) GCs() int64 { return c.gcs.Load() }

// Tail returns the child's last n stderr lines other than GC traces, joined by " | ".
func (c *Child) Tail(n int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.tail) == 0 {
		return "(no stderr)"
	}
	return strings.Join(c.tail[max(0, len(c.tail)-n):], " | ")
}

// lastLines is how many stderr lines an error message quotes.
const lastLines = 3

// Exited returns a non-nil error when the child is no longer running.
func (c *Child) Exited() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v): %s", c.name, c.err, c.Tail(lastLines))
	default:
		return nil
	}
}

// CPU returns the CPU seconds the child has used.
func (c *Child) CPU() float64 { return CPU(c.PID) }

// PeakRSS returns the child's peak resident set in MiB.
func (c *Child) PeakRSS() float64 { return PeakRSS(c.PID) }

// Stop interrupts the child and waits for it to exit, killing it after 15 seconds.
func (c *Child) Stop() {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Signal(os.Interrupt)
		select {
		case <-c.done:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if c.cleanup != nil {
		c.cleanup()
		c.cleanup = nil
	}
}

// Kill ends the child with SIGKILL, as a crash would, and waits for it to exit.
func (c *Child) Kill() {
	select {
	case <-c.done:
	default:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	if c.cleanup != nil {
		c.cleanup()
		c.cleanup = nil
	}
}

// CPU returns the CPU seconds (user and system) a process has used, from /proc, or 0
// when it cannot be read.
func CPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 > len(b) {
		return 0
	}
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	var ut, st float64
	_, _ = fmt.Sscan(f[11], &ut)
	_, _ = fmt.Sscan(f[12], &st)
	return (ut + st) / 100 // clock ticks; 100 a second on Linux
}

// SelfCPU returns the CPU seconds the calling process has used.
func SelfCPU() float64 { return CPU(os.Getpid()) }

// PeakRSS returns the peak resident set (VmHWM) of a process in MiB, from /proc, or 0
// when it cannot be read.
func PeakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			_, _ = fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

// StartSim starts `bin sim` on a free loopback port with the given latency per request.
// The Child's URL is the simulator's /v1 base URL.
func StartSim(bin, latency string, stderr io.Writer) (*Child, error) {
	return Start(bin, `sluice sim listening on (http://\S+)`, &Options{Stderr: stderr},
		"sim", "--addr", "127.0.0.1:0", "--latency", latency)
}

// Serve describes a `sluice serve` child.
type Serve struct {
	Bin         string    // the sluice binary
	Upstream    string    // base URL of the simulator, with /v1
	Deployment  string    // the deployment name the upstream serves
	Concurrency int       // --upstream-concurrency
	Args        []string  // appended to the command line, e.g. from -serve-args
	Env         []string  // added to the environment, e.g. GODEBUG=gctrace=1
	Stderr      io.Writer // receives the logs; nil discards them
}

// StartServe starts `sluice serve` on a free loopback port and a fresh data folder,
// which Stop removes. The Child's URL is the server's base URL, without /v1.
func StartServe(s Serve) (*Child, error) {
	dir, err := os.MkdirTemp("", "sluice-bench-*")
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"),
		"--upstream", s.Upstream, "--deployment", s.Deployment,
		"--upstream-concurrency", strconv.Itoa(s.Concurrency), "--log-level", "info"}
	args = append(args, s.Args...)
	c, err := Start(s.Bin, `listening on (http://\S+)`, &Options{Env: s.Env, Stderr: s.Stderr}, args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c.cleanup = func() { os.RemoveAll(dir) }
	return c, nil
}
