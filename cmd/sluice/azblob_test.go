package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice/blob/azure/azuretest"
)

// With --blob azblob://..., uploads, their indexes and results are kept in the container
// (under the prefix), and a batch runs end to end as on the data folder.
func TestServeOnAzureBlob(t *testing.T) {
	t.Parallel()
	conn := azuretest.ConnectionString(t)
	container := azuretest.MustNewContainer(t, conn)
	c := MustRunMain(t, map[string]string{"AZURE_STORAGE_CONNECTION_STRING": conn}, "--blob", "azblob://"+container+"/sluice")

	const lines = 300
	in := c.mustUpload(chatLines(lines, defaultDeployment))
	b := c.waitBatch(c.mustCreateBatch(in.ID, "/v1/chat/completions").ID, terminal)
	if b.Status != "completed" || b.RequestCounts.Completed != lines || b.OutputFileID == nil || b.ErrorFileID == nil {
		t.Fatalf("got %s %+v, want completed %d/%d with output and error files", b.Status, b.RequestCounts, lines, lines)
	}
	results := parseResults(t, c.content(*b.OutputFileID))
	if len(results) != lines {
		t.Fatalf("got %d result lines, want %d", len(results), lines)
	}
	var want []string
	for i := range lines {
		want = append(want, fmt.Sprintf("line-%d", i))
	}
	slices.Sort(want)
	if got := customIDs(results); !slices.Equal(got, want) {
		t.Fatalf("custom_ids: got %v, want line-0 to line-%d once each", got, lines-1)
	}
	if got := c.content(in.ID); got != chatLines(lines, defaultDeployment) {
		t.Errorf("the input's content came back changed (%d bytes, want %d)", len(got), len(chatLines(lines, defaultDeployment)))
	}

	// The bytes are in the container; the batch's segments went once it finished.
	blobs := azuretest.MustListBlobs(t, conn, container)
	for _, want := range []string{"sluice/files/" + in.ID, "sluice/index/" + in.ID, "sluice/files/" + *b.OutputFileID, "sluice/files/" + *b.ErrorFileID} {
		if !slices.Contains(blobs, want) {
			t.Errorf("blob %s is missing; the container holds %q", want, blobs)
		}
	}
	for _, name := range blobs {
		if !strings.HasPrefix(name, "sluice/files/") && !strings.HasPrefix(name, "sluice/index/") {
			t.Errorf("blob %s is left in the container", name)
		}
	}
}

func TestAzureConfigFromEnv(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cfg, err := azureConfig("azblob://box/pre", env("AZURE_STORAGE_CONNECTION_STRING", "AccountName=a;AccountKey=k", "AZURE_STORAGE_ACCOUNT", "ignored"))
	if err != nil || cfg.ConnectionString != "AccountName=a;AccountKey=k" || cfg.Container != "box" || cfg.Prefix != "pre/" || cfg.ServiceURL != "" {
		t.Errorf("connection string: got %+v, %v", cfg, err)
	}
	cfg, err = azureConfig("azblob://box", env("AZURE_STORAGE_ACCOUNT", "acct", "AZURE_STORAGE_KEY", "k"))
	if err != nil || cfg.ServiceURL != "https://acct.blob.core.windows.net/" || cfg.AccountName != "acct" || cfg.AccountKey != "k" {
		t.Errorf("account and key: got %+v, %v", cfg, err)
	}
	cfg, err = azureConfig("azblob://box", env("AZURE_STORAGE_ACCOUNT", "acct", "AZURE_STORAGE_SAS_TOKEN", "sv=1&sig=x", "AZURE_STORAGE_BLOB_ENDPOINT", "http://127.0.0.1:1/acct"))
	if err != nil || cfg.ServiceURL != "http://127.0.0.1:1/acct" || cfg.SAS != "sv=1&sig=x" {
		t.Errorf("sas: got %+v, %v", cfg, err)
	}
	cfg, err = azureConfig("azblob://box", env("AZURE_STORAGE_ACCOUNT", "acct"))
	if err != nil || cfg.ServiceURL != "https://acct.blob.core.windows.net/" || cfg.Credential == nil {
		t.Errorf("entra id: got %+v, %v; want the default Azure credential", cfg, err)
	}
	if _, err := azureConfig("azblob://box", env()); err == nil || !strings.Contains(err.Error(), "AZURE_STORAGE_CONNECTION_STRING") {
		t.Errorf("no credentials: got %v, want an error naming AZURE_STORAGE_CONNECTION_STRING", err)
	}
	if _, err := azureConfig("azblob://B", env("AZURE_STORAGE_ACCOUNT", "acct")); err == nil || !strings.Contains(err.Error(), "container name") {
		t.Errorf("bad container: got %v, want an error about the container name", err)
	}
}

func TestOpenBucketLocations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noEnv := func(string) string { return "" }
	dir := t.TempDir()
	b, err := openBucket(ctx, "file://"+filepath.Join(dir, "elsewhere"), dir, noEnv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "files/x", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "elsewhere", "files", "x")); err != nil {
		t.Errorf("file:// bucket: %v", err)
	}
	for _, loc := range []string{"s3://bucket", "file://relative/path", "azblob://box"} {
		if _, err := openBucket(ctx, loc, dir, noEnv, nil); err == nil || !strings.Contains(err.Error(), "--blob") {
			t.Errorf("%s: got %v, want an error about --blob", loc, err)
		}
	}
}
