// Command throughput measures the lines per second Sluice sustains against a simulator,
// as a ratio to a plain HTTP client that sends the same lines to the same simulator with
// no persistence, measured in the same run. Both sides are separate processes from the
// simulator (`sluice sim`), so the machine's cores are shared the same way.
//
//	go build -o /tmp/sluice ./cmd/sluice && go run ./bench/throughput -sluice /tmp/sluice
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stderrSink receives the children's logs; -v shows them.
var stderrSink io.Writer = io.Discard

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		bin         = flag.String("sluice", "sluice", "path of the sluice binary")
		lines       = flag.Int("lines", 10000, "lines in the batch")
		concurrency = flag.Int("concurrency", 64, "requests in flight, for both the client and the engine")
		rounds      = flag.Int("rounds", 3, "measurements of each side; the median is reported")
		latency     = flag.String("latency", "0s", "simulator latency per request")
		cpuTable    = flag.Bool("cpu", false, "report CPU seconds per line of each process instead of lines/s")
	)
	verbose := flag.Bool("v", false, "show the logs of sluice")
	flag.Parse()
	if *verbose {
		stderrSink = os.Stderr
	}

	simURL, stopSim, simPID, err := startPID(*bin, "sluice sim listening on (http://\\S+)", "sim", "--addr", "127.0.0.1:0", "--latency", *latency)
	if err != nil {
		return err
	}
	defer stopSim()

	input := makeLines(*lines)
	var plain, engine, rss, plainCPU, engineCPU, simPlainCPU, simEngineCPU []float64
	for r := range *rounds {
		n := float64(*lines)
		self0, sim0 := selfCPU(), procCPU(simPID)
		p, err := plainClient(simURL, input, *concurrency)
		if err != nil {
			return fmt.Errorf("plain client: %w", err)
		}
		plainCPU = append(plainCPU, (selfCPU()-self0)/n)
		simPlainCPU = append(simPlainCPU, (procCPU(simPID)-sim0)/n)
		sim1 := procCPU(simPID)
		e, m, cpu, err := sluiceBatch(*bin, simURL, input, *concurrency)
		if err != nil {
			return fmt.Errorf("sluice: %w", err)
		}
		engineCPU = append(engineCPU, cpu/n)
		simEngineCPU = append(simEngineCPU, (procCPU(simPID)-sim1)/n)
		fmt.Fprintf(os.Stderr, "round %d: plain %.0f lines/s, sluice %.0f lines/s\n", r+1, p, e)
		plain, engine, rss = append(plain, p), append(engine, e), append(rss, m)
	}
	mp, me := median(plain), median(engine)
	if *cpuTable {
		fmt.Printf("| sim latency | plain client CPU µs/line | sluice CPU µs/line | ratio | sim CPU µs/line (plain run) | sim CPU µs/line (sluice run) |\n")
		fmt.Printf("|---|---|---|---|---|---|\n")
		pc, ec := median(plainCPU)*1e6, median(engineCPU)*1e6
		fmt.Printf("| %s | %.1f | %.1f | %.2f | %.1f | %.1f |\n", *latency, pc, ec, ec/pc, median(simPlainCPU)*1e6, median(simEngineCPU)*1e6)
		return nil
	}
	fmt.Printf("| lines | concurrency | sim latency | plain client lines/s | sluice lines/s | ratio | sluice peak RSS MiB |\n")
	fmt.Printf("|---|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %d | %s | %.0f | %.0f | %.2f | %.0f |\n", *lines, *concurrency, *latency, mp, me, me/mp, median(rss))
	return nil
}

