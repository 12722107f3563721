// Package engine runs batches: it scans uploads, admits batches, validates them into
// request rows, dispatches lines to upstreams with retries, commits results in groups,
// and writes the output and error files. After a crash it picks up where the Store says
// work stands: nothing it needs lives only in memory.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/tokens"
	"github.com/sluice-batch/sluice/upstream"
)

// Options are the optional settings of an Engine. Zero fields take the defaults.
type Options struct {
	Logger  *slog.Logger
	NowFunc func() time.Time
	// Owner names this process in leases; default a random ID.
	Owner string
	// PollInterval is how often the engine looks for work it was not told about; 200ms.
	PollInterval time.Duration
	// LeaseDuration is how long a claimed line stays with this process without a
	// heartbeat; 2m.
	LeaseDuration time.Duration
	// ClaimSize is how many lines one claim takes; 256.
	ClaimSize int
	// CommitSize is the most results one transaction commits; 512.
	CommitSize int
	// CommitLinger is how long a group of results waits for company before it commits;
	// 5ms. A result counts only once committed, so this is the most it is delayed.
	CommitLinger time.Duration
	// MaxAttempts is how often a line is sent before a retryable failure becomes final; 5.
	MaxAttempts int
	// BackoffBase and BackoffMax shape the exponential backoff between attempts;
	// 500ms and 30s. A Retry-After from the upstream is honoured up to 10 minutes.
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// RequestTimeout bounds one attempt; 10m. Once an upstream has answered enough
	// requests, an attempt's timeout follows its pace instead (upstream.Pace): the
	// expected time for the line's max_tokens, times TimeoutFactor (4), at least
	// MinRequestTimeout (1s) and at most RequestTimeout. Each time a line's attempt
	// times out, its next attempt gets twice as long.
	RequestTimeout    time.Duration
	TimeoutFactor     float64
	MinRequestTimeout time.Duration
	// ConnectTimeout bounds how long a connection to an upstream takes to open; 10s.
	// It applies to the transports the engine makes, not to HTTPClient's.
	ConnectTimeout time.Duration
	// CancelGrace is how long in-flight lines of a cancelled batch may finish; 30s.
	CancelGrace time.Duration
	// HTTPClient sends upstream requests through its transport; by default each
	// upstream has its own (see upstream.NewClientTimeout).
	HTTPClient *http.Client
	// SweepInterval is how often files past their expires_at are deleted; 1m.
	SweepInterval time.Duration
	// MaxFileBytes caps an uploaded file; default sluice.MaxFileBytes (200 MB).
	MaxFileBytes int64
	// MaxRequests caps the request lines of a file; default sluice.MaxRequests (100,000).
	MaxRequests int
	// Blobs reads the inputs of blob-mode batches and writes their results; nil: blob
	// mode is off, and a create with input_blob is refused.
	Blobs sluice.Blobs
	// Shared says other processes use the store too (replicas on PostgreSQL): an upload
	// left pending is then marked failed only once it is older than StaleUpload (it may
	// be another process's, still arriving), by the sweep, not at start.
	Shared      bool
	StaleUpload time.Duration // default 2h
	// OutageBudget is how long a line waits for an upstream that is down or busy before
	// it fails; 24h.
	OutageBudget time.Duration
	// Projects are the limits of each project, by name; a project not named has none.
	Projects map[string]sluice.ProjectLimits
	// Fault says which errors are faults of the store's or the bucket's storage that
	// should pass (a full disk, a database that does not answer): they are retried with
	// backoff, and Ready reports them. Default sluice.StorageFault.
	Fault sluice.FaultFunc
	// WaitFunc waits d before a retry, or until ctx ends; default a timer. Tests inject
	// it to see the waits asked for without spending them.
	WaitFunc func(ctx context.Context, d time.Duration) error
}

