// Command upload measures how fast Sluice takes in a large batch input file, from the
// first byte sent to the file reading processed, as a ratio to a plain Go HTTP server
// in this process that receives the same multipart upload from the same client code
// and streams the whole body to disk (fsynced, as Sluice's folder bucket does) without
// parsing or looking at it, measured in the same run: the least any upload must do.
//
//	go build -o /tmp/sluice ./cmd/sluice && go run ./bench/upload -sluice /tmp/sluice -mb 200 -lines 100000
//
// Two files are generated into a temporary folder, streamed, never whole in memory:
// -lines chat-completion requests of about (-mb − 1) MB in all, with varied system and
// user messages, and one request of about (-mb − 1) MB whose user message is huge. The
// 1 MB margin keeps the default run under Sluice's 200 MB upload limit. Each upload
// goes to a fresh `sluice serve` on a fresh data folder, whose peak RSS is read right
// after. It prints one markdown table row per file.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-batch/sluice/bench/harness"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "upload:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		bin     = flag.String("sluice", "sluice", "path of the sluice binary")
		mb      = flag.Int("mb", 200, "size of each file in MB (10^6 bytes), less 1 MB")
		lines   = flag.Int("lines", 100000, "request lines in the first file")
		rounds  = flag.Int("rounds", 3, "uploads of each file to each side; medians are reported")
		poll    = flag.Duration("poll", 10*time.Millisecond, "interval between polls of a pending file")
		serve   = flag.String("serve-args", "", "extra arguments for `sluice serve`, split on spaces, e.g. \"--max-upload-bytes 2000000000\" for -mb over 200")
		keep    = flag.String("keep", "", "generate the files into this folder and keep them, to look at or reuse")
		verbose = flag.Bool("v", false, "show the logs of sluice")
	)
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	if *mb < 2 || *lines < 1 || *rounds < 1 {
		return errors.New("-mb must be at least 2, -lines and -rounds positive")
	}
	size := int64(*mb-1) * 1_000_000
	if size/int64(*lines) < 400 {
		return fmt.Errorf("-mb %d is too small for %d lines of at least 400 bytes", *mb, *lines)
	}
	var stderr io.Writer = io.Discard
	if *verbose {
		stderr = os.Stderr
	}

	dir, err := os.MkdirTemp("", "sluice-upload-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	genDir := dir
	if *keep != "" {
		if err := os.MkdirAll(*keep, 0o755); err != nil {
			return err
		}
		genDir = *keep
	}
	manyPath, onePath := filepath.Join(genDir, "lines.jsonl"), filepath.Join(genDir, "one-line.jsonl")
	t := time.Now()
	if err := writeFile(manyPath, func(w *bufio.Writer) error { return writeLines(w, *lines, size) }); err != nil {
		return err
	}
	if err := writeFile(onePath, func(w *bufio.Writer) error { return writeOneLine(w, size) }); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "generated two files of %d bytes in %.1fs\n", size, time.Since(t).Seconds())

	base, err := startBaseline(filepath.Join(dir, "baseline"))
	if err != nil {
		return err
	}
	defer base.Close()
	sim, err := harness.StartSim(*bin, "0s", stderr)
	if err != nil {
		return err
	}
	defer sim.Stop()

	files := []struct{ path, label string }{
		{manyPath, fmt.Sprintf("%d lines of ~%.1f KB", *lines, float64(size)/float64(*lines)/1000)},
		{onePath, fmt.Sprintf("1 line of %.0f MB", float64(size)/1e6)},
	}
	fmt.Printf("| file | bytes | baseline MB/s | sluice MB/s | ratio | sluice peak RSS MiB | sluice CPU s | input tokens | tokens/s |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|\n")
	for _, f := range files {
		var baseRates, rates, rss, cpu, tps []float64
		var tokens int64
		for r := range *rounds {
			b, err := uploadBaseline(base, f.path, size, *poll)
			if err != nil {
				return fmt.Errorf("%s, round %d: baseline: %w", f.label, r+1, err)
			}
			s, err := uploadSluice(harness.Serve{Bin: *bin, Upstream: sim.URL, Deployment: harness.Deployment, Concurrency: 64,
				Args: strings.Fields(*serve), Stderr: stderr}, f.path, size, *poll)
			if err != nil {
				return fmt.Errorf("%s, round %d: sluice: %w", f.label, r+1, err)
			}
			fmt.Fprintf(os.Stderr, "%s, round %d: baseline %.2fs (%.0f MB/s); sluice %.2fs (%.0f MB/s), %.0f MiB peak RSS, %.2f CPU s, %d tokens (%.0f/s)\n",
				f.label, r+1, b.Seconds(), mbps(size, b), s.elapsed.Seconds(), mbps(size, s.elapsed), s.rss, s.cpu, s.tokens,
				float64(s.tokens)/s.elapsed.Seconds())
			baseRates, rates = append(baseRates, mbps(size, b)), append(rates, mbps(size, s.elapsed))
			rss, cpu = append(rss, s.rss), append(cpu, s.cpu)
			tps, tokens = append(tps, float64(s.tokens)/s.elapsed.Seconds()), s.tokens
		}
		br, sr := harness.Median(baseRates), harness.Median(rates)
		fmt.Printf("| %s | %d | %.0f | %.0f | %.2f | %.0f | %.2f | %d | %.0f |\n", f.label, size, br, sr, sr/br, harness.Median(rss),
			harness.Median(cpu), tokens, harness.Median(tps))
	}
	return nil
}

