package engine

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
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
	counter *tokens.Counter        // counts the tokens of its input and of answers without usage
	pollers []*upstream.LoadPoller // read the load of the upstreams that report it

	gates []*upstream.Gate // one per client
	paces []*upstream.Pace // one per client: what its answers say an attempt may take
	mu    sync.Mutex
	runs  []*run // batches being dispatched, oldest first
	wake  chan struct{}
	// ready are lines whose retry wait is over, sent before new ones.
	ready       []job
	readySig    chan struct{}
	readyClosed bool
}

// run is a batch with lines in this process.
type run struct {
	id        string
	project   string
	deadline  time.Time // when its completion window ends: lines are taken earliest deadline first
	fileKey   string
	indexKey  string
	src       *sluice.File // the input, when its bytes are in a blob (blob mode)
	path      string       // upstream path, e.g. "/chat/completions"
	endpoint  string       // the endpoint in normal form, e.g. "/v1/chat/completions"
	limits    []string     // the body members that bound its tokens (jsonl.TokenFields); nil: none
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
	// attempts counts the attempts that failed as the line's own; busy, the answers
	// that the server was busy (429, 503) with no Retry-After, which do not count but
	// lengthen the wait; troubleSince is when an attempt first met an upstream that was
	// down or busy. timeouts counts its attempts that timed out: each doubles the next
	// one's timeout.
	attempts     int
	busy         int
	timeouts     int
	troubleSince time.Time
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
		deadline := b.CreatedAt.Add(24 * time.Hour)
		if b.ExpiresAt != nil {
			deadline = *b.ExpiresAt
		}
		r = &run{
			src:      src,
			id:       b.ID,
			project:  sluice.ProjectName(b.Project),
			deadline: deadline,
			fileKey:  sluice.FileKey(b.InputFileID),
			indexKey: sluice.IndexKey(b.InputFileID),
			path:     strings.TrimPrefix(jsonl.NormalizeEndpoint(b.Endpoint), "/v1"),
			endpoint: jsonl.NormalizeEndpoint(b.Endpoint),
			dep:      d,
		}
		r.limits = jsonl.TokenFields[r.endpoint].Fields
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

// turns returns whose lines a turn of dispatch claims: for each project, its batch
// with the earliest deadline (the oldest, on a tie) among those that have lines left
// to claim; projects in the order of those deadlines. Every project with work gets
// the same share of a deployment's claims, whatever the number and size of its
// batches: one project's 100,000-line batch does not starve another's 10 lines,
// and within a project the batch that must end first goes first.
func turns(runs []*run) []*run {
	var out []*run
	first := make(map[string]int) // project -> index in out
	for _, r := range runs {
		if r.exhausted.Load() || r.stopping.Load() {
			continue
		}
		i, ok := first[r.project]
		if !ok {
			first[r.project] = len(out)
			out = append(out, r)
			continue
		}
		if r.deadline.Before(out[i].deadline) {
			out[i] = r
		}
	}
	slices.SortStableFunc(out, func(a, b *run) int { return a.deadline.Compare(b.deadline) })
	return out
}

func (d *deployment) snapshot() []*run {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*run(nil), d.runs...)
}

