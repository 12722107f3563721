// Package azure is the sluice.Bucket of Azure Blob Storage, over one container and an
// optional prefix of blob names, on the azblob SDK.
//
// Each call of the Bucket maps onto the service as follows:
//
//   - Put stages the reader's bytes as blocks of a block blob (Options.BlockSize each,
//     Options.Concurrency in flight) and commits the block list at the end; an object that
//     fits in one block is one Put Blob. Until the commit nothing is visible under the
//     key, so a reader that fails leaves the old bytes, or none.
//   - Get and GetRange are streaming downloads (a ranged one for GetRange) that resume
//     where they broke off if the connection drops.
//   - Append writes to an append blob with the append-position condition: offset 0
//     creates the blob with If-None-Match: *, and an append at the wrong offset, to a
//     missing blob, or to a blob that cannot grow is refused with sluice.KindConflict and
//     changes nothing. An append larger than Options.MaxAppendBytes is several appends,
//     each with its own position condition.
//   - Compose commits a block list made of the parts' ranges. Long ranges are copied by
//     the service (Put Block From URL, reading the source through a short-lived read
//     SAS); short ones, such as the many small extents of a batch's results, are
//     downloaded and packed into blocks of Options.BlockSize, so the object never holds
//     more than the service's 50,000 blocks and this process never holds the file. When
//     the service cannot copy from a URL (the Azurite emulator), every range goes
//     through this process. A whole append blob composed alone is sealed first, so it
//     no longer grows, as the folder bucket refuses to grow a linked file.
//   - Delete deletes the blob with its snapshots; a missing blob is not an error.
//
// Retries of failed requests are azcore's (exponential back-off on 408, 429, 500,
// 502, 503 and 504 and on connection errors).
package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/sluice-batch/sluice"
)

// Config says which container to use and how to authenticate. Set ConnectionString, or
// ServiceURL with one of AccountKey, SAS and Credential.
type Config struct {
	// ConnectionString is an Azure Storage connection string: AccountName and
	// AccountKey (with BlobEndpoint for the emulator or a custom domain), or
	// BlobEndpoint and SharedAccessSignature. The emulator's shorthand
	// UseDevelopmentStorage=true is not understood by the SDK; write the string out.
	ConnectionString string

	// ServiceURL is the blob service's URL: https://ACCOUNT.blob.core.windows.net/, or
	// on the emulator http://127.0.0.1:10000/devstoreaccount1.
	ServiceURL string
	// AccountName goes with AccountKey; the default is the one ServiceURL names.
	AccountName string
	// AccountKey authenticates with the account's shared key.
	AccountKey string
	// SAS is a shared access signature (the query string, with or without its "?")
	// granting read, add, create, write and delete on the container's blobs.
	SAS string
	// Credential authenticates with Microsoft Entra ID, e.g.
	// azidentity.DefaultAzureCredential. Compose then copies every range through this
	// process: the service can read a source by URL only with a SAS.
	Credential azcore.TokenCredential

	// Container is the container's name; it is created if missing.
	Container string
	// Prefix is put before every key; "" for none, otherwise it ends in "/".
	Prefix string
}

// Options are the optional settings of a Bucket. Zero fields take their defaults.
type Options struct {
	// Logger gets the few events worth telling (nil discards them).
	Logger *slog.Logger
	// BlockSize is the size of the blocks Put and Compose stage through this process.
	// Default 8 MiB.
	BlockSize int
	// Concurrency is how many blocks one Put or Compose has in flight. Default 4. A
	// Put holds at most Concurrency+1 blocks in memory.
	Concurrency int
	// MaxAppendBytes is the most bytes one append request carries; Append splits
	// larger writes. Default 100 MiB, the service's limit.
	MaxAppendBytes int
	// ServerCopyMin is the shortest range Compose has the service copy (Put Block From
	// URL) rather than packing it into a block through this process. Default 1 MiB;
	// negative turns server-side copies off.
	ServerCopyMin int64
	// MaxRetries is how many times azcore retries a failed request. Default 5.
	MaxRetries int
}

const (
	defaultBlockSize      = 8 << 20
	defaultConcurrency    = 4
	defaultMaxAppendBytes = 100 << 20
	defaultServerCopyMin  = 1 << 20
	// maxCopyBytes is the longest range one Put Block From URL copies.
	maxCopyBytes = 100 << 20
	// maxBlocks is how many blocks a block blob may have.
	maxBlocks = 50_000
	// tryTimeout bounds one try of a request whose body is at most a block or whose
	// answer is small: a connection that hangs is given up and the request retried.
	tryTimeout = 2 * time.Minute
)

