package sluice

import "time"

// Limits of the Batch API contract (SPEC.md section 5).
const (
	// MaxFileBytes is the largest input file accepted, 200 MB.
	MaxFileBytes = 200 * 1000 * 1000
	// MaxRequests is the most request lines one batch may hold.
	MaxRequests = 100_000
	// MaxBatchErrors is the most validation errors reported on one batch.
	MaxBatchErrors = 100
	// CompletionWindow is the only completion window accepted.
	CompletionWindow = "24h"
	// MinFileExpiry and MaxFileExpiry bound expires_after.seconds, 14 to 30 days, as
	// the Azure product does.
	MinFileExpiry = 1209600
	MaxFileExpiry = 2592000
	// MinFileExpiryOpenAI is the shortest expires_after.seconds the OpenAI API takes,
	// an hour; its batch input files expire after MaxFileExpiry unless told otherwise.
	MinFileExpiryOpenAI = 3600
)

// Purpose says what a file is for. Values are the wire strings.
type Purpose string

const (
	// PurposeBatch is an input file uploaded for a batch.
	PurposeBatch Purpose = "batch"
	// PurposeBatchOutput is an output or error file written by a batch.
	PurposeBatchOutput Purpose = "batch_output"
)

// FileStatus is the processing state of a file. Values are the wire strings.
type FileStatus string

const (
	// FileStatusPending means the upload is still arriving or being scanned.
	FileStatusPending FileStatus = "pending"
	// FileStatusProcessed means the file was stored and scanned.
	FileStatusProcessed FileStatus = "processed"
	// FileStatusError means the file could not be stored or scanned; see StatusDetails.
	FileStatusError FileStatus = "error"
)

// File is a stored file: an uploaded input or a batch's output or error file.
type File struct {
	ID            string
	Project       string // the project that owns it; "" is DefaultProject
	Bytes         int64
	CreatedAt     time.Time
	ExpiresAt     *time.Time
	Filename      string
	Purpose       Purpose
	Status        FileStatus
	StatusDetails string

	// Scan is what the upload scan learned of an input file; nil for output files.
	Scan *FileScan

	// Source, when set, is the URL of the blob that holds the file's bytes (the input
	// of a blob-mode batch): they are read from there, if the blob's ETag is still
	// SourceETag, and are not in the bucket. Such files are not listed.
	Source     string
	SourceETag string
}

// FileScan is what one streaming pass over an uploaded input file records, so that a
// batch created from it needs no second read to validate.
type FileScan struct {
	Requests  int    // request lines (blank lines are not requests)
	FirstLine int    // line number of the first request line
	URL       string // url of the first request line
	Model     string // body.model of the first request line
	// URLLine and ModelLine are the lines URL and Model come from, which the other
	// lines were compared with; 0 when unknown.
	URLLine   int
	ModelLine int
	Problems  []BatchError // line-level problems, in line order, at most MaxBatchErrors
	Indexed   bool         // an index of every request line was stored (no problems)
	// IndexBytes is the size of the stored line index. 0 with Indexed set means an index
	// in the format of an earlier version, which has no chunk directory.
	IndexBytes int64
	// Tokens is the input tokens of the request lines, counted with Encoding; the
	// index holds each line's count. Encoding "" means the tokens were not counted (a
	// file scanned by an earlier version, or with problems).
	Tokens   int64
	Encoding string
	// ImageLine is the first request line whose prompt holds an image; 0 when none
	// does, or when the file was scanned before images were looked for.
	ImageLine int
}

// Status is the state of a batch. Values are the wire strings.
type Status string

const (
	// StatusValidating means the input is being checked before work starts.
	StatusValidating Status = "validating"
	// StatusFailed means validation failed; Errors says why.
	StatusFailed Status = "failed"
	// StatusInProgress means requests are running.
	StatusInProgress Status = "in_progress"
	// StatusFinalizing means every request is done and the result files are being written.
	StatusFinalizing Status = "finalizing"
	// StatusCompleted means the result files are ready.
	StatusCompleted Status = "completed"
	// StatusExpired means the batch could not finish inside its window.
	StatusExpired Status = "expired"
	// StatusCancelling means a cancel was asked for and in-flight requests are ending.
	StatusCancelling Status = "cancelling"
	// StatusCancelled means the batch was cancelled; finished work is in its result files.
	StatusCancelled Status = "cancelled"
)

// Terminal reports whether no further transition can happen from s.
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

// BatchError is one entry of a batch's errors list. Line is 1-based; 0 means no line.
type BatchError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
	Line    int    `json:"line,omitempty"`
}

