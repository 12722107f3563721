package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/blob/azure"
)

// openBucket opens the bucket that --blob names: "" for the data folder's objects,
// file:///ABS/DIR for another folder, azblob://CONTAINER[/PREFIX] for Azure Blob
// Storage with credentials from the environment (azureConfig).
func openBucket(ctx context.Context, loc, dataDir string, getenv func(string) string, logger *slog.Logger) (sluice.Bucket, error) {
	switch {
	case loc == "":
		return blob.OpenDir(filepath.Join(dataDir, "objects"))
	case strings.HasPrefix(loc, "file://"):
		u, err := url.Parse(loc)
		if err != nil || u.Host != "" || !filepath.IsAbs(u.Path) {
			return nil, fmt.Errorf("--blob %q: want file:///ABSOLUTE/PATH", loc)
		}
		return blob.OpenDir(u.Path)
	case strings.HasPrefix(loc, "azblob://"):
		cfg, err := azureConfig(loc, getenv)
		if err != nil {
			return nil, err
		}
		b, err := azure.Open(ctx, cfg, &azure.Options{Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("--blob %s: %w", loc, err)
		}
		return b, nil
	}
	return nil, fmt.Errorf("--blob %q: want azblob://CONTAINER[/PREFIX] or file:///PATH", loc)
}

// azureConfig reads the credentials of an azblob:// location from the variables the
// Azure CLI reads: AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT with
// AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN, or with neither Entra ID through
// azidentity's default chain (managed identity, workload identity, az login).
// AZURE_STORAGE_BLOB_ENDPOINT, when set, replaces https://ACCOUNT.blob.core.windows.net/.
func azureConfig(loc string, getenv func(string) string) (azure.Config, error) {
	container, prefix, err := azure.ParseLocation(loc)
	if err != nil {
		return azure.Config{}, fmt.Errorf("--blob: %w", err)
	}
	cfg := azure.Config{Container: container, Prefix: prefix}
	if cs := getenv("AZURE_STORAGE_CONNECTION_STRING"); cs != "" {
		cfg.ConnectionString = cs
		return cfg, nil
	}
	account := getenv("AZURE_STORAGE_ACCOUNT")
	cfg.ServiceURL = getenv("AZURE_STORAGE_BLOB_ENDPOINT")
	if cfg.ServiceURL == "" && account != "" {
		cfg.ServiceURL = "https://" + account + ".blob.core.windows.net/"
	}
	if cfg.ServiceURL == "" {
		return azure.Config{}, fmt.Errorf("--blob %s: set AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT (with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN, or neither for Entra ID)", loc)
	}
	cfg.AccountName, cfg.AccountKey, cfg.SAS = account, getenv("AZURE_STORAGE_KEY"), getenv("AZURE_STORAGE_SAS_TOKEN")
	if cfg.AccountKey == "" && cfg.SAS == "" {
		if cfg.Credential, err = azidentity.NewDefaultAzureCredential(nil); err != nil {
			return azure.Config{}, fmt.Errorf("--blob %s: Entra ID credential: %w", loc, err)
		}
	}
	return cfg, nil
}

// openBlobs returns the storage accounts blob-mode batches may use, nil when none are
// configured.
func openBlobs(accounts []StorageAccountConfig, logger *slog.Logger) (sluice.Blobs, error) {
	if len(accounts) == 0 {
		return nil, nil
	}
	var list []azure.AccountConfig
	for _, a := range accounts {
		ac := azure.AccountConfig{Name: a.Name, BlobEndpoint: a.BlobEndpoint, ConnectionString: a.ConnectionString,
			AccountKey: a.AccountKey, SAS: a.SAS}
		if a.ManagedIdentity {
			cred, err := azidentity.NewDefaultAzureCredential(nil)
			if err != nil {
				return nil, fmt.Errorf("storage account %s: managed identity: %w", a.Name, err)
			}
			ac.Credential = cred
		}
		list = append(list, ac)
	}
	return azure.NewAccounts(list, &azure.Options{Logger: logger})
}
