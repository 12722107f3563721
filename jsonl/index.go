package jsonl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/sluice-batch/sluice"
)

// indexMagic begins every index; its last byte is the format version.
var indexMagic = []byte("SLIX\x02")

// blockTokens, set in a block's entry count, says its entries end with a token count.
// Blocks written before token counts were indexed lack it, and read with Tokens 0.
const blockTokens = 1 << 9

// errCorruptIndex reports an index that is truncated or was not written by an
// IndexWriter.
var errCorruptIndex = errors.New("jsonl: corrupt index")

// An index holds one entry per request line of an input file, in blocks of
// sluice.ChunkLines entries, so that the lines of one chunk are one ranged read away.
//
// The form is the 5 bytes "SLIX\x02"; then the blocks, each the number of its entries
// as a uvarint and, per entry: the line minus the previous entry's line (0 before the
// first of the block), the offset minus the previous entry's end (offset plus length;
// 0 before the first of the block), the length, the length of the custom_id, all
// uvarints, the custom_id's bytes and the line's input tokens, a uvarint (present when
// the count has bit 9 set, which every block written now has); then the directory: the offset of each block and,
// last, the directory's own offset, each a little-endian uint64. A reader that knows how
// many blocks there are (the lines over sluice.ChunkLines, rounded up) finds the
// directory at the end, without a second read. For a scanned file an entry costs a few
// bytes plus its custom_id.

// IndexWriter writes an index as entries arrive, holding one block at most.
type IndexWriter struct {
	w       io.Writer
	block   []byte // the entries of the current block
	inBlock int
	off     int64 // bytes written to w
	dir     []uint64
	prev    Entry // the previous entry of the current block
	err     error
}

// NewIndexWriter returns an IndexWriter writing to w.
func NewIndexWriter(w io.Writer) *IndexWriter {
	return &IndexWriter{w: w, block: make([]byte, 0, 16<<10)}
}

// Add appends an entry. Entries must come in line and offset order.
func (iw *IndexWriter) Add(e Entry) error {
	if iw.err != nil {
		return iw.err
	}
	if iw.off == 0 {
		iw.write(indexMagic)
	}
	if iw.inBlock > 0 && (e.Line <= iw.prev.Line || e.Offset < iw.prev.Offset+int64(iw.prev.Length)) {
		iw.err = fmt.Errorf("jsonl: write index: entry for line %d at %d comes after line %d at %d", e.Line, e.Offset, iw.prev.Line, iw.prev.Offset)
		return iw.err
	}
	if e.Line < 0 || e.Offset < 0 || e.Length < 0 || e.Tokens < 0 {
		iw.err = fmt.Errorf("jsonl: write index: entry %+v has a negative field", e)
		return iw.err
	}
	var prevLine, prevEnd int64
	if iw.inBlock > 0 {
		prevLine, prevEnd = int64(iw.prev.Line), iw.prev.Offset+int64(iw.prev.Length)
	}
	b := iw.block
	b = binary.AppendUvarint(b, uint64(int64(e.Line)-prevLine))
	b = binary.AppendUvarint(b, uint64(e.Offset-prevEnd))
	b = binary.AppendUvarint(b, uint64(e.Length))
	b = binary.AppendUvarint(b, uint64(len(e.CustomID)))
	b = append(b, e.CustomID...)
	iw.block = binary.AppendUvarint(b, uint64(e.Tokens))
	iw.prev = e
	if iw.inBlock++; iw.inBlock == sluice.ChunkLines {
		iw.flush()
	}
	return iw.err
}

// flush writes the current block.
func (iw *IndexWriter) flush() {
	iw.dir = append(iw.dir, uint64(iw.off))
	var head [binary.MaxVarintLen64]byte
	iw.write(head[:binary.PutUvarint(head[:], uint64(iw.inBlock|blockTokens))])
	iw.write(iw.block)
	iw.block, iw.inBlock = iw.block[:0], 0
}

func (iw *IndexWriter) write(p []byte) {
	if iw.err != nil {
		return
	}
	n, err := iw.w.Write(p)
	iw.off += int64(n)
	if err != nil {
		iw.err = fmt.Errorf("jsonl: write index: %w", err)
	}
}