// Batch is a batch job.
type Batch struct {
	ID               string
	Project          string // the project that owns it; "" is DefaultProject
	Endpoint         string
	InputFileID      string
	CompletionWindow string
	Status           Status
	Deployment       string // the deployment every line names; "" when the input names none
	Model            string // the model the deployment serves, as the Batch object shows it
	OutputFileID     string
	ErrorFileID      string
	Errors           []BatchError
	Metadata         map[string]string
	RequestCounts    RequestCounts

	// InputTokens is what the batch holds of its deployment's enqueued-token quota
	// while it is not terminal: the input tokens of its lines.
	InputTokens int64
	// Usage sums the usage of the finished lines, each counted once.
	Usage Usage

	// OutputExpiresAfter is the lifetime of the result files in seconds; 0 means none.
	OutputExpiresAfter int64
	// Blob mode (Azure OpenAI): the input is the blob InputBlob, and the results go to
	// OutputFolder: OutputBlob and ErrorBlob, set when the batch ends.
	InputBlob       string
	OutputFolder    string
	OutputDelimiter string
	OutputBlob      string
	ErrorBlob       string
	// WindowPolicy is what happens when the completion window ends with lines left:
	// WindowExpire ends the batch as expired; WindowContinue (or "") runs on.
	WindowPolicy WindowPolicy

	CreatedAt    time.Time
	InProgressAt *time.Time
	ExpiresAt    *time.Time
	FinalizingAt *time.Time
	CompletedAt  *time.Time
	FailedAt     *time.Time
	ExpiredAt    *time.Time
	CancellingAt *time.Time
	CancelledAt  *time.Time
}

// WindowPolicy says what happens to a batch whose completion window ends before its
// lines do.
type WindowPolicy string

const (
	// WindowContinue runs the batch on until it is done or cancelled, as the Azure
	// OpenAI product does.
	WindowContinue WindowPolicy = "continue"
	// WindowExpire ends the batch as expired, as the OpenAI API does: the finished
	// lines in its output and error files, the rest in the error file with the code
	// batch_expired.
	WindowExpire WindowPolicy = "expire"
)

// TokenBounds are a default and a ceiling for the tokens a line may generate.
type TokenBounds struct {
	Default int
	Max     int
}

// Deployment is a named batch deployment: what a line's body.model names.
type Deployment struct {
	Name  string
	Type  string // "global" or "datazone"
	Zone  string // the data zone of a datazone deployment, e.g. "us" or "eu"
	Model string // the model it serves, shown on its batches; "" means Name
	// Encoding is the tokenizer encoding its input is counted with, e.g. "o200k_base".
	Encoding string
	// Endpoints are the endpoints it serves, in normal form ("/v1/chat/completions").
	Endpoints []string
	// InputFormats are the kinds of input its model accepts: "text", and "image" when
	// it takes images.
	InputFormats []string
	// MaxTokens bounds what its lines may generate: Default is set on a line that names
	// no limit, Max caps one that names more (0: neither). A line with no limit can
	// generate until the model's context runs out.
	MaxTokens TokenBounds
	// WindowPolicy is what its batches do when their window ends with lines left; ""
	// lets the route a batch was created on decide (BatchCreate.WindowPolicy).
	WindowPolicy WindowPolicy
	Quota        Quota
	Price        Price
	Upstreams    []Upstream
}

// ModelName returns the model the deployment serves.
func (d *Deployment) ModelName() string {
	if d.Model != "" {
		return d.Model
	}
	return d.Name
}

// Serves reports whether the deployment serves endpoint, given in normal form.
func (d *Deployment) Serves(endpoint string) bool {
	for _, e := range d.Endpoints {
		if e == endpoint {
			return true
		}
	}
	return false
}

// Endpoints are the endpoints a batch may name, in normal form: those of OpenAI's Batch
// API, in the order of its documentation.
var Endpoints = []string{"/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
	"/v1/moderations", "/v1/images/generations", "/v1/images/edits", "/v1/videos"}

// Quota is a deployment's budget of enqueued tokens: the input tokens of its batches
// that are not terminal.
type Quota struct {
	// EnqueuedTokenLimit is the most tokens its batches may hold; 0 means no limit.
	EnqueuedTokenLimit int64
	// Dynamic lets the deployment go past its limit, by DynamicShare of it, while its
	// upstreams have idle capacity. Off, it never holds more than the limit.
	Dynamic      bool
	DynamicShare float64
}

// Limit returns the most tokens a batch may make the deployment hold now, given
// whether its upstreams are idle; 0 means no limit.
func (q Quota) Limit(idle bool) int64 {
	if q.EnqueuedTokenLimit <= 0 || !q.Dynamic || !idle || q.DynamicShare <= 0 {
		return q.EnqueuedTokenLimit
	}
	return q.EnqueuedTokenLimit + int64(float64(q.EnqueuedTokenLimit)*q.DynamicShare)
}

// Price is what a deployment's tokens cost, per million, before the batch discount.
type Price struct {
	Currency    string
	Input       float64
	CachedInput float64 // for input tokens read from the prompt cache
	Output      float64
	// BatchDiscount is the share taken off for batch work, 0.5 for half price.
	BatchDiscount float64
}

// Cost returns what usage u costs at p, the discount taken off.
func (p Price) Cost(u Usage) float64 {
	cached := min(u.CachedTokens, u.InputTokens)
	full := float64(u.InputTokens-cached)*p.Input + float64(cached)*p.CachedInput + float64(u.OutputTokens)*p.Output
	return full / 1e6 * (1 - p.BatchDiscount)
}

