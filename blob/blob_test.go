package blob_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/blob/blobtest"
)

func TestDir(t *testing.T) {
	t.Parallel()
	newDir := func(t *testing.T) sluice.Bucket {
		d, err := blob.OpenDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	blobtest.Run(t, newDir)
}

func TestDirRejectsEscapingKeys(t *testing.T) {
	t.Parallel()
	d, err := blob.OpenDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"../x", "/etc/passwd", "a/../../b", "", ".tmp/x", `a\b`} {
		if _, err := d.Put(context.Background(), key, strings.NewReader("x")); err == nil {
			t.Errorf("put %q: got nil error, want one", key)
		}
	}
}

func TestMem(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) sluice.Bucket { return blob.NewMem() })
}

// A compose repeated after a crash links the same segment again: no temporary name is
// left behind in the folder.
func TestDirComposeTwiceLeavesNoTemporary(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d, err := blob.OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := d.Append(ctx, "segments/b/s", 0, []byte("x\n")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := d.Compose(ctx, "files/out", []sluice.Part{{Key: "segments/b/s", Length: 2}}); err != nil {
			t.Fatal(err)
		}
	}
	left, err := os.ReadDir(filepath.Join(root, ".tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("got %d files left in .tmp, want none", len(left))
	}
}
