package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/sluice-batch/sluice/client"
)

const runHelp = `Runs a file of requests as a batch from start to end: uploads INPUT, creates the
batch, waits for it with progress, and writes its output file to --output (and
its error file to --errors). The output and error files are also written when
the batch was cancelled or expired, with the lines that finished.

With no server given (--url, SLUICE_URL, AZURE_OPENAI_ENDPOINT), it runs one for
the duration, as 'sluice serve' would on 127.0.0.1 with --config (or
SLUICE_CONFIG) if given, else the built-in simulator as deployment gpt-4o-mini;
its data goes in --data, or a temporary folder that is removed after.

--deployment sends every line to that deployment: each line's body.model is set to
it in a copy of INPUT that is uploaded instead.

` + cliExitHelp + `
Example:
  sluice run input.jsonl -o output.jsonl --errors errors.jsonl
  sluice run input.jsonl -o output.jsonl --url http://10.0.0.5:8080/v1 --api-key "$KEY" --deployment gpt-4o
  sluice run input.jsonl -o - --quiet | jq -r .response.body.choices[0].message.content
`

func cmdRun(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("run", "sluice run [flags] INPUT -o OUTPUT", runHelp, true)
	f.jsonFlag()
	out := f.String("o", "", "write the output file here (\"-\" for standard output); required")
	f.StringVar(out, "output", "", "the same as -o")
	errPath := f.String("errors", "", "write the error file here")
	deployment := f.String("deployment", "", "send every line to this deployment (sets body.model)")
	endpoint := f.String("endpoint", "", "the endpoint every line calls; default the url of INPUT's first line")
	window := f.String("completion-window", "24h", "the completion window")
	meta := metadataFlag{}
	f.Var(meta, "metadata", "a key=value of the batch's metadata; repeat for more")
	waitQuota := f.Bool("wait-for-quota", false, "when the quota is full, wait and try again (5s doubling to 5m)")
	backoff := f.Duration("quota-backoff", quotaBackoffFirst, "the first wait of --wait-for-quota")
	dataDir := f.String("data", "", "with no server given: the data folder of the server run for this command")
	config := f.String("config", "", "with no server given: the config of the server run for this command (SLUICE_CONFIG)")
	w := f.waitFlags(false)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *out == "" {
		return cliUsageError(f.name, "--output (-o) is required: where the output file goes")
	}
	if *out == "-" {
		e.json = true // the progress goes to standard error
	}
	input := pos[0]
	if _, err := os.Stat(input); err != nil {
		return err
	}
	p := e.newProgress(*w.quiet)
	c, err := e.tryClient()
	if err != nil {
		return err
	}
	embedded := c == nil
	if embedded {
		var stop func()
		if c, stop, err = e.startEmbedded(ctx, *dataDir, cliFirst(*config, e.getenv("SLUICE_CONFIG")), p); err != nil {
			return err
		}
		defer stop()
	}

	upload := input
	if *deployment != "" {
		tmp, err := rewriteModel(input, *deployment)
		if err != nil {
			return err
		}
		defer os.RemoveAll(filepath.Dir(tmp))
		upload = tmp
	}
	file, err := e.uploadPath(ctx, c, upload, 0, false)
	if err != nil {
		return err
	}
	p.note("uploaded %s as %s (%s)", input, file.ID, cliBytes(file.Bytes))
	ep := cliFirst(*endpoint, firstLineURL(input), "/v1/chat/completions")
	bc := client.BatchCreate{InputFileID: file.ID, Endpoint: ep, CompletionWindow: *window, IdempotencyKey: idempotencyKey()}
	if len(meta) > 0 {
		bc.Metadata = meta
	}
	b, err := e.createBatch(ctx, c, bc, p, *waitQuota, *backoff)
	if err != nil {
		return err
	}
	p.note("created %s", b.ID)
	done, err := e.wait(ctx, c, b.ID, p, w.options())
	if err != nil {
		if embedded && ctx.Err() != nil {
			return fmt.Errorf("interrupted: batch %s stops with the server this command ran", b.ID)
		}
		return err
	}
	if done.OutputFileID != "" || done.ErrorFileID != "" {
		if err := e.downloadResults(ctx, c, done, *out, *errPath); err != nil {
			return err
		}
	}
	if e.json && *out != "-" {
		if err := e.printRaw(done.RawJSON()); err != nil {
			return err
		}
	}
	return endedError(done)
}

