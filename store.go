package sluice

import (
	"context"
	"io"
	"time"
)

// Store keeps files, batches and the request lines of batches. It is the one point
// where replicas coordinate: claims on lines are leases recorded here.
//
// Methods return KindNotFound for a missing object and KindConflict for a state that
// does not allow the change; anything else is KindInternal.
type Store interface {
	// CreateFile inserts f. Returns KindConflict if the ID exists.
	CreateFile(ctx context.Context, f *File) error
	// FindFileByID returns the file. Returns KindNotFound if it does not exist.
	FindFileByID(ctx context.Context, id string) (*File, error)
	// FindFiles returns the files matching filter, and whether more follow.
	FindFiles(ctx context.Context, filter FileFilter) ([]*File, bool, error)
	// CountFiles returns how many files match filter; its After, Limit and Asc are
	// ignored.
	CountFiles(ctx context.Context, filter FileFilter) (int, error)
	// UpdateFile changes the set fields of a file. Returns KindNotFound.
	UpdateFile(ctx context.Context, id string, upd FileUpdate) (*File, error)
	// DeleteFile removes the file row. Returns KindNotFound, or KindConflict while a
	// batch that is not terminal reads it.
	DeleteFile(ctx context.Context, id string) error

	// CreateBatch inserts b. Returns KindConflict if the ID exists.
	CreateBatch(ctx context.Context, b *Batch) error
	// AdmitBatch inserts b, as CreateBatch does, if it fits its deployment's quota and
	// its project's limits: the tokens that b.Deployment's batches that are not terminal
	// hold (their InputTokens), plus b.InputTokens, are at most lim.Deployment; the
	// tokens b.Project's batches that are not terminal hold, plus b's, at most
	// lim.Project.EnqueuedTokens; and those batches, plus b, at most
	// lim.Project.Batches (each 0: no limit). Deciding and inserting are one step:
	// concurrent admissions never pass a limit together. The result says what the
	// deployment and the project hold afterwards, with b when it was admitted.
	AdmitBatch(ctx context.Context, b *Batch, lim AdmitLimits) (AdmitResult, error)
	// EnqueuedTokens returns, for every deployment that has a batch that is not
	// terminal, the input tokens those batches hold.
	EnqueuedTokens(ctx context.Context) (map[string]int64, error)
	// FindBatchByID returns the batch. Returns KindNotFound.
	FindBatchByID(ctx context.Context, id string) (*Batch, error)
	// FindBatches returns the batches matching filter, and whether more follow.
	FindBatches(ctx context.Context, filter BatchFilter) ([]*Batch, bool, error)
	// UpdateBatch changes the set fields of a batch. When upd.IfStatus is set and the
	// batch is in none of those states it returns KindConflict and changes nothing.
	UpdateBatch(ctx context.Context, id string, upd BatchUpdate) (*Batch, error)
	// FinishBatch creates the result files and sets the batch's final status and
	// timestamps in one transaction, so both files exist exactly when the batch says so.
	FinishBatch(ctx context.Context, id string, files []*File, upd BatchUpdate) (*Batch, error)

	// AddChunks inserts the chunks of a batch, with no line done (Done is ignored).
	// Chunks that exist are left as they are, so a validation cut off by a crash can run
	// again.
	AddChunks(ctx context.Context, batchID string, chunks []Chunk) error
	// ClaimChunks leases to owner, until the given time, up to n (at least one) of the
	// lowest claimable chunks of a batch: chunks with a line that has no result, not
	// leased or leased with a lease that ran out. It returns them with their done bits,
	// in chunk order, or nothing when no chunk is claimable.
	ClaimChunks(ctx context.Context, batchID, owner string, n int, until time.Time) ([]Chunk, error)
	// ExtendLeases moves the lease of every chunk owner holds to until.
	ExtendLeases(ctx context.Context, owner string, until time.Time) error
	// ReleaseChunks makes the given chunks of a batch that owner holds claimable again
	// at once.
	ReleaseChunks(ctx context.Context, owner, batchID string, chunks []int) error
	// AddSegment records that the result segment key of a batch exists (or is about to),
	// so that it is deleted with the batch's work even if no result in it ever counts.
	// Adding it again is not an error.
	AddSegment(ctx context.Context, batchID, key string) error
	// CommitResults records, in one transaction, the results whose bytes are stored in
	// segments: it sets each line's done bit, adds the lines to their batch's request
	// counts, and records extents for their bytes, runs of refs back to back in a
	// segment becoming one extent, in the order given, and adds their usage to their
	// batch's. A result for a line that has one
	// already (in the store, or earlier in refs), or whose chunk owner does not hold, is
	// dropped: not counted and not in any extent. A chunk whose every line has a result
	// is done and no longer leased. It returns how many results counted.
	CommitResults(ctx context.Context, owner string, refs []ResultRef) (int, error)
	// CountLeased returns how many chunks of the batch are leased with a lease that has
	// not run out at now.
	CountLeased(ctx context.Context, batchID string, now time.Time) (int, error)
	// EachExtent calls fn with every extent of the batch's succeeded (or failed)
	// results, in the order they were committed.
	EachExtent(ctx context.Context, batchID string, succeeded bool, fn func(Extent) error) error
	// FindSegments returns the keys of the batch's result segments.
	FindSegments(ctx context.Context, batchID string) ([]string, error)
	// DeleteWork removes the chunks, extents and segment records of a batch, once its
	// result files hold everything and its segments are deleted. Deleting what is not
	// there is not an error.
	DeleteWork(ctx context.Context, batchID string) error
	// FindLeftoverWork returns up to limit batches that are terminal and still have
	// chunks, extents or segments: work a crash left between finishing a batch and
	// deleting its work.
	FindLeftoverWork(ctx context.Context, limit int) ([]string, error)

	// CreateUpload inserts u. Returns KindConflict if the ID exists.
	CreateUpload(ctx context.Context, u *Upload) error
	// FindUploadByID returns the upload. Returns KindNotFound.
	FindUploadByID(ctx context.Context, id string) (*Upload, error)
	// UpdateUpload changes the set fields of an upload. When upd.IfStatus is set and
	// the upload is not in that state it returns KindConflict and changes nothing.
	UpdateUpload(ctx context.Context, id string, upd UploadUpdate) (*Upload, error)
	// FindUploads returns up to limit uploads whose expires_at is at or before t,
	// oldest first: those the sweep expires and deletes.
	FindUploads(ctx context.Context, expiredBy time.Time, limit int) ([]*Upload, error)
	// DeleteUpload removes an upload and its parts' rows. Deleting what is not there
	// is not an error.
	DeleteUpload(ctx context.Context, id string) error
	// AddUploadPart records a part of a pending upload before its bytes are stored
	// (p.Bytes is ignored: the part is recorded as arriving), so that the part's
	// object is deleted with the upload whatever happens. Returns KindNotFound for a
	// missing upload, KindConflict when it is not pending.
	AddUploadPart(ctx context.Context, p *UploadPart) error
	// FinishUploadPart sets the size of an arriving part once its bytes are stored,
	// if the upload is still pending and its finished parts, with this one, hold at
	// most the upload's Bytes. Returns KindConflict otherwise, KindNotFound for a
	// missing part.
	FinishUploadPart(ctx context.Context, uploadID, partID string, bytes int64) error
	// FindUploadParts returns the parts of an upload, arriving ones included, in the
	// order they were added.
	FindUploadParts(ctx context.Context, uploadID string) ([]*UploadPart, error)

	// TryLease takes or extends the lease called name for owner until the given time:
	// it succeeds when no one holds it, owner does, or the holder's lease ran out (by
	// the store's clock). Replicas use it so that one of them at a time runs a sweep or
	// a batch's step.
	TryLease(ctx context.Context, name, owner string, until time.Time) (bool, error)
	// ReleaseLease gives up the lease called name if owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error

	// StartIdempotent records that the first request with r.Key begins (r.Status 0),
	// unless a record of that key created after notBefore exists: then it returns that
	// record and false, and changes nothing. An older record is replaced.
	StartIdempotent(ctx context.Context, r *IdempotentRecord, notBefore time.Time) (*IdempotentRecord, bool, error)
	// FinishIdempotent stores the answer of the request that started r.Key.
	FinishIdempotent(ctx context.Context, r *IdempotentRecord) error
	// DeleteIdempotent removes the record of key, so that a retry runs again.
	DeleteIdempotent(ctx context.Context, key string) error
	// DeleteIdempotentBefore removes the records created before t.
	DeleteIdempotentBefore(ctx context.Context, t time.Time) error

	// Close releases the store's resources.
	Close() error
}

