package azure

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/sluice-batch/sluice"
)

func TestCoalesce(t *testing.T) {
	t.Parallel()
	got, total := coalesce("p/", []sluice.Part{
		{Key: "a", Offset: 0, Length: 3}, {Key: "a", Offset: 3, Length: 2}, // joined
		{Key: "b", Offset: 5, Length: 0}, // empty: dropped
		{Key: "a", Offset: 5, Length: 1}, // still adjacent to the run of a
		{Key: "b", Offset: 0, Length: 4},
		{Key: "a", Offset: 7, Length: 1}, // a gap: a new range
	})
	want := []rng{{name: "p/a", off: 0, n: 6}, {name: "p/b", off: 0, n: 4}, {name: "p/a", off: 7, n: 1}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(rng{})); diff != "" {
		t.Errorf("ranges (-want +got):\n%s", diff)
	}
	if total != 11 {
		t.Errorf("got total %d, want 11", total)
	}
}

func TestPlan(t *testing.T) {
	t.Parallel()
	ranges := []rng{{name: "a", off: 0, n: 3}, {name: "b", off: 10, n: 25}, {name: "a", off: 3, n: 4}, {name: "c", off: 0, n: 2}}
	t.Run("packed", func(t *testing.T) {
		t.Parallel()
		blocks, err := plan(ranges, 10, -1, 100, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := []block{
			{size: 10, slices: []rng{{name: "a", n: 3}, {name: "b", off: 10, n: 7, blockAt: 3}}},
			{size: 10, slices: []rng{{name: "b", off: 17, n: 10}}},
			{size: 10, slices: []rng{{name: "b", off: 27, n: 8}, {name: "a", off: 3, n: 2, blockAt: 8}}},
			{size: 4, slices: []rng{{name: "a", off: 5, n: 2}, {name: "c", n: 2, blockAt: 2}}},
		}
		if diff := cmp.Diff(want, blocks, cmp.AllowUnexported(rng{}, block{})); diff != "" {
			t.Errorf("blocks (-want +got):\n%s", diff)
		}
	})
	t.Run("server-copy", func(t *testing.T) {
		t.Parallel()
		// b is long enough to copy, in pieces of at most 12; the rest is packed.
		blocks, err := plan(ranges, 10, 20, 12, 100)
		if err != nil {
			t.Fatal(err)
		}
		want := []block{
			{size: 3, slices: []rng{{name: "a", n: 3}}},
			{fromURL: true, size: 12, slices: []rng{{name: "b", off: 10, n: 12}}},
			{fromURL: true, size: 12, slices: []rng{{name: "b", off: 22, n: 12}}},
			{fromURL: true, size: 1, slices: []rng{{name: "b", off: 34, n: 1}}},
			{size: 6, slices: []rng{{name: "a", off: 3, n: 4}, {name: "c", n: 2, blockAt: 4}}},
		}
		if diff := cmp.Diff(want, blocks, cmp.AllowUnexported(rng{}, block{})); diff != "" {
			t.Errorf("blocks (-want +got):\n%s", diff)
		}
	})
	t.Run("over-the-limit-copies-less", func(t *testing.T) {
		t.Parallel()
		// Copying b takes 5 blocks; packing everything takes 4, which fits.
		blocks, err := plan(ranges, 10, 20, 12, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range blocks {
			if b.fromURL {
				t.Errorf("got a copied block %+v, want everything packed", b)
			}
		}
		if len(blocks) != 4 {
			t.Errorf("got %d blocks, want 4", len(blocks))
		}
	})
	t.Run("too-large", func(t *testing.T) {
		t.Parallel()
		if _, err := plan(ranges, 10, -1, 12, 3); err == nil {
			t.Error("got nil error, want one: 34 bytes need 4 blocks of 10")
		}
	})
}

// Many small extents of a few objects fit in the block limit however they interleave.
func TestPlanManyExtents(t *testing.T) {
	t.Parallel()
	var ranges []rng
	offs := map[string]int64{}
	for i := range 100_000 {
		name := []string{"a", "b", "c", "d"}[i%4]
		ranges = append(ranges, rng{name: name, off: offs[name], n: 700})
		offs[name] += 700
	}
	blocks, err := plan(ranges, defaultBlockSize, defaultServerCopyMin, maxCopyBytes, maxBlocks)
	if err != nil {
		t.Fatal(err)
	}
	if want := (100_000*700 + defaultBlockSize - 1) / defaultBlockSize; len(blocks) != want {
		t.Errorf("got %d blocks, want %d", len(blocks), want)
	}
}
