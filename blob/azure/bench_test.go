package azure_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
	"github.com/sluice-batch/sluice/blob/azure"
)

// BenchmarkBucket measures the calls on the data path of a batch, on the Azure bucket
// (against Azurite: scripts/azurite.sh) and, in the same run, on the folder bucket:
//
//   - put: an upload of 64 MiB;
//   - get-range: 1 MiB ranges at random places of it (what dispatch reads);
//   - append: 256 result lines of 700 bytes to a segment (what the committer writes
//     per group);
//   - compose: a result file of 100,000 lines of 700 bytes (70 MB) from one whole
//     segment, from 400 ranges of four segments (as after restarts), and from 100,000
//     extents of one line each taking turns between four segments (the worst case).
//
// Run it with
//
//	bash scripts/azurite.sh go test -run '^$' -bench . -benchtime 5x ./blob/azure/
func BenchmarkBucket(b *testing.B) {
	for _, bk := range []struct {
		name string
		open func(b *testing.B) sluice.Bucket
	}{
		{"dir", func(b *testing.B) sluice.Bucket {
			d, err := blob.OpenDir(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return d
		}},
		{"azure", func(b *testing.B) sluice.Bucket { return MustOpen(b, azure.Config{}, nil) }},
	} {
		b.Run(bk.name, func(b *testing.B) {
			bucket := bk.open(b)
			benchPutGet(b, bucket)
			benchCompose(b, bucket)
		})
	}
}

func benchPutGet(b *testing.B, bucket sluice.Bucket) {
	ctx := context.Background()
	const size = 64 << 20
	data := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	b.Run("put-64MiB", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if _, err := bucket.Put(ctx, "files/put", bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			drop(b, bucket, "files/put")
		}
	})
	if _, err := bucket.Put(ctx, "files/get", bytes.NewReader(data)); err != nil {
		b.Fatal(err)
	}
	b.Run("get-range-1MiB", func(b *testing.B) {
		const n = 1 << 20
		b.SetBytes(n)
		rnd := rand.New(rand.NewPCG(1, 2))
		for b.Loop() {
			rc, err := bucket.GetRange(ctx, "files/get", rnd.Int64N(size-n), n)
			if err != nil {
				b.Fatal(err)
			}
			if m, err := io.Copy(io.Discard, rc); err != nil || m != n {
				b.Fatalf("got %d bytes, %v; want %d", m, err, n)
			}
			rc.Close()
		}
	})
	b.Run("append-256-lines", func(b *testing.B) {
		group := bytes.Repeat([]byte(strings.Repeat("r", 699)+"\n"), 256)
		b.SetBytes(int64(len(group)))
		var off int64
		for b.Loop() {
			if err := bucket.Append(ctx, "segments/b/append", off, group); err != nil {
				b.Fatal(err)
			}
			off += int64(len(group))
		}
		drop(b, bucket, "segments/b/append")
	})
}

func benchCompose(b *testing.B, bucket sluice.Bucket) {
	const lines, lineBytes, groups = 100_000, 700, 400
	ctx := context.Background()
	group := make([]byte, lines/groups*lineBytes)
	for i := range group {
		group[i] = 'x'
		if i%lineBytes == lineBytes-1 {
			group[i] = '\n'
		}
	}
	var split, turns []sluice.Part
	sizes := map[string]int64{}
	for g := range groups {
		key := fmt.Sprintf("segments/b/owner-%d-output.jsonl", g%4)
		if err := bucket.Append(ctx, key, sizes[key], group); err != nil {
			b.Fatal(err)
		}
		split = append(split, sluice.Part{Key: key, Offset: sizes[key], Length: int64(len(group))})
		sizes[key] += int64(len(group))
		one := "segments/b/one-output.jsonl"
		if err := bucket.Append(ctx, one, int64(g*len(group)), group); err != nil {
			b.Fatal(err)
		}
	}
	// One line from each segment in turn: no two extents in a row are adjacent.
	offs := map[string]int64{}
	for i := range lines {
		key := fmt.Sprintf("segments/b/owner-%d-output.jsonl", i%4)
		turns = append(turns, sluice.Part{Key: key, Offset: offs[key], Length: lineBytes})
		offs[key] += lineBytes
	}
	whole := []sluice.Part{{Key: "segments/b/one-output.jsonl", Length: int64(groups * len(group))}}
	for _, bc := range []struct {
		name  string
		parts []sluice.Part
	}{{"compose-one-segment", whole}, {"compose-four-segments", split}, {"compose-100k-extents", turns}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(lines * lineBytes))
			for b.Loop() {
				if _, err := bucket.Compose(ctx, "files/out", bc.parts); err != nil {
					b.Fatal(err)
				}
				drop(b, bucket, "files/out")
			}
		})
	}
}

// drop deletes key outside the timed part, so that Azurite, which keeps every byte in
// memory, does not slow down as a run goes on.
func drop(b *testing.B, bucket sluice.Bucket, key string) {
	b.StopTimer()
	defer b.StartTimer()
	if err := bucket.Delete(context.Background(), key); err != nil {
		b.Fatal(err)
	}
}
