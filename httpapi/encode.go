package httpapi

import (
	"math"
	"time"

	"github.com/sluice-batch/sluice"
)

// fileJSON is a file on the wire.
type fileJSON struct {
	ID            string  `json:"id"`
	Object        string  `json:"object"`
	Bytes         int64   `json:"bytes"`
	CreatedAt     int64   `json:"created_at"`
	ExpiresAt     *int64  `json:"expires_at"`
	Filename      string  `json:"filename"`
	Purpose       string  `json:"purpose"`
	Status        string  `json:"status"`
	StatusDetails *string `json:"status_details"`
}

func encodeFile(f *sluice.File) fileJSON {
	return fileJSON{
		ID: f.ID, Object: "file", Bytes: f.Bytes, CreatedAt: f.CreatedAt.Unix(), ExpiresAt: sluice.UnixPtr(f.ExpiresAt),
		Filename: f.Filename, Purpose: string(f.Purpose), Status: string(f.Status), StatusDetails: nullable(f.StatusDetails),
	}
}

// batchJSON is a batch on the wire: every field present, null until reached.
type batchJSON struct {
	ID               string               `json:"id"`
	Object           string               `json:"object"`
	Endpoint         string               `json:"endpoint"`
	Errors           *batchErrorsJSON     `json:"errors"`
	InputFileID      *string              `json:"input_file_id"`
	CompletionWindow string               `json:"completion_window"`
	Status           string               `json:"status"`
	OutputFileID     *string              `json:"output_file_id"`
	ErrorFileID      *string              `json:"error_file_id"`
	CreatedAt        int64                `json:"created_at"`
	InProgressAt     *int64               `json:"in_progress_at"`
	ExpiresAt        *int64               `json:"expires_at"`
	FinalizingAt     *int64               `json:"finalizing_at"`
	CompletedAt      *int64               `json:"completed_at"`
	FailedAt         *int64               `json:"failed_at"`
	ExpiredAt        *int64               `json:"expired_at"`
	CancellingAt     *int64               `json:"cancelling_at"`
	CancelledAt      *int64               `json:"cancelled_at"`
	RequestCounts    sluice.RequestCounts `json:"request_counts"`
	Metadata         map[string]string    `json:"metadata"`
	Model            *string              `json:"model"`
	Usage            usageJSON            `json:"usage"`
	// Sluice's own: what the batch costs so far at its deployment's prices, and the
	// tokens it holds of its deployment's enqueued-token quota.
	Cost           *costJSON `json:"cost"`
	EnqueuedTokens int64     `json:"enqueued_tokens"`
	// Sluice's own: while the batch runs, its lines per second since it started and
	// when it should end at that pace (unix seconds); null otherwise or before any
	// line has finished.
	LinesPerSecond *float64 `json:"lines_per_second"`
	ETA            *int64   `json:"eta"`
	// Blob mode, as Azure OpenAI shows it: the input blob and the result blobs, ""
	// until the batch has ended; present on blob-mode batches only.
	InputBlob  *string `json:"input_blob,omitempty"`
	OutputBlob *string `json:"output_blob,omitempty"`
	ErrorBlob  *string `json:"error_blob,omitempty"`
}

// usageJSON is OpenAI's usage of a batch, and how many lines Sluice counted itself.
type usageJSON struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
	// EstimatedLines are lines whose upstream answer carried no usage, counted with
	// the deployment's tokenizer instead.
	EstimatedLines int64 `json:"estimated_lines"`
}

func encodeUsage(u sluice.Usage) usageJSON {
	out := usageJSON{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		TotalTokens: u.InputTokens + u.OutputTokens, EstimatedLines: u.EstimatedLines}
	out.InputTokensDetails.CachedTokens = u.CachedTokens
	out.OutputTokensDetails.ReasoningTokens = u.ReasoningTokens
	return out
}

// costJSON is what a batch's usage costs.
type costJSON struct {
	Currency string  `json:"currency"`
	Amount   float64 `json:"amount"`
	Discount float64 `json:"discount"` // the batch discount taken off, e.g. 0.5
}