func (o *Options) withDefaults() Options {
	out := Options{}
	if o != nil {
		out = *o
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	defInt := func(d *int, v int) {
		if *d <= 0 {
			*d = v
		}
	}
	if out.Logger == nil {
		out.Logger = slog.New(slog.DiscardHandler)
	}
	if out.NowFunc == nil {
		out.NowFunc = time.Now
	}
	if out.Owner == "" {
		out.Owner = sluice.NewOwnerID()
	}
	def(&out.PollInterval, 200*time.Millisecond)
	def(&out.LeaseDuration, 2*time.Minute)
	def(&out.OutageBudget, 24*time.Hour)
	def(&out.StaleUpload, 2*time.Hour)
	defInt(&out.ClaimSize, 256)
	defInt(&out.CommitSize, 512)
	def(&out.CommitLinger, 5*time.Millisecond)
	defInt(&out.MaxAttempts, 5)
	def(&out.BackoffBase, 500*time.Millisecond)
	def(&out.BackoffMax, 30*time.Second)
	def(&out.RequestTimeout, 10*time.Minute)
	def(&out.MinRequestTimeout, time.Second)
	def(&out.ConnectTimeout, upstream.DefaultConnectTimeout)
	if out.TimeoutFactor <= 0 {
		out.TimeoutFactor = 4
	}
	def(&out.CancelGrace, 30*time.Second)
	def(&out.SweepInterval, time.Minute)
	if out.MaxFileBytes <= 0 {
		out.MaxFileBytes = sluice.MaxFileBytes
	}
	defInt(&out.MaxRequests, sluice.MaxRequests)
	if out.WaitFunc == nil {
		out.WaitFunc = wait
	}
	if out.Fault == nil {
		out.Fault = sluice.StorageFault
	}
	return out
}

// Engine runs batches against deployments. It also implements sluice.Service.
type Engine struct {
	store  sluice.Store
	bucket sluice.Bucket
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	deps   map[string]*deployment
	// counter counts the tokens of input that names no deployment, with the default
	// encoding, so that its file still shows a count.
	counter *tokens.Counter

	notify chan struct{}
	commit *committer

	mu   sync.Mutex
	runs map[string]*run // batches with lines in this process, by ID
	busy map[string]bool // batches being validated or finalized, by ID
	held map[string]bool // named leases this process holds in the store
	// orphans are running batches whose deployment is not configured, logged once each.
	orphans map[string]bool

	faults faults // storage faults met and not yet got past; the readiness probe

	stopping   atomic.Bool        // Stop was called: workers start no new line
	cancel     context.CancelFunc // ends the loop and dispatchers
	soft       context.Context    // ends at Stop: lines waiting to retry are released
	hard       context.Context    // parent of every run's context
	hardCancel context.CancelFunc // ends in-flight requests
	wg         sync.WaitGroup     // loop, dispatchers, heartbeat, validations, finalizations
	workWG     sync.WaitGroup     // workers
}

// New returns an engine over store and bucket serving deployments.
func New(store sluice.Store, bucket sluice.Bucket, deployments []sluice.Deployment, opts *Options) (*Engine, error) {
	o := opts.withDefaults()
	e := &Engine{
		store:   store,
		bucket:  bucket,
		opts:    o,
		log:     o.Logger,
		now:     o.NowFunc,
		deps:    make(map[string]*deployment),
		notify:  make(chan struct{}, 1),
		runs:    make(map[string]*run),
		busy:    make(map[string]bool),
		held:    make(map[string]bool),
		orphans: make(map[string]bool),
	}
	counters := make(map[string]*tokens.Counter)
	counterOf := func(enc string) (*tokens.Counter, error) {
		if c := counters[enc]; c != nil {
			return c, nil
		}
		c, err := tokens.New(enc)
		if err != nil {
			return nil, err
		}
		counters[enc], counters[c.Encoding()] = c, c
		return c, nil
	}
	var err error
	if e.counter, err = counterOf(""); err != nil {
		return nil, err
	}
	for _, d := range deployments {
		if d.Name == "" {
			return nil, errors.New("a deployment has no name")
		}
		if len(d.Upstreams) == 0 {
			return nil, fmt.Errorf("deployment %s has no upstream", d.Name)
		}
		if _, dup := e.deps[d.Name]; dup {
			return nil, fmt.Errorf("deployment %s is configured twice", d.Name)
		}
		dep := &deployment{Deployment: d, jobs: make(chan job, o.ClaimSize), wake: make(chan struct{}, 1), readySig: make(chan struct{}, 1)}
		if dep.counter, err = counterOf(d.Encoding); err != nil {
			return nil, fmt.Errorf("deployment %s: %w", d.Name, err)
		}
		if dep.Encoding == "" {
			dep.Encoding = dep.counter.Encoding()
		}
		if dep.Endpoints == nil {
			dep.Endpoints = sluice.Endpoints
		}
		if dep.InputFormats == nil {
			dep.InputFormats = []string{"text", "image"}
		}
		for _, up := range d.Upstreams {
			if up.MaxConcurrency <= 0 {
				up.MaxConcurrency = 16
			}
			c := upstream.NewClientTimeout(up, o.ConnectTimeout)
			if o.HTTPClient != nil {
				c = upstream.NewClient(up, o.HTTPClient)
			}
			dep.clients = append(dep.clients, c)
			dep.paces = append(dep.paces, upstream.NewPace(upstream.PaceConfig{
				Factor: o.TimeoutFactor, Min: o.MinRequestTimeout, Max: o.RequestTimeout}))
			gc := upstream.GateConfig{Floor: up.MinConcurrency, Ceiling: up.MaxConcurrency, Tolerance: up.LatencyTolerance}
			if l := up.Load; l != nil {
				if gc.Floor <= 0 {
					gc.Floor = 1 // reading the load is asking the limit to adapt
				}
				gc.MaxWaiting, gc.MaxCacheUsage, gc.Headroom = l.MaxWaiting, l.MaxCacheUsage, l.Headroom
			}
			g := upstream.NewGate(gc)
			dep.gates = append(dep.gates, g)
			if up.Load != nil {
				p, err := upstream.NewLoadPoller(up, g, e.log)
				if err != nil {
					return nil, fmt.Errorf("deployment %s: upstream %s: %w", d.Name, upstream.Redact(up.BaseURL), err)
				}
				dep.pollers = append(dep.pollers, p)
			}
		}
		e.deps[d.Name] = dep
	}
	e.commit = newCommitter(e)
	return e, nil
}

// counterFor returns the token counter of the deployment model names, or the default.
func (e *Engine) counterFor(model string) *tokens.Counter {
	if d := e.deps[model]; d != nil {
		return d.counter
	}
	return e.counter
}

// Configured returns the configured deployments, defaults filled in.
func (e *Engine) Configured() []sluice.Deployment {
	out := make([]sluice.Deployment, 0, len(e.deps))
	for _, d := range e.deps {
		out = append(out, d.Deployment)
	}
	return out
}

// Notify wakes the engine to look for new work now rather than at the next poll.
func (e *Engine) Notify() {
	select {
	case e.notify <- struct{}{}:
	default:
	}
}

// Start recovers what a previous process left and starts the engine's goroutines.
func (e *Engine) Start(ctx context.Context) error {
	if !e.opts.Shared {
		if err := e.recoverUploads(ctx, time.Time{}); err != nil {
			return err
		}
	}
	ctx, e.cancel = context.WithCancel(context.WithoutCancel(ctx))
	e.soft = ctx
	e.hard, e.hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	e.commit.start()
	for _, d := range e.deps {
		for i, c := range d.clients {
			for range c.Upstream().MaxConcurrency {
				e.workWG.Add(1)
				go e.worker(e.soft, d, c, d.gates[i], d.paces[i])
			}
		}
		e.wg.Add(1)
		go e.dispatch(ctx, d)
		for _, p := range d.pollers {
			e.wg.Go(func() { p.Run(ctx) })
		}
	}
	e.wg.Add(2)
	go e.loop(ctx)
	go e.heartbeat(ctx)
	return nil
}

// Stop stops claiming lines and waits for in-flight ones until ctx ends; then it
// cancels them. Lines cut off are released so another process (or the next start)
// sends them at once; results already received are committed first.
func (e *Engine) Stop(ctx context.Context) error {
	if e.cancel == nil {
		return nil
	}
	e.stopping.Store(true)
	e.cancel()
	// A hard stop: in-flight requests end, and a committer stuck on a failing store
	// gives up, so nothing below can block past ctx.
	var err error
	hard := func() {
		if err == nil {
			err = ctx.Err()
		}
		e.hardCancel()
		e.commit.abandon()
	}
	waitOr(ctx, &e.wg, hard) // loop and dispatchers are gone: no new job will be queued
	for _, d := range e.deps {
		close(d.jobs)
	}
	waitOr(ctx, &e.workWG, hard)
	e.hardCancel()
	e.commit.stop()
	return err
}

// waitOr waits for wg; if ctx ends first it calls hard once and keeps waiting.
func waitOr(ctx context.Context, wg *sync.WaitGroup, hard func()) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		hard()
		<-done
	}
}

