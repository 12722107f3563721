package httpapi

import (
	"net/http"

	"github.com/sluice-batch/sluice"
)

// deploymentJSON is a batch deployment and its quota on the wire, Sluice's own object.
type deploymentJSON struct {
	ID           string     `json:"id"`
	Object       string     `json:"object"`
	Model        string     `json:"model"`
	Type         string     `json:"type"`
	Zone         *string    `json:"zone"`
	Endpoints    []string   `json:"endpoints"`
	InputFormats []string   `json:"input_formats"`
	Encoding     string     `json:"encoding"`
	Quota        quotaJSON  `json:"quota"`
	Price        *priceJSON `json:"price"`
	Batches      []holdJSON `json:"batches"`
}

// quotaJSON is a deployment's enqueued-token quota now. Limits are null when there
// are none.
type quotaJSON struct {
	EnqueuedTokens        int64  `json:"enqueued_tokens"`
	MaximumEnqueuedTokens *int64 `json:"maximum_enqueued_tokens"`
	// AvailableTokens is what a new batch may hold now: the limit, or more while
	// dynamic quota lends idle capacity, less what is enqueued.
	AvailableTokens *int64  `json:"available_tokens"`
	DynamicQuota    bool    `json:"dynamic_quota"`
	DynamicShare    float64 `json:"dynamic_share"`
	Idle            bool    `json:"idle"`
}

type priceJSON struct {
	Currency              string  `json:"currency"`
	InputPerMillion       float64 `json:"input_per_million"`
	CachedInputPerMillion float64 `json:"cached_input_per_million"`
	OutputPerMillion      float64 `json:"output_per_million"`
	BatchDiscount         float64 `json:"batch_discount"`
}

// holdJSON is a batch holding tokens of a deployment.
type holdJSON struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	InputTokens int64  `json:"input_tokens"`
}

// encodeDeployment encodes d for c: the batches holding its tokens are listed only
// when c may see them; the totals count every project's.
func encodeDeployment(d *sluice.DeploymentStatus, c sluice.Caller) deploymentJSON {
	out := deploymentJSON{
		ID: d.Name, Object: "deployment", Model: d.ModelName(), Type: d.Type, Zone: nullable(d.Zone), Endpoints: d.Endpoints,
		InputFormats: d.InputFormats, Encoding: d.Encoding, Batches: []holdJSON{},
		Quota: quotaJSON{EnqueuedTokens: d.Enqueued, DynamicQuota: d.Quota.Dynamic, DynamicShare: d.Quota.DynamicShare, Idle: d.Idle},
	}
	if l := d.Quota.EnqueuedTokenLimit; l > 0 {
		out.Quota.MaximumEnqueuedTokens = &l
		out.Quota.AvailableTokens = sluice.Ptr(max(0, d.Allowed-d.Enqueued))
	}
	if p := d.Price; p.Input > 0 || p.Output > 0 {
		out.Price = &priceJSON{Currency: p.Currency, InputPerMillion: p.Input, CachedInputPerMillion: p.CachedInput,
			OutputPerMillion: p.Output, BatchDiscount: p.BatchDiscount}
	}
	for _, b := range d.Batches {
		if !c.Sees(b.Project) {
			continue
		}
		out.Batches = append(out.Batches, holdJSON{ID: b.ID, Status: string(b.Status), InputTokens: b.InputTokens})
	}
	return out
}

func (s *Server) handleDeploymentList(w http.ResponseWriter, r *http.Request) error {
	deps, err := s.service.Deployments(r.Context())
	if err != nil {
		return err
	}
	data := make([]deploymentJSON, len(deps))
	for i, d := range deps {
		data[i] = encodeDeployment(d, callerOf(r))
	}
	writeJSON(w, http.StatusOK, newList(data, func(d deploymentJSON) string { return d.ID }, false))
	return nil
}

func (s *Server) handleDeploymentGet(w http.ResponseWriter, r *http.Request) error {
	deps, err := s.service.Deployments(r.Context())
	if err != nil {
		return err
	}
	name := r.PathValue("deployment")
	for _, d := range deps {
		if d.Name == name {
			writeJSON(w, http.StatusOK, encodeDeployment(d, callerOf(r)))
			return nil
		}
	}
	return sluice.Errorf(sluice.KindNotFound, "No batch deployment named %q.", name).WithParam("deployment").WithCode("DeploymentNotFound")
}

// dryRunJSON answers a create with "dry_run": true: whether the batch would be
// admitted now, what it needs, and what validation would fail it with.
type dryRunJSON struct {
	Object                string            `json:"object"`
	Admitted              bool              `json:"admitted"`
	Deployment            *string           `json:"deployment"`
	InputTokens           int64             `json:"input_tokens"`
	EnqueuedTokens        int64             `json:"enqueued_tokens"`
	MaximumEnqueuedTokens *int64            `json:"maximum_enqueued_tokens"`
	AvailableTokens       *int64            `json:"available_tokens"`
	Errors                *batchErrorsJSON  `json:"errors"`
	Project               *projectHoldsJSON `json:"project,omitempty"`
}

// projectHoldsJSON is what a project's batches hold beside its limits (null: none).
type projectHoldsJSON struct {
	ID                    string `json:"id"`
	EnqueuedTokens        int64  `json:"enqueued_tokens"`
	MaximumEnqueuedTokens *int64 `json:"maximum_enqueued_tokens"`
	Batches               int    `json:"batches"`
	MaximumBatches        *int   `json:"maximum_batches"`
}

func encodeDryRun(a *sluice.Admission) dryRunJSON {
	out := dryRunJSON{Object: "batch.dry_run", Admitted: a.Admitted, Deployment: nullable(a.Deployment),
		InputTokens: a.Tokens, EnqueuedTokens: a.Enqueued, Errors: encodeErrors(a.Problems)}
	if a.Limit > 0 {
		out.MaximumEnqueuedTokens = &a.Limit
		out.AvailableTokens = sluice.Ptr(max(0, a.Allowed-a.Enqueued))
	}
	if a.ProjectTokenLimit > 0 || a.ProjectBatchLimit > 0 {
		p := &projectHoldsJSON{ID: a.Project, EnqueuedTokens: a.ProjectTokens, Batches: a.ProjectBatches}
		if a.ProjectTokenLimit > 0 {
			p.MaximumEnqueuedTokens = &a.ProjectTokenLimit
		}
		if a.ProjectBatchLimit > 0 {
			p.MaximumBatches = &a.ProjectBatchLimit
		}
		out.Project = p
	}
	return out
}