// cliListenRE finds the address in the line 'sluice serve' prints once it listens.
var cliListenRE = regexp.MustCompile(`listening on (http://\S+)`)

// startEmbedded runs 'sluice serve' in this process on a free loopback port, for
// a command given no server, and returns a client of it and the function that stops
// it (and removes its data folder when it made one).
func (e *cliEnv) startEmbedded(ctx context.Context, dataDir, config string, p progress) (*client.Client, func(), error) {
	tmp := ""
	if dataDir == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "sluice-run-"); err != nil {
			return nil, nil, err
		}
		dataDir = tmp
	}
	args := []string{"--addr", "127.0.0.1:0", "--data", dataDir, "--log-level", "error"}
	key := cliFirst(e.apiKey, e.getenv("SLUICE_API_KEY"), strings.Split(e.getenv("SLUICE_API_KEYS"), ",")[0])
	if config != "" {
		args = append(args, "--config", config)
		if cfg, err := LoadConfig(config); err == nil && key == "" {
			key = cfg.firstKey()
		}
	}
	// The server lives until stop, even when ctx ends first: the command still
	// has to tell what happened, and may download what finished.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	watch := &listenWatch{found: make(chan string, 1)}
	done := make(chan error, 1)
	go func() { done <- runServe(sctx, args, e.getenv, watch, e.stderr) }()
	stop := func() {
		cancel()
		<-done
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}
	select {
	case url := <-watch.found:
		c, err := client.New(url+"/v1", strings.TrimSpace(key), &client.Options{UserAgent: "sluice-cli/" + Version})
		if err != nil {
			stop()
			return nil, nil, err
		}
		where := "a temporary folder"
		if tmp == "" {
			where = dataDir
		}
		p.note("no server given (--url, SLUICE_URL): running one at %s for this command, data in %s", url, where)
		return c, stop, nil
	case err := <-done:
		cancel()
		if tmp != "" {
			os.RemoveAll(tmp)
		}
		if err == nil {
			err = errors.New("it stopped at once")
		}
		return nil, nil, fmt.Errorf("start a server for this command: %w", err)
	case <-time.After(30 * time.Second):
		stop()
		return nil, nil, errors.New("start a server for this command: it did not listen within 30s")
	case <-ctx.Done():
		stop()
		return nil, nil, ctx.Err()
	}
}

// listenWatch takes what an embedded server prints and passes on the URL of its
// "listening on" line.
type listenWatch struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	found chan string
	sent  bool
}

func (l *listenWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sent {
		return len(p), nil
	}
	l.buf.Write(p)
	if m := cliListenRE.FindSubmatch(l.buf.Bytes()); m != nil {
		l.found <- string(m[1])
		l.sent = true
		l.buf = bytes.Buffer{}
	}
	return len(p), nil
}

// rewriteModel writes a copy of the request file at src with every line's
// body.model set to model, and returns its path, a temporary file of the same base
// name that the caller removes.
func rewriteModel(src, model string) (path string, err error) {
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	dir, err := os.MkdirTemp("", "sluice-run-")
	if err != nil {
		return "", err
	}
	path = filepath.Join(dir, filepath.Base(src))
	out, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	r := bufio.NewReaderSize(in, 1<<20)
	bw := bufio.NewWriterSize(out, 1<<20)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	modelJSON, _ := json.Marshal(model)
	for n := 1; ; n++ {
		line, rerr := r.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			var req map[string]json.RawMessage
			if err := json.Unmarshal(line, &req); err != nil {
				return "", fmt.Errorf("%s line %d: not a JSON object: %w", src, n, err)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(req["body"], &body); err != nil || body == nil {
				return "", fmt.Errorf("%s line %d: no body object to set the model of", src, n)
			}
			body["model"] = modelJSON
			var b bytes.Buffer
			benc := json.NewEncoder(&b)
			benc.SetEscapeHTML(false)
			if err := benc.Encode(body); err != nil {
				return "", err
			}
			req["body"] = bytes.TrimSpace(b.Bytes())
			if err := enc.Encode(req); err != nil {
				return "", err
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return "", rerr
		}
	}
	return path, bw.Flush()
}