func mbps(size int64, d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }

// sluiceUpload is one upload to sluice.
type sluiceUpload struct {
	elapsed time.Duration
	rss     float64 // MiB
	cpu     float64 // seconds, over the upload
	tokens  int64   // input tokens the scan counted
}

// uploadSluice starts a fresh sluice and times one upload of path until it is processed.
func uploadSluice(serve harness.Serve, path string, size int64, poll time.Duration) (sluiceUpload, error) {
	child, err := harness.StartServe(serve)
	if err != nil {
		return sluiceUpload{}, err
	}
	defer child.Stop()
	cpu0 := child.CPU()
	c := harness.NewClient(child.URL, 4)
	d, id, err := timeUpload(c, path, size, poll)
	if err != nil {
		if exited := child.Exited(); exited != nil {
			err = fmt.Errorf("%w; %w", err, exited)
		}
		return sluiceUpload{}, err
	}
	up := sluiceUpload{elapsed: d, rss: child.PeakRSS(), cpu: child.CPU() - cpu0}
	if up.tokens, err = c.DryRun(context.Background(), id); err != nil {
		return sluiceUpload{}, err
	}
	return up, nil
}

// uploadBaseline times one upload of path to the baseline server and removes its copy.
func uploadBaseline(b *baseline, path string, size int64, poll time.Duration) (time.Duration, error) {
	defer b.clean()
	d, _, err := timeUpload(harness.NewClient(b.url, 4), path, size, poll)
	return d, err
}

// timeUpload uploads path with c, waits until it is processed, checks its size, and
// returns the time it took and the file's ID.
func timeUpload(c *harness.Client, path string, size int64, poll time.Duration) (time.Duration, string, error) {
	defer c.HTTP.CloseIdleConnections()
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	file, err := c.Upload(ctx, filepath.Base(path), f)
	if err != nil {
		return 0, "", err
	}
	if file, err = c.WaitProcessed(ctx, file, poll); err != nil {
		return 0, "", err
	}
	d := time.Since(t0)
	// The baseline stores the whole multipart body: the file and a few hundred bytes
	// of boundaries and headers.
	if file.Bytes < size || file.Bytes > size+4096 {
		return 0, "", fmt.Errorf("file %s has %d bytes, want the %d of the file and its multipart framing", file.ID, file.Bytes, size)
	}
	return d, file.ID, nil
}

