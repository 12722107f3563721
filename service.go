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
	// FileContent opens the bytes of a file. Returns KindNotFound.
	FileContent(ctx context.Context, id string) (*File, io.ReadCloser, error)
	// CreateBatch admits a batch; it starts in StatusValidating. Returns KindInvalid
	// with Param set for a bad parameter.
	CreateBatch(ctx context.Context, c BatchCreate) (*Batch, error)
	// CancelBatch moves a running batch to StatusCancelling. Returns KindNotFound, or
	// KindConflict when the batch already ended.
	CancelBatch(ctx context.Context, id string) (*Batch, error)
}

// FileUpload is an upload as the API received it.
type FileUpload struct {
	Filename string
	Purpose  Purpose
	Body     io.Reader
}

// BatchCreate holds the parameters of a batch create call.
type BatchCreate struct {
	InputFileID        string
	Endpoint           string
	CompletionWindow   string
	Metadata           map[string]string
	OutputExpiresAfter int64 // seconds; 0 means none
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
