package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"testing"
)

// gguf is what the test reads back of a file: its metadata and tensor table.
type gguf struct {
	meta    map[string]any
	tensors []tensorInfo
	data    []byte // from the aligned start of the tensor data to the end
}

type tensorInfo struct {
	name   string
	dims   []uint64
	typ    uint32
	offset uint64
}

// decode parses a GGUF file as a reader that knows nothing of how Write made it would:
// every value is read by the type the file gives.
func decode(t *testing.T, b []byte) *gguf {
	t.Helper()
	r := bytes.NewReader(b)
	get := func(v any) {
		t.Helper()
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			t.Fatalf("read %T at %d: %v", v, len(b)-r.Len(), err)
		}
	}
	str := func() string {
		var n uint64
		get(&n)
		s := make([]byte, n)
		if _, err := io.ReadFull(r, s); err != nil {
			t.Fatal(err)
		}
		return string(s)
	}
	var scalar func(typ uint32) any
	scalar = func(typ uint32) any {
		switch typ {
		case typeUint32:
			var v uint32
			get(&v)
			return v
		case typeInt32:
			var v int32
			get(&v)
			return v
		case typeFloat32:
			var v float32
			get(&v)
			return v
		case typeBool:
			var v uint8
			get(&v)
			return v == 1
		case typeString:
			return str()
		case typeArray:
			var elem uint32
			var n uint64
			get(&elem)
			get(&n)
			a := make([]any, n)
			for i := range a {
				a[i] = scalar(elem)
			}
			return a
		}
		t.Fatalf("unknown value type %d", typ)
		return nil
	}

	var magic [4]byte
	var version uint32
	var nTensors, nMeta uint64
	get(&magic)
	get(&version)
	get(&nTensors)
	get(&nMeta)
	if string(magic[:]) != "GGUF" || version != 3 {
		t.Fatalf("got magic %q version %d, want GGUF 3", magic, version)
	}
	g := &gguf{meta: map[string]any{}}
	for range nMeta {
		key := str()
		var typ uint32
		get(&typ)
		g.meta[key] = scalar(typ)
	}
	for range nTensors {
		ti := tensorInfo{name: str()}
		var nd uint32
		get(&nd)
		ti.dims = make([]uint64, nd)
		for i := range ti.dims {
			get(&ti.dims[i])
		}
		get(&ti.typ)
		get(&ti.offset)
		g.tensors = append(g.tensors, ti)
	}
	start := align(uint64(len(b) - r.Len()))
	g.data = b[start:]
	return g
}

func TestWrite(t *testing.T) {
	t.Parallel()
	s := Shape{Dim: 64, Layers: 2, FF: 128, Heads: 4, Context: 4096, Seed: 1}
	var buf bytes.Buffer
	n, err := Write(&buf, s)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("Write returned %d bytes, wrote %d", n, buf.Len())
	}
	g := decode(t, buf.Bytes())

	for key, want := range map[string]any{
		"general.architecture":          "llama",
		"general.alignment":             uint32(alignment),
		"llama.embedding_length":        uint32(64),
		"llama.block_count":             uint32(2),
		"llama.attention.head_count":    uint32(4),
		"llama.attention.head_count_kv": uint32(4),
		"llama.rope.dimension_count":    uint32(16),
		"tokenizer.ggml.model":          "llama",
		"tokenizer.ggml.add_bos_token":  true,
		"tokenizer.chat_template":       chatTemplate,
	} {
		if got := g.meta[key]; got != want {
			t.Errorf("%s: got %v, want %v", key, got, want)
		}
	}
	tokens, _ := g.meta["tokenizer.ggml.tokens"].([]any)
	vocabSize, _ := g.meta["llama.vocab_size"].(uint32)
	if len(tokens) == 0 || uint32(len(tokens)) != vocabSize {
		t.Fatalf("got %d tokens, vocab_size %d", len(tokens), vocabSize)
	}
	for _, key := range []string{"tokenizer.ggml.scores", "tokenizer.ggml.token_type"} {
		if a, _ := g.meta[key].([]any); len(a) != len(tokens) {
			t.Errorf("%s: got %d entries, want %d", key, len(a), len(tokens))
		}
	}
	for i, want := range []string{"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<0x00>"} {
		if tokens[i] != want {
			t.Errorf("token %d: got %q, want %q", i, tokens[i], want)
		}
	}

	// Every tensor the llama architecture needs, each where the table says, aligned,
	// and the data ends with the last one.
	if want := 1 + 9*2 + 2; len(g.tensors) != want {
		t.Fatalf("got %d tensors, want %d", len(g.tensors), want)
	}
	var end uint64
	byName := map[string]tensorInfo{}
	for _, ti := range g.tensors {
		byName[ti.name] = ti
		if ti.typ != 0 || ti.offset%alignment != 0 || ti.offset < end {
			t.Errorf("%s: type %d at offset %d after %d", ti.name, ti.typ, ti.offset, end)
		}
		size := uint64(4)
		for _, d := range ti.dims {
			size *= d
		}
		end = align(ti.offset + size)
	}
	if uint64(len(g.data)) != end {
		t.Errorf("got %d bytes of tensor data, want %d", len(g.data), end)
	}
	for _, name := range []string{"token_embd.weight", "blk.1.ffn_down.weight", "output_norm.weight", "output.weight"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("no tensor %s", name)
		}
	}
	if got, want := byName["blk.0.ffn_down.weight"].dims, []uint64{128, 64}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ffn_down dims: got %v, want %v", got, want)
	}

	// The special tokens' rows of the output layer are zero, the others not.
	out := byName["output.weight"]
	row := func(i int) []float32 {
		v := make([]float32, 64)
		for j := range v {
			off := out.offset + uint64(4*(i*64+j))
			v[j] = math.Float32frombits(binary.LittleEndian.Uint32(g.data[off:]))
		}
		return v
	}
	for _, i := range []int{0, 2, 4, 260} {
		for _, x := range row(i) {
			if x != 0 {
				t.Fatalf("output row %d (%v) is not zero", i, tokens[i])
			}
		}
	}
	nonzero := false
	for _, x := range row(len(tokens) - 1) {
		nonzero = nonzero || x != 0
	}
	if !nonzero {
		t.Error("the last token's output row is zero")
	}

	// The same shape and seed make the same bytes.
	var again bytes.Buffer
	if _, err := Write(&again, s); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two writes of one shape and seed differ")
	}
}

func TestWriteRefusesBadShapes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		s    Shape
	}{
		{"zero-layers", Shape{Dim: 64, FF: 128, Heads: 4, Context: 64}},
		{"dim-not-multiple-of-heads", Shape{Dim: 60, Layers: 1, FF: 128, Heads: 8, Context: 64}},
		{"heads-not-multiple-of-kvheads", Shape{Dim: 64, Layers: 1, FF: 128, Heads: 4, KVHeads: 3, Context: 64}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Write(io.Discard, tc.s); err == nil {
				t.Error("got no error")
			}
		})
	}
}
