package jsonl_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

// writeIndex writes entries as an index and returns its bytes.
func writeIndex(tb testing.TB, entries []jsonl.Entry) []byte {
	tb.Helper()
	var buf bytes.Buffer
	iw := jsonl.NewIndexWriter(&buf)
	for _, e := range entries {
		if err := iw.Add(e); err != nil {
			tb.Fatalf("add %+v: %v", e, err)
		}
	}
	n, err := iw.Close()
	if err != nil {
		tb.Fatalf("close: %v", err)
	}
	if n != int64(buf.Len()) {
		tb.Fatalf("close: got size %d, wrote %d", n, buf.Len())
	}
	return buf.Bytes()
}

// readIndex reads every entry of an index of that many entries the way the engine
// does: the directory from the end, then each block.
func readIndex(data []byte, entries int) ([]jsonl.Entry, error) {
	blocks := jsonl.IndexBlocks(entries)
	size := int64(len(data))
	dirSize := jsonl.IndexDirectorySize(blocks)
	if dirSize > size {
		return nil, fmt.Errorf("index of %d bytes is shorter than its directory", size)
	}
	dir, err := jsonl.ParseIndexDirectory(data[size-dirSize:], size, blocks)
	if err != nil {
		return nil, err
	}
	var got []jsonl.Entry
	for i, b := range dir {
		n := len(got)
		if got, err = jsonl.AppendBlock(got, data[b.Offset:b.Offset+b.Length]); err != nil {
			return nil, err
		}
		if want := min(sluice.ChunkLines, entries-i*sluice.ChunkLines); len(got)-n != want {
			return nil, fmt.Errorf("block %d: got %d entries, want %d", i, len(got)-n, want)
		}
	}
	return got, nil
}

// entriesOf returns n entries of lines laid out as a scan of a file would find them.
func entriesOf(n int) []jsonl.Entry {
	out := make([]jsonl.Entry, n)
	off := int64(3) // a BOM
	for i := range out {
		id := fmt.Sprintf("req-%d", i)
		if i%7 == 3 {
			id = "ünï\"code-" + strings.Repeat("k", i%300)
		}
		line := i + 1 + i/10 // blank lines now and then
		out[i] = jsonl.Entry{Line: line, Offset: off, Length: 100 + i%50, CustomID: id, Tokens: i * 37 % 5000}
		off += int64(out[i].Length) + 1 + int64(i%3) // newlines, CRs, blank lines
	}
	return out
}

func TestIndexRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, sluice.ChunkLines - 1, sluice.ChunkLines, sluice.ChunkLines + 1, 3*sluice.ChunkLines + 17} {
		t.Run(fmt.Sprintf("entries=%d", n), func(t *testing.T) {
			t.Parallel()
			entries := entriesOf(n)
			got, err := readIndex(writeIndex(t, entries), n)
			if err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			if diff := cmp.Diff(entries, got, cmpEmpty); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

var cmpEmpty = cmp.Comparer(func(a, b []jsonl.Entry) bool {
	return len(a) == 0 && len(b) == 0 || cmp.Equal([]jsonl.Entry(a), []jsonl.Entry(b))
})

// The index costs a few bytes per line beyond its custom_id: small enough to read a
// chunk's block in one go.
func TestIndexCompact(t *testing.T) {
	t.Parallel()
	entries := make([]jsonl.Entry, 1000)
	for i := range entries {
		entries[i] = jsonl.Entry{Line: i + 1, Offset: int64(i) * 101, Length: 100, CustomID: "req-0000", Tokens: 1000}
	}
	data := writeIndex(t, entries)
	if got, want := len(data), 1000*(6+len("req-0000"))+64; got > want {
		t.Errorf("got %d bytes, want at most %d", got, want)
	}
}

// A block written before token counts were indexed has no count flag and no counts:
// its entries read with Tokens 0.
func TestIndexBlockWithoutTokens(t *testing.T) {
	t.Parallel()
	var b []byte
	b = binary.AppendUvarint(b, 2) // two entries, no token flag
	for _, v := range []uint64{5, 10, 20, 3} {
		b = binary.AppendUvarint(b, v)
	}
	b = append(b, "abc"...)
	for _, v := range []uint64{1, 1, 30, 1} {
		b = binary.AppendUvarint(b, v)
	}
	b = append(b, "d"...)
	got, err := jsonl.AppendBlock(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	want := []jsonl.Entry{{Line: 5, Offset: 10, Length: 20, CustomID: "abc"}, {Line: 6, Offset: 31, Length: 30, CustomID: "d"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("entries (-want +got):\n%s", diff)
	}
}

func TestIndexCorrupt(t *testing.T) {
	t.Parallel()
	const n = 2*sluice.ChunkLines + 5
	full := writeIndex(t, entriesOf(n))
	for cut := range len(full) {
		if _, err := readIndex(full[:cut], n); err == nil {
			t.Errorf("truncated to %d of %d bytes: got nil error, want one", cut, len(full))
		}
	}
	flip := func(at int) []byte {
		b := bytes.Clone(full)
		b[at] ^= 0xff
		return b
	}
	tests := []struct {
		name    string
		data    []byte
		entries int
	}{
		{"trailing-bytes", append(bytes.Clone(full), 0), n},
		{"wrong-block-count", full, n + sluice.ChunkLines},
		{"directory-offset", flip(len(full) - 1), n},
		{"block-offset", flip(len(full) - 9), n},
		{"block-count", flip(5), n},
		{"empty", nil, 0},
		{"huge-custom-id-length", append([]byte("SLIX\x02\x01\x01\x02\x01\xff\xff\xff\xff\x0f"), dirOf(5, 15)...), 1},
		{"varint-overflow", append([]byte("SLIX\x02\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"), dirOf(5, 17)...), 1},
		{"too-many-entries", append([]byte("SLIX\x02\x81\x02\x01\x01\x01\x00"), dirOf(5, 11)...), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := readIndex(tc.data, tc.entries); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}

// dirOf returns a directory of little-endian offsets.
func dirOf(offsets ...uint64) []byte {
	var b []byte
	for _, o := range offsets {
		for i := range 8 {
			b = append(b, byte(o>>(8*i)))
		}
	}
	return b
}

func TestIndexWriterErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		entries []jsonl.Entry
	}{
		{"negative-length", []jsonl.Entry{{Line: 1, Length: -1}}},
		{"line-backwards", []jsonl.Entry{{Line: 2, Offset: 0, Length: 1}, {Line: 1, Offset: 5, Length: 1}}},
		{"offset-overlaps", []jsonl.Entry{{Line: 1, Offset: 0, Length: 10}, {Line: 2, Offset: 5, Length: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			iw := jsonl.NewIndexWriter(&bytes.Buffer{})
			var err error
			for _, e := range tc.entries {
				if err = iw.Add(e); err != nil {
					break
				}
			}
			if err == nil {
				t.Fatalf("got nil error, want one")
			}
			if _, cerr := iw.Close(); cerr == nil {
				t.Errorf("close after an error: got nil error, want one")
			}
		})
	}

	failing := errors.New("disk on fire")
	iw := jsonl.NewIndexWriter(failWriter{failing})
	for _, e := range entriesOf(sluice.ChunkLines + 1) {
		if err := iw.Add(e); err != nil {
			if !errors.Is(err, failing) {
				t.Fatalf("got error %v, want it to wrap %v", err, failing)
			}
			break
		}
	}
	if _, err := iw.Close(); !errors.Is(err, failing) {
		t.Errorf("close: got error %v, want it to wrap %v", err, failing)
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
