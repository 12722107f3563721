package engine

import (
	"context"
	"slices"
	"strings"

	"github.com/sluice-batch/sluice"
)

// idle reports whether the deployment's upstreams have capacity to spare: fewer lines
// of its batches are claimed here, queued or in flight, than its upstreams take at
// once. It is this process's view; each replica lends from its own.
func (e *Engine) idle(d *deployment) bool {
	capacity := 0
	for _, c := range d.clients {
		capacity += c.Upstream().MaxConcurrency
	}
	var claimed int64
	for _, r := range d.snapshot() {
		claimed += r.inflight.Load()
	}
	return claimed < int64(capacity)
}

// Deployments implements sluice.Service.
func (e *Engine) Deployments(ctx context.Context) ([]*sluice.DeploymentStatus, error) {
	held, err := e.store.EnqueuedTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*sluice.DeploymentStatus, 0, len(e.deps))
	for _, d := range e.deps {
		st := &sluice.DeploymentStatus{Deployment: d.Deployment, Enqueued: held[d.Name], Idle: e.idle(d)}
		st.Allowed = d.Quota.Limit(st.Idle)
		if st.Enqueued > 0 {
			bs, _, err := e.store.FindBatches(ctx, sluice.BatchFilter{
				Deployment: d.Name,
				Status: []sluice.Status{sluice.StatusValidating, sluice.StatusInProgress,
					sluice.StatusFinalizing, sluice.StatusCancelling},
			})
			if err != nil {
				return nil, err
			}
			st.Batches = bs
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b *sluice.DeploymentStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