// IdempotentRecord is the first answer to a request with an Idempotency-Key, which
// repeats of the request get instead of running again.
type IdempotentRecord struct {
	Key         string // the route and the client's key
	Fingerprint string // what the request asked, to refuse a key reused for another request
	Status      int    // the answer's HTTP status; 0 while the first request runs
	Header      map[string]string
	Body        []byte
	CreatedAt   time.Time
}

// FileFilter selects files. Zero fields select everything.
type FileFilter struct {
	Project string // files of this project; "" for every project's
	// Sources includes the files whose bytes are in a blob (File.Source); they are
	// left out otherwise.
	Sources bool
	Purpose Purpose
	Status  FileStatus
	// ExpiredBy selects files whose expires_at is at or before this time.
	ExpiredBy *time.Time
	// Expiring, when set, selects the files that have an expires_at (true) or those
	// that have none (false).
	Expiring *bool
	After    string // ID cursor: files that come after this one in Order
	Limit    int
	Asc      bool // oldest first; the default is newest first
}

// AdmitLimits are the limits AdmitBatch holds a batch to.
type AdmitLimits struct {
	Deployment int64 // enqueued tokens of the batch's deployment; 0: none
	Project    ProjectLimits
}

// Fits reports whether a batch of tokens fits lim beside what r says is held.
func (lim AdmitLimits) Fits(r AdmitResult, tokens int64) bool {
	return (lim.Deployment <= 0 || r.Held+tokens <= lim.Deployment) &&
		(lim.Project.EnqueuedTokens <= 0 || r.ProjectTokens+tokens <= lim.Project.EnqueuedTokens) &&
		(lim.Project.Batches <= 0 || r.ProjectBatches+1 <= lim.Project.Batches)
}

