package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluice-batch/sluice/client"
)

// The exit codes of the client commands. The batch ones say how a batch ended, for
// the commands that wait for one.
const (
	exitError     = 1 // the server refused or could not be reached, or a local file failed
	exitUsage     = 2 // bad usage: an unknown command or flag, a missing argument
	exitFailed    = 3 // the batch failed (its input did not pass validation)
	exitExpired   = 4 // the batch expired before all its lines ran
	exitCancelled = 5 // the batch was cancelled
	exitTimeout   = 6 // --timeout ran out before the batch ended
)

// cliExitHelp is the exit codes, as every waiting command's help shows them.
const cliExitHelp = `Exit codes:
  0  the batch completed (some of its lines may have failed: see its error file)
  1  the server refused a request or could not be reached, or a local file failed
  2  bad usage
  3  the batch failed: its input did not pass validation
  4  the batch expired before all its lines ran
  5  the batch was cancelled
  6  --timeout ran out before the batch ended (it goes on on the server)
`

// cliConnectHelp says how the client commands find the server.
const cliConnectHelp = `Server and key, first found wins:
  --url URL        or SLUICE_URL, or AZURE_OPENAI_ENDPOINT
  --api-key KEY    or SLUICE_API_KEY, or AZURE_OPENAI_API_KEY
A URL ending in /v1 (or with no path) is spoken to as the OpenAI API, with
"Authorization: Bearer KEY". AZURE_OPENAI_ENDPOINT, a URL ending in /openai, an
*.openai.azure.com host or --api-version selects the Azure OpenAI routes
(/openai/..., "api-key: KEY") with --api-version, or OPENAI_API_VERSION, or
` + client.DefaultAPIVersion + `.
`

// cliExit is an error that ends the program with a given exit code.
type cliExit struct {
	code int
	err  error
}

func (e *cliExit) Error() string { return e.err.Error() }
func (e *cliExit) Unwrap() error { return e.err }

// ExitCode is the process's exit code for the error.
func (e *cliExit) ExitCode() int { return e.code }

// withExit gives err an exit code, unless it has one.
func withExit(code int, err error) error {
	var has *cliExit
	if err == nil || errors.As(err, &has) {
		return err
	}
	return &cliExit{code: code, err: err}
}

// cliUsageError is bad usage of a command: exit code 2, with a pointer to its help.
func cliUsageError(cmd string, format string, args ...any) error {
	return &cliExit{code: exitUsage, err: fmt.Errorf("%s\nrun 'sluice %s --help' for its usage", fmt.Sprintf(format, args...), cmd)}
}

// errHelpShown ends a command whose help was asked for and printed.
var errHelpShown = errors.New("help shown")

// cliEnv is what every client command runs with: its I/O and the common flags.
type cliEnv struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	now            func() time.Time

	url, apiKey, apiVersion string
	json                    bool
}

// cliCommand is one client command.
type cliCommand struct {
	name    string // e.g. "files upload"
	summary string
	run     func(ctx context.Context, e *cliEnv, args []string) error
}

// cliGroups are the client commands by their first word.
var cliGroups = map[string][]cliCommand{
	"files": {
		{"files upload", "upload .jsonl files for batches", cmdFilesUpload},
		{"files list", "list files", cmdFilesList},
		{"files get", "show files", cmdFilesGet},
		{"files download", "download a file's content", cmdFilesDownload},
		{"files delete", "delete files", cmdFilesDelete},
	},
	"batches": {
		{"batches create", "create a batch of an uploaded or local file; --wait to wait for it", cmdBatchesCreate},
		{"batches list", "list batches", cmdBatchesList},
		{"batches get", "show a batch", cmdBatchesGet},
		{"batches wait", "wait for a batch to end, with progress", cmdBatchesWait},
		{"batches cancel", "cancel batches", cmdBatchesCancel},
		{"batches download", "download an ended batch's output and error files", cmdBatchesDownload},
		{"batches results", "the result lines a batch has so far, running or ended", cmdBatchesResults},
		{"batches retry", "run again the lines of an ended batch that did not succeed", cmdBatchesRetry},
	},
	"deployments": {
		{"deployments list", "list the server's deployments and their quota", cmdDeploymentsList},
	},
}

