package engine

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
	"github.com/sluice-batch/sluice/tokens"
	"github.com/sluice-batch/sluice/upstream"
)

// deployment is a configured deployment with its clients and its queue of jobs, which
// its dispatcher fills and the workers of its upstreams drain.
type deployment struct {
	sluice.Deployment
	clients []*upstream.Client
	jobs    chan job
	counter *tokens.Counter // counts the tokens of its input and of answers without usage

	mu   sync.Mutex
	runs []*run // batches being dispatched, oldest first
	wake chan struct{}
}

// run is a batch with lines in this process.
type run struct {
	id        string
	fileKey   string
	indexKey  string
	src       *sluice.File // the input, when its bytes are in a blob (blob mode)
	path      string       // upstream path, e.g. "/chat/completions"
	endpoint  string       // the endpoint in normal form, e.g. "/v1/chat/completions"
	dep       *deployment
	ctx       context.Context // ends when the batch is cancelled (after the grace) or the engine stops hard
	cancel    context.CancelFunc
	inflight  atomic.Int64 // claimed lines not yet committed or released
	exhausted atomic.Bool  // the last claim found nothing; reset at every engine step
	stopping  atomic.Bool  // cancelled: no more claims
}

// line is one request line of a batch, claimed with its chunk.
type line struct {
	BatchID  string
	Chunk    int // chunk number
	Index    int // place in the chunk
	Line     int // 1-based physical line of the input file, for logs
	CustomID string
	Offset   int64 // of the line in the input file
	Length   int
	Tokens   int // input tokens counted at upload; 0 when not counted
}

type job struct {
	run  *run
	req  line
	line []byte
}

// activate makes an in_progress batch dispatchable here.
func (e *Engine) activate(ctx context.Context, b *sluice.Batch) {
	e.mu.Lock()
	r, ok := e.runs[b.ID]
	if !ok {
		d := e.deps[b.Deployment]
		if d == nil {
			first := !e.orphans[b.ID]
			e.orphans[b.ID] = true
			e.mu.Unlock()
			if first {
				e.log.ErrorContext(ctx, "batch waits for a deployment that is no longer configured; configure it again or cancel the batch",
					"batch_id", b.ID, "deployment", b.Deployment)
			}
			return
		}
		var src *sluice.File
		if b.InputBlob != "" {
			f, err := e.store.FindFileByID(ctx, b.InputFileID)
			if err != nil {
				e.mu.Unlock()
				e.log.ErrorContext(ctx, "input of a blob-mode batch", "batch_id", b.ID, "err", err)
				return
			}
			src = f
		}
		r = &run{
			src:      src,
			id:       b.ID,
			fileKey:  sluice.FileKey(b.InputFileID),
			indexKey: sluice.IndexKey(b.InputFileID),
			path:     strings.TrimPrefix(jsonl.NormalizeEndpoint(b.Endpoint), "/v1"),
			endpoint: jsonl.NormalizeEndpoint(b.Endpoint),
			dep:      d,
		}
		r.ctx, r.cancel = context.WithCancel(e.hard)
		e.runs[b.ID] = r
		d.mu.Lock()
		d.runs = append(d.runs, r)
		d.mu.Unlock()
	}
	e.mu.Unlock()
	if r.exhausted.Swap(false) || !ok {
		r.dep.signal()
	}
}

// deactivateExcept forgets runs of batches no longer in progress, once their lines
// are all committed or released.
func (e *Engine) deactivateExcept(active map[string]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, r := range e.runs {
		if active[id] || r.stopping.Load() {
			continue
		}
		r.dep.remove(r)
		if r.inflight.Load() == 0 {
			r.cancel()
			delete(e.runs, id)
		}
	}
}

