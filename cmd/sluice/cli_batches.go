package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sluice-batch/sluice/client"
)

// The quota backoff of --wait-for-quota: the first wait, doubling up to the last.
const (
	quotaBackoffFirst = 5 * time.Second
	quotaBackoffMax   = 5 * time.Minute
)

// waitFlags are the flags of the commands that may wait for a batch.
type waitFlags struct {
	wait     *bool
	interval *time.Duration
	timeout  *time.Duration
	quiet    *bool
}

func (f *cliFlags) waitFlags(optional bool) waitFlags {
	var w waitFlags
	if optional {
		w.wait = f.Bool("wait", false, "wait for the batch to end, showing its progress; the exit code says how it ended")
	}
	w.interval = f.Duration("interval", time.Second, "how often to ask the server about the batch while waiting")
	w.timeout = f.Duration("timeout", 0, "stop waiting after this long (exit code 6); the batch goes on")
	w.quiet = f.Bool("quiet", false, "show no progress while waiting")
	return w
}

func (w waitFlags) options() waitOptions {
	return waitOptions{interval: max(*w.interval, 10*time.Millisecond), timeout: *w.timeout}
}

const batchesCreateHelp = `Creates a batch of INPUT: an uploaded file's ID, or a local .jsonl file, which is
uploaded first. The endpoint is the --endpoint given, else the url of a local
file's first line, else /v1/chat/completions.

--wait waits for the batch to end, with a live bar on a terminal (lines done and
failed of the total, lines per second, ETA, status changes) or a timestamped line
at each change elsewhere, and exits with a code that says how the batch ended.

A create the deployment's quota cannot take now is refused with the code
token_limit_exceeded. --wait-for-quota sends it again after a wait of
--quota-backoff, doubling each time up to 5m, printing each wait.

` + cliExitHelp + `
Example:
  sluice batches create input.jsonl --wait
  sluice batches create file-9f6c2a1e... --endpoint /v1/embeddings --metadata job=nightly
  sluice batches create input.jsonl --wait-for-quota --wait --json > batch.json
`

func cmdBatchesCreate(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches create", "sluice batches create [flags] INPUT", batchesCreateHelp, true)
	f.jsonFlag()
	endpoint := f.String("endpoint", "", "the endpoint every line calls, e.g. /v1/chat/completions")
	window := f.String("completion-window", "24h", "the completion window")
	meta := metadataFlag{}
	f.Var(meta, "metadata", "a key=value of the batch's metadata; repeat for more")
	outExpires := f.Duration("output-expires-after", 0, "delete the result files this long after the batch's creation, e.g. 336h")
	expires := f.Duration("expires-after", 0, "delete an uploaded INPUT this long after its upload")
	waitQuota := f.Bool("wait-for-quota", false, "when the quota is full, wait and try again (5s doubling to 5m)")
	backoff := f.Duration("quota-backoff", quotaBackoffFirst, "the first wait of --wait-for-quota")
	w := f.waitFlags(true)
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	p := e.newProgress(*w.quiet)
	fileID, ep, err := e.resolveInput(ctx, c, pos[0], *expires, p)
	if err != nil {
		return err
	}
	if *endpoint != "" {
		ep = *endpoint
	}
	bc := client.BatchCreate{InputFileID: fileID, Endpoint: ep, CompletionWindow: *window, OutputExpiresAfter: *outExpires,
		IdempotencyKey: idempotencyKey()}
	if len(meta) > 0 {
		bc.Metadata = meta
	}
	b, err := e.createBatch(ctx, c, bc, p, *waitQuota, *backoff)
	if err != nil {
		return err
	}
	if !*w.wait {
		return e.printBatches([]*client.Batch{b})
	}
	return e.waitAndReport(ctx, c, b, p, w.options())
}