// runCLI runs a client command: args[0] is files, batches, deployments or run.
func runCLI(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	e := &cliEnv{getenv: getenv, stdout: stdout, stderr: stderr, now: time.Now}
	var err error
	if args[0] == "run" {
		err = cmdRun(ctx, e, args[1:])
	} else {
		err = e.dispatch(ctx, args)
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return withExit(exitError, err)
}

func (e *cliEnv) dispatch(ctx context.Context, args []string) error {
	group, cmds := args[0], cliGroups[args[0]]
	groupHelp := func(w io.Writer) {
		fmt.Fprintf(w, "usage: sluice %s <command> [flags] [args]\n\ncommands:\n", group)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, c := range cmds {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimPrefix(c.name, group+" "), c.summary)
		}
		tw.Flush()
		fmt.Fprintf(w, "\nRun 'sluice %s <command> --help' for a command's flags and an example.\n", group)
	}
	if len(args) < 2 {
		groupHelp(e.stderr)
		return &cliExit{code: exitUsage, err: errors.New("no command given")}
	}
	switch args[1] {
	case "-h", "-help", "--help", "help":
		groupHelp(e.stdout)
		return errHelpShown
	}
	for _, c := range cmds {
		if c.name == group+" "+args[1] {
			return c.run(ctx, e, args[2:])
		}
	}
	groupHelp(e.stderr)
	return &cliExit{code: exitUsage, err: fmt.Errorf("unknown command %q", group+" "+args[1])}
}

// cliFlags is the flag set of one command, with its help.
type cliFlags struct {
	*flag.FlagSet
	name  string // e.g. "files upload"
	usage string // e.g. "sluice files upload [flags] FILE..."
	help  string // what it does, its exit codes, an example
	e     *cliEnv
}

// flags starts the flag set of a command; the common flags are added when the
// command talks to a server (server true).
func (e *cliEnv) flags(name, usage, help string, server bool) *cliFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	f := &cliFlags{FlagSet: fs, name: name, usage: usage, help: help, e: e}
	if server {
		fs.StringVar(&e.url, "url", "", "the server's URL, e.g. http://127.0.0.1:8080/v1 (SLUICE_URL, AZURE_OPENAI_ENDPOINT)")
		fs.StringVar(&e.apiKey, "api-key", "", "the API key (SLUICE_API_KEY, AZURE_OPENAI_API_KEY)")
		fs.StringVar(&e.apiVersion, "api-version", "", "the api-version of the Azure routes (OPENAI_API_VERSION; default "+client.DefaultAPIVersion+")")
	}
	return f
}

// jsonFlag adds --json.
func (f *cliFlags) jsonFlag() {
	f.BoolVar(&f.e.json, "json", false, "print the API's objects as JSON, as the server sent them, instead of a table")
}

// parse parses args, flags and positional arguments in any order ("--" ends the
// flags), and checks the count of positional ones: at least lo, at most hi (-1: any).
func (f *cliFlags) parse(args []string, lo, hi int) ([]string, error) {
	var pos []string
	for {
		err := f.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			f.printHelp()
			return nil, errHelpShown
		}
		if err != nil {
			return nil, cliUsageError(f.name, "%v", err)
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < lo:
		return nil, cliUsageError(f.name, "usage: %s", f.usage)
	case hi >= 0 && len(pos) > hi:
		return nil, cliUsageError(f.name, "too many arguments: %s\nusage: %s", strings.Join(pos[hi:], " "), f.usage)
	}
	return pos, nil
}