func makeLines(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"bench","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise item %d of the catalogue in one sentence."}],"max_tokens":16}}`+"\n", i, i)
	}
	return b.Bytes()
}

// start runs the binary with args until stop, and returns the URL it printed.
func start(bin, pattern string, args ...string) (string, func(), error) {
	u, stop, _, err := startPID(bin, pattern, args...)
	return u, stop, err
}

// startPID is start, also returning the child's process ID.
func startPID(bin, pattern string, args ...string) (string, func(), int, error) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, 0, err
	}
	cmd.Stderr = stderrSink
	if err := cmd.Start(); err != nil {
		return "", nil, 0, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		t := time.AfterFunc(10*time.Second, func() { _ = cmd.Process.Kill() })
		_ = cmd.Wait()
		t.Stop()
	}
	re := regexp.MustCompile(pattern)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case u := <-found:
		return u, stop, cmd.Process.Pid, nil
	case <-time.After(30 * time.Second):
		stop()
		return "", nil, 0, errors.New(bin + " did not start")
	}
}

// plainClient sends every line's body to the simulator with concurrency workers and
// reads each answer whole: the least any batch runner must do.
func plainClient(simURL string, input []byte, concurrency int) (float64, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency}}
	lines := bytes.Split(bytes.TrimSpace(input), []byte("\n"))
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(len(lines)) {
					return
				}
				var line struct {
					Body json.RawMessage `json:"body"`
				}
				if json.Unmarshal(lines[i], &line) != nil {
					failed.Add(1)
					continue
				}
				resp, err := hc.Post(simURL+"/chat/completions", "application/json", bytes.NewReader(line.Body))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		return 0, fmt.Errorf("%d requests failed", f)
	}
	return float64(len(lines)) / time.Since(t0).Seconds(), nil
}

// sluiceBatch starts sluice on a fresh data folder, uploads the lines, creates a batch
// and measures from create to completed: validation, dispatch, commits and the writing of
// the output file are all inside the measured time.
func sluiceBatch(bin, simURL string, input []byte, concurrency int) (float64, float64, float64, error) {
	dir, err := os.MkdirTemp("", "sluice-bench-*")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	base, stop, pid, err := startPID(bin, `listening on (http://\S+)`, "serve", "--addr", "127.0.0.1:0", "--data", filepath.Join(dir, "data"),
		"--upstream", simURL, "--deployment", "bench", "--upstream-concurrency", fmt.Sprint(concurrency), "--log-level", "info")
	if err != nil {
		return 0, 0, 0, err
	}
	defer stop()

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "bench.jsonl")
	_, _ = fw.Write(input)
	_ = mw.Close()
	var file struct{ ID string }
	if err := call("POST", base+"/v1/files", mw.FormDataContentType(), &body, &file); err != nil {
		return 0, 0, 0, err
	}
	req, _ := json.Marshal(map[string]string{"input_file_id": file.ID, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
	var b struct {
		ID            string
		Status        string
		RequestCounts struct{ Total, Completed, Failed int } `json:"request_counts"`
	}
	cpu0 := procCPU(pid)
	t0 := time.Now()
	if err := call("POST", base+"/v1/batches", "application/json", bytes.NewReader(req), &b); err != nil {
		return 0, 0, 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	for b.Status != "completed" {
		if ctx.Err() != nil || strings.Contains("failed cancelled expired", b.Status) && b.Status != "" {
			return 0, 0, 0, fmt.Errorf("batch ended %q with %+v", b.Status, b.RequestCounts)
		}
		time.Sleep(20 * time.Millisecond)
		if err := call("GET", base+"/v1/batches/"+b.ID, "", nil, &b); err != nil {
			return 0, 0, 0, err
		}
	}
	elapsed := time.Since(t0)
	cpu := procCPU(pid) - cpu0
	if b.RequestCounts.Completed != len(bytes.Split(bytes.TrimSpace(input), []byte("\n"))) {
		return 0, 0, 0, fmt.Errorf("completed %+v", b.RequestCounts)
	}
	return float64(b.RequestCounts.Completed) / elapsed.Seconds(), peakRSS(pid), cpu, nil
}

// procCPU returns the CPU seconds (user and system) a process has used, from /proc.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ut, st float64
	fmt.Sscan(f[11], &ut)
	fmt.Sscan(f[12], &st)
	return (ut + st) / 100 // clock ticks; 100 a second on Linux
}

// selfCPU returns the CPU seconds this process has used.
func selfCPU() float64 { return procCPU(os.Getpid()) }

// peakRSS returns the peak resident set of a process in MiB, from /proc.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(v), "%f", &kb)
			return kb / 1024
		}
	}
	return 0
}

func call(method, url, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