// Usage counts tokens the way OpenAI's Batch object reports them.
type Usage struct {
	InputTokens     int64
	CachedTokens    int64 // of InputTokens, read from the upstream's prompt cache
	OutputTokens    int64
	ReasoningTokens int64 // of OutputTokens
	// EstimatedLines counts the lines whose usage Sluice counted with its tokenizer,
	// because the upstream's response carried none.
	EstimatedLines int64
}

// Add adds v to u.
func (u *Usage) Add(v Usage) {
	u.InputTokens += v.InputTokens
	u.CachedTokens += v.CachedTokens
	u.OutputTokens += v.OutputTokens
	u.ReasoningTokens += v.ReasoningTokens
	u.EstimatedLines += v.EstimatedLines
}

// Upstream is one OpenAI-compatible inference server serving a deployment.
type Upstream struct {
	BaseURL        string // e.g. http://127.0.0.1:8000/v1; requests go to BaseURL + "/chat/completions"
	Model          string // the model name sent upstream; "" sends the deployment name
	APIKey         string // sent as Authorization: Bearer; "" sends none
	MaxConcurrency int    // requests in flight at most
	// MinConcurrency, when set below MaxConcurrency, makes the limit adapt between
	// the two: it grows while the upstream keeps up and shrinks on 429, 503 and
	// timeouts. Unset, the limit is MaxConcurrency.
	MinConcurrency int
	// MaxTokensOnly says the server bounds an answer by max_tokens alone and ignores
	// max_completion_tokens (Ollama does): a chat line that names only
	// max_completion_tokens is sent with max_tokens at the same value too. It is not the
	// default because OpenAI's reasoning models refuse max_tokens.
	MaxTokensOnly bool
	// LatencyTolerance is how far latency may rise over its floor, as a ratio, before
	// the adaptive limit reads it as congestion; 0 is the default.
	LatencyTolerance float64
	// Load, when set, reads the server's own count of waiting requests, which the
	// adaptive limit follows (then MinConcurrency defaults to 1).
	Load *UpstreamLoad
}

// UpstreamLoad says where and how to read an upstream's load from its metrics.
type UpstreamLoad struct {
	Metrics  string        // the server kind, which names the gauges: "vllm" or "sglang"
	URL      string        // the metrics endpoint; "" is /metrics at the root of BaseURL's host
	Interval time.Duration // between reads; 0 is the default
	// MaxWaiting is how many requests may wait at the server before the server counts
	// as full; 0: any.
	MaxWaiting int
	// Headroom is how many of the server's slots the batch leaves free for others.
	Headroom int
	// MaxCacheUsage, from 0 to 1, counts the server as full when its KV cache is used
	// this much; 0: the cache is not read.
	MaxCacheUsage float64
}

// ChunkLines is how many request lines one chunk holds. Lines are leased a chunk at a
// time: one row covers them all, so claiming and committing cost nothing per line.
const ChunkLines = 256

// Bitmap marks which lines of a chunk have a result: bit i (byte i/8, bit i%8) stands for
// the chunk's line i.
type Bitmap [ChunkLines / 8]byte

// Has reports whether bit i is set.
func (b *Bitmap) Has(i int) bool { return b[i>>3]&(1<<(i&7)) != 0 }

// Set sets bit i.
func (b *Bitmap) Set(i int) { b[i>>3] |= 1 << (i & 7) }

// Count returns how many bits are set.
func (b *Bitmap) Count() int {
	n := 0
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}

// Chunk is a run of up to ChunkLines request lines of a batch: the unit that is leased,
// and whose done bits record which lines have a result. A chunk's lines are found
// through the input file's line index, whose block for the chunk is at IndexOffset.
type Chunk struct {
	BatchID string
	Number  int    // 0-based; the chunk holds the batch's requests Number*ChunkLines onwards
	Lines   int    // request lines in the chunk, 1 to ChunkLines
	Done    Bitmap // lines that have a result
	// IndexOffset and IndexLength locate the chunk's block in the line index.
	IndexOffset int64
	IndexLength int64
}

// ResultRef is a finished line whose result line is stored in a segment: where the
// bytes are, and which line of which chunk they answer.
type ResultRef struct {
	BatchID   string
	Chunk     int  // chunk number
	Index     int  // the line's place in its chunk, 0 to ChunkLines-1
	Succeeded bool // output file (true) or error file (false)
	Segment   string
	Offset    int64 // where the result line starts in the segment
	Length    int64 // bytes of the result line, its newline included
	Usage     Usage // tokens the line used, added to the batch's when the result counts
}

// Extent is a run of result lines stored back to back in one segment, recorded by one
// commit. A batch's output (or error) file is its extents concatenated in commit order.
type Extent struct {
	Segment string
	Offset  int64
	Length  int64
	Lines   int
}

// Part is a byte range of a stored object, a piece of what Bucket.Compose assembles.
type Part struct {
	Key    string
	Offset int64
	Length int64
}