// Bucket is a sluice.Bucket in an Azure Blob Storage container. It is safe for
// concurrent use.
type Bucket struct {
	cont   *container.Client
	prefix string
	log    *slog.Logger

	blockSize      int
	concurrency    int
	maxAppendBytes int
	serverCopyMin  int64 // < 0: off
	maxBlocks      int
	canSign        bool // the credential is the account key: read SASes can be made
	hasSAS         bool // the URLs carry a SAS the service can read sources with

	// retry is the client's retry policy with a bound on each try, for the requests whose
	// answers are small or read at once (see withTry).
	retry policy.RetryOptions

	// noServerCopy is set when the service answered that it cannot copy from a URL.
	noServerCopy atomic.Bool
	bufs         sync.Pool
}

var _ sluice.Bucket = (*Bucket)(nil)

// Open returns the Bucket of cfg, creating its container if it is missing.
func Open(ctx context.Context, cfg Config, opts *Options) (*Bucket, error) {
	b, err := newBucket(cfg, opts)
	if err != nil {
		return nil, err
	}
	if err := b.ensureContainer(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// newBucket returns the Bucket of cfg without looking at its container.
func newBucket(cfg Config, opts *Options) (*Bucket, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := checkContainerName(cfg.Container); err != nil {
		return nil, err
	}
	prefix, err := cleanPrefix(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	b := &Bucket{
		prefix:         prefix,
		log:            opts.Logger,
		blockSize:      orDefault(opts.BlockSize, defaultBlockSize),
		concurrency:    orDefault(opts.Concurrency, defaultConcurrency),
		maxAppendBytes: orDefault(opts.MaxAppendBytes, defaultMaxAppendBytes),
		serverCopyMin:  opts.ServerCopyMin,
		maxBlocks:      maxBlocks,
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	if b.serverCopyMin == 0 {
		b.serverCopyMin = defaultServerCopyMin
	}
	b.bufs.New = func() any {
		buf := make([]byte, b.blockSize)
		return &buf
	}
	// azcore retries 408, 429, 500, 502, 503, 504 and connection errors, backing off
	// exponentially from RetryDelay to MaxRetryDelay, with jitter.
	retry := policy.RetryOptions{
		MaxRetries:    int32(orDefault(opts.MaxRetries, 5)),
		RetryDelay:    200 * time.Millisecond,
		MaxRetryDelay: 10 * time.Second,
	}
	b.retry = retry
	b.retry.TryTimeout = tryTimeout
	co := &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry:     retry,
		Telemetry: policy.TelemetryOptions{ApplicationID: "sluice"},
	}}
	if b.cont, err = newContainerClient(cfg, co); err != nil {
		return nil, err
	}
	// The account key signs read SASes for Compose's sources; a client made with a
	// SAS carries it in every blob's URL instead.
	if _, err := b.cont.NewBlobClient("x").GetSASURL(sas.BlobPermissions{Read: true}, time.Now().Add(time.Minute), nil); err == nil {
		b.canSign = true
	} else if u, perr := url.Parse(b.cont.URL()); perr == nil && u.Query().Has("sig") {
		b.hasSAS = true
	}
	return b, nil
}

// withTry returns ctx with each try of a request bounded by tryTimeout. Streaming
// downloads (Get, GetRange) go without: they may take long, and resume where they
// broke off instead.
func (b *Bucket) withTry(ctx context.Context) context.Context {
	return policy.WithRetryOptions(ctx, b.retry)
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func newContainerClient(cfg Config, co *azblob.ClientOptions) (*container.Client, error) {
	if cfg.ConnectionString != "" {
		if strings.Contains(strings.ToLower(cfg.ConnectionString), "usedevelopmentstorage=true") {
			return nil, errors.New("azure connection string: UseDevelopmentStorage=true is not supported by the SDK; write out AccountName, AccountKey and BlobEndpoint")
		}
		c, err := azblob.NewClientFromConnectionString(cfg.ConnectionString, co)
		if err != nil {
			return nil, fmt.Errorf("azure connection string: %w", err)
		}
		return c.ServiceClient().NewContainerClient(cfg.Container), nil
	}
	if cfg.ServiceURL == "" {
		return nil, errors.New("azure: set ConnectionString, or ServiceURL with AccountKey, SAS or Credential")
	}
	u, err := url.Parse(cfg.ServiceURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("azure ServiceURL %q: want http(s)://host[/account]", cfg.ServiceURL)
	}
	var c *azblob.Client
	switch {
	case cfg.AccountKey != "":
		name := cfg.AccountName
		if name == "" {
			name = accountOf(u)
		}
		if name == "" {
			return nil, fmt.Errorf("azure: AccountName is needed with the ServiceURL %s", cfg.ServiceURL)
		}
		cred, err := azblob.NewSharedKeyCredential(name, cfg.AccountKey)
		if err != nil {
			return nil, fmt.Errorf("azure AccountKey: %w", err)
		}
		c, err = azblob.NewClientWithSharedKeyCredential(cfg.ServiceURL, cred, co)
		if err != nil {
			return nil, fmt.Errorf("azure client: %w", err)
		}
	case cfg.SAS != "":
		u.RawQuery = strings.TrimPrefix(cfg.SAS, "?")
		c, err = azblob.NewClientWithNoCredential(u.String(), co)
		if err != nil {
			return nil, fmt.Errorf("azure client: %w", err)
		}
	case cfg.Credential != nil:
		c, err = azblob.NewClient(cfg.ServiceURL, cfg.Credential, co)
		if err != nil {
			return nil, fmt.Errorf("azure client: %w", err)
		}
	default:
		return nil, errors.New("azure: ServiceURL needs AccountKey, SAS or Credential")
	}
	return c.ServiceClient().NewContainerClient(cfg.Container), nil
}

// accountOf returns the account a service URL names: the first label of
// ACCOUNT.blob.core.windows.net, or the first path segment of the emulator's
// path-style http://127.0.0.1:10000/ACCOUNT.
func accountOf(u *url.URL) string {
	host := u.Hostname()
	if net.ParseIP(host) != nil || host == "localhost" || !strings.Contains(host, ".") {
		first, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
		return first
	}
	first, _, _ := strings.Cut(host, ".")
	return first
}

// ensureContainer creates the container if it is missing. A credential that may not
// read the container's properties (a SAS for its blobs only) is trusted to name one
// that exists: the first call on a blob will say if it does not.
func (b *Bucket) ensureContainer(ctx context.Context) error {
	ctx = b.withTry(ctx)
	_, err := b.cont.GetProperties(ctx, nil)
	switch {
	case err == nil:
		return nil
	case bloberror.HasCode(err, bloberror.ContainerNotFound):
		_, err = b.cont.Create(ctx, nil)
		if err == nil {
			b.log.InfoContext(ctx, "created the blob container", "container", containerName(b.cont))
			return nil
		}
		if bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			return nil
		}
		return fmt.Errorf("create the blob container: %w", err)
	case status(err) == http.StatusForbidden:
		b.log.InfoContext(ctx, "the credential may not read the container's properties; assuming it exists", "container", containerName(b.cont))
		return nil
	default:
		return fmt.Errorf("open the blob container: %w", err)
	}
}

func containerName(c *container.Client) string {
	p, err := blob.ParseURL(c.URL())
	if err != nil {
		return ""
	}
	return p.ContainerName
}

// checkContainerName applies the service's rules: 3 to 63 lowercase letters, digits and
// single hyphens, starting and ending with a letter or digit.
func checkContainerName(name string) error {
	ok := len(name) >= 3 && len(name) <= 63 && name[0] != '-' && name[len(name)-1] != '-' && !strings.Contains(name, "--")
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("azure container name %q: want 3 to 63 lowercase letters, digits and single hyphens, starting and ending with a letter or digit", name)
	}
	return nil
}

// cleanPrefix returns p with one trailing slash, or "" for none.
func cleanPrefix(p string) (string, error) {
	p = strings.Trim(p, "/")
	if p == "" {
		return "", nil
	}
	if err := checkKey(p); err != nil {
		return "", fmt.Errorf("azure prefix %q: every segment must be non-empty and neither . nor .. (%w)", p, err)
	}
	return p + "/", nil
}

// checkKey refuses the keys the folder bucket refuses, so a key that works on one works
// on the other.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return fmt.Errorf("bad key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("bad key %q", key)
		}
	}
	return nil
}