// dispatch claims lines of the deployment's batches and queues them for the workers,
// in turns: each turn claims once for each project that has lines to send, from its
// batch with the earliest deadline (turns).
func (e *Engine) dispatch(ctx context.Context, d *deployment) {
	defer e.wg.Done()
	t := time.NewTimer(e.opts.PollInterval)
	defer t.Stop()
	for ctx.Err() == nil {
		progressed := false
		for _, r := range turns(d.snapshot()) {
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
	jobs = groupByPrefix(jobs)
	for i, j := range jobs {
		select {
		case d.jobs <- j:
		case <-ctx.Done():
			for _, left := range jobs[i:] {
				e.commit.release(r, left.req)
			}
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

// worker sends the jobs of a deployment to one upstream, one at a time, each through the
// upstream's gate: it takes a slot first (waiting while the upstream is at its limit,
// or down but for a probe), then a line, makes one attempt, and gives the slot back
// with what came of it. A line to be retried waits outside the slots (retryLater), so
// a slot always carries a request. It keeps one buffer for answers, and builds each
// result line in a pooled buffer that the committer returns once the line is stored.
func (e *Engine) worker(ctx context.Context, d *deployment, c *upstream.Client, g *upstream.Gate, p *upstream.Pace) {
	defer e.workWG.Done()
	w := &workerState{ids: newIDSource()}
	drain := func() {
		for j := range d.jobs {
			e.commit.release(j.run, j.req)
		}
		d.closeReady(func(j job) { e.commit.release(j.run, j.req) })
	}
	for {
		probe, err := g.Acquire(ctx)
		if err != nil { // a hard stop
			drain()
			return
		}
		j, ok := d.next(ctx)
		if !ok {
			g.Release(probe, upstream.Idle, 0, 0, 0)
			if ctx.Err() != nil {
				drain()
			}
			return
		}
		// A cancelled batch, or a stopping engine, sends no new line; only lines already
		// in flight get the grace.
		if e.stopping.Load() || j.run.stopping.Load() || j.run.ctx.Err() != nil {
			g.Release(probe, upstream.Idle, 0, 0, 0)
			e.commit.release(j.run, j.req)
			continue
		}
		a := e.attempt(j.run.ctx, d, c, p, j, w)
		g.Release(probe, a.outcome, a.rtt, int(a.res.usage.OutputTokens), a.retryAfter)
		if a.outcome == upstream.Success {
			p.Observe(a.rtt, int(a.res.usage.OutputTokens))
		}
		switch {
		case a.cutOff:
			e.commit.release(j.run, j.req)
		case a.final:
			e.commit.add(j.run, a.res)
		default:
			e.retryOrFail(d, g, j, a, w)
		}
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

// try is what one attempt at a line came to.
type try struct {
	res        result // when final: the result to commit
	final      bool   // the line is done: success, or an answer that is its own
	cutOff     bool   // ctx ended: release the line unsent
	outcome    upstream.Outcome
	rtt        time.Duration
	retryAfter time.Duration
	// The failure, for the error line if the line runs out of attempts.
	resp upstream.Response
	err  error
	id   string
}

// attempt sends a line once, bounded by the upstream's pace (attemptTimeout).
func (e *Engine) attempt(ctx context.Context, d *deployment, c *upstream.Client, p *upstream.Pace, j job, w *workerState) (t try) {
	t.id = w.ids.requestID()
	finish := func(succeeded bool, line []byte) try {
		t.final = true
		t.res.succeeded = succeeded
		*t.res.out = append(line, '\n')
		return t
	}
	t.res = result{req: j.req, out: getLineBuf()}
	defer func() {
		if p := recover(); p != nil {
			e.log.ErrorContext(ctx, "line panicked", "batch_id", j.req.BatchID, "line", j.req.Line, "panic", p)
			t.outcome = upstream.Idle
			t = finish(false, jsonl.AppendError((*t.res.out)[:0], t.id, j.req.CustomID, "internal_error", "The server failed while running this request."))
		}
		if !t.final {
			putLineBuf(t.res.out)
			t.res.out = nil
		}
	}()
	model := c.Upstream().Model
	if model == "" {
		model = d.Name
	}
	// The line's token limit is read in the walk that sets the model; the deployment's
	// default and ceiling, when it has them, give the limit in force instead.
	body, limit, err := jsonl.DispatchBodyLimit(j.line, model, j.run.limits)
	if err != nil {
		t.outcome = upstream.Idle
		return finish(false, jsonl.AppendError((*t.res.out)[:0], t.id, j.req.CustomID, "invalid_request", "The request line could not be read: "+err.Error()))
	}
	if mt := d.MaxTokens; mt.Default > 0 || mt.Max > 0 {
		if tf, ok := jsonl.TokenFields[j.run.endpoint]; ok {
			if limited, n, err := jsonl.LimitTokens(body, tf.Fields, tf.Add, mt.Default, mt.Max); err == nil {
				body, limit = limited, n
			}
		}
	}
	if c.Upstream().MaxTokensOnly && j.run.endpoint == "/v1/chat/completions" {
		body = alsoMaxTokens(body)
	}
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, e.attemptTimeout(p, limit, j.timeouts))
	var late *atomic.Bool
	select {
	case <-p.Known():
	default:
		late = e.holdToPace(actx, cancel, p, start, limit, j.timeouts)
	}
	resp, err := c.Do(actx, j.run.path, body, w.answer)
	t.rtt = time.Since(start)
	cancel()
	if err != nil && late != nil && late.Load() {
		err = fmt.Errorf("over the upstream's pace: %w", context.DeadlineExceeded)
	}
	if err == nil && cap(resp.Body) <= maxKeptBuf {
		w.answer = resp.Body[:0]
	}
	switch {
	case err != nil && ctx.Err() != nil:
		t.cutOff, t.outcome = true, upstream.Idle // cut off by a cancel or a stop: send again later
		return t
	case err != nil:
		t.err, t.outcome = err, upstream.Failed
		if upstream.ErrorCode(err) == "timeout" {
			t.outcome = upstream.TimedOut
		}
		return t
	case resp.Status >= 200 && resp.Status < 300:
		t.outcome = upstream.Success
		t.res.usage = d.usage(j, body, resp.Body)
		return finish(true, jsonl.AppendResponse((*t.res.out)[:0], t.id, j.req.CustomID, resp.Status, w.requestID(resp), resp.Body))
	case !resp.Retryable():
		t.outcome = upstream.Refused
		return finish(false, jsonl.AppendResponse((*t.res.out)[:0], t.id, j.req.CustomID, resp.Status, w.requestID(resp), resp.Body))
	case resp.Status == http.StatusTooManyRequests || resp.Status == http.StatusServiceUnavailable:
		t.outcome = upstream.Overloaded
	default:
		t.outcome = upstream.Failed
	}
	t.resp, t.retryAfter = resp, resp.RetryAfter
	return t
}

// retryOrFail decides what becomes of a line whose attempt failed in a way worth
// retrying: it waits outside the slots and goes again, or, out of attempts or of outage
// budget, ends with the failure in the error file. An attempt counts toward
// MaxAttempts when the upstream answered it with a failure (500, 408, ...), or when it
// got no answer (a connection error, a timeout, 502 or 504) while the upstream is
// healthy (up, and answering other requests): attempts spent while it is down or
// failing broadly, or busy (429, 503), do not. The outage budget bounds how long, from
// its first failure, a line waits for an upstream in trouble.
func (e *Engine) retryOrFail(d *deployment, g *upstream.Gate, j job, a try, w *workerState) {
	now := e.now()
	switch {
	case a.outcome == upstream.Failed && a.err == nil && a.resp.Status != http.StatusBadGateway && a.resp.Status != http.StatusGatewayTimeout:
		j.attempts++ // an answer (500, 408, ...): the upstream is up and failed this line
	case (a.outcome == upstream.Failed || a.outcome == upstream.TimedOut) && g.Healthy():
		j.attempts++ // no answer, or a gateway's, while others get answers
	case a.outcome == upstream.Overloaded && a.retryAfter <= 0:
		j.busy++ // busy, and no word of when to come back: wait longer each time
	}
	if a.outcome == upstream.TimedOut {
		// Hung at the upstream, or slower than the pace says (a long prompt's prefill,
		// which the time per output token does not see): its next timeout doubles, so a
		// slow line gets through before its attempts run out.
		j.timeouts++
	}
	first := j.troubleSince.IsZero()
	if first {
		j.troubleSince = now
	}
	outOfBudget := !first && now.Sub(j.troubleSince) > e.opts.OutageBudget
	if j.attempts < e.opts.MaxAttempts && !outOfBudget {
		wait := a.retryAfter
		if wait <= 0 {
			wait = e.backoff(max(j.attempts+j.busy, 1))
		}
		e.retryLater(d, j, min(wait, maxRetryAfter))
		return
	}
	res := result{req: j.req, out: getLineBuf()}
	switch {
	case a.err != nil:
		// The error names the upstream's address: it goes to the log, and the error
		// file says only what failed.
		e.log.Warn("line failed: the upstream did not answer", "batch_id", j.req.BatchID, "custom_id", j.req.CustomID,
			"deployment", d.Name, "attempts", max(j.attempts, 1), "err", a.err)
		*res.out = jsonl.AppendError((*res.out)[:0], a.id, j.req.CustomID, upstream.ErrorCode(a.err),
			fmt.Sprintf("The upstream did not answer after %d attempts: %s.", max(j.attempts, 1), upstream.ErrorText(a.err)))
	default:
		*res.out = jsonl.AppendResponse((*res.out)[:0], a.id, j.req.CustomID, a.resp.Status, w.requestID(a.resp), a.resp.Body)
	}
	*res.out = append(*res.out, '\n')
	e.commit.add(j.run, res)
}

// retryLater puts a line back in its deployment's queue after wait, holding no slot
// meanwhile. A cancel or a stop during the wait releases it.
func (e *Engine) retryLater(d *deployment, j job, wait time.Duration) {
	e.workWG.Add(1)
	go func() {
		defer e.workWG.Done()
		ctx, cancel := context.WithCancel(j.run.ctx)
		defer cancel()
		stop := context.AfterFunc(e.soft, cancel)
		defer stop()
		if e.opts.WaitFunc(ctx, wait) != nil || !d.requeue(j) {
			e.commit.release(j.run, j.req)
		}
	}()
}

// requeue adds a line to the lines ready to retry, unless the workers are gone.
func (d *deployment) requeue(j job) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.readyClosed {
		return false
	}
	d.ready = append(d.ready, j)
	select {
	case d.readySig <- struct{}{}:
	default:
	}
	return true
}

// next returns the next line to send: one ready to retry first, else a new one. It
// returns false when the queue is closed (and no retry waits) or ctx ended.
func (d *deployment) next(ctx context.Context) (job, bool) {
	for {
		d.mu.Lock()
		if n := len(d.ready); n > 0 {
			j := d.ready[0]
			d.ready[0] = job{}
			d.ready = d.ready[1:]
			d.mu.Unlock()
			return j, true
		}
		d.mu.Unlock()
		select {
		case j, ok := <-d.jobs:
			if ok {
				return j, true
			}
			d.mu.Lock()
			if len(d.ready) > 0 { // a retry came in meanwhile
				d.mu.Unlock()
				continue
			}
			d.readyClosed = true
			d.mu.Unlock()
			return job{}, false
		case <-d.readySig:
		case <-ctx.Done():
			return job{}, false
		}
	}
}

// closeReady refuses further retries and hands each waiting one to release.
func (d *deployment) closeReady(release func(job)) {
	d.mu.Lock()
	d.readyClosed = true
	ready := d.ready
	d.ready = nil
	d.mu.Unlock()
	for _, j := range ready {
		release(j)
	}
}

// usage returns the tokens a successful line used: what the upstream reported, or, when
// it reported none, the line's input tokens and the answer's text counted with the
// deployment's tokenizer. A usage of no tokens at all is no report: every request has
// input, and a server that says 0 did not count it (Ollama, after it cuts off an answer
// that repeats one token, answers 200 with all counts 0).
func (d *deployment) usage(j job, body, answer []byte) sluice.Usage {
	if u, ok := jsonl.ParseUsage(answer); ok && (u.InputTokens > 0 || u.OutputTokens > 0) {
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

// alsoMaxTokens adds max_tokens to a chat completions body that bounds its answer
// with max_completion_tokens alone, at the same value, for a server that reads only
// max_tokens (sluice.Upstream.MaxTokensOnly). A body that names max_tokens, or no
// numeric max_completion_tokens, is returned as it is.
func alsoMaxTokens(body []byte) []byte {
	_, n, err := jsonl.LimitTokens(body, []string{"max_completion_tokens"}, "", 0, 0)
	if err != nil || n <= 0 {
		return body
	}
	if out, _, err := jsonl.LimitTokens(body, []string{"max_tokens"}, "max_tokens", n, 0); err == nil {
		return out
	}
	return body
}

// attemptTimeout bounds an attempt at a line that may generate limit tokens (0: it
// names no limit) and timed out timeouts times before: the upstream's pace, doubled for
// each timeout, at most RequestTimeout.
func (e *Engine) attemptTimeout(p *upstream.Pace, limit, timeouts int) time.Duration {
	d := p.Timeout(limit)
	if timeouts > 0 {
		d <<= min(timeouts, 20)
	}
	if d <= 0 || d > e.opts.RequestTimeout {
		return e.opts.RequestTimeout
	}
	return d
}

// holdToPace bounds an attempt sent before its upstream's pace was known, whose
// timeout is therefore RequestTimeout: once the pace is known, the attempt gets the
// timeout it would have had from its start, and is cancelled when that has passed.
// Without it a request that hangs in the first wave holds its slot for RequestTimeout.
// The returned flag says the attempt was cut so.
func (e *Engine) holdToPace(actx context.Context, cancel context.CancelFunc, p *upstream.Pace, start time.Time, limit, timeouts int) *atomic.Bool {
	late := new(atomic.Bool)
	go func() {
		select {
		case <-actx.Done():
			return
		case <-p.Known():
		}
		t := time.NewTimer(time.Until(start.Add(e.attemptTimeout(p, limit, timeouts))))
		defer t.Stop()
		select {
		case <-actx.Done():
		case <-t.C:
			late.Store(true)
			cancel()
		}
	}()
	return late
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
