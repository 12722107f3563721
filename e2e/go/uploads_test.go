package e2e

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// A file sent through the Uploads API, in two parts added out of order and completed
// in order with its md5, becomes a file whose content is the parts in order: on /v1,
// on Azure's /openai/v1, and on /openai with an api-version.
func TestUploadInParts(t *testing.T) {
	t.Parallel()
	e := getEnv(t)
	for _, tc := range []struct {
		name     string
		client   openai.Client
		endpoint string
	}{
		{name: "openai", client: plainClient(e, e.key, option.WithMaxRetries(0)), endpoint: "/v1/chat/completions"},
		{name: "azure-v1", client: openai.NewClient(option.WithBaseURL(e.url+"/openai/v1/"), option.WithAPIKey(e.key),
			option.WithHeader("api-key", e.key), option.WithMaxRetries(0)), endpoint: "/v1/chat/completions"},
		{name: "azure", client: azureClient(e, e.key, option.WithMaxRetries(0)), endpoint: "/chat/completions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			data := inputJSONL(t, e.deployment, tc.endpoint)
			half := len(data) / 2

			u, err := tc.client.Uploads.New(ctx, openai.UploadNewParams{
				Bytes: int64(len(data)), Filename: "parts.jsonl", MimeType: "text/jsonl", Purpose: openai.FilePurposeBatch,
			})
			if err != nil {
				t.Fatalf("Uploads.New: %v", err)
			}
			if !strings.HasPrefix(u.ID, "upload_") || u.Status != openai.UploadStatusPending || u.Bytes != int64(len(data)) {
				t.Fatalf("Uploads.New: got %s, want a pending upload_ of %d bytes", u.RawJSON(), len(data))
			}

			second, err := tc.client.Uploads.Parts.New(ctx, u.ID, openai.UploadPartNewParams{Data: bytes.NewReader(data[half:])})
			if err != nil {
				t.Fatalf("Uploads.Parts.New (second half): %v", err)
			}
			first, err := tc.client.Uploads.Parts.New(ctx, u.ID, openai.UploadPartNewParams{Data: bytes.NewReader(data[:half])})
			if err != nil {
				t.Fatalf("Uploads.Parts.New (first half): %v", err)
			}
			for _, p := range []*openai.UploadPart{first, second} {
				if !strings.HasPrefix(p.ID, "part_") || p.UploadID != u.ID {
					t.Errorf("Uploads.Parts.New: got %s, want a part_ of %s", p.RawJSON(), u.ID)
				}
			}

			sum := md5.Sum(data)
			done, err := tc.client.Uploads.Complete(ctx, u.ID, openai.UploadCompleteParams{
				PartIDs: []string{first.ID, second.ID},
				Md5:     openai.String(hex.EncodeToString(sum[:])),
			})
			if err != nil {
				t.Fatalf("Uploads.Complete: %v", err)
			}
			if done.Status != openai.UploadStatusCompleted || !strings.HasPrefix(done.File.ID, "file-") ||
				done.File.Bytes != int64(len(data)) || done.File.Filename != "parts.jsonl" || done.File.Purpose != openai.FileObjectPurposeBatch {
				t.Fatalf("Uploads.Complete: got %s, want completed with a file parts.jsonl of %d bytes for batch", done.RawJSON(), len(data))
			}
			if got := content(t, ctx, tc.client, done.File.ID); got != string(data) {
				t.Errorf("content of %s: got %q, want the parts in order, %q", done.File.ID, got, data)
			}
		})
	}
}