// cancelRun stops dispatching a cancelled batch, gives its in-flight lines the cancel
// grace to finish, and reports whether any are still in flight here.
func (e *Engine) cancelRun(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.runs[id]
	if !ok {
		return false
	}
	if !r.stopping.Swap(true) {
		r.dep.remove(r)
		time.AfterFunc(e.opts.CancelGrace, r.cancel)
	}
	if r.inflight.Load() > 0 {
		return true
	}
	r.cancel()
	delete(e.runs, id)
	return false
}

func (d *deployment) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *deployment) remove(r *run) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, x := range d.runs {
		if x == r {
			d.runs = append(d.runs[:i], d.runs[i+1:]...)
			return
		}
	}
}

func (d *deployment) snapshot() []*run {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*run(nil), d.runs...)
}

// dispatch claims lines of the deployment's batches, a chunk from each in turn, and
// queues them for the workers.
func (e *Engine) dispatch(ctx context.Context, d *deployment) {
	defer e.wg.Done()
	t := time.NewTimer(e.opts.PollInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		progressed := false
		for _, r := range d.snapshot() {
			if r.exhausted.Load() || r.stopping.Load() {
				continue
			}
			n, err := e.claimAndQueue(ctx, d, r)
			if err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "claim lines", "batch_id", r.id, "err", err)
			}
			if n == 0 {
				r.exhausted.Store(true)
			} else {
				progressed = true
			}
		}
		if progressed {
			continue
		}
		t.Reset(e.opts.PollInterval)
		select {
		case <-ctx.Done():
		case <-d.wake:
		case <-t.C:
		}
	}
}

// claimAndQueue claims chunks of a batch, reads their unfinished lines from the input
// file and queues them. Lines it could not queue are released.
func (e *Engine) claimAndQueue(ctx context.Context, d *deployment, r *run) (int, error) {
	chunks, err := e.store.ClaimChunks(ctx, r.id, e.opts.Owner, max(1, e.opts.ClaimSize/sluice.ChunkLines), e.now().Add(e.opts.LeaseDuration))
	if err != nil || len(chunks) == 0 {
		return 0, err
	}
	reqs, err := e.unfinished(ctx, r, chunks)
	if err != nil {
		e.releaseChunks(r, chunks)
		return 0, err
	}
	if len(reqs) == 0 {
		// Claimable chunks always have a line without a result; keep the store honest
		// anyway, and let the chunks go.
		e.releaseChunks(r, chunks)
		return 0, nil
	}
	r.inflight.Add(int64(len(reqs)))
	e.commit.track(reqs)
	jobs, err := e.readLines(ctx, r, reqs)
	if err != nil {
		e.commit.releaseAll(r, reqs)
		if code := inputFailure(err); code != "" {
			e.failInput(ctx, r.id, code, err)
		}
		return 0, err
	}
	for i, j := range jobs {
		select {
		case d.jobs <- j:
		case <-ctx.Done():
			e.commit.releaseAll(r, reqs[i:])
			return i, ctx.Err()
		}
	}
	return len(jobs), nil
}

// releaseChunks gives claimed chunks back at once, retrying as the committer does: a
// chunk held by nobody would wait for its lease to run out.
func (e *Engine) releaseChunks(r *run, chunks []sluice.Chunk) {
	nums := make([]int, len(chunks))
	for i, c := range chunks {
		nums[i] = c.Number
	}
	e.commit.retry(func() error { return e.store.ReleaseChunks(context.Background(), e.opts.Owner, r.id, nums) })
}

