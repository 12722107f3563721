package blob_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/blob"
)

// BenchmarkComposeResults measures making a result file of 100,000 lines of 700 bytes
// (70 MB) from segments on the local folder: from one whole segment (a link), and from
// 400 ranges of four segments, as after restarts (copied in the kernel, then synced).
func BenchmarkComposeResults(b *testing.B) {
	const lines, lineBytes, groups = 100_000, 700, 400
	ctx := context.Background()
	d, err := blob.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	group := make([]byte, lines/groups*lineBytes)
	for i := range group {
		group[i] = 'x'
		if i%lineBytes == lineBytes-1 {
			group[i] = '\n'
		}
	}
	var whole []sluice.Part
	var split []sluice.Part
	sizes := map[string]int64{}
	for g := range groups {
		key := fmt.Sprintf("segments/b/owner-%d-output.jsonl", g%4)
		if err := d.Append(ctx, key, sizes[key], group); err != nil {
			b.Fatal(err)
		}
		split = append(split, sluice.Part{Key: key, Offset: sizes[key], Length: int64(len(group))})
		sizes[key] += int64(len(group))
		one := "segments/b/one-output.jsonl"
		if err := d.Append(ctx, one, int64(g*len(group)), group); err != nil {
			b.Fatal(err)
		}
	}
	whole = []sluice.Part{{Key: "segments/b/one-output.jsonl", Length: int64(groups * len(group))}}
	for _, bc := range []struct {
		name  string
		parts []sluice.Part
	}{{"one-segment", whole}, {"four-segments", split}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(lines * lineBytes))
			i := 0
			for b.Loop() {
				i++
				if _, err := d.Compose(ctx, fmt.Sprintf("files/out-%s-%d", bc.name, i), bc.parts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
