package azure_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob/azure"
	"github.com/sluice-batch/sluice/blob/azure/azuretest"
	"github.com/sluice-batch/sluice/blob/blobtest"
)

// The well-known key of the emulator's development account (public, not a secret).
const (
	devAccount = "devstoreaccount1"
	devKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// MustOpen opens a Bucket on a container of the test's own.
func MustOpen(tb testing.TB, cfg azure.Config, opts *azure.Options) *azure.Bucket {
	tb.Helper()
	conn := azuretest.ConnectionString(tb)
	if cfg.ConnectionString == "" && cfg.ServiceURL == "" {
		cfg.ConnectionString = conn
	}
	if cfg.Container == "" {
		cfg.Container = azuretest.MustNewContainer(tb, conn)
	}
	b, err := azure.Open(context.Background(), cfg, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// blobEndpoint returns the BlobEndpoint of a connection string.
func blobEndpoint(tb testing.TB, conn string) string {
	tb.Helper()
	for _, kv := range strings.Split(conn, ";") {
		if v, ok := strings.CutPrefix(kv, "BlobEndpoint="); ok {
			return strings.TrimSuffix(v, "/")
		}
	}
	tb.Fatalf("no BlobEndpoint in %q", conn)
	return ""
}

func TestBucket(t *testing.T) {
	t.Parallel()
	azuretest.ConnectionString(t)
	// Each configuration takes other paths through the same calls.
	for _, c := range []struct {
		name string
		opts *azure.Options
	}{
		// One request per Put and Compose; Azurite cannot copy from a URL, so the
		// first Compose that tries learns to pack instead.
		{"defaults", nil},
		// Blocks of 4 bytes: every Put stages and commits several, appends are split,
		// composes pack ranges into several blocks.
		{"tiny-blocks", &azure.Options{BlockSize: 4, Concurrency: 2, MaxAppendBytes: 3, ServerCopyMin: -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			blobtest.Run(t, func(t *testing.T) sluice.Bucket {
				return MustOpen(t, azure.Config{Prefix: "pre/fix"}, c.opts)
			})
		})
	}
}

// The service-side copy (Put Block From URL), which Azurite lacks, runs through a proxy
// that does what the service would: it reads the source URL's range and stages it.
func TestBucketServerCopy(t *testing.T) {
	t.Parallel()
	conn := azuretest.ConnectionString(t)
	proxy, copies := copyProxy(t, blobEndpoint(t, conn))
	newBucket := func(t *testing.T) sluice.Bucket {
		return MustOpen(t, azure.Config{ServiceURL: proxy, AccountKey: devKey}, &azure.Options{BlockSize: 4, ServerCopyMin: 2})
	}
	t.Run("suite", func(t *testing.T) {
		t.Parallel()
		blobtest.Run(t, newBucket)
	})
	t.Run("copies", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		ctx := context.Background()
		if err := b.Append(ctx, "seg/a", 0, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
		before := copies.Load()
		parts := []sluice.Part{{Key: "seg/a", Offset: 2, Length: 5}, {Key: "seg/a", Offset: 0, Length: 1}, {Key: "seg/a", Offset: 9, Length: 1}}
		if n, err := b.Compose(ctx, "files/out", parts); err != nil || n != 7 {
			t.Fatalf("compose: got %d, %v; want 7, nil", n, err)
		}
		if got := mustGet(t, b, "files/out"); got != "2345609" {
			t.Fatalf("got %q, want %q", got, "2345609")
		}
		// 5 bytes in 1 copied block (5 >= ServerCopyMin), "0" and "9" packed into one.
		if got := copies.Load() - before; got != 1 {
			t.Errorf("got %d blocks copied by the service, want 1", got)
		}
	})
}

// copyProxy serves the blob endpoint of Azurite at another address and answers Put
// Block From URL itself: it downloads the range from the source URL, as the service
// would, and stages it with a plain Put Block. It counts the blocks so staged.
func copyProxy(tb testing.TB, endpoint string) (string, *atomic.Int64) {
	tb.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		tb.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	cred, err := azblob.NewSharedKeyCredential(devAccount, devKey)
	if err != nil {
		tb.Fatal(err)
	}
	var copies atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := r.Header.Get("x-ms-copy-source")
		if r.Method != http.MethodPut || r.URL.Query().Get("comp") != "block" || src == "" {
			rp.ServeHTTP(w, r)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, src, nil)
		req.Header.Set("Range", r.Header.Get("x-ms-source-range"))
		req.Header.Set("x-ms-version", r.Header.Get("x-ms-version"))
		if m := r.Header.Get("x-ms-source-if-match"); m != "" {
			req.Header.Set("If-Match", m)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode/100 != 2 {
			w.Header().Set("x-ms-error-code", "CannotVerifyCopySource")
			w.WriteHeader(resp.StatusCode)
			return
		}
		dst := *target
		dst.Path = r.URL.Path
		bb, err := blockblob.NewClientWithSharedKeyCredential(dst.String(), cred, nil)
		if err == nil {
			_, err = bb.StageBlock(r.Context(), r.URL.Query().Get("blockid"), streaming.NopCloser(bytes.NewReader(body)), nil)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		copies.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL + "/" + devAccount, &copies
}

// Azurite answers Put Block From URL with 501: the first Compose that tries learns to
// pack every range instead, says so once, and still composes.
func TestServerCopyFallback(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b := MustOpen(t, azure.Config{}, &azure.Options{ServerCopyMin: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	if err := b.Append(ctx, "seg/a", 0, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		key := fmt.Sprintf("files/out-%d", i)
		if _, err := b.Compose(ctx, key, []sluice.Part{{Key: "seg/a", Offset: 5, Length: 5}, {Key: "seg/a", Offset: 0, Length: 5}}); err != nil {
			t.Fatal(err)
		}
		if got := mustGet(t, b, key); got != "5678901234" {
			t.Fatalf("got %q, want %q", got, "5678901234")
		}
	}
	if n := strings.Count(logs.String(), "cannot copy ranges"); n != 1 {
		t.Errorf("got %d log lines about the copy, want 1:\n%s", n, logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustGet(tb testing.TB, b sluice.Bucket, key string) string {
	tb.Helper()
	rc, err := b.Get(context.Background(), key)
	if err != nil {
		tb.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		tb.Fatal(err)
	}
	return string(got)
}

func randomBytes(tb testing.TB, n int) []byte {
	tb.Helper()
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		tb.Fatal(err)
	}
	return p
}

// A Put of many blocks streams: it comes back whole, and ranges of it come back as
// they were.
func TestPutLarge(t *testing.T) {
	t.Parallel()
	b := MustOpen(t, azure.Config{}, &azure.Options{BlockSize: 256 << 10, Concurrency: 3})
	ctx := context.Background()
	want := randomBytes(t, 5<<20+123)
	n, err := b.Put(ctx, "files/big", bytes.NewReader(want))
	if err != nil || n != int64(len(want)) {
		t.Fatalf("put: got %d, %v; want %d, nil", n, err, len(want))
	}
	if got := mustGet(t, b, "files/big"); got != string(want) {
		t.Fatalf("got %d bytes back, not the %d put", len(got), len(want))
	}
	for _, r := range [][2]int64{{0, 1}, {256<<10 - 3, 7}, {1 << 20, 2 << 20}, {int64(len(want)) - 5, 5}, {int64(len(want)) - 5, 50}, {int64(len(want)), 5}, {7, 0}} {
		rc, err := b.GetRange(ctx, "files/big", r[0], r[1])
		if err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		end := min(r[0]+r[1], int64(len(want)))
		if !bytes.Equal(got, want[r[0]:end]) {
			t.Errorf("range %v: got %d bytes, not the %d stored there", r, len(got), end-r[0])
		}
	}
	if _, err := b.GetRange(ctx, "files/missing", 0, 0); sluice.ErrorKind(err) != sluice.KindNotFound {
		t.Errorf("empty range of a missing object: got %v, want kind not_found", err)
	}
}

// A Put whose reader fails after blocks were staged commits nothing.
func TestPutFailsAfterBlocks(t *testing.T) {
	t.Parallel()
	b := MustOpen(t, azure.Config{}, &azure.Options{BlockSize: 1 << 10})
	ctx := context.Background()
	boom := errors.New("boom")
	_, err := b.Put(ctx, "files/x", io.MultiReader(bytes.NewReader(randomBytes(t, 10<<10)), errReader{boom}))
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want %v", err, boom)
	}
	if _, err := b.Get(ctx, "files/x"); sluice.ErrorKind(err) != sluice.KindNotFound {
		t.Fatalf("got %v, want kind not_found", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// A batch's output can be thousands of small extents of a few segments, interleaved.
// They must fit in the service's block limit (lowered here to make the test small).
func TestComposeManyExtents(t *testing.T) {
	t.Parallel()
	conn := azuretest.ConnectionString(t)
	proxy, copies := copyProxy(t, blobEndpoint(t, conn))
	for _, c := range []struct {
		name string
		cfg  azure.Config
		opts *azure.Options
	}{
		{"packed", azure.Config{}, &azure.Options{BlockSize: 64 << 10}},
		{"server-copy", azure.Config{ServiceURL: proxy, AccountKey: devKey}, &azure.Options{BlockSize: 64 << 10, ServerCopyMin: 40}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := MustOpen(t, c.cfg, c.opts)
			// Blocks of 64 KiB and a limit of 20: copying every extent of 40 bytes or
			// more would make thousands of blocks, so Compose copies fewer and packs more.
			azure.SetMaxBlocks(b, 20)
			ctx := context.Background()
			var parts []sluice.Part
			var want bytes.Buffer
			sizes := map[string]int64{}
			for i := range 2000 {
				key := fmt.Sprintf("seg/owner-%d", i%3)
				line := fmt.Appendf(nil, `{"custom_id":"line-%d","x":%q}`+"\n", i, strings.Repeat("y", i%50))
				if i%400 == 0 {
					line = append(line, strings.Repeat("z", 300)...) // a long extent now and then
				}
				if err := b.Append(ctx, key, sizes[key], line); err != nil {
					t.Fatal(err)
				}
				parts = append(parts, sluice.Part{Key: key, Offset: sizes[key], Length: int64(len(line))})
				sizes[key] += int64(len(line))
				want.Write(line)
			}
			before := copies.Load()
			n, err := b.Compose(ctx, "files/out", parts)
			if err != nil || n != int64(want.Len()) {
				t.Fatalf("compose: got %d, %v; want %d, nil", n, err, want.Len())
			}
			if got := mustGet(t, b, "files/out"); got != want.String() {
				t.Fatalf("got %d bytes, want %d; they differ", len(got), want.Len())
			}
			if c.name == "server-copy" && copies.Load() == before {
				t.Errorf("no block was copied by the service")
			}
		})
	}
}

// An append larger than MaxAppendBytes is several appends; at the wrong offset the first
// is refused and nothing changes.
func TestAppendSplits(t *testing.T) {
	t.Parallel()
	b := MustOpen(t, azure.Config{}, &azure.Options{MaxAppendBytes: 1000})
	ctx := context.Background()
	p := randomBytes(t, 4321)
	if err := b.Append(ctx, "seg/s", 0, p); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, "seg/s", 4000, p); sluice.ErrorKind(err) != sluice.KindConflict {
		t.Fatalf("append at a wrong offset: got %v, want kind conflict", err)
	}
	if err := b.Append(ctx, "seg/s", 4321, p[:10]); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, b, "seg/s"); got != string(p)+string(p[:10]) {
		t.Fatalf("got %d bytes, want %d", len(got), len(p)+10)
	}
	// No bytes: nothing to send, but the offset is still checked.
	if err := b.Append(ctx, "seg/s", 4331, nil); err != nil {
		t.Errorf("empty append at the end: %v", err)
	}
	if err := b.Append(ctx, "seg/s", 4330, nil); sluice.ErrorKind(err) != sluice.KindConflict {
		t.Errorf("empty append at a wrong offset: got %v, want kind conflict", err)
	}
}

// ETags come quoted from properties and unquoted from listings; Attributes gives them
// unquoted, as a listing does.
func TestAttributesETag(t *testing.T) {
	t.Parallel()
	conn := azuretest.ConnectionString(t)
	container := azuretest.MustNewContainer(t, conn)
	b := MustOpen(t, azure.Config{Container: container}, nil)
	ctx := context.Background()
	if _, err := b.Put(ctx, "files/e", strings.NewReader("etag")); err != nil {
		t.Fatal(err)
	}
	a, err := b.Attributes(ctx, "files/e")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != 4 || a.ETag == "" || strings.Contains(a.ETag, `"`) || a.ModTime.IsZero() {
		t.Fatalf("got %+v, want size 4 and an unquoted ETag", a)
	}
	c, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.NewListBlobsFlatPager(container, nil).NextPage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(page.Segment.BlobItems); n != 1 {
		t.Fatalf("got %d blobs listed, want 1", n)
	}
	if got := azure.NormalizeETag(string(*page.Segment.BlobItems[0].Properties.ETag)); got != a.ETag {
		t.Errorf("listed ETag %q, Attributes %q: want them equal", got, a.ETag)
	}
	if _, err := b.Attributes(ctx, "files/missing"); sluice.ErrorKind(err) != sluice.KindNotFound {
		t.Errorf("missing: got %v, want kind not_found", err)
	}
}

// Keys live under the prefix; nothing is left beside them.
func TestPrefix(t *testing.T) {
	t.Parallel()
	conn := azuretest.ConnectionString(t)
	container := azuretest.MustNewContainer(t, conn)
	b := MustOpen(t, azure.Config{Container: container, Prefix: "/tenant/a/"}, &azure.Options{BlockSize: 2})
	ctx := context.Background()
	if _, err := b.Put(ctx, "files/p", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	if err := b.Append(ctx, "seg/q", 0, []byte("x")); err != nil {
		t.Fatal(err)
	}
	got := azuretest.MustListBlobs(t, conn, container)
	want := []string{"tenant/a/files/p", "tenant/a/seg/q"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got blobs %q, want %q", got, want)
	}
	for _, key := range []string{"../x", "/abs", "a//b", "a/./b", `a\b`, ""} {
		if _, err := b.Put(ctx, key, strings.NewReader("x")); err == nil {
			t.Errorf("put %q: got nil error, want one", key)
		}
	}
}

// Every way of authenticating reaches the same container.
func TestOpenCredentials(t *testing.T) {
	t.Parallel()
	conn := azuretest.ConnectionString(t)
	endpoint := blobEndpoint(t, conn)
	container := azuretest.MustNewContainer(t, conn)
	ctx := context.Background()
	first := MustOpen(t, azure.Config{Container: container}, nil)
	if _, err := first.Put(ctx, "files/c", strings.NewReader("shared")); err != nil {
		t.Fatal(err)
	}
	cred, err := azblob.NewSharedKeyCredential(devAccount, devKey)
	if err != nil {
		t.Fatal(err)
	}
	sasURL, err := azblob.NewClientWithSharedKeyCredential(endpoint, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	containerSAS, err := sasURL.ServiceClient().NewContainerClient(container).GetSASURL(
		sas.ContainerPermissions{Read: true, Add: true, Create: true, Write: true, Delete: true}, time.Now().Add(time.Hour), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, query, _ := strings.Cut(containerSAS, "?")
	for _, c := range []struct {
		name string
		cfg  azure.Config
	}{
		{"account-key", azure.Config{ServiceURL: endpoint, AccountKey: devKey}},
		{"account-key-named", azure.Config{ServiceURL: endpoint, AccountName: devAccount, AccountKey: devKey}},
		{"sas", azure.Config{ServiceURL: endpoint, SAS: "?" + query}},
		{"connection-string", azure.Config{ConnectionString: conn}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.cfg.Container = container
			b, err := azure.Open(ctx, c.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, b, "files/c"); got != "shared" {
				t.Errorf("got %q, want %q", got, "shared")
			}
			key := "files/" + c.name
			if err := b.Append(ctx, "seg/"+c.name, 0, []byte("ab")); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Compose(ctx, key, []sluice.Part{{Key: "seg/" + c.name, Offset: 1, Length: 1}, {Key: "files/c", Length: 6}}); err != nil {
				t.Fatal(err)
			}
			if got := mustGet(t, b, key); got != "bshared" {
				t.Errorf("got %q, want %q", got, "bshared")
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, c := range []struct {
		name string
		cfg  azure.Config
		want string
	}{
		{"dev-shorthand", azure.Config{ConnectionString: "UseDevelopmentStorage=true", Container: "abc"}, "UseDevelopmentStorage"},
		{"nothing", azure.Config{Container: "abc"}, "ConnectionString"},
		{"no-credential", azure.Config{ServiceURL: "https://acct.blob.core.windows.net/", Container: "abc"}, "AccountKey, SAS or Credential"},
		{"bad-url", azure.Config{ServiceURL: "ftp://x", AccountKey: devKey, Container: "abc"}, "ServiceURL"},
		{"bad-container", azure.Config{ConnectionString: "AccountName=a;AccountKey=" + devKey, Container: "Upper_case"}, "container name"},
		{"bad-prefix", azure.Config{ConnectionString: "AccountName=a;AccountKey=" + devKey, Container: "abc", Prefix: "a/../b"}, "prefix"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := azure.Open(ctx, c.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error naming %q", err, c.want)
			}
		})
	}
}

func TestParseLocation(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		loc, container, prefix string
		ok                     bool
	}{
		{"azblob://sluice", "sluice", "", true},
		{"azblob://sluice/", "sluice", "", true},
		{"azblob://sluice/prod", "sluice", "prod/", true},
		{"azblob://sluice/prod/eu/", "sluice", "prod/eu/", true},
		{"azblob://Sluice", "", "", false},
		{"azblob://ab", "", "", false},
		{"azblob://a--b", "", "", false},
		{"azblob://sluice/a//b", "", "", false},
		{"azblob://sluice/../b", "", "", false},
		{"azblob://sluice?sv=x", "", "", false},
		{"s3://sluice", "", "", false},
		{"sluice", "", "", false},
	} {
		container, prefix, err := azure.ParseLocation(c.loc)
		if (err == nil) != c.ok || container != c.container || prefix != c.prefix {
			t.Errorf("%s: got %q, %q, %v; want %q, %q, ok=%v", c.loc, container, prefix, err, c.container, c.prefix, c.ok)
		}
	}
}
