package azure_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob/azure"
	"github.com/sluice-batch/sluice/blob/azure/azuretest"
)

// Only URLs on a configured account pass; every other address is refused before any
// request, with the allowed accounts named.
func TestAccountsRefuseOtherURLs(t *testing.T) {
	t.Parallel()
	a, err := azure.NewAccounts([]azure.AccountConfig{
		{Name: "prodacct", AccountKey: devKey},
		{Name: "devstoreaccount1", BlobEndpoint: "http://127.0.0.1:10000/devstoreaccount1", AccountKey: devKey},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, ok := range []string{
		"https://prodacct.blob.core.windows.net/input/batch.jsonl",
		"https://PRODACCT.blob.core.windows.net/input/deep/path/batch.jsonl",
		"https://prodacct.blob.core.windows.net/output",
		"http://127.0.0.1:10000/devstoreaccount1/input/batch.jsonl",
	} {
		if err := a.Check(ok); err != nil {
			t.Errorf("Check(%q): %v, want it allowed", ok, err)
		}
	}
	for _, bad := range []string{
		"https://otheracct.blob.core.windows.net/input/batch.jsonl",           // another account
		"https://prodacct.blob.core.windows.net.evil.example/input/a.jsonl",   // a look-alike host
		"http://prodacct.blob.core.windows.net/input/batch.jsonl",             // another scheme
		"http://169.254.169.254/metadata/instance",                            // the metadata service
		"http://[fd00:ec2::254]/latest/meta-data",                             // an IPv6 metadata address
		"http://127.0.0.1:10000/otheraccount/input/batch.jsonl",               // an unconfigured emulator account
		"http://127.0.0.1:8080/v1/files",                                      // loopback, another port
		"http://localhost:10000/devstoreaccount1/input/batch.jsonl",           // the same port by another name
		"http://10.0.0.5/devstoreaccount1/input/batch.jsonl",                  // a private address
		"https://user:pw@prodacct.blob.core.windows.net/input/batch.jsonl",    // credentials in the URL
		"https://prodacct.blob.core.windows.net/input/batch.jsonl?sv=x&sig=y", // a SAS of the caller's
		"https://prodacct.blob.core.windows.net/IN_PUT/batch.jsonl",           // not a container name
		"file:///etc/passwd",
		"batch.jsonl",
		"",
	} {
		err := a.Check(bad)
		if sluice.ErrorKind(err) != sluice.KindInvalid {
			t.Errorf("Check(%q): %v, want kind invalid", bad, err)
			continue
		}
		if msg := sluice.ErrorMessage(err); !strings.Contains(msg, "prodacct (https://prodacct.blob.core.windows.net/)") {
			t.Errorf("Check(%q): message %q does not name the allowed accounts", bad, msg)
		}
	}
	if _, err := azure.NewAccounts([]azure.AccountConfig{{Name: "x"}}, nil); err == nil {
		t.Error("an account without a credential: want an error")
	}
}

// Against Azurite: a blob is read with If-Match on the ETag it had, a change is a
// conflict, a missing blob not found, and a write is whole.
func TestAccountsReadWrite(t *testing.T) {
	t.Parallel()
	conn := azuretest.ConnectionString(t)
	cont := azuretest.MustNewContainer(t, conn)
	ctx := context.Background()
	c, err := azblob.NewClientFromConnectionString(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateContainer(ctx, cont, nil); err != nil {
		t.Fatal(err)
	}
	base := strings.TrimSuffix(c.URL(), "/")
	a, err := azure.NewAccounts([]azure.AccountConfig{{Name: "devstoreaccount1", BlobEndpoint: base, ConnectionString: conn}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	in := base + "/" + cont + "/in/batch.jsonl"
	if n, err := a.Write(ctx, in, strings.NewReader("line one\nline two\n")); err != nil || n != 18 {
		t.Fatalf("write: %d, %v", n, err)
	}
	size, etag, err := a.Stat(ctx, in)
	if err != nil || size != 18 || etag == "" {
		t.Fatalf("stat: %d %q %v", size, etag, err)
	}
	rc, err := a.ReadRange(ctx, in, 5, 3, etag)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "one" {
		t.Errorf("range: got %q, want %q", got, "one")
	}
	if _, err := a.Write(ctx, in, strings.NewReader("changed\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ReadRange(ctx, in, 0, 3, etag); sluice.ErrorKind(err) != sluice.KindConflict {
		t.Errorf("read after a change: got %v, want kind conflict", err)
	}
	if _, _, err := a.Stat(ctx, base+"/"+cont+"/missing.jsonl"); sluice.ErrorKind(err) != sluice.KindNotFound {
		t.Errorf("stat of a missing blob: got %v, want kind not_found", err)
	}
	if _, _, err := a.Stat(ctx, base+"/nosuchcontainer/a.jsonl"); sluice.ErrorKind(err) != sluice.KindNotFound {
		t.Errorf("stat in a missing container: got %v, want kind not_found", err)
	}
	if _, err := a.Write(ctx, base+"/"+cont+"/folder/", strings.NewReader("x")); sluice.ErrorKind(err) != sluice.KindInvalid {
		t.Errorf("write to a folder URL: got %v, want kind invalid", err)
	}
}
