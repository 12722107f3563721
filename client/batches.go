package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Status is the state of a batch. Values are the wire strings.
type Status string

const (
	// StatusValidating means the input is being checked before work starts.
	StatusValidating Status = "validating"
	// StatusFailed means validation failed; Batch.Errors says why.
	StatusFailed Status = "failed"
	// StatusInProgress means requests are running.
	StatusInProgress Status = "in_progress"
	// StatusFinalizing means every request is done and the result files are being written.
	StatusFinalizing Status = "finalizing"
	// StatusCompleted means the result files are ready.
	StatusCompleted Status = "completed"
	// StatusExpired means the batch could not finish inside its completion window.
	StatusExpired Status = "expired"
	// StatusCancelling means a cancel was asked for and in-flight requests are ending.
	StatusCancelling Status = "cancelling"
	// StatusCancelled means the batch was cancelled; finished work is in its result files.
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether a batch in status s has ended: nothing changes after.
func (s Status) Terminal() bool {
	switch s {
	case StatusFailed, StatusCompleted, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// RequestCounts counts a batch's requests.
type RequestCounts struct {
	Total     int `json:"total"`
	Completed int `json:"completed"`
	Failed    int `json:"failed"`
}

// BatchError is one entry of a batch's errors: why it failed validation.
type BatchError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param"`
	Line    int    `json:"line"` // 1-based; 0 when the error is about no line
}

// Usage is the tokens a batch's finished requests used.
type Usage struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

// Cost is what a batch's usage costs at its deployment's prices, a Sluice extension.
type Cost struct {
	Currency string  `json:"currency"`
	Amount   float64 `json:"amount"`
	Discount float64 `json:"discount"`
}

// Batch is a batch of the Batch API. Timestamps are unix seconds, 0 until reached.
type Batch struct {
	ID               string `json:"id"`
	Object           string `json:"object"`
	Endpoint         string `json:"endpoint"`
	InputFileID      string `json:"input_file_id"`
	CompletionWindow string `json:"completion_window"`
	Status           Status `json:"status"`
	// OutputFileID and ErrorFileID are set once the batch has ended.
	OutputFileID string `json:"output_file_id"`
	ErrorFileID  string `json:"error_file_id"`
	Errors       *struct {
		Data []BatchError `json:"data"`
	} `json:"errors"`
	RequestCounts RequestCounts     `json:"request_counts"`
	Metadata      map[string]string `json:"metadata"`
	Model         string            `json:"model"`
	Usage         *Usage            `json:"usage"`
	Cost          *Cost             `json:"cost"`
	// EnqueuedTokens is what the batch holds of its deployment's quota while it runs.
	EnqueuedTokens int64 `json:"enqueued_tokens"`
	// LinesPerSecond and ETA (unix seconds) are the pace of a running batch since it
	// went in progress, a Sluice extension; nil before its first line has finished,
	// after it has ended, and from servers without the extension.
	LinesPerSecond *float64 `json:"lines_per_second"`
	ETA            *int64   `json:"eta"`

	CreatedAt    int64 `json:"created_at"`
	InProgressAt int64 `json:"in_progress_at"`
	ExpiresAt    int64 `json:"expires_at"`
	FinalizingAt int64 `json:"finalizing_at"`
	CompletedAt  int64 `json:"completed_at"`
	FailedAt     int64 `json:"failed_at"`
	ExpiredAt    int64 `json:"expired_at"`
	CancellingAt int64 `json:"cancelling_at"`
	CancelledAt  int64 `json:"cancelled_at"`

	raw
}

// BatchCreate creates a batch.
type BatchCreate struct {
	InputFileID string
	// Endpoint is what every line calls, e.g. "/v1/chat/completions".
	Endpoint string
	// CompletionWindow is "24h" when empty.
	CompletionWindow string
	Metadata         map[string]string
	// OutputExpiresAfter, in whole seconds, is the lifetime of the result files; 0
	// leaves it to the server.
	OutputExpiresAfter time.Duration
	// IdempotencyKey, when set, is sent as Idempotency-Key: a create sent again with
	// the same key, after an answer was lost, creates nothing more and gets the first
	// answer.
	IdempotencyKey string
}

// CreateBatch creates a batch. A create refused because the deployment's quota is
// full is an *Error with Code "token_limit_exceeded"; it may be sent again later.
func (c *Client) CreateBatch(ctx context.Context, b BatchCreate) (*Batch, error) {
	type expiry struct {
		Anchor  string `json:"anchor"`
		Seconds int64  `json:"seconds"`
	}
	in := struct {
		InputFileID        string            `json:"input_file_id"`
		Endpoint           string            `json:"endpoint"`
		CompletionWindow   string            `json:"completion_window"`
		Metadata           map[string]string `json:"metadata,omitempty"`
		OutputExpiresAfter *expiry           `json:"output_expires_after,omitempty"`
	}{InputFileID: b.InputFileID, Endpoint: b.Endpoint, CompletionWindow: b.CompletionWindow, Metadata: b.Metadata}
	if in.CompletionWindow == "" {
		in.CompletionWindow = "24h"
	}
	if b.OutputExpiresAfter > 0 {
		in.OutputExpiresAfter = &expiry{"created_at", int64(b.OutputExpiresAfter / time.Second)}
	}
	var h http.Header
	if b.IdempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {b.IdempotencyKey}}
	}
	var out Batch
	if err := c.callJSON(ctx, "POST", "/batches", h, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetBatch returns a batch.
func (c *Client) GetBatch(ctx context.Context, id string) (*Batch, error) {
	var b Batch
	if err := c.call(ctx, request{method: "GET", path: "/batches/" + url.PathEscape(id)}, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// CancelBatch asks for a batch to be cancelled and returns it, usually cancelling.
// Cancelling a batch that has ended is an *Error with StatusCode 409.
func (c *Client) CancelBatch(ctx context.Context, id string) (*Batch, error) {
	var b Batch
	if err := c.call(ctx, request{method: "POST", path: "/batches/" + url.PathEscape(id) + "/cancel"}, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// BatchListParams select a page of batches, newest first. The zero value is the
// first page in the server's page size.
type BatchListParams struct {
	Limit int    // batches in a page; 0 is the server's default (20), at most 100
	After string // the page after this batch ID
}

// ListBatches returns one page of batches.
func (c *Client) ListBatches(ctx context.Context, p *BatchListParams) (*List[Batch], error) {
	q := url.Values{}
	if p != nil && p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p != nil && p.After != "" {
		q.Set("after", p.After)
	}
	var l List[Batch]
	if err := c.call(ctx, request{method: "GET", path: "/batches", query: q}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// AllBatches returns every batch from the page p selects on, fetching pages as the
// loop asks for them. It stops at the first error, which it yields.
func (c *Client) AllBatches(ctx context.Context, p *BatchListParams) iter.Seq2[*Batch, error] {
	q := BatchListParams{}
	if p != nil {
		q = *p
	}
	return pages(func(after string) (*List[Batch], error) {
		if after != "" {
			q.After = after
		}
		return c.ListBatches(ctx, &q)
	})
}

// RetryLines says which lines of an ended batch RetryBatch takes.
type RetryLines string

const (
	// RetryAll takes the lines that failed and those that never ran.
	RetryAll RetryLines = ""
	// RetryFailed takes the lines in the batch's error file.
	RetryFailed RetryLines = "failed"
	// RetryUnfinished takes the lines with no result, of a cancelled or expired batch.
	RetryUnfinished RetryLines = "unfinished"
)

// RetryBatch creates a batch of the lines of an ended batch that did not succeed,
// with the same endpoint, settings and metadata plus metadata.retry_of, a Sluice
// extension. A batch still running is an *Error with StatusCode 409. idempotencyKey,
// when set, is sent as Idempotency-Key.
func (c *Client) RetryBatch(ctx context.Context, id string, lines RetryLines, idempotencyKey string) (*Batch, error) {
	in := struct {
		Lines RetryLines `json:"lines,omitempty"`
	}{lines}
	var h http.Header
	if idempotencyKey != "" {
		h = http.Header{"Idempotency-Key": {idempotencyKey}}
	}
	var out Batch
	if err := c.callJSON(ctx, "POST", "/batches/"+url.PathEscape(id)+"/retry", h, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResultsParams select the results BatchResults reads.
type ResultsParams struct {
	// Type is "output", "error", or "" for both: output lines, then error lines.
	Type string
	// Cursor is where to read on from: the cursor an earlier call returned, or ""
	// for the start.
	Cursor string
}

// BatchResults copies to w the result lines a batch has so far, whether it runs or
// has ended, a Sluice extension (GET .../batches/{id}/results). It returns the
// cursor to read on from, which a later call passes in ResultsParams.Cursor to get
// only the lines committed since, none twice.
func (c *Client) BatchResults(ctx context.Context, id string, p *ResultsParams, w io.Writer) (cursor string, n int64, err error) {
	q := url.Values{}
	if p != nil && p.Type != "" {
		q.Set("type", p.Type)
	}
	if p != nil && p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	resp, err := c.send(ctx, request{method: "GET", path: "/batches/" + url.PathEscape(id) + "/results", query: q})
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	n, err = io.Copy(w, resp.Body)
	if err != nil {
		return "", n, fmt.Errorf("results of %s: %w", id, err)
	}
	return resp.Header.Get("Sluice-Results-Cursor"), n, nil
}