// unfinished returns the lines of chunks that have no result, from the chunks' blocks
// of the input file's line index.
func (e *Engine) unfinished(ctx context.Context, r *run, chunks []sluice.Chunk) ([]line, error) {
	var out []line
	var entries []jsonl.Entry
	for _, c := range chunks {
		rc, err := e.bucket.GetRange(ctx, r.indexKey, c.IndexOffset, c.IndexLength)
		if err != nil {
			return nil, fmt.Errorf("read index of %s: %w", r.id, err)
		}
		block := make([]byte, c.IndexLength)
		_, err = io.ReadFull(rc, block)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read index of %s: %w", r.id, err)
		}
		if entries, err = jsonl.AppendBlock(entries[:0], block); err != nil {
			return nil, fmt.Errorf("read index of %s, chunk %d: %w", r.id, c.Number, err)
		}
		if len(entries) != c.Lines {
			return nil, fmt.Errorf("read index of %s: chunk %d has %d lines, its index block %d", r.id, c.Number, c.Lines, len(entries))
		}
		for i, en := range entries {
			if c.Done.Has(i) {
				continue
			}
			out = append(out, line{BatchID: r.id, Chunk: c.Number, Index: i, Line: en.Line, CustomID: en.CustomID, Offset: en.Offset, Length: en.Length, Tokens: en.Tokens})
		}
	}
	return out, nil
}

// spanGap is the largest gap between two claimed lines that one read still covers.
const spanGap = 64 << 10

// readLines reads the bytes of claimed lines, with one ranged read per run of nearby lines.
func (e *Engine) readLines(ctx context.Context, r *run, reqs []line) ([]job, error) {
	jobs := make([]job, 0, len(reqs))
	for start := 0; start < len(reqs); {
		end := start + 1
		for end < len(reqs) && reqs[end].Offset-(reqs[end-1].Offset+int64(reqs[end-1].Length)) <= spanGap {
			end++
		}
		first, last := reqs[start], reqs[end-1]
		size := last.Offset + int64(last.Length) - first.Offset
		var rc io.ReadCloser
		var err error
		if r.src != nil {
			rc, err = e.readSource(ctx, r.src, first.Offset, size)
		} else {
			rc, err = e.bucket.GetRange(ctx, r.fileKey, first.Offset, size)
		}
		if err != nil {
			return nil, fmt.Errorf("read lines of %s: %w", r.id, err)
		}
		buf := make([]byte, size)
		_, err = io.ReadFull(rc, buf)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("read lines of %s: %w", r.id, err)
		}
		for _, q := range reqs[start:end] {
			off := q.Offset - first.Offset
			jobs = append(jobs, job{run: r, req: q, line: buf[off : off+int64(q.Length) : off+int64(q.Length)]})
		}
		start = end
	}
	return jobs, nil
}

// worker sends the jobs of a deployment to one upstream, one at a time. It keeps one
// buffer for answers, and builds each result line in a pooled buffer that the committer
// returns once the line is stored.
func (e *Engine) worker(ctx context.Context, d *deployment, c *upstream.Client) {
	defer e.workWG.Done()
	w := &workerState{ids: newIDSource()}
	for j := range d.jobs {
		// A cancelled batch, or a stopping engine, sends no new line; only lines already
		// in flight get the grace.
		if e.stopping.Load() || j.run.stopping.Load() || j.run.ctx.Err() != nil {
			e.commit.release(j.run, j.req)
			continue
		}
		res, ok := e.send(j.run.ctx, d, c, j, w)
		if !ok {
			e.commit.release(j.run, j.req)
			continue
		}
		e.commit.add(j.run, res)
	}
}

// workerState is what one worker reuses from line to line.
type workerState struct {
	answer []byte // the last upstream answer's body
	ids    *idSource
}

// result is a finished line: its result line, newline included, in a pooled buffer,
// and the tokens it used.
type result struct {
	req       line
	succeeded bool
	out       *[]byte
	usage     sluice.Usage
}

