package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"github.com/sluice-batch/sluice"
)

// AccountConfig is a storage account Sluice may read batch inputs from and write
// results to. Set ConnectionString, or one of AccountKey, SAS and Credential.
type AccountConfig struct {
	// Name is the account's name.
	Name string
	// BlobEndpoint is the account's blob service URL; the default is
	// https://NAME.blob.core.windows.net/. The emulator's is path-style:
	// http://127.0.0.1:10000/NAME.
	BlobEndpoint     string
	ConnectionString string
	AccountKey       string
	SAS              string
	Credential       azcore.TokenCredential
}

// Accounts is the sluice.Blobs of a list of storage accounts: blob URLs on them are
// read and written with their configured credentials; any other URL is refused
// before anything is sent, so a caller can never make Sluice fetch an address of its
// choosing (a metadata service, a loopback port, another tenant's account).
type Accounts struct {
	list  []*account
	opts  *Options
	mu    sync.Mutex
	conts map[string]*Bucket // by account and container
}

var _ sluice.Blobs = (*Accounts)(nil)

type account struct {
	name string
	base *url.URL // scheme, host and path (ending in "/") before CONTAINER/NAME
	cfg  Config
}

// NewAccounts returns the Blobs of the accounts in list.
func NewAccounts(list []AccountConfig, opts *Options) (*Accounts, error) {
	a := &Accounts{opts: opts, conts: make(map[string]*Bucket)}
	for i, c := range list {
		if c.Name == "" {
			return nil, fmt.Errorf("storage account %d: name is required", i)
		}
		ep := c.BlobEndpoint
		if ep == "" {
			ep = "https://" + c.Name + ".blob.core.windows.net/"
		}
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("storage account %s: blob_endpoint %q: want http(s)://host[/account]", c.Name, ep)
		}
		if !strings.HasSuffix(u.Path, "/") {
			u.Path += "/"
		}
		cfg := Config{ConnectionString: c.ConnectionString, ServiceURL: u.String(), AccountName: c.Name,
			AccountKey: c.AccountKey, SAS: c.SAS, Credential: c.Credential}
		if cfg.ConnectionString == "" && cfg.AccountKey == "" && cfg.SAS == "" && cfg.Credential == nil {
			return nil, fmt.Errorf("storage account %s: give connection_string, account_key, sas or managed_identity", c.Name)
		}
		a.list = append(a.list, &account{name: c.Name, base: u, cfg: cfg})
	}
	return a, nil
}

// Names lists the accounts, as a caller may be told them: "NAME (ENDPOINT)".
func (a *Accounts) Names() []string {
	var out []string
	for _, acc := range a.list {
		out = append(out, acc.name+" ("+acc.base.String()+")")
	}
	return out
}

// resolve finds the account of a blob URL and splits the rest into container and
// blob name (which is "" for a container's root, as a folder may be).
func (a *Accounts) resolve(raw string) (*account, string, string, error) {
	refuse := func(why string) error {
		allowed := "none are configured"
		if len(a.list) > 0 {
			allowed = "the allowed accounts are " + strings.Join(a.Names(), ", ")
		}
		return sluice.Errorf(sluice.KindInvalid, "The URL %q is not a blob of a storage account this server may use (%s); %s.", raw, why, allowed)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, "", "", refuse("not an absolute URL")
	}
	if u.User != nil || u.Fragment != "" || u.RawQuery != "" {
		return nil, "", "", refuse("it carries a user, query or fragment; Sluice uses the credential configured for the account")
	}
	for _, acc := range a.list {
		if !strings.EqualFold(u.Scheme, acc.base.Scheme) || !strings.EqualFold(u.Host, acc.base.Host) {
			continue
		}
		rest, ok := strings.CutPrefix(u.Path, acc.base.Path)
		if !ok {
			continue
		}
		container, name, _ := strings.Cut(rest, "/")
		if checkContainerName(container) != nil {
			return nil, "", "", refuse(fmt.Sprintf("%q is not a container name", container))
		}
		return acc, container, name, nil
	}
	why := "its host is not one of them"
	if ip := net.ParseIP(u.Hostname()); ip != nil {
		why = "an IP address that is not a configured endpoint"
	}
	return nil, "", "", refuse(why)
}