// recoverUploads marks uploads cut off by a crash: their rows are pending with no
// process left to finish them. With a zero before it marks every pending upload (the
// store is this process's alone, and it is starting); otherwise those created before.
func (e *Engine) recoverUploads(ctx context.Context, before time.Time) error {
	files, _, err := e.store.FindFiles(ctx, sluice.FileFilter{Status: sluice.FileStatusPending, Sources: true})
	if err != nil {
		return fmt.Errorf("find interrupted uploads: %w", err)
	}
	for _, f := range files {
		if !before.IsZero() && !f.CreatedAt.Before(before) {
			continue
		}
		_, err := e.store.UpdateFile(ctx, f.ID, sluice.FileUpdate{
			Status:        sluice.Ptr(sluice.FileStatusError),
			StatusDetails: sluice.Ptr("The upload was cut off by a restart; upload the file again."),
		})
		if err != nil {
			return fmt.Errorf("mark interrupted upload %s: %w", f.ID, err)
		}
		// Bytes stored before the cut are of no use: the file can never be read.
		for _, key := range []string{sluice.FileKey(f.ID), sluice.IndexKey(f.ID)} {
			if err := e.bucket.Delete(ctx, key); err != nil {
				e.log.WarnContext(ctx, "delete the bytes of an interrupted upload", "file_id", f.ID, "err", err)
			}
		}
		e.log.InfoContext(ctx, "marked an upload cut off by a restart", "file_id", f.ID)
	}
	return nil
}