// AdmitResult is what AdmitBatch found, after the call.
type AdmitResult struct {
	Admitted       bool
	Held           int64 // enqueued tokens of the batch's deployment
	ProjectTokens  int64 // enqueued tokens of the batch's project
	ProjectBatches int   // batches of the batch's project that are not terminal
}

// FileUpdate changes a file. Nil fields are left as they are.
type FileUpdate struct {
	Bytes         *int64
	Filename      *string
	Purpose       *Purpose
	Status        *FileStatus
	StatusDetails *string
	ExpiresAt     *time.Time
	Scan          *FileScan
}

// BatchFilter selects batches. Zero fields select everything.
type BatchFilter struct {
	Project    string   // batches of this project; "" for every project's
	Status     []Status // any of these
	Deployment string   // batches of this deployment
	// CreatedFrom and CreatedTo bound created_at, in unix seconds, both inclusive.
	CreatedFrom *int64
	CreatedTo   *int64
	After       string // ID cursor: batches that come after this one in the order
	Limit       int
	Asc         bool // oldest first; the default is newest first
}

// BatchUpdate changes a batch. Nil fields are left as they are.
type BatchUpdate struct {
	IfStatus []Status // change only from one of these states

	Status       *Status
	Deployment   *string
	OutputFileID *string
	ErrorFileID  *string
	OutputBlob   *string
	ErrorBlob    *string
	Errors       []BatchError // set when not nil
	Total        *int

	InProgressAt *time.Time
	FinalizingAt *time.Time
	CompletedAt  *time.Time
	FailedAt     *time.Time
	ExpiredAt    *time.Time
	CancellingAt *time.Time
	CancelledAt  *time.Time
}

// Bucket stores the bytes of files under keys. Put and Compose are atomic: a key holds
// either its old bytes or all of the new ones, never a part. Append grows an object in
// place, for result segments, which only their one writer reads while they grow.
//
// Methods return KindNotFound for a missing key.
type Bucket interface {
	// Put stores everything r yields under key and returns how many bytes it stored.
	// If r fails, nothing is stored and the error is returned.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Get opens the bytes under key.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes under key from offset.
	GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// Append writes p at offset of the object under key, which must be its size (0
	// creates it), and makes the bytes durable before it returns. Returns KindConflict
	// when the object's size is not offset, or when the object can no longer grow (it
	// was composed into another); the caller then writes to a new key. After any other
	// error the object's size is unknown, and the caller writes to a new key too.
	Append(ctx context.Context, key string, offset int64, p []byte) error
	// Compose stores under key the concatenation of parts, in order, and returns its
	// size. The new object does not change when the parts' objects change or go later.
	// Returns KindNotFound when a part's object is missing, KindInvalid when a part
	// reaches past its object's end.
	Compose(ctx context.Context, key string, parts []Part) (int64, error)
}

// Ptr returns a pointer to v, for the optional fields of updates and filters.
func Ptr[T any](v T) *T { return &v }