// Check implements sluice.Blobs.
func (a *Accounts) Check(raw string) error {
	_, _, _, err := a.resolve(raw)
	return err
}

// container returns the Bucket of an account's container, made once. It does not
// create the container: a missing one reads as a blob that is not there.
func (a *Accounts) container(acc *account, name string) (*Bucket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := acc.name + "/" + name
	if b := a.conts[key]; b != nil {
		return b, nil
	}
	cfg := acc.cfg
	cfg.Container = name
	b, err := newBucket(cfg, a.opts)
	if err != nil {
		return nil, err
	}
	a.conts[key] = b
	return b, nil
}

// blobOf resolves a URL that must name a blob, not a folder.
func (a *Accounts) blobOf(raw string) (*Bucket, string, error) {
	acc, cont, name, err := a.resolve(raw)
	if err != nil {
		return nil, "", err
	}
	if name == "" || strings.HasSuffix(name, "/") {
		return nil, "", sluice.Errorf(sluice.KindInvalid, "The URL %q names a folder, not a blob.", raw)
	}
	b, err := a.container(acc, cont)
	if err != nil {
		return nil, "", err
	}
	return b, name, nil
}

// Stat implements sluice.Blobs.
func (a *Accounts) Stat(ctx context.Context, raw string) (int64, string, error) {
	b, name, err := a.blobOf(raw)
	if err != nil {
		return 0, "", err
	}
	p, err := b.cont.NewBlobClient(name).GetProperties(b.withTry(ctx), nil)
	if err != nil {
		return 0, "", blobKind(raw, err)
	}
	return deref(p.ContentLength), NormalizeETag(string(deref(p.ETag))), nil
}

// ReadRange implements sluice.Blobs. Every read carries If-Match with etag.
func (a *Accounts) ReadRange(ctx context.Context, raw string, offset, length int64, etag string) (io.ReadCloser, error) {
	b, name, err := a.blobOf(raw)
	if err != nil {
		return nil, err
	}
	if length == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	ac := &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: to.Ptr(azcore.ETag(`"` + etag + `"`))}}
	rc, err := b.download(ctx, name, blob.HTTPRange{Offset: offset, Count: length}, ac)
	if err != nil {
		return nil, blobKind(raw, err)
	}
	return rc, nil
}

// Write implements sluice.Blobs: staged blocks committed at the end, so the blob holds
// all of r or its old bytes (none), never a part.
func (a *Accounts) Write(ctx context.Context, raw string, r io.Reader) (int64, error) {
	b, name, err := a.blobOf(raw)
	if err != nil {
		return 0, err
	}
	n, err := b.put(b.withTry(ctx), name, r)
	if err != nil {
		return 0, blobKind(raw, err)
	}
	return n, nil
}

// blobKind gives a storage error the kind sluice.Blobs promises.
func blobKind(raw string, err error) error {
	var se *sluice.Error
	if errors.As(err, &se) {
		return err
	}
	switch status(err) {
	case http.StatusForbidden, http.StatusUnauthorized:
		return sluice.Errorf(sluice.KindForbidden, "The credential may not use %s.", raw).WithErr(err)
	case http.StatusNotFound:
		return sluice.Errorf(sluice.KindNotFound, "There is no blob %s.", raw).WithErr(err)
	case http.StatusPreconditionFailed:
		return sluice.Errorf(sluice.KindConflict, "The blob %s has changed.", raw).WithErr(err)
	}
	if bloberror.HasCode(err, bloberror.ConditionNotMet) {
		return sluice.Errorf(sluice.KindConflict, "The blob %s has changed.", raw).WithErr(err)
	}
	if status(err) == 0 || status(err) >= 500 {
		return sluice.Errorf(sluice.KindUnavailable, "Blob storage did not answer for %s.", raw).WithErr(err)
	}
	return fmt.Errorf("blob %s: %w", raw, err)
}