// send runs one line to its end: a result to commit, or ok false when ctx ended first
// and the line must be released unsent.
func (e *Engine) send(ctx context.Context, d *deployment, c *upstream.Client, j job, w *workerState) (res result, ok bool) {
	res = result{req: j.req, out: getLineBuf()}
	id := w.ids.requestID()
	finish := func(succeeded bool, line []byte) (result, bool) {
		res.succeeded = succeeded
		*res.out = append(line, '\n')
		return res, true
	}
	defer func() {
		if p := recover(); p != nil {
			e.log.ErrorContext(ctx, "line panicked", "batch_id", j.req.BatchID, "line", j.req.Line, "panic", p)
			res, ok = finish(false, jsonl.AppendError((*res.out)[:0], id, j.req.CustomID, "internal_error", "The server failed while running this request."))
		}
	}()
	model := c.Upstream().Model
	if model == "" {
		model = d.Name
	}
	body, err := jsonl.DispatchBody(j.line, model)
	if err != nil {
		return finish(false, jsonl.AppendError((*res.out)[:0], id, j.req.CustomID, "invalid_request", "The request line could not be read: "+err.Error()))
	}
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
		resp, err := c.Do(actx, j.run.path, body, w.answer)
		cancel()
		if err == nil && cap(resp.Body) <= maxKeptBuf {
			w.answer = resp.Body[:0]
		}
		if err != nil && ctx.Err() != nil {
			putLineBuf(res.out)
			return result{}, false // cut off by a cancel or a stop, not answered: send again later
		}
		var wait time.Duration
		switch {
		case err == nil && resp.Status >= 200 && resp.Status < 300:
			res.usage = d.usage(j, body, resp.Body)
			return finish(true, jsonl.AppendResponse((*res.out)[:0], id, j.req.CustomID, resp.Status, w.requestID(resp), resp.Body))
		case err == nil && (!resp.Retryable() || attempt >= e.opts.MaxAttempts):
			return finish(false, jsonl.AppendResponse((*res.out)[:0], id, j.req.CustomID, resp.Status, w.requestID(resp), resp.Body))
		case err != nil && attempt >= e.opts.MaxAttempts:
			// The error names the upstream's address: it goes to the log, and the error
			// file says only what failed.
			e.log.WarnContext(ctx, "line failed: the upstream did not answer", "batch_id", j.req.BatchID, "custom_id", j.req.CustomID,
				"deployment", d.Name, "attempts", attempt, "err", err)
			return finish(false, jsonl.AppendError((*res.out)[:0], id, j.req.CustomID, upstream.ErrorCode(err),
				fmt.Sprintf("The upstream did not answer after %d attempts: %s.", attempt, upstream.ErrorText(err))))
		case err == nil:
			wait = resp.RetryAfter
		}
		if wait <= 0 {
			wait = e.backoff(attempt)
		}
		if e.opts.WaitFunc(ctx, min(wait, maxRetryAfter)) != nil {
			putLineBuf(res.out)
			return result{}, false
		}
	}
}

// usage returns the tokens a successful line used: what the upstream reported, or, when
// it reported none, the line's input tokens and the answer's text counted with the
// deployment's tokenizer.
func (d *deployment) usage(j job, body, answer []byte) sluice.Usage {
	if u, ok := jsonl.ParseUsage(answer); ok {
		return u
	}
	u := sluice.Usage{InputTokens: int64(j.req.Tokens), EstimatedLines: 1}
	if d.counter == nil {
		return u
	}
	if u.InputTokens == 0 {
		n, _ := d.counter.Request(j.run.endpoint, body)
		u.InputTokens = int64(n)
	}
	u.OutputTokens = int64(d.counter.Output(j.run.endpoint, answer))
	return u
}

// maxRetryAfter caps the wait an upstream's Retry-After can ask for.
const maxRetryAfter = 10 * time.Minute

// backoff is the wait before attempt+1: exponential from BackoffBase, capped at
// BackoffMax, with jitter over its upper half.
func (e *Engine) backoff(attempt int) time.Duration {
	d := e.opts.BackoffBase << min(attempt-1, 20)
	if d > e.opts.BackoffMax || d <= 0 {
		d = e.opts.BackoffMax
	}
	return d/2 + rand.N(d/2+1)
}

// requestID is the upstream's request ID, or a new one of the same form as ours when it
// sent none.
func (w *workerState) requestID(r upstream.Response) string {
	if r.RequestID != "" {
		return r.RequestID
	}
	return strings.TrimPrefix(w.ids.requestID(), "batch_")
}