// resolveInput returns the file ID INPUT names, uploading it first when it is a
// local file, and the endpoint its first line calls (or the default).
func (e *cliEnv) resolveInput(ctx context.Context, c *client.Client, input string, expires time.Duration, p progress) (string, string, error) {
	const defaultEndpoint = "/v1/chat/completions"
	if _, err := os.Stat(input); err != nil {
		if looksLikeFileID(input) {
			return input, defaultEndpoint, nil
		}
		return "", "", err
	}
	f, err := e.uploadPath(ctx, c, input, expires, false)
	if err != nil {
		return "", "", err
	}
	p.note("uploaded %s as %s (%s)", input, f.ID, cliBytes(f.Bytes))
	ep := firstLineURL(input)
	if ep == "" {
		ep = defaultEndpoint
	}
	return f.ID, ep, nil
}

// firstLineURL returns the url of the first request line of the file at path, or "".
func firstLineURL(path string) string {
	in, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer in.Close()
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			var req struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(line, &req) == nil {
				return req.URL
			}
			return ""
		}
		if err != nil {
			return ""
		}
	}
}

// createBatch creates a batch; with waitQuota, a create refused with
// token_limit_exceeded is sent again (with the same Idempotency-Key) after a wait
// that starts at backoff and doubles up to quotaBackoffMax.
func (e *cliEnv) createBatch(ctx context.Context, c *client.Client, bc client.BatchCreate, p progress, waitQuota bool, backoff time.Duration) (*client.Batch, error) {
	backoff = max(backoff, 10*time.Millisecond)
	for {
		b, err := c.CreateBatch(ctx, bc)
		if err == nil {
			return b, nil
		}
		apiErr, ok := cliAPIError(err)
		if !ok || apiErr.Code != "token_limit_exceeded" {
			return nil, err
		}
		if !waitQuota {
			return nil, fmt.Errorf("%w\n(--wait-for-quota waits for the quota and tries again)", err)
		}
		p.note("quota full: %s Trying again in %s.", apiErr.Message, cliDuration(backoff))
		if err := cliSleep(ctx, backoff); err != nil {
			return nil, fmt.Errorf("stopped waiting for quota: %w", err)
		}
		backoff = min(2*backoff, quotaBackoffMax)
	}
}

// waitAndReport waits for batch b, then prints it (as JSON with --json) and returns
// the error whose exit code says how it ended.
func (e *cliEnv) waitAndReport(ctx context.Context, c *client.Client, b *client.Batch, p progress, o waitOptions) error {
	p.note("created %s", b.ID)
	done, err := e.wait(ctx, c, b.ID, p, o)
	if err != nil {
		return err
	}
	if e.json {
		if err := e.printRaw(done.RawJSON()); err != nil {
			return err
		}
	} else if done.Status != client.StatusFailed && done.OutputFileID != "" {
		fmt.Fprintf(e.stdout, "download: sluice batches download %s -o output.jsonl --errors errors.jsonl\n", done.ID)
	}
	return endedError(done)
}

// printBatches prints batches as a table, or as JSON, one object a line.
func (e *cliEnv) printBatches(batches []*client.Batch) error {
	if e.json {
		for _, b := range batches {
			if err := e.printRaw(b.RawJSON()); err != nil {
				return err
			}
		}
		return nil
	}
	tw := e.table()
	fmt.Fprintln(tw, "ID\tSTATUS\tDONE\tFAILED\tTOTAL\tENDPOINT\tCREATED")
	for _, b := range batches {
		c := b.RequestCounts
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", b.ID, b.Status, c.Completed+c.Failed, c.Failed, c.Total, b.Endpoint, cliTime(b.CreatedAt))
	}
	return tw.Flush()
}

const batchesListHelp = `Lists batches, newest first: one page of --limit, or every batch with --all.

Example:
  sluice batches list
  sluice batches list --all --json | jq -r '.data[] | select(.status=="failed") | .id'
`

