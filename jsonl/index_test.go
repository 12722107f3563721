package jsonl_test

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/sluice-batch/sluice/jsonl"
)

func readAll(r io.Reader) ([]jsonl.Entry, error) {
	var got []jsonl.Entry
	err := jsonl.ReadIndex(r, func(e jsonl.Entry) error {
		got = append(got, e)
		return nil
	})
	return got, err
}

func indexCases(tb testing.TB) map[string][]jsonl.Entry {
	tb.Helper()
	scanned := scan(tb, []byte("\xEF\xBB\xBF"+lines(good("a"), "", good("ünï\"code"), good(strings.Repeat("k", 300)))+"\r\n"+good("z")), 0)
	return map[string][]jsonl.Entry{
		"empty":   nil,
		"scanned": scanned.Entries,
		"unordered": {
			{Line: 9, Offset: 1 << 40, Length: 0, CustomID: ""},
			{Line: 2, Offset: 5, Length: 1 << 30, CustomID: "\x00\xff"},
			{Line: -1, Offset: -3, Length: 7, CustomID: "x"},
		},
	}
}

func TestIndexRoundTrip(t *testing.T) {
	t.Parallel()
	for name, entries := range indexCases(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := jsonl.WriteIndex(&buf, entries); err != nil {
				t.Fatalf("got error %v, want nil", err)
			}
			for _, r := range []io.Reader{bytes.NewReader(buf.Bytes()), iotest.OneByteReader(bytes.NewReader(buf.Bytes()))} {
				got, err := readAll(r)
				if err != nil {
					t.Fatalf("got error %v, want nil", err)
				}
				if diff := cmp.Diff(entries, got); diff != "" {
					t.Errorf("entries (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestIndexCompact(t *testing.T) {
	t.Parallel()
	entries := make([]jsonl.Entry, 1000)
	for i := range entries {
		entries[i] = jsonl.Entry{Line: i + 1, Offset: int64(i) * 101, Length: 100, CustomID: "req-0000"}
	}
	var buf bytes.Buffer
	if err := jsonl.WriteIndex(&buf, entries); err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	if got, want := buf.Len(), 1000*(4+len("req-0000"))+16; got > want {
		t.Errorf("got %d bytes, want at most %d", got, want)
	}
}

func TestIndexCorrupt(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := jsonl.WriteIndex(&buf, indexCases(t)["scanned"]); err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	full := buf.Bytes()
	for n := range len(full) {
		if _, err := readAll(bytes.NewReader(full[:n])); err == nil {
			t.Errorf("truncated to %d of %d bytes: got nil error, want one", n, len(full))
		}
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"trailing-bytes", append(bytes.Clone(full), 0)},
		{"bad-header", append([]byte("XXXX"), full[4:]...)},
		{"empty", nil},
		{"huge-custom-id-length", []byte("SLIX\x01\x01\x02\x02\x01\xff\xff\xff\xff\x0f")},
		{"varint-overflow", []byte("SLIX\x01\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := readAll(bytes.NewReader(tc.data)); err == nil {
				t.Errorf("got nil error, want one")
			}
		})
	}
}

func TestIndexErrors(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	if err := jsonl.WriteIndex(&buf, indexCases(t)["scanned"]); err != nil {
		t.Fatalf("got error %v, want nil", err)
	}
	stop := errors.New("stop")
	calls := 0
	err := jsonl.ReadIndex(bytes.NewReader(buf.Bytes()), func(jsonl.Entry) error {
		calls++
		return stop
	})
	if err != stop || calls != 1 {
		t.Errorf("got error %v after %d calls, want %v after 1", err, calls, stop)
	}

	failing := errors.New("disk on fire")
	err = jsonl.ReadIndex(iotest.ErrReader(failing), func(jsonl.Entry) error { return nil })
	if !errors.Is(err, failing) {
		t.Errorf("got error %v, want it to wrap %v", err, failing)
	}

	err = jsonl.WriteIndex(io.Discard, []jsonl.Entry{{Length: -1}})
	if err == nil {
		t.Errorf("got nil error for a negative length, want one")
	}
}