// name returns the blob name of key.
func (b *Bucket) name(key string) (string, error) {
	if err := checkKey(key); err != nil {
		return "", err
	}
	return b.prefix + key, nil
}

// Attributes describe an object.
type Attributes struct {
	Size int64
	// ETag changes whenever the object does. It is unquoted: the service quotes it in
	// some answers (downloads, properties) and not in others (listings).
	ETag    string
	ModTime time.Time
}

// Attributes returns the size, ETag and modification time of the object under key.
// Returns KindNotFound if there is none.
func (b *Bucket) Attributes(ctx context.Context, key string) (Attributes, error) {
	name, err := b.name(key)
	if err != nil {
		return Attributes{}, err
	}
	p, err := b.cont.NewBlobClient(name).GetProperties(b.withTry(ctx), nil)
	if err != nil {
		return Attributes{}, translate("stat", key, err)
	}
	return Attributes{Size: deref(p.ContentLength), ETag: NormalizeETag(string(deref(p.ETag))), ModTime: deref(p.LastModified)}, nil
}

// NormalizeETag returns an ETag without its quotes or weak marker, so that ETags from
// downloads ("0x8D...") and from listings (0x8D...) compare equal.
func NormalizeETag(etag string) string {
	return strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
}

// Put implements sluice.Bucket. A key that holds an append blob (a segment) is replaced
// by a Put of one block, but refused by a longer one: the service does not stage blocks
// onto an append blob (InvalidBlobType). Sluice never puts over a segment's key; the
// same holds for Compose.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader) (int64, error) {
	name, err := b.name(key)
	if err != nil {
		return 0, err
	}
	n, err := b.put(b.withTry(ctx), name, r)
	if err != nil {
		return 0, fmt.Errorf("put %s: %w", key, err)
	}
	return n, nil
}

