package client

import (
	"context"
	"net/url"
)

// Deployment is a batch deployment and its enqueued-token quota now, a Sluice
// extension (GET /v1/deployments).
type Deployment struct {
	ID           string   `json:"id"` // the name lines give as body.model
	Object       string   `json:"object"`
	Model        string   `json:"model"`
	Type         string   `json:"type"` // global or datazone
	Zone         string   `json:"zone"`
	Endpoints    []string `json:"endpoints"`
	InputFormats []string `json:"input_formats"`
	Encoding     string   `json:"encoding"`
	Quota        Quota    `json:"quota"`
	Price        *Price   `json:"price"`
	// Batches are the batches holding tokens of the quota.
	Batches []struct {
		ID          string `json:"id"`
		Status      Status `json:"status"`
		InputTokens int64  `json:"input_tokens"`
	} `json:"batches"`

	raw
}

// Quota is a deployment's enqueued-token quota now. The limits are nil when there is
// none.
type Quota struct {
	EnqueuedTokens        int64  `json:"enqueued_tokens"`
	MaximumEnqueuedTokens *int64 `json:"maximum_enqueued_tokens"`
	// AvailableTokens is what a new batch may hold now.
	AvailableTokens *int64  `json:"available_tokens"`
	DynamicQuota    bool    `json:"dynamic_quota"`
	DynamicShare    float64 `json:"dynamic_share"`
	Idle            bool    `json:"idle"`
}

// Price is what a deployment's tokens cost, per million.
type Price struct {
	Currency              string  `json:"currency"`
	InputPerMillion       float64 `json:"input_per_million"`
	CachedInputPerMillion float64 `json:"cached_input_per_million"`
	OutputPerMillion      float64 `json:"output_per_million"`
	BatchDiscount         float64 `json:"batch_discount"`
}

// ListDeployments returns the server's batch deployments, all in one page.
func (c *Client) ListDeployments(ctx context.Context) (*List[Deployment], error) {
	var l List[Deployment]
	if err := c.call(ctx, request{method: "GET", path: "/deployments"}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// GetDeployment returns one batch deployment by name.
func (c *Client) GetDeployment(ctx context.Context, name string) (*Deployment, error) {
	var d Deployment
	if err := c.call(ctx, request{method: "GET", path: "/deployments/" + url.PathEscape(name)}, &d); err != nil {
		return nil, err
	}
	return &d, nil
}