func (f *cliFlags) printHelp() {
	w := f.e.stdout
	fmt.Fprintf(w, "usage: %s\n\n%s\nFlags:\n", f.usage, strings.TrimLeft(f.help, "\n"))
	common := []string{"url", "api-key", "api-version"}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	row := func(fl *flag.Flag) {
		name, usage := flag.UnquoteUsage(fl)
		arg := "--" + fl.Name
		if len(fl.Name) == 1 {
			arg = "-" + fl.Name
		}
		if name != "" {
			arg += " " + name
		}
		def := ""
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "0s" {
			def = " (default " + fl.DefValue + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", arg, usage, def)
	}
	f.VisitAll(func(fl *flag.Flag) {
		if !slices.Contains(common, fl.Name) {
			row(fl)
		}
	})
	if f.Lookup("url") != nil {
		for _, name := range common {
			row(f.Lookup(name))
		}
	}
	tw.Flush()
	if f.Lookup("url") != nil {
		fmt.Fprintf(w, "\n%s", cliConnectHelp)
	}
}

// client returns a client of the server the flags and environment name.
func (e *cliEnv) client() (*client.Client, error) {
	c, err := e.tryClient()
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, &cliExit{code: exitUsage, err: errors.New("no server given: pass --url or set SLUICE_URL (or AZURE_OPENAI_ENDPOINT)")}
	}
	return c, nil
}

// tryClient returns a client of the server the flags and environment name, or nil
// when they name none.
func (e *cliEnv) tryClient() (*client.Client, error) {
	raw, azure := e.url, false
	if raw == "" {
		raw = e.getenv("SLUICE_URL")
	}
	if raw == "" {
		raw = e.getenv("AZURE_OPENAI_ENDPOINT")
		azure = raw != ""
	}
	if raw == "" {
		return nil, nil
	}
	key := cliFirst(e.apiKey, e.getenv("SLUICE_API_KEY"), e.getenv("AZURE_OPENAI_API_KEY"))
	version := cliFirst(e.apiVersion, e.getenv("OPENAI_API_VERSION"))
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &cliExit{code: exitUsage, err: fmt.Errorf("server URL %q: want an http:// or https:// URL such as http://127.0.0.1:8080/v1", raw)}
	}
	p := strings.TrimRight(u.Path, "/")
	host := u.Hostname()
	azure = azure || strings.HasSuffix(p, "/openai") || strings.HasSuffix(p, "/openai/v1") ||
		strings.HasSuffix(host, ".openai.azure.com") || strings.HasSuffix(host, ".cognitiveservices.azure.com") ||
		(e.apiVersion != "" && !strings.HasSuffix(p, "/v1"))
	opts := &client.Options{UserAgent: "sluice-cli/" + Version}
	if azure {
		return client.NewAzure(raw, key, version, opts)
	}
	return client.New(raw, key, opts)
}

func cliFirst(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// printRaw prints objects as the API sent them, one a line.
func (e *cliEnv) printRaw(objs ...json.RawMessage) error {
	for _, o := range objs {
		if _, err := fmt.Fprintf(e.stdout, "%s\n", strings.TrimSpace(string(o))); err != nil {
			return err
		}
	}
	return nil
}

// listObjects ends a list command: it gets every page (every) with all, or one page
// (one), and prints them as the API's JSON under --json, or with print, saying on
// stderr how to get the next page when more follow. noun names the objects.
func listObjects[T any, P interface {
	*T
	RawJSON() json.RawMessage
}](e *cliEnv, noun string, all bool, every iter.Seq2[*T, error], one func() (*client.List[T], error), id func(*T) string, print func([]*T) error) error {
	var objs []*T
	more := false
	if all {
		for o, err := range every {
			if err != nil {
				return err
			}
			objs = append(objs, o)
		}
	} else {
		page, err := one()
		if err != nil {
			return err
		}
		if e.json {
			return e.printRaw(page.RawJSON())
		}
		objs, more = page.Data, page.HasMore
	}
	if e.json {
		raws := make([]json.RawMessage, len(objs))
		for i, o := range objs {
			raws[i] = P(o).RawJSON()
		}
		first, last := "", ""
		if len(objs) > 0 {
			first, last = id(objs[0]), id(objs[len(objs)-1])
		}
		return e.printList(raws, first, last, false)
	}
	if err := print(objs); err != nil {
		return err
	}
	if more {
		fmt.Fprintf(e.stderr, "more %s follow: --after %s for the next page, or --all\n", noun, id(objs[len(objs)-1]))
	}
	return nil
}

// printList prints a list object of raw objects: a page as the API sent it, or the
// objects of several pages as one list.
func (e *cliEnv) printList(objs []json.RawMessage, firstID, lastID string, more bool) error {
	l := struct {
		Object  string            `json:"object"`
		Data    []json.RawMessage `json:"data"`
		FirstID *string           `json:"first_id"`
		LastID  *string           `json:"last_id"`
		HasMore bool              `json:"has_more"`
	}{Object: "list", Data: objs, HasMore: more}
	if l.Data == nil {
		l.Data = []json.RawMessage{}
	}
	if firstID != "" {
		l.FirstID, l.LastID = &firstID, &lastID
	}
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	return e.printRaw(b)
}

// table returns a tabwriter for a table on stdout; the caller flushes it.
func (e *cliEnv) table() *tabwriter.Writer {
	return tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
}

// cliTime formats unix seconds for a table, "-" for none.
func cliTime(sec int64) string {
	if sec == 0 {
		return "-"
	}
	return time.Unix(sec, 0).Local().Format("2006-01-02 15:04:05")
}

// cliBytes formats a size for people: 816 B, 1.2 MB.
func cliBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %cB", float64(n)/float64(div), "kMGTP"[exp])
}

