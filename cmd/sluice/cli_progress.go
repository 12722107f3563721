package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/sluice-batch/sluice/client"
	"golang.org/x/term"
)

// progress shows a batch as it runs: a live bar on a terminal, timestamped lines
// elsewhere (a log, a pipe, CI).
type progress interface {
	// update shows the batch as a poll found it.
	update(b *client.Batch)
	// note shows a line of its own: a wait for quota, a server that cannot be reached.
	note(format string, args ...any)
	// finish shows the batch that ended, and ends the display.
	finish(b *client.Batch)
}

// newProgress returns the display for w, which is stdout unless the command prints
// JSON there: a bar when w is a terminal, lines otherwise, nothing when quiet.
func (e *cliEnv) newProgress(quiet bool) progress {
	if quiet {
		return quietProgress{}
	}
	w := e.stdout
	if e.json {
		w = e.stderr
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && e.getenv("TERM") != "dumb" {
		return &barProgress{w: w, now: e.now}
	}
	return &lineProgress{w: w, now: e.now}
}

type quietProgress struct{}

func (quietProgress) update(*client.Batch) {}
func (quietProgress) note(string, ...any)  {}
func (quietProgress) finish(*client.Batch) {}

// batchPace returns a running batch's finished lines per second and the time left:
// the server's (lines_per_second and eta, a Sluice extension) when it sends them,
// else the same reckoning from the batch's counts since it went in progress.
func batchPace(b *client.Batch, now time.Time) (rate float64, left time.Duration, ok bool) {
	c := b.RequestCounts
	done := c.Completed + c.Failed
	if b.Status != client.StatusInProgress || done == 0 {
		return 0, 0, false
	}
	if b.LinesPerSecond != nil && *b.LinesPerSecond > 0 {
		rate = *b.LinesPerSecond
		if b.ETA != nil {
			return rate, max(0, time.Unix(*b.ETA, 0).Sub(now)), true
		}
		return rate, time.Duration(float64(c.Total-done) / rate * float64(time.Second)), true
	}
	if b.InProgressAt == 0 {
		return 0, 0, false
	}
	secs := max(1, now.Sub(time.Unix(b.InProgressAt, 0)).Seconds())
	rate = float64(done) / secs
	return rate, time.Duration(float64(c.Total-done) / rate * float64(time.Second)), true
}

// counts describes a batch's lines: "120/1000 done, 3 failed".
func counts(b *client.Batch) string {
	c := b.RequestCounts
	return fmt.Sprintf("%d/%d done, %d failed", c.Completed+c.Failed, c.Total, c.Failed)
}

// paceText describes a running batch's pace: "40.0 lines/s, ETA 22s", or "".
func paceText(b *client.Batch, now time.Time) string {
	rate, left, ok := batchPace(b, now)
	if !ok {
		return ""
	}
	return fmt.Sprintf("%.1f lines/s, ETA %s", rate, cliDuration(left))
}

// took is how long an ended batch ran, from its creation to its end.
func took(b *client.Batch) time.Duration {
	end := max(b.CompletedAt, b.FailedAt, b.ExpiredAt, b.CancelledAt)
	if end == 0 || b.CreatedAt == 0 {
		return 0
	}
	return time.Duration(end-b.CreatedAt) * time.Second
}

// lineEvery is how often lineProgress prints a line while nothing but the counts
// changes.
const lineEvery = 10 * time.Second

// lineProgress prints a timestamped line at each status change, and while the batch
// runs one every lineEvery when its counts moved.
type lineProgress struct {
	w      io.Writer
	now    func() time.Time
	status client.Status
	done   int
	last   time.Time
}

func (p *lineProgress) line(format string, args ...any) {
	fmt.Fprintf(p.w, "%s %s\n", p.now().Format(time.RFC3339), fmt.Sprintf(format, args...))
}

func (p *lineProgress) update(b *client.Batch) {
	now := p.now()
	done := b.RequestCounts.Completed + b.RequestCounts.Failed
	switch {
	case b.Status != p.status:
	case done != p.done && now.Sub(p.last) >= lineEvery:
	default:
		return
	}
	p.status, p.done, p.last = b.Status, done, now
	text := fmt.Sprintf("%s %s", b.ID, b.Status)
	if b.RequestCounts.Total > 0 {
		text += " " + counts(b)
	}
	if pace := paceText(b, now); pace != "" {
		text += ", " + pace
	}
	p.line("%s", text)
}

func (p *lineProgress) note(format string, args ...any) { p.line(format, args...) }

func (p *lineProgress) finish(b *client.Batch) {
	p.line("%s %s %s in %s", b.ID, b.Status, counts(b), cliDuration(took(b)))
}

// barProgress draws a bar of a batch's finished lines (done and failed) of its
// total, with its status, failures, lines per second and ETA, on a terminal. Status
// changes and notes are printed as lines above it. The bar appears once the total
// is known, after validation.
type barProgress struct {
	w      io.Writer
	now    func() time.Time
	bar    *progressbar.ProgressBar
	status client.Status
}

func (p *barProgress) println(format string, args ...any) {
	line := p.now().Format("15:04:05") + " " + fmt.Sprintf(format, args...)
	if p.bar != nil {
		// Printed above the bar at its next drawing.
		_, _ = progressbar.Bprintln(p.bar, line)
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *barProgress) update(b *client.Batch) {
	if b.Status != p.status {
		p.status = b.Status
		p.println("%s %s", b.ID, b.Status)
	}
	total := int64(b.RequestCounts.Total)
	if total <= 0 {
		return
	}
	if p.bar == nil {
		p.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(p.w),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(false),
			progressbar.OptionShowDescriptionAtLineEnd(),
			progressbar.OptionSetRenderBlankState(true),
		)
	}
	desc := []string{string(b.Status)}
	if f := b.RequestCounts.Failed; f > 0 {
		desc = append(desc, fmt.Sprintf("%d failed", f))
	}
	if pace := paceText(b, p.now()); pace != "" {
		desc = append(desc, pace)
	}
	p.bar.Describe(strings.Join(desc, " · "))
	_ = p.bar.Set64(int64(b.RequestCounts.Completed + b.RequestCounts.Failed))
}

func (p *barProgress) note(format string, args ...any) {
	p.println(format, args...)
	if p.bar != nil {
		_ = p.bar.RenderBlank()
	}
}

func (p *barProgress) finish(b *client.Batch) {
	p.update(b)
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
	fmt.Fprintf(p.w, "%s %s %s %s in %s\n", p.now().Format("15:04:05"), b.ID, b.Status, counts(b), cliDuration(took(b)))
}

// waitOptions shape a wait for a batch.
type waitOptions struct {
	interval time.Duration // between polls
	timeout  time.Duration // 0: no limit
}

// unreachableFor is how long a wait goes on through errors that may pass (the
// server unreachable, restarting or overloaded) before it gives up.
const unreachableFor = 5 * time.Minute

// wait polls a batch until it ends and returns it, showing it on p. Errors that may
// pass are shown and waited through for up to unreachableFor.
func (e *cliEnv) wait(ctx context.Context, c *client.Client, id string, p progress, o waitOptions) (*client.Batch, error) {
	var deadline time.Time
	if o.timeout > 0 {
		deadline = e.now().Add(o.timeout)
	}
	var failingSince time.Time
	for {
		b, err := c.GetBatch(ctx, id)
		switch {
		case err == nil:
			failingSince = time.Time{}
			if b.Status.Terminal() {
				p.finish(b)
				return b, nil
			}
			p.update(b)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("stopped waiting; batch %s goes on: sluice batches wait %s", id, id)
		case !transient(err):
			return nil, err
		case failingSince.IsZero():
			failingSince = e.now()
			p.note("%v; trying again for up to %s", err, unreachableFor)
		case e.now().Sub(failingSince) > unreachableFor:
			return nil, err
		}
		if !deadline.IsZero() && e.now().After(deadline) {
			return nil, &cliExit{code: exitTimeout, err: fmt.Errorf("batch %s has not ended after %s; it goes on: sluice batches wait %s", id, o.timeout, id)}
		}
		if err := cliSleep(ctx, o.interval); err != nil {
			return nil, fmt.Errorf("stopped waiting; batch %s goes on: sluice batches wait %s", id, id)
		}
	}
}

// transient reports whether err may pass if the request is sent again: the server
// could not be reached, or answered 429 or 5xx.
func transient(err error) bool {
	var e *client.Error
	if errors.As(err, &e) {
		return e.StatusCode == 429 || e.StatusCode >= 500
	}
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