// baseline is the least a server must do with an upload: stream the file part of the
// multipart body to a file and fsync it.
type baseline struct {
	url string
	dir string
	srv *http.Server

	mu    sync.Mutex
	paths []string
}

func startBaseline(dir string) (*baseline, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &baseline{url: "http://" + ln.Addr().String(), dir: dir}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/files", b.handleUpload)
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go b.srv.Serve(ln) //nolint:errcheck // ends with ErrServerClosed at Close
	return b, nil
}

func (b *baseline) Close() { b.srv.Close() }

// clean removes the files received so far.
func (b *baseline) clean() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.paths {
		os.Remove(p)
	}
	b.paths = nil
}

func (b *baseline) handleUpload(w http.ResponseWriter, r *http.Request) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "multipart/form-data" {
		http.Error(w, "want multipart/form-data", http.StatusBadRequest)
		return
	}
	// The least an upload must do: take the body off the connection and make it durable
	// on disk. No multipart parsing: the body is stored whole, boundaries and all.
	n, name, err := b.store(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"id":%q,"object":"file","bytes":%d,"status":"processed"}`, name, n)
}

func (b *baseline) store(part io.Reader) (int64, string, error) {
	f, err := os.CreateTemp(b.dir, "upload-*")
	if err != nil {
		return 0, "", err
	}
	b.mu.Lock()
	b.paths = append(b.paths, f.Name())
	b.mu.Unlock()
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, part, make([]byte, 1<<20))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, filepath.Base(f.Name()), err
}

// writeFile creates path and fills it through a buffered writer.
func writeFile(path string, fill func(*bufio.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = fill(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		// Written back now, so the disk is quiet when the timed uploads fsync theirs.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// minText is the shortest user message a generated line has.
const minText = 16

// lineHead is the part of a request line before its user message.
func lineHead(i int, system string) string {
	return `{"custom_id":"req-` + strconv.Itoa(i) + `","method":"POST","url":"/v1/chat/completions","body":{"model":"` + harness.Deployment +
		`","messages":[{"role":"system","content":"` + system + `"},{"role":"user","content":"`
}

// lineTail is the part of a request line after its user message.
const lineTail = `"}],"max_tokens":256,"temperature":0.2}}`

// writeLines writes n request lines of size bytes in all, newlines included. Line
// lengths vary around the mean, each drawn from what is left so the total is exact.
func writeLines(w *bufio.Writer, n int, size int64) error {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	// The most bytes a line needs besides its user message, plus some text: what each
	// line still to come is sure to get.
	longest := slices.MaxFunc(systemPrompts, func(a, b string) int { return len(a) - len(b) })
	reserve := int64(len(lineHead(n, longest))+len(lineTail)+1) + minText
	if size < int64(n)*reserve {
		return fmt.Errorf("%d bytes is too small for %d request lines", size, n)
	}
	var buf []byte
	remaining := size
	for i := range n {
		head := lineHead(i, systemPrompts[rng.IntN(len(systemPrompts))])
		fixed := int64(len(head) + len(lineTail) + 1)
		left := int64(n - i) // lines still to write, this one included
		want := remaining
		if left > 1 {
			mean := float64(remaining) / float64(left)
			want = int64(mean * (0.6 + 0.8*rng.Float64()))
			want = min(want, remaining-(left-1)*reserve)
		}
		content := max(want-fixed, minText)
		buf = append(buf[:0], head...)
		buf = appendText(buf, rng, int(content))
		buf = append(buf, lineTail...)
		buf = append(buf, '\n')
		if _, err := w.Write(buf); err != nil {
			return err
		}
		remaining -= int64(len(buf))
	}
	if remaining != 0 {
		return fmt.Errorf("generated %d bytes, want %d", size-remaining, size)
	}
	return nil
}

// writeOneLine writes one request line of size bytes, newline included, whose user
// message holds nearly all of it, a chunk at a time.
func writeOneLine(w *bufio.Writer, size int64) error {
	rng := rand.New(rand.NewPCG(2, uint64(size)))
	head := lineHead(0, systemPrompts[0])
	content := size - int64(len(head)+len(lineTail)+1)
	if content < minText {
		return fmt.Errorf("%d bytes is too small for a request line", size)
	}
	if _, err := w.WriteString(head); err != nil {
		return err
	}
	var buf []byte
	for content > 0 {
		chunk := min(content, 1<<20)
		buf = appendText(buf[:0], rng, int(chunk))
		if _, err := w.Write(buf); err != nil {
			return err
		}
		content -= chunk
	}
	_, err := w.WriteString(lineTail + "\n")
	return err
}

// appendText appends exactly n bytes of JSON string content: words in sentences, with
// escaped newlines between paragraphs and some non-ASCII words. It never ends inside an
// escape or a multi-byte character.
func appendText(dst []byte, rng *rand.Rand, n int) []byte {
	end := len(dst) + n
	sentence := 0 // words in the current sentence
	space, comma := false, false
	var word []byte
	for {
		var piece []byte
		switch {
		case sentence > 8 && !comma && rng.IntN(4) == 0:
			piece = []byte(`.\n\n`)
			sentence, space = 0, false
		case sentence > 5 && !comma && rng.IntN(3) == 0:
			piece = []byte(". ")
			sentence, space = 0, false
		case sentence > 1 && !comma && rng.IntN(10) == 0:
			piece = []byte(",")
			comma = true
		default:
			word = word[:0]
			if space {
				word = append(word, ' ')
			}
			w := words[rng.IntN(len(words))]
			if sentence == 0 && w[0] >= 'a' && w[0] <= 'z' {
				word = append(word, w[0]-'a'+'A')
				w = w[1:]
			}
			piece = append(word, w...)
			sentence, space, comma = sentence+1, true, false
		}
		if len(dst)+len(piece) > end {
			break
		}
		dst = append(dst, piece...)
	}
	for len(dst) < end {
		dst = append(dst, '.')
	}
	return dst
}

var systemPrompts = []string{
	"You are a helpful assistant. Answer briefly and cite the paragraph you rely on.",
	"You are a careful reviewer of support tickets. Classify the ticket as billing, outage, account or other, then explain in one sentence.",
	"Summarise the customer's message for an engineer who has not read it. Keep product names and error codes exactly as written.",
	"You translate product reviews into plain English. Keep the reviewer's tone; do not add facts.",
	"Extract every date, amount and party named in the contract excerpt as a JSON object with the keys dates, amounts and parties.",
	"You are a tutor. Point out the first mistake in the student's reasoning and ask one question that leads them to fix it.",
	"Rate the answer below from 1 to 5 for factual accuracy against the reference, and give the rating first.",
}

var words = strings.Fields(`
	the a of to and in is that for it with as was on be by this are from at or an have
	not which but all were when we there can more one their if has been would so what
	about out up into than them some could other time these two may then first any like
	now my such make over our even most after also did many before must through back
	years where much your way well down should because each just those people how too
	little state good very make world still own see men work long get here between both
	life being under never day same another know while last might great old year off
	come since against go came right used take three invoice refund shipment delayed
	customer order account password reset billing outage latency dashboard deployment
	region quota limit throttled retry timeout contract clause renewal liability notice
	payment overdue warehouse inventory supplier forecast quarter revenue margin churn
	onboarding feature request regression release rollback incident postmortem on-call
	café naïve Zürich résumé São Paulo Kraków façade coöperate déjà vu 東京 München
	error E1042 HTTP 503 v2.3.1 SKU-88321 #4471 2026-11-02 €1,250.00 $89.99 10:45 UTC
	kindly please urgent thanks regards however therefore meanwhile otherwise although
`)
