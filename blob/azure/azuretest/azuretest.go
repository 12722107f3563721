// Package azuretest gives tests an Azure Blob Storage to run against: the Azurite that
// scripts/azurite.sh starts, and a container of their own in it.
package azuretest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
)

// EnvConnectionString names the variable holding the connection string of the Azurite
// to test against; scripts/azurite.sh sets it.
const EnvConnectionString = "SLUICE_TEST_AZURITE"

// EnvRequire names the variable that, set to 1, makes a missing Azurite a failure
// rather than a skip; make test sets it.
const EnvRequire = "SLUICE_REQUIRE_AZURITE"

// ConnectionString returns the connection string of the Azurite to test against. When
// none is set it skips the test, or fails it if EnvRequire is 1.
func ConnectionString(tb testing.TB) string {
	tb.Helper()
	conn := os.Getenv(EnvConnectionString)
	if conn == "" {
		msg := EnvConnectionString + " is not set: run the test under scripts/azurite.sh, e.g. bash scripts/azurite.sh go test ./blob/azure/"
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatal(msg + " (" + EnvRequire + "=1 requires Azurite)")
		}
		tb.Skip(msg)
	}
	return conn
}

// MustNewContainer returns the name of a container no other test uses (it does not create
// it) and deletes the container, with its blobs, when the test ends.
func MustNewContainer(tb testing.TB, conn string) string {
	tb.Helper()
	var r [6]byte
	_, _ = rand.Read(r[:])
	name := "test-" + hex.EncodeToString(r[:])
	tb.Cleanup(func() {
		c, err := azblob.NewClientFromConnectionString(conn, nil)
		if err != nil {
			tb.Error(err)
			return
		}
		if _, err := c.DeleteContainer(context.Background(), name, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerNotFound) {
			tb.Errorf("delete container %s: %v", name, err)
		}
	})
	return name
}

// MustListBlobs returns the names of the blobs in a container, in order.
func MustListBlobs(tb testing.TB, conn, container string) []string {
	tb.Helper()
	c, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		tb.Fatal(err)
	}
	var names []string
	pager := c.NewListBlobsFlatPager(container, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			tb.Fatalf("list %s: %v", container, err)
		}
		for _, it := range page.Segment.BlobItems {
			names = append(names, *it.Name)
		}
	}
	return names
}