// Get implements sluice.Bucket.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	name, err := b.name(key)
	if err != nil {
		return nil, err
	}
	rc, err := b.download(ctx, name, blob.HTTPRange{}, nil)
	if err != nil {
		return nil, translate("get", key, err)
	}
	return rc, nil
}

// GetRange implements sluice.Bucket. A range reaching past the object's end yields the
// bytes up to it.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	name, err := b.name(key)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, sluice.Errorf(sluice.KindInvalid, "The range %d+%d of %s is not a range.", offset, length, key)
	}
	if length == 0 {
		// A range of no bytes is not a range on the wire (Count 0 means to the end).
		if _, err := b.cont.NewBlobClient(name).GetProperties(b.withTry(ctx), nil); err != nil {
			return nil, translate("get", key, err)
		}
		return io.NopCloser(strings.NewReader("")), nil
	}
	rc, err := b.download(ctx, name, blob.HTTPRange{Offset: offset, Count: length}, nil)
	if bloberror.HasCode(err, bloberror.InvalidRange) {
		// The range starts at or past the end: no bytes, as a file's section would give.
		return io.NopCloser(strings.NewReader("")), nil
	}
	if err != nil {
		return nil, translate("get", key, err)
	}
	return rc, nil
}

// download opens a streaming download of rng of the blob name that resumes where it
// broke off when the connection drops.
func (b *Bucket) download(ctx context.Context, name string, rng blob.HTTPRange, ac *blob.AccessConditions) (io.ReadCloser, error) {
	resp, err := b.cont.NewBlobClient(name).DownloadStream(ctx, &blob.DownloadStreamOptions{Range: rng, AccessConditions: ac})
	if err != nil {
		return nil, err
	}
	return resp.NewRetryReader(ctx, &blob.RetryReaderOptions{MaxRetries: 5}), nil
}

// Delete implements sluice.Bucket.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	name, err := b.name(key)
	if err != nil {
		return err
	}
	_, err = b.cont.NewBlobClient(name).Delete(b.withTry(ctx), &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// translate gives err of op on key its kind: a missing blob is KindNotFound, a failed
// condition KindConflict; an error that has a kind keeps it, and everything else is
// wrapped with op and key.
func translate(op, key string, err error) error {
	var se *sluice.Error
	if errors.As(err, &se) {
		return err
	}
	switch status(err) {
	case http.StatusNotFound:
		return sluice.Errorf(sluice.KindNotFound, "No content is stored for %s.", key).WithErr(err)
	case http.StatusPreconditionFailed:
		return sluice.Errorf(sluice.KindConflict, "The object %s changed while it was read.", key).WithErr(err)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// status returns the HTTP status of a service error, or 0.
func status(err error) int {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}