// cliDuration formats a duration for people: to the second, or the millisecond
// under a second.
func cliDuration(d time.Duration) string {
	if d < time.Second {
		return max(0, d).Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// idempotencyKey returns a fresh Idempotency-Key: one per create the user asked for,
// kept across its retries.
func idempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return "sluice-cli-" + hex.EncodeToString(b)
}

// cliSleep waits d or until ctx ends.
func cliSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cliAPIError returns err as the API's error, if it is one.
func cliAPIError(err error) (*client.Error, bool) {
	var e *client.Error
	ok := errors.As(err, &e)
	return e, ok
}

// statusExit is the exit code of a batch that ended in status s.
func statusExit(s client.Status) int {
	switch s {
	case client.StatusFailed:
		return exitFailed
	case client.StatusExpired:
		return exitExpired
	case client.StatusCancelled:
		return exitCancelled
	}
	return 0
}

// endedError is the error a waiting command ends with when its batch did not
// complete: nil when it did, otherwise one with the status's exit code.
func endedError(b *client.Batch) error {
	code := statusExit(b.Status)
	if code == 0 {
		return nil
	}
	msg := fmt.Sprintf("batch %s %s", b.ID, b.Status)
	if b.Errors != nil && len(b.Errors.Data) > 0 {
		d := b.Errors.Data[0]
		msg += ": " + d.Message
		if n := len(b.Errors.Data); n > 1 {
			msg += fmt.Sprintf(" (and %d more errors: sluice batches get %s)", n-1, b.ID)
		}
	}
	return &cliExit{code: code, err: errors.New(msg)}
}

// openOut opens where a download goes: stdout for "" or "-", else a file written
// beside path and renamed onto it once commit is called, so that a download cut
// short leaves no partial file under the name.
func (e *cliEnv) openOut(path string) (w io.Writer, commit func() error, abort func(), err error) {
	if path == "" || path == "-" {
		return e.stdout, func() error { return nil }, func() {}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".sluice-download-*")
	if err != nil {
		return nil, nil, nil, err
	}
	commit = func() error {
		if err := f.Close(); err != nil {
			os.Remove(f.Name())
			return err
		}
		return os.Rename(f.Name(), path)
	}
	abort = func() { f.Close(); os.Remove(f.Name()) }
	return f, commit, abort, nil
}

// download writes file id of c to path ("" or "-" for stdout).
func (e *cliEnv) download(ctx context.Context, c *client.Client, id, path string) (int64, error) {
	w, commit, abort, err := e.openOut(path)
	if err != nil {
		return 0, err
	}
	n, err := c.DownloadFile(ctx, id, w)
	if err != nil {
		abort()
		return n, err
	}
	return n, commit()
}

// metadataFlag is a repeatable key=value flag.
type metadataFlag map[string]string

func (m metadataFlag) String() string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func (m metadataFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	m[k] = v
	return nil
}