type batchErrorsJSON struct {
	Object string           `json:"object"`
	Data   []batchErrorJSON `json:"data"`
}

type batchErrorJSON struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Param   *string `json:"param"`
	Line    *int    `json:"line"`
}

func (s *Server) encodeBatch(b *sluice.Batch) batchJSON {
	out := batchJSON{
		ID: b.ID, Object: "batch", Endpoint: b.Endpoint, InputFileID: nullable(b.InputFileID),
		CompletionWindow: b.CompletionWindow, Status: string(b.Status), CreatedAt: b.CreatedAt.Unix(),
		InProgressAt: sluice.UnixPtr(b.InProgressAt), ExpiresAt: sluice.UnixPtr(b.ExpiresAt),
		FinalizingAt: sluice.UnixPtr(b.FinalizingAt), CompletedAt: sluice.UnixPtr(b.CompletedAt),
		FailedAt: sluice.UnixPtr(b.FailedAt), ExpiredAt: sluice.UnixPtr(b.ExpiredAt),
		CancellingAt: sluice.UnixPtr(b.CancellingAt), CancelledAt: sluice.UnixPtr(b.CancelledAt),
		RequestCounts: b.RequestCounts, Metadata: b.Metadata, Model: nullable(b.Model), Usage: encodeUsage(b.Usage),
	}
	if !b.Status.Terminal() {
		out.EnqueuedTokens = b.InputTokens
	}
	out.LinesPerSecond, out.ETA = pace(b, time.Now())
	if b.InputBlob != "" {
		out.InputBlob, out.OutputBlob, out.ErrorBlob = &b.InputBlob, &b.OutputBlob, &b.ErrorBlob
		out.InputFileID = nil // an internal file: the batch reads the blob
	}
	if d, ok := s.deployments[b.Deployment]; ok && (d.Price.Input > 0 || d.Price.Output > 0) {
		out.Cost = &costJSON{Currency: d.Price.Currency, Amount: d.Price.Cost(b.Usage), Discount: d.Price.BatchDiscount}
	}
	// The result files exist once the batch has ended; before that their IDs are
	// reserved but a GET on them would find nothing.
	if b.Status.Terminal() {
		out.OutputFileID, out.ErrorFileID = nullable(b.OutputFileID), nullable(b.ErrorFileID)
	}
	out.Errors = encodeErrors(b.Errors)
	return out
}

// encodeErrors returns a batch's errors list, nil when there are none.
func encodeErrors(errs []sluice.BatchError) *batchErrorsJSON {
	if len(errs) == 0 {
		return nil
	}
	out := &batchErrorsJSON{Object: "list", Data: make([]batchErrorJSON, len(errs))}
	for i, e := range errs {
		d := batchErrorJSON{Code: e.Code, Message: e.Message, Param: nullable(e.Param)}
		if e.Line > 0 {
			d.Line = &e.Line
		}
		out.Data[i] = d
	}
	return out
}

// listJSON is a page of a list.
type listJSON[T any] struct {
	Object  string  `json:"object"`
	Data    []T     `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

func newList[T any](data []T, id func(T) string, more bool) listJSON[T] {
	l := listJSON[T]{Object: "list", Data: data, HasMore: more}
	if l.Data == nil {
		l.Data = []T{}
	}
	if len(data) > 0 {
		l.FirstID, l.LastID = nullable(id(data[0])), nullable(id(data[len(data)-1]))
	}
	return l
}

// pace returns a running batch's finished lines per second since it went in progress,
// and when it would end at that pace.
func pace(b *sluice.Batch, now time.Time) (*float64, *int64) {
	c := b.RequestCounts
	done := c.Completed + c.Failed
	if b.Status != sluice.StatusInProgress || b.InProgressAt == nil || done == 0 {
		return nil, nil
	}
	secs := now.Sub(*b.InProgressAt).Seconds()
	if secs < 1 {
		secs = 1 // in_progress_at has whole seconds
	}
	rate := float64(done) / secs
	eta := now.Add(time.Duration(float64(c.Total-done) / rate * float64(time.Second))).Unix()
	rate = math.Round(rate*100) / 100
	return &rate, &eta
}