// loop looks for batches that need a step and takes it: validate, dispatch,
// finalize, cancel.
func (e *Engine) loop(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.PollInterval)
	defer t.Stop()
	var swept time.Time
	for {
		if err := e.step(ctx); err != nil && ctx.Err() == nil {
			e.log.ErrorContext(ctx, "engine step", "err", err)
		}
		if now := e.now(); now.Sub(swept) >= e.opts.SweepInterval && e.sweeper(ctx, now) {
			swept = now
			if err := e.sweepExpired(ctx, now); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "delete expired files", "err", err)
			}
			if err := e.sweepLeftovers(ctx); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "delete leftover work", "err", err)
			}
			if e.opts.Shared {
				if err := e.recoverUploads(ctx, now.Add(-e.opts.StaleUpload)); err != nil && ctx.Err() == nil {
					e.log.ErrorContext(ctx, "mark stale uploads", "err", err)
				}
			}
			if err := e.sweepUploads(ctx, now); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "delete expired uploads", "err", err)
			}
			// Idempotency-Key answers are kept for 24 hours.
			if err := e.store.DeleteIdempotentBefore(ctx, now.Add(-24*time.Hour)); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "delete old idempotency records", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.notify:
		}
	}
}

func (e *Engine) step(ctx context.Context) error {
	batches, _, err := e.store.FindBatches(ctx, sluice.BatchFilter{Status: []sluice.Status{
		sluice.StatusValidating, sluice.StatusInProgress, sluice.StatusFinalizing, sluice.StatusCancelling,
	}})
	if err != nil {
		return err
	}
	active := make(map[string]bool)
	// FindBatches answers newest first; work oldest first, which is earliest deadline.
	for i := len(batches) - 1; i >= 0; i-- {
		b := batches[i]
		switch b.Status {
		case sluice.StatusValidating:
			e.background(ctx, b.ID, func(ctx context.Context) error { return e.validate(ctx, b) })
		case sluice.StatusInProgress:
			c := b.RequestCounts
			if c.Completed+c.Failed >= c.Total {
				e.background(ctx, b.ID, func(ctx context.Context) error { return e.finalize(ctx, b, sluice.StatusCompleted) })
				continue
			}
			if b.WindowPolicy == sluice.WindowExpire && b.ExpiresAt != nil && !e.now().Before(*b.ExpiresAt) {
				e.background(ctx, b.ID, func(ctx context.Context) error { return e.markExpired(ctx, b) })
				continue
			}
			active[b.ID] = true
			e.activate(ctx, b)
		case sluice.StatusFinalizing:
			if b.ExpiredAt != nil {
				// Its window ended: stop its lines here, and expire it once none is in
				// flight anywhere.
				if e.cancelRun(b.ID) {
					continue
				}
				e.background(ctx, b.ID, func(ctx context.Context) error { return e.expire(ctx, b) })
				continue
			}
			e.background(ctx, b.ID, func(ctx context.Context) error { return e.finalize(ctx, b, sluice.StatusCompleted) })
		case sluice.StatusCancelling:
			if e.cancelRun(b.ID) {
				continue // lines of this batch are still in flight here
			}
			n, err := e.store.CountLeased(ctx, b.ID, e.now())
			if err != nil {
				return err
			}
			if n == 0 {
				e.background(ctx, b.ID, func(ctx context.Context) error { return e.finalize(ctx, b, sluice.StatusCancelled) })
			}
		}
	}
	e.deactivateExcept(active)
	return nil
}

