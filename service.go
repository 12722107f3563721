package sluice

import (
	"context"
	"io"
	"time"
)

// Service is what the API asks of the engine beyond reading the Store: the operations
// that store bytes, scan them, or move a batch through its states.
type Service interface {
	// UploadFile stores and scans an uploaded input file in one streaming pass. The file
	// is listed as pending while it arrives. Returns KindTooLarge over MaxFileBytes.
	UploadFile(ctx context.Context, up FileUpload) (*File, error)
	// DeleteFile removes a file and its bytes. Returns KindNotFound, or KindConflict
	// while a running batch reads it.
	DeleteFile(ctx context.Context, id string) error
	// ImportFile creates a file of project from the bytes of a blob (Azure's
	// Files_Import), stored and scanned as an upload is.
	ImportFile(ctx context.Context, url, filename, project string) (*File, error)
	// FileContent opens the bytes of a file. Returns KindNotFound.
	FileContent(ctx context.Context, id string) (*File, io.ReadCloser, error)
	// CreateBatch admits a batch; it starts in StatusValidating. Returns KindInvalid
	// with Param set for a bad parameter, and KindInvalid with code
	// token_limit_exceeded when the batch's tokens do not fit its deployment's quota.
	// The Admission is set whenever the input names a deployment, refusals included.
	// A dry run creates nothing and returns a nil Batch.
	CreateBatch(ctx context.Context, c BatchCreate) (*Batch, *Admission, error)
	// Deployments returns the batch deployments and their quota now, by name.
	Deployments(ctx context.Context) ([]*DeploymentStatus, error)
	// CancelBatch moves a running batch to StatusCancelling. Returns KindNotFound, or
	// KindConflict when the batch already ended.
	CancelBatch(ctx context.Context, id string) (*Batch, error)

	// BatchResults opens a batch's output lines (succeeded) or error lines from byte
	// offset, as many as are committed now, whether the batch runs or has ended, and
	// returns the offset after them: the cursor to read on from.
	BatchResults(ctx context.Context, id string, succeeded bool, offset int64) (io.ReadCloser, int64, error)
	// RetryBatch creates a batch of the lines of an ended batch that did not succeed
	// (which says which: failed, unfinished, or "" for both). Returns KindConflict
	// while the batch runs.
	RetryBatch(ctx context.Context, id string, which RetryLines) (*Batch, *Admission, error)

	// CreateUpload starts an upload in parts (the Uploads API). Returns KindInvalid
	// with Param set for a bad parameter.
	CreateUpload(ctx context.Context, c UploadCreate) (*Upload, error)
	// AddUploadPart stores a part of a pending upload. Returns KindNotFound, KindConflict
	// when the upload is not pending, KindTooLarge over MaxPartBytes, and KindInvalid
	// when the parts would outgrow the upload.
	AddUploadPart(ctx context.Context, uploadID string, body io.Reader) (*UploadPart, error)
	// CompleteUpload makes a file of the parts, in the order given, checked against
	// md5 when it is set (hex or base64), scanned as an upload is. Returns KindInvalid
	// when the parts are not the upload's, not all there, or do not add up to its size.
	CompleteUpload(ctx context.Context, uploadID string, partIDs []string, md5 string) (*Upload, *File, error)
	// CancelUpload cancels a pending upload and deletes its parts.
	CancelUpload(ctx context.Context, uploadID string) (*Upload, error)
}

// RetryLines says which lines of an ended batch a retry takes.
type RetryLines string

const (
	RetryFailed     RetryLines = "failed"     // those in its error file
	RetryUnfinished RetryLines = "unfinished" // those with no result (cancelled or expired)
)

// UploadCreate holds the parameters of an upload create call.
type UploadCreate struct {
	Project  string // the project that will own the upload and its file
	Filename string
	Bytes    int64
	MimeType string
	// TTL is how long the upload may stay pending; 0 means UploadTTLOpenAI.
	TTL time.Duration
	// FileExpiresAfter is the lifetime of the file it becomes, in seconds; 0: none.
	FileExpiresAfter int64
}

// FileUpload is an upload as the API received it.
type FileUpload struct {
	Project  string // the project that will own the file
	Filename string
	Purpose  Purpose
	Body     io.Reader
}

// BatchCreate holds the parameters of a batch create call.
type BatchCreate struct {
	// Project will own the batch and its result files; its input file must be the
	// project's too.
	Project            string
	InputFileID        string
	Endpoint           string
	CompletionWindow   string
	Metadata           map[string]string
	OutputExpiresAfter int64 // seconds; 0 means none
	// Deployment, when set, is the deployment the create was addressed to: the input's
	// lines must name it.
	Deployment string
	// InputBlob, OutputFolder and OutputDelimiter make a blob-mode batch (Azure
	// OpenAI): its input is read from the blob, its results written to the folder.
	InputBlob       string
	OutputFolder    string
	OutputDelimiter string
	// WindowPolicy is the policy for a deployment that sets none: the route family's
	// (expire on the OpenAI routes, continue on Azure's). "" means continue.
	WindowPolicy WindowPolicy
	// DryRun checks the input and the quota and answers whether the batch would be
	// admitted now, without creating it.
	DryRun bool
}

// Admission is what a batch create found of its deployment's enqueued-token quota.
type Admission struct {
	Deployment string
	Tokens     int64 // the batch's input tokens
	Enqueued   int64 // tokens the deployment's batches hold, after the call
	Limit      int64 // the deployment's enqueued-token limit; 0 means none
	// Allowed is what the batch could make the deployment hold: Limit, or more while
	// dynamic quota lends idle capacity; 0 means no limit.
	Allowed  int64
	Admitted bool // the batch was created, or, for a dry run, would be now
	// Project is the batch's project and what its batches that are not terminal hold
	// (after the call), beside its limits (0: none).
	Project           string
	ProjectTokens     int64
	ProjectTokenLimit int64
	ProjectBatches    int
	ProjectBatchLimit int
	// Problems are what validation would fail the batch with; a dry run reports them.
	Problems []BatchError
}

// DeploymentStatus is a batch deployment and the state of its quota.
type DeploymentStatus struct {
	Deployment
	Enqueued int64    // tokens its batches that are not terminal hold
	Allowed  int64    // what a new batch may make it hold now; 0 means no limit
	Idle     bool     // its upstreams have idle capacity
	Batches  []*Batch // the batches holding its tokens, newest first
}

// FileKey is the Bucket key of a file's bytes.
func FileKey(id string) string { return "files/" + id }

// IndexKey is the Bucket key of the line index of an input file.
func IndexKey(id string) string { return "index/" + id }

// UnixPtr returns t as unix seconds, or nil.
func UnixPtr(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	u := t.Unix()
	return &u
}
