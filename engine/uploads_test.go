package engine_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/engine"
	"github.com/sluice-batch/sluice/sqlite"
)

// An upload not completed in its time is refused at once and then swept with its
// parts' bytes, a completed one's parts go at completion, and the file an upload
// becomes gets the lifetime it asked for.
func TestUploadsExpireAndAreSwept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng, store, bucket, advance := newClockEngine(t)
	content := lines(3)
	create := func(ttl time.Duration) *sluice.Upload {
		t.Helper()
		u, err := eng.CreateUpload(ctx, sluice.UploadCreate{Filename: "in.jsonl", Bytes: int64(len(content)), MimeType: "text/jsonl",
			TTL: ttl, FileExpiresAfter: 7200})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	stale := create(time.Hour)
	staleParts := []*sluice.UploadPart{}
	for _, chunk := range []string{content[:10], content[10:20]} {
		p, err := eng.AddUploadPart(ctx, stale.ID, strings.NewReader(chunk))
		if err != nil {
			t.Fatal(err)
		}
		staleParts = append(staleParts, p)
	}
	done := create(3 * time.Hour)
	p, err := eng.AddUploadPart(ctx, done.ID, strings.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	u, f, err := eng.CompleteUpload(ctx, done.ID, []string{p.ID}, "")
	if err != nil || u.Status != sluice.UploadCompleted || u.FileID != f.ID {
		t.Fatalf("complete: got %+v, %v", u, err)
	}
	if f.ExpiresAt == nil || !f.ExpiresAt.Equal(f.CreatedAt.Add(2*time.Hour)) {
		t.Errorf("file expires_at %v, want 2h after %v", f.ExpiresAt, f.CreatedAt)
	}
	if _, err := bucket.Get(ctx, sluice.UploadPartKey(done.ID, p.ID)); sluice.ErrorKind(err) != sluice.KindNotFound {
		t.Errorf("a completed upload's part: got %v, want its bytes deleted", err)
	}

	advance(time.Hour) // stale's expires_at
	if _, err := eng.AddUploadPart(ctx, stale.ID, strings.NewReader("x")); sluice.ErrorKind(err) != sluice.KindConflict || !strings.Contains(err.Error(), "expired") {
		t.Errorf("part of an expired upload: got %v, want kind conflict naming expired", err)
	}
	if _, _, err := eng.CompleteUpload(ctx, stale.ID, []string{staleParts[0].ID}, ""); sluice.ErrorKind(err) != sluice.KindConflict {
		t.Errorf("complete an expired upload: got %v, want kind conflict", err)
	}

	if err := eng.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer eng.Stop(ctx)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := store.FindUploadByID(ctx, stale.ID)
		if sluice.ErrorKind(err) == sluice.KindNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired upload still there: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, p := range staleParts {
		if _, err := bucket.Get(ctx, sluice.UploadPartKey(stale.ID, p.ID)); sluice.ErrorKind(err) != sluice.KindNotFound {
			t.Errorf("part %s of the swept upload: got %v, want its bytes deleted", p.ID, err)
		}
	}
	if _, err := store.FindUploadByID(ctx, done.ID); err != nil {
		t.Errorf("completed upload before its expires_at: got %v, want it kept", err)
	}
	if _, err := store.FindFileByID(ctx, f.ID); err != nil {
		t.Errorf("the completed upload's file: %v", err)
	}
}

// newClockEngine returns an engine, not started, on a fresh SQLite store and memory
// bucket, whose clock stands still until advance moves it; it sweeps every millisecond.
func newClockEngine(t *testing.T) (*engine.Engine, *sqlite.Store, *blob.Mem, func(time.Duration)) {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bucket := blob.NewMem()
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	eng, err := engine.New(store, bucket, []sluice.Deployment{{Name: "dep", Upstreams: []sluice.Upstream{{BaseURL: "http://127.0.0.1:1/v1"}}}},
		&engine.Options{NowFunc: clock, PollInterval: 5 * time.Millisecond, SweepInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return eng, store, bucket, advance
}
