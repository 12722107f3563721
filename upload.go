package sluice

import "time"

// Limits of the Uploads API, as OpenAI documents them.
const (
	// MaxPartBytes is the largest part of an upload, 64 MB.
	MaxPartBytes = 64 << 20
	// UploadTTLOpenAI and UploadTTLAzure are how long an upload that is not completed
	// lives: an hour on the OpenAI API, two on Azure OpenAI.
	UploadTTLOpenAI = time.Hour
	UploadTTLAzure  = 2 * time.Hour
)

// UploadStatus is the state of an upload.
type UploadStatus string

// Upload statuses. An upload is pending until it is completed, cancelled, or reaches
// its expires_at, when it is expired.
const (
	UploadPending   UploadStatus = "pending"
	UploadCompleted UploadStatus = "completed"
	UploadCancelled UploadStatus = "cancelled"
	UploadExpired   UploadStatus = "expired"
)

// Upload is a file sent in parts (the Uploads API): parts are added, then the upload
// is completed with their order and becomes a file, scanned as a direct upload is.
type Upload struct {
	ID        string
	Project   string // the project that owns it; "" is DefaultProject
	CreatedAt time.Time
	ExpiresAt time.Time // a pending upload expires then
	Filename  string
	Purpose   Purpose
	Bytes     int64 // the size the file will have, given at creation
	MimeType  string
	Status    UploadStatus
	// FileExpiresAfter is the lifetime of the file the upload becomes, in seconds from
	// its creation; 0 means it does not expire.
	FileExpiresAfter int64
	FileID           string // the file, once completed
}

// StatusAt returns the upload's status at now: a pending upload past its expires_at is
// expired, whether or not the sweep has marked it yet.
func (u *Upload) StatusAt(now time.Time) UploadStatus {
	if u.Status == UploadPending && !now.Before(u.ExpiresAt) {
		return UploadExpired
	}
	return u.Status
}

// UploadPart is one part of an upload. Its bytes are in the bucket under
// UploadPartKey; Bytes is -1 while they arrive.
type UploadPart struct {
	ID        string
	UploadID  string
	CreatedAt time.Time
	Bytes     int64
}

// UploadUpdate changes an upload. Nil fields are left as they are.
type UploadUpdate struct {
	IfStatus UploadStatus // change only from this state, when set
	Status   *UploadStatus
	FileID   *string
}

// NewUploadID returns a new upload ID, "upload_" and 32 hex digits.
func NewUploadID() string { return "upload_" + randomHex(16) }

// NewPartID returns a new upload part ID, "part_" and 32 hex digits.
func NewPartID() string { return "part_" + randomHex(16) }

// UploadPartKey is the bucket key of an upload part's bytes.
func UploadPartKey(uploadID, partID string) string { return "uploads/" + uploadID + "/" + partID }