func cmdBatchesList(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches list", "sluice batches list [flags]", batchesListHelp, true)
	f.jsonFlag()
	limit := f.Int("limit", 20, "batches in a page, at most 100")
	after := f.String("after", "", "list the batches after this batch ID (the next page)")
	all := f.Bool("all", false, "list every batch, page after page")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	if *limit < 1 || *limit > 100 {
		return cliUsageError(f.name, "--limit must be from 1 to 100")
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	p := &client.BatchListParams{Limit: *limit, After: *after}
	return listObjects(e, "batches", *all, c.AllBatches(ctx, p), func() (*client.List[client.Batch], error) { return c.ListBatches(ctx, p) },
		func(b *client.Batch) string { return b.ID }, e.printBatches)
}

const batchesGetHelp = `Shows a batch: its status, counts, files, pace, usage, cost, timestamps, metadata
and errors.

Example:
  sluice batches get batch_5b1e...
  sluice batches get batch_5b1e... --json | jq .request_counts
`

func cmdBatchesGet(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches get", "sluice batches get [flags] BATCH_ID", batchesGetHelp, true)
	f.jsonFlag()
	ids, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	b, err := c.GetBatch(ctx, ids[0])
	if err != nil {
		return err
	}
	if e.json {
		return e.printRaw(b.RawJSON())
	}
	return e.printBatch(b)
}

// printBatch prints one batch as a table of its fields.
func (e *cliEnv) printBatch(b *client.Batch) error {
	tw := e.table()
	row := func(k, v string) {
		if v != "" && v != "-" {
			fmt.Fprintf(tw, "%s\t%s\n", k, v)
		}
	}
	c := b.RequestCounts
	row("id", b.ID)
	row("status", string(b.Status))
	row("endpoint", b.Endpoint)
	row("model", b.Model)
	row("requests", fmt.Sprintf("%d total, %d completed, %d failed", c.Total, c.Completed, c.Failed))
	row("pace", paceText(b, e.now()))
	row("input file", b.InputFileID)
	row("output file", b.OutputFileID)
	row("error file", b.ErrorFileID)
	if u := b.Usage; u != nil && u.TotalTokens > 0 {
		row("usage", fmt.Sprintf("%d input tokens (%d cached), %d output tokens", u.InputTokens, u.InputTokensDetails.CachedTokens, u.OutputTokens))
	}
	if b.Cost != nil {
		row("cost", fmt.Sprintf("%.4f %s", b.Cost.Amount, b.Cost.Currency))
	}
	if b.EnqueuedTokens > 0 {
		row("enqueued tokens", fmt.Sprint(b.EnqueuedTokens))
	}
	row("completion window", b.CompletionWindow)
	for _, t := range []struct {
		name string
		at   int64
	}{{"created", b.CreatedAt}, {"in progress", b.InProgressAt}, {"finalizing", b.FinalizingAt}, {"completed", b.CompletedAt},
		{"failed", b.FailedAt}, {"cancelling", b.CancellingAt}, {"cancelled", b.CancelledAt}, {"expired", b.ExpiredAt}, {"expires", b.ExpiresAt}} {
		row(t.name, cliTime(t.at))
	}
	keys := make([]string, 0, len(b.Metadata))
	for k := range b.Metadata {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		row("metadata "+k, b.Metadata[k])
	}
	if b.Errors != nil {
		for _, d := range b.Errors.Data {
			where := ""
			if d.Line > 0 {
				where = fmt.Sprintf("line %d: ", d.Line)
			}
			row("error", fmt.Sprintf("%s%s: %s", where, d.Code, d.Message))
		}
	}
	return tw.Flush()
}

const batchesWaitHelp = `Waits for a batch to end, showing its progress: on a terminal a live bar of its
lines done and failed of the total, with lines per second, ETA and status changes;
elsewhere a timestamped line at each status change (and every 10s while lines
finish). With --json the progress goes to standard error and the ended batch is
printed on standard output. Errors that may pass (the server restarting) are waited
through for up to 5 minutes.

` + cliExitHelp + `
Example:
  sluice batches wait batch_5b1e... && sluice batches download batch_5b1e... -o out.jsonl
`

func cmdBatchesWait(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches wait", "sluice batches wait [flags] BATCH_ID", batchesWaitHelp, true)
	f.jsonFlag()
	w := f.waitFlags(false)
	ids, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	p := e.newProgress(*w.quiet)
	done, err := e.wait(ctx, c, ids[0], p, w.options())
	if err != nil {
		return err
	}
	if e.json {
		if err := e.printRaw(done.RawJSON()); err != nil {
			return err
		}
	}
	return endedError(done)
}

const batchesCancelHelp = `Cancels batches. A cancelled batch is cancelling while its lines in flight end,
then cancelled; the lines that finished are in its output and error files.

Example:
  sluice batches cancel batch_5b1e...
`

func cmdBatchesCancel(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches cancel", "sluice batches cancel [flags] BATCH_ID...", batchesCancelHelp, true)
	f.jsonFlag()
	ids, err := f.parse(args, 1, -1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var batches []*client.Batch
	var errs []error
	for _, id := range ids {
		b, err := c.CancelBatch(ctx, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", id, err))
			continue
		}
		batches = append(batches, b)
	}
	if err := e.printBatches(batches); err != nil {
		return err
	}
	return errors.Join(errs...)
}

const batchesDownloadHelp = `Downloads an ended batch's output file (to standard output, or --output) and,
with --errors, its error file. A running batch has no files yet: wait for it, or
read the results it has so far with 'sluice batches results'.

Example:
  sluice batches download batch_5b1e... -o output.jsonl --errors errors.jsonl
`

func cmdBatchesDownload(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches download", "sluice batches download [flags] BATCH_ID", batchesDownloadHelp, true)
	out := f.String("o", "", "write the output file here instead of standard output")
	f.StringVar(out, "output", "", "the same as -o")
	errPath := f.String("errors", "", "write the error file here")
	ids, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	b, err := c.GetBatch(ctx, ids[0])
	if err != nil {
		return err
	}
	return e.downloadResults(ctx, c, b, *out, *errPath)
}

// downloadResults writes an ended batch's output file to out ("" or "-" for
// stdout) and its error file to errPath, when given.
func (e *cliEnv) downloadResults(ctx context.Context, c *client.Client, b *client.Batch, out, errPath string) error {
	if !b.Status.Terminal() {
		return fmt.Errorf("batch %s is %s: its files exist once it ends (sluice batches wait %s), and its results so far are read with sluice batches results %s",
			b.ID, b.Status, b.ID, b.ID)
	}
	if b.OutputFileID == "" && b.ErrorFileID == "" {
		if err := endedError(b); err != nil {
			return err
		}
		return fmt.Errorf("batch %s has no result files", b.ID)
	}
	for _, d := range []struct{ id, path, kind string }{{b.OutputFileID, out, "output"}, {b.ErrorFileID, errPath, "errors"}} {
		if d.id == "" || (d.kind == "errors" && d.path == "") {
			continue
		}
		n, err := e.download(ctx, c, d.id, d.path)
		if err != nil {
			return fmt.Errorf("download the %s of %s: %w", d.kind, b.ID, err)
		}
		if d.path != "" && d.path != "-" {
			fmt.Fprintf(e.stderr, "wrote %s (%s) to %s\n", d.kind, cliBytes(n), d.path)
		}
	}
	if errPath == "" && b.RequestCounts.Failed > 0 {
		fmt.Fprintf(e.stderr, "%d lines failed: --errors FILE downloads them\n", b.RequestCounts.Failed)
	}
	return nil
}

const batchesResultsHelp = `Writes the result lines a batch has so far, while it runs or after it ends in any
state: output lines, then error lines (or one kind, with --type). A Sluice
extension. It prints a cursor on standard error; --cursor reads on from it, with no
line twice. --follow keeps reading as lines finish, until the batch ends.

Example:
  sluice batches results batch_5b1e... --type output --follow -o so-far.jsonl
`

func cmdBatchesResults(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches results", "sluice batches results [flags] BATCH_ID", batchesResultsHelp, true)
	out := f.String("o", "", "write here instead of standard output")
	f.StringVar(out, "output", "", "the same as -o")
	typ := f.String("type", "all", "output, error or all")
	cursor := f.String("cursor", "", "read on from this cursor of an earlier call")
	follow := f.Bool("follow", false, "keep reading new lines until the batch ends")
	interval := f.Duration("interval", time.Second, "how often to read with --follow")
	ids, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	switch *typ {
	case "output", "error", "all":
	default:
		return cliUsageError(f.name, "--type %q: use output, error or all", *typ)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	var w io.Writer = e.stdout
	closeOut := func() error { return nil }
	if *out != "" && *out != "-" {
		file, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer file.Close()
		w, closeOut = file, file.Close
	}
	p := &client.ResultsParams{Type: *typ, Cursor: *cursor}
	if p.Type == "all" {
		p.Type = ""
	}
	ended := false
	for {
		next, _, err := c.BatchResults(ctx, ids[0], p, w)
		if err != nil {
			return err
		}
		p.Cursor = next
		if !*follow || ended {
			break
		}
		b, err := c.GetBatch(ctx, ids[0])
		if err != nil {
			return err
		}
		// One more read after the batch is seen ended takes the lines of its end.
		if ended = b.Status.Terminal(); !ended {
			if err := cliSleep(ctx, max(*interval, 10*time.Millisecond)); err != nil {
				break
			}
		}
	}
	if err := closeOut(); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "cursor %s (--cursor %s reads on from here)\n", p.Cursor, p.Cursor)
	return nil
}

const batchesRetryHelp = `Creates a batch of the lines of an ended batch that did not succeed: those that
failed, those that never ran (of a cancelled or expired batch), or both, with the
same endpoint and settings. Its metadata has retry_of set to the first batch. A
Sluice extension.

` + cliExitHelp + `
Example:
  sluice batches retry batch_5b1e... --lines failed --wait
`

func cmdBatchesRetry(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("batches retry", "sluice batches retry [flags] BATCH_ID", batchesRetryHelp, true)
	f.jsonFlag()
	lines := f.String("lines", "all", "failed, unfinished or all")
	w := f.waitFlags(true)
	ids, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	which := client.RetryLines(*lines)
	switch which {
	case "all":
		which = client.RetryAll
	case client.RetryFailed, client.RetryUnfinished:
	default:
		return cliUsageError(f.name, "--lines %q: use failed, unfinished or all", *lines)
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	b, err := c.RetryBatch(ctx, ids[0], which, idempotencyKey())
	if err != nil {
		return err
	}
	if !*w.wait {
		return e.printBatches([]*client.Batch{b})
	}
	return e.waitAndReport(ctx, c, b, e.newProgress(*w.quiet), w.options())
}

const deploymentsListHelp = `Lists the server's batch deployments (what a line's body.model names) and their
enqueued-token quota now: the tokens the running batches hold, the limit, what a
new batch may take, and how many batches hold some. A Sluice extension.

Example:
  sluice deployments list
  sluice deployments list --json | jq '.data[].quota'
`

func cmdDeploymentsList(ctx context.Context, e *cliEnv, args []string) error {
	f := e.flags("deployments list", "sluice deployments list [flags]", deploymentsListHelp, true)
	f.jsonFlag()
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	l, err := c.ListDeployments(ctx)
	if err != nil {
		return err
	}
	if e.json {
		return e.printRaw(l.RawJSON())
	}
	tw := e.table()
	fmt.Fprintln(tw, "NAME\tMODEL\tTYPE\tENQUEUED\tLIMIT\tAVAILABLE\tBATCHES")
	for _, d := range l.Data {
		limit, avail := "unlimited", "unlimited"
		if m := d.Quota.MaximumEnqueuedTokens; m != nil {
			limit = fmt.Sprint(*m)
		}
		if a := d.Quota.AvailableTokens; a != nil {
			avail = fmt.Sprint(*a)
		}
		typ := d.Type
		if d.Zone != "" {
			typ += " (" + d.Zone + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\n", d.ID, d.Model, typ, d.Quota.EnqueuedTokens, limit, avail, len(d.Batches))
	}
	return tw.Flush()
}
