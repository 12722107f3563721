package jsonl

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sluice-batch/sluice"
)

// indexMagic begins every index; its last byte is the format version.
var indexMagic = []byte("SLIX\x01")

// errCorruptIndex reports an index that is truncated or was not written by WriteIndex.
var errCorruptIndex = errors.New("jsonl: corrupt index")

// WriteIndex writes entries to w in a compact binary form that ReadIndex reads back.
//
// The form is the 5 bytes "SLIX\x01", the number of entries as a uvarint, then per
// entry: the line minus the previous entry's line as a varint, the offset minus the
// previous entry's end (offset plus length; 0 before the first) as a varint, the
// length as a uvarint, the length of the custom_id as a uvarint and the custom_id's
// bytes. For the entries of a scan that is a few bytes plus the custom_id per line.
func WriteIndex(w io.Writer, entries []Entry) error {
	buf := make([]byte, 0, 64<<10)
	buf = append(buf, indexMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(entries)))
	prevLine, prevEnd := 0, int64(0)
	for i, e := range entries {
		if e.Length < 0 {
			return fmt.Errorf("jsonl: write index: entry %d has negative length %d", i, e.Length)
		}
		buf = binary.AppendVarint(buf, int64(e.Line-prevLine))
		buf = binary.AppendVarint(buf, e.Offset-prevEnd)
		buf = binary.AppendUvarint(buf, uint64(e.Length))
		buf = binary.AppendUvarint(buf, uint64(len(e.CustomID)))
		buf = append(buf, e.CustomID...)
		prevLine, prevEnd = e.Line, e.Offset+int64(e.Length)
		if len(buf) >= 60<<10 {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("jsonl: write index: %w", err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("jsonl: write index: %w", err)
	}
	return nil
}

// ReadIndex calls fn for each entry written by WriteIndex, in order, reading r as it
// goes without holding the whole index. r must hold the index and nothing after it.
// It returns an error for a truncated or corrupt index, or when reading r fails, and
// the first error fn returns, unwrapped.
func ReadIndex(r io.Reader, fn func(Entry) error) error {
	src, ok := r.(byteReader)
	if !ok {
		src = bufio.NewReader(r)
	}
	br := &indexReader{src: src}
	r = br
	magic := make([]byte, len(indexMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return br.corrupt("header", err)
	}
	if !bytes.Equal(magic, indexMagic) {
		return fmt.Errorf("%w: bad header %q", errCorruptIndex, magic)
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return br.corrupt("entry count", err)
	}
	var e Entry
	var prevEnd int64
	var id bytes.Buffer
	for i := uint64(0); i < count; i++ {
		dl, err := binary.ReadVarint(br)
		if err != nil {
			return br.corrupt(fmt.Sprintf("entry %d", i), err)
		}
		do, err := binary.ReadVarint(br)
		if err != nil {
			return br.corrupt(fmt.Sprintf("entry %d", i), err)
		}
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return br.corrupt(fmt.Sprintf("entry %d", i), err)
		}
		idLen, err := binary.ReadUvarint(br)
		if err != nil {
			return br.corrupt(fmt.Sprintf("entry %d", i), err)
		}
		if n > math.MaxInt32 || idLen > sluice.MaxFileBytes {
			return fmt.Errorf("%w: entry %d has length %d and custom_id length %d", errCorruptIndex, i, n, idLen)
		}
		id.Reset()
		// CopyN grows the buffer as bytes arrive, so a corrupt length cannot make a
		// large allocation up front.
		if _, err := io.CopyN(&id, r, int64(idLen)); err != nil {
			return br.corrupt(fmt.Sprintf("entry %d", i), err)
		}
		e.Line += int(dl)
		e.Offset = prevEnd + do
		e.Length = int(n)
		e.CustomID = id.String()
		prevEnd = e.Offset + int64(e.Length)
		if err := fn(e); err != nil {
			return err
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		if err != nil {
			return br.corrupt("end", err)
		}
		return fmt.Errorf("%w: bytes after entry %d", errCorruptIndex, count)
	}
	return nil
}

// byteReader is what ReadIndex reads from.
type byteReader interface {
	io.Reader
	io.ByteReader
}

// indexReader remembers the errors of the reader under an index, to tell them from
// the index's own corruption.
type indexReader struct {
	src byteReader
	err error // the last error src returned other than io.EOF
}

func (r *indexReader) Read(p []byte) (int, error) {
	n, err := r.src.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

func (r *indexReader) ReadByte() (byte, error) {
	b, err := r.src.ReadByte()
	if err != nil && err != io.EOF {
		r.err = err
	}
	return b, err
}

// corrupt wraps an error met while reading part of an index.
func (r *indexReader) corrupt(what string, err error) error {
	if r.err != nil {
		return fmt.Errorf("jsonl: read index: %s: %w", what, r.err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: truncated in %s", errCorruptIndex, what)
	}
	return fmt.Errorf("%w: %s: %v", errCorruptIndex, what, err)
}