// background runs fn for a batch unless a step for that batch is already running, here
// or, as the batch's lease in the store says, in another process sharing the store: so
// each validation, expiry and finalization runs once. The heartbeat extends the lease
// while fn runs.
func (e *Engine) background(ctx context.Context, id string, fn func(context.Context) error) {
	e.mu.Lock()
	if e.busy[id] {
		e.mu.Unlock()
		return
	}
	e.busy[id] = true
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		lease := "batch:" + id
		ok, err := e.store.TryLease(ctx, lease, e.opts.Owner, e.now().Add(e.opts.LeaseDuration))
		if ok {
			e.hold(lease, true)
			err = fn(ctx)
			e.hold(lease, false)
			if rerr := e.store.ReleaseLease(context.WithoutCancel(ctx), lease, e.opts.Owner); rerr != nil && err == nil {
				err = rerr
			}
		}
		e.mu.Lock()
		delete(e.busy, id)
		e.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			e.log.ErrorContext(ctx, "batch step failed; will retry", "batch_id", id, "err", err)
		}
		e.Notify()
	}()
}

// heartbeat keeps the leases of this process's lines alive.
func (e *Engine) heartbeat(ctx context.Context) {
	defer e.wg.Done()
	t := time.NewTicker(e.opts.LeaseDuration / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := e.store.ExtendLeases(ctx, e.opts.Owner, e.now().Add(e.opts.LeaseDuration)); err != nil && ctx.Err() == nil {
				e.log.ErrorContext(ctx, "extend leases", "err", err)
			}
			e.mu.Lock()
			names := slices.Collect(maps.Keys(e.held))
			e.mu.Unlock()
			for _, name := range names {
				if _, err := e.store.TryLease(ctx, name, e.opts.Owner, e.now().Add(e.opts.LeaseDuration)); err != nil && ctx.Err() == nil {
					e.log.ErrorContext(ctx, "extend lease", "lease", name, "err", err)
				}
			}
		}
	}
}

// sweeper reports whether this process runs the periodic sweeps now: the one that
// holds the store's "sweep" lease, taken for two sweep intervals and renewed at each,
// so that when its holder dies another process takes over.
func (e *Engine) sweeper(ctx context.Context, now time.Time) bool {
	ok, err := e.store.TryLease(ctx, "sweep", e.opts.Owner, now.Add(2*e.opts.SweepInterval))
	if err != nil && ctx.Err() == nil {
		e.log.ErrorContext(ctx, "take the sweep lease", "err", err)
	}
	return ok
}

// hold records that this process holds (or no longer holds) a named lease, which the
// heartbeat then extends.
func (e *Engine) hold(name string, held bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if held {
		e.held[name] = true
	} else {
		delete(e.held, name)
	}
}

// wait sleeps d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sweepExpired deletes files past their expires_at. The input of a batch still running
// is kept until the batch ends, and goes at the next sweep after.
func (e *Engine) sweepExpired(ctx context.Context, now time.Time) error {
	filter := sluice.FileFilter{ExpiredBy: &now, Asc: true, Limit: 500}
	for {
		files, more, err := e.store.FindFiles(ctx, filter)
		if err != nil {
			return err
		}
		for _, f := range files {
			err := e.DeleteFile(ctx, f.ID)
			switch sluice.ErrorKind(err) {
			case "":
				e.log.InfoContext(ctx, "deleted expired file", "file_id", f.ID)
			case sluice.KindConflict:
				// A running batch's input: kept for a later sweep. The cursor moves past
				// kept files only; deleted ones are gone from the next page anyway.
				filter.After = f.ID
			case sluice.KindNotFound:
			default:
				return err
			}
		}
		if !more {
			return nil
		}
	}
}
