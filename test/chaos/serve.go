package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

// life is one `sluice serve` process, from its start to its kill.
type life struct {
	start, ready time.Time // ready: it printed its listening line
	kill, dead   time.Time // zero while it runs; dead: its exit was reaped
	pid          int
}

// server runs `sluice serve` on one data folder and one port, kills it with SIGKILL and
// starts it again, keeping the times of each process's life.
type server struct {
	bin    string
	args   []string
	logDir string

	cur atomic.Int64 // index of the current life, which the proxy stamps on connections

	mu    sync.Mutex
	child *harness.Child
	lives []life
	logs  []*os.File
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start starts the next process and waits for its listening line.
func (s *server) start() error {
	s.mu.Lock()
	n := len(s.lives)
	s.mu.Unlock()
	s.cur.Store(int64(n))
	log, err := os.Create(filepath.Join(s.logDir, "sluice-"+strconv.Itoa(n)+".log"))
	if err != nil {
		return err
	}
	t0 := time.Now()
	c, err := harness.Start(s.bin, `listening on (http://\S+)`, &harness.Options{Stderr: log, StartTimeout: time.Minute},
		append([]string{"serve"}, s.args...)...)
	if err != nil {
		log.Close()
		return fmt.Errorf("start sluice serve (life %d): %w", n, err)
	}
	s.mu.Lock()
	s.child = c
	s.lives = append(s.lives, life{start: t0, ready: time.Now(), pid: c.PID})
	s.logs = append(s.logs, log)
	s.mu.Unlock()
	return nil
}

// kill sends SIGKILL to the running process and waits until it is reaped.
func (s *server) kill() error {
	s.mu.Lock()
	c := s.child
	i := len(s.lives) - 1
	s.lives[i].kill = time.Now()
	s.mu.Unlock()
	if err := syscall.Kill(c.PID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill sluice (life %d): %w", i, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.Exited() == nil {
		if time.Now().After(deadline) {
			return fmt.Errorf("sluice (life %d) still runs 30s after SIGKILL", i)
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.mu.Lock()
	s.lives[i].dead = time.Now()
	s.mu.Unlock()
	return nil
}

// exited returns a non-nil error when the current process exited by itself.
func (s *server) exited() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.child == nil {
		return nil
	}
	return s.child.Exited()
}

// pid returns the current process's ID.
func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.child.PID
}

// stop interrupts the current process and waits for it.
func (s *server) stop() {
	s.mu.Lock()
	c := s.child
	s.mu.Unlock()
	if c != nil {
		c.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.logs {
		f.Close()
	}
}

// history returns a copy of the lives so far.
func (s *server) history() []life {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]life(nil), s.lives...)
}

// timeline is what the checks need to know of the lives: when each kill left the API
// without a server.
type timeline struct {
	lives []life
}

// down reports whether [from, to] overlaps a kill window: from a kill until the next
// process printed its listening line.
func (tl timeline) down(from, to time.Time) bool {
	for i, l := range tl.lives {
		if l.kill.IsZero() {
			continue
		}
		end := time.Now()
		if i+1 < len(tl.lives) {
			end = tl.lives[i+1].ready
		}
		if !to.Before(l.kill) && !from.After(end) {
			return true
		}
	}
	return false
}

// afterStart reports whether t is within d of a restarted process's listening line.
func (tl timeline) afterStart(t time.Time, d time.Duration) bool {
	for _, l := range tl.lives[1:] {
		if !t.Before(l.ready) && t.Sub(l.ready) < d {
			return true
		}
	}
	return false
}

// killOf returns the time the process of life i was killed; zero if it was not.
func (tl timeline) killOf(i int) time.Time {
	if i < 0 || i >= len(tl.lives) {
		return time.Time{}
	}
	return tl.lives[i].kill
}
