package jsonl_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice/jsonl"
)

// TestScannerLongLineMemory scans a file whose first line is 150 MB, written in
// 40 KiB pieces from one buffer, and checks that the scan allocates a few KiB, not
// the line.
func TestScannerLongLineMemory(t *testing.T) {
	// Not parallel: it reads the process-wide allocation counters, which tests
	// running beside it would add to.
	if testing.Short() {
		t.Skip("scans 150 MB")
	}
	const size = 150 << 20
	head := []byte(`{"custom_id":"big","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o","messages":[{"role":"user","content":"`)
	piece := []byte(strings.Repeat(`lorem ipsum \"dolor\" sit \u00e9 amet\n `, 1024))
	rest := []byte(`"}]}}` + "\n" + good("next") + "\n")
	entries := make([]jsonl.Entry, 0, 2)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	s := jsonl.NewScanner(&jsonl.ScanOptions{EntryFunc: func(e jsonl.Entry) error {
		entries = append(entries, e)
		return nil
	}})
	_, _ = s.Write(head)
	n := 0
	for n < size {
		_, _ = s.Write(piece)
		n += len(piece)
	}
	_, _ = s.Write(rest)
	sum, err := s.Close()
	runtime.ReadMemStats(&after)

	if err != nil || len(sum.Problems) != 0 {
		t.Fatalf("got problems %+v and error %v, want none", sum.Problems, err)
	}
	first := len(head) + n + len(`"}]}}`)
	want := []jsonl.Entry{
		{Line: 1, Offset: 0, Length: first, CustomID: "big"},
		{Line: 2, Offset: int64(first) + 1, Length: len(good("next")), CustomID: "next"},
	}
	if diff := cmp.Diff(want, entries); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
	alloc, mallocs := after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs
	t.Logf("a %d-byte line: %d bytes in %d allocations", first, alloc, mallocs)
	if alloc > 4<<20 {
		t.Errorf("got %d bytes allocated for a %d-byte line, want at most 4 MiB", alloc, first)
	}
}

// TestScannerAllocsPerLine checks that a scan allocates a few times per file, not
// per line: twice the lines may cost only the custom_id set's growth.
func TestScannerAllocsPerLine(t *testing.T) {
	// Not parallel: testing.AllocsPerRun reads the process-wide counters.
	file := func(n int) []byte {
		var b bytes.Buffer
		for i := range n {
			b.WriteString(chatLine(i))
			b.WriteByte('\n')
		}
		return b.Bytes()
	}
	allocs := func(data []byte) float64 {
		return testing.AllocsPerRun(3, func() {
			s := jsonl.NewScanner(nil)
			for p := data; len(p) > 0; {
				k := min(32<<10, len(p))
				_, _ = s.Write(p[:k])
				p = p[k:]
			}
			if sum, err := s.Close(); err != nil || len(sum.Problems) != 0 {
				t.Fatalf("got problems %+v and error %v, want none", sum.Problems, err)
			}
		})
	}
	small, large := allocs(file(10_000)), allocs(file(20_000))
	t.Logf("10,000 lines: %.0f allocations; 20,000 lines: %.0f", small, large)
	if perLine := (large - small) / 10_000; perLine > 0.001 {
		t.Errorf("got %.4f allocations per line, want at most 0.001", perLine)
	}
}