// Close writes the last block and the directory, and returns the index's size. The
// writer must not be used after.
func (iw *IndexWriter) Close() (int64, error) {
	if iw.off == 0 {
		iw.write(indexMagic)
	}
	if iw.inBlock > 0 {
		iw.flush()
	}
	dir := make([]byte, 0, 8*(len(iw.dir)+1))
	for _, o := range iw.dir {
		dir = binary.LittleEndian.AppendUint64(dir, o)
	}
	dir = binary.LittleEndian.AppendUint64(dir, uint64(iw.off))
	iw.write(dir)
	return iw.off, iw.err
}

// IndexBlocks returns how many blocks the index of a file with that many request lines
// has.
func IndexBlocks(requests int) int {
	return (requests + sluice.ChunkLines - 1) / sluice.ChunkLines
}

// IndexDirectorySize returns the size of the directory at the end of an index with that
// many blocks.
func IndexDirectorySize(blocks int) int64 { return 8 * int64(blocks+1) }

// Block locates one block of an index.
type Block struct {
	Offset int64
	Length int64
}

// ParseIndexDirectory reads the directory of an index of size bytes with the given
// number of blocks, dir being its last IndexDirectorySize(blocks) bytes.
func ParseIndexDirectory(dir []byte, size int64, blocks int) ([]Block, error) {
	if int64(len(dir)) != IndexDirectorySize(blocks) || size < int64(len(indexMagic))+int64(len(dir)) {
		return nil, fmt.Errorf("%w: a directory of %d bytes for %d blocks in %d bytes", errCorruptIndex, len(dir), blocks, size)
	}
	at := func(i int) int64 {
		v := binary.LittleEndian.Uint64(dir[8*i:])
		if v > math.MaxInt64 {
			return -1
		}
		return int64(v)
	}
	if end := at(blocks); end != size-int64(len(dir)) {
		return nil, fmt.Errorf("%w: the directory says it starts at %d, not %d", errCorruptIndex, end, size-int64(len(dir)))
	}
	out := make([]Block, blocks)
	prev := int64(len(indexMagic))
	for i := range blocks {
		o, next := at(i), at(i+1)
		if o != prev || next <= o {
			return nil, fmt.Errorf("%w: block %d at %d, then %d", errCorruptIndex, i, o, next)
		}
		out[i] = Block{Offset: o, Length: next - o}
		prev = next
	}
	return out, nil
}

// AppendBlock decodes one block of an index, the bytes a Block locates, appending its
// entries to dst.
func AppendBlock(dst []Entry, b []byte) ([]Entry, error) {
	r := bytes.NewReader(b)
	n, err := binary.ReadUvarint(r)
	withTokens := n&blockTokens != 0
	n &^= blockTokens
	if err != nil || n == 0 || n > sluice.ChunkLines {
		return dst, fmt.Errorf("%w: block of %d entries (%v)", errCorruptIndex, n, err)
	}
	var e Entry
	var prevEnd int64
	for i := range int(n) {
		var v [4]uint64
		for j := range v {
			if v[j], err = binary.ReadUvarint(r); err != nil {
				return dst, fmt.Errorf("%w: entry %d: %v", errCorruptIndex, i, err)
			}
		}
		dl, do, length, idLen := v[0], v[1], v[2], v[3]
		if dl > math.MaxInt32 || do > math.MaxInt64/2 || length > math.MaxInt32 || idLen > uint64(r.Len()) {
			return dst, fmt.Errorf("%w: entry %d out of range", errCorruptIndex, i)
		}
		pos := len(b) - r.Len()
		_, _ = r.Seek(int64(idLen), io.SeekCurrent) // idLen <= r.Len()
		e.Line += int(dl)
		e.Offset = prevEnd + int64(do)
		e.Length = int(length)
		e.CustomID = string(b[pos : pos+int(idLen)])
		if withTokens {
			tokens, err := binary.ReadUvarint(r)
			if err != nil || tokens > math.MaxInt32 {
				return dst, fmt.Errorf("%w: entry %d: tokens: %v", errCorruptIndex, i, err)
			}
			e.Tokens = int(tokens)
		}
		prevEnd = e.Offset + int64(e.Length)
		dst = append(dst, e)
	}
	if r.Len() != 0 {
		return dst, fmt.Errorf("%w: %d bytes after the block's entries", errCorruptIndex, r.Len())
	}
	return dst, nil
}
