package engine

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-batch/sluice"
)

// faults remembers the storage fault the engine's writes met last, until a write
// succeeds again.
type faults struct {
	mu     sync.Mutex
	reason string
	since  time.Time

	// The readiness probe's last answer, reused for probeTTL.
	probed   time.Time
	probeErr error
}

// probeTTL is how long a readiness probe's answer stands: probes come often, and each
// writes to the bucket.
const probeTTL = time.Second

// note records err if fault says it is a storage fault, and returns its reason.
func (f *faults) note(fault sluice.FaultFunc, err error, now time.Time) (string, bool) {
	reason, ok := fault(err)
	if !ok {
		return "", false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason == "" {
		f.since = now
	}
	f.reason = reason
	return reason, true
}

// clear records that writes succeed again.
func (f *faults) clear(log *slog.Logger) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reason != "" {
		log.Info("store writes resumed", "after", f.reason, "down_for", time.Since(f.since).Round(time.Millisecond).String())
	}
	f.reason = ""
}

// current returns the fault not yet got past, if any.
func (f *faults) current() (string, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reason, f.since
}

// Ready reports whether the engine can store and read now: nil, or a KindUnavailable
// error whose message says why not, in words a client may be shown. It is not ready
// while its writes fail with a storage fault, or when a probe (a read of the store, a
// write and delete of a small object in the bucket) fails.
func (e *Engine) Ready(ctx context.Context) error {
	if reason, since := e.faults.current(); reason != "" {
		return sluice.Errorf(sluice.KindUnavailable, "Storage is failing: %s (since %s); finished work is kept and writes are retried.",
			reason, since.UTC().Format(time.RFC3339))
	}
	e.faults.mu.Lock()
	defer e.faults.mu.Unlock()
	now := e.now()
	if !e.faults.probed.IsZero() && now.Sub(e.faults.probed) < probeTTL && !now.Before(e.faults.probed) {
		return e.faults.probeErr
	}
	e.faults.probed, e.faults.probeErr = now, e.probe(ctx)
	return e.faults.probeErr
}

// probe reads the store and writes to the bucket once.
func (e *Engine) probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	unready := func(what string, err error) error {
		reason, ok := e.opts.Fault(err)
		if !ok {
			reason = what + " does not answer"
		}
		e.log.WarnContext(ctx, "not ready: "+reason, "err", err)
		return sluice.Errorf(sluice.KindUnavailable, "Storage is failing: %s.", reason).WithErr(err)
	}
	if _, _, err := e.store.FindBatches(ctx, sluice.BatchFilter{Limit: 1}); err != nil {
		return unready("the database", err)
	}
	key := "readyz/" + e.opts.Owner
	if _, err := e.bucket.Put(ctx, key, bytes.NewReader([]byte("ready\n"))); err != nil {
		return unready("the bucket", err)
	}
	if err := e.bucket.Delete(ctx, key); err != nil {
		return unready("the bucket", err)
	}
	return nil
}
