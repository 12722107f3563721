package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/sqlite"
)

// A database of schema version 2, which had no token columns, opens with its batches
// intact: they hold no tokens and have no usage, and new batches are admitted.
func TestMigrateFromVersion2(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "db")
	old, err := os.ReadFile("testdata/schema_v2.sql")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		string(old),
		`INSERT INTO batches (id, endpoint, completion_window, status, deployment, total, completed, created_at)
			VALUES ('batch-old', '/v1/chat/completions', '24h', 'in_progress', 'dep-a', 10, 4, 1000)`,
		`PRAGMA user_version = 2`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := sqlite.Open(t.Context(), path, &sqlite.Options{NowFunc: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, err := s.FindBatchByID(t.Context(), "batch-old")
	if err != nil {
		t.Fatal(err)
	}
	if b.RequestCounts.Completed != 4 || b.InputTokens != 0 || b.Usage != (sluice.Usage{}) {
		t.Errorf("got counts %+v, tokens %d, usage %+v; want 4 completed and no tokens", b.RequestCounts, b.InputTokens, b.Usage)
	}
	nb := &sluice.Batch{ID: "batch-new", Endpoint: "/v1/chat/completions", CompletionWindow: "24h",
		Status: sluice.StatusValidating, Deployment: "dep-a", InputTokens: 50, CreatedAt: time.Unix(2000, 0).UTC()}
	res, err := s.AdmitBatch(t.Context(), nb, sluice.AdmitLimits{Deployment: 100})
	if err != nil || !res.Admitted || res.Held != 50 {
		t.Errorf("admit after migration: held %d, admitted %t, err %v; want 50, true, nil", res.Held, res.Admitted, err)
	}
	if b.Project != sluice.DefaultProject {
		t.Errorf("a batch from before projects belongs to %q, want %q", b.Project, sluice.DefaultProject)
	}
}
