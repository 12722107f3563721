// Command gguf writes a model for a real inference engine to run in tests: a llama
// architecture GGUF (version 3, every tensor F32) with random weights, a small
// SentencePiece vocabulary that falls back to bytes, and a ChatML chat template.
//
// Nothing is downloaded: the weights are drawn from a seeded generator, so the same
// flags make the same file. The text the model writes is gibberish, but llama.cpp
// (inside Ollama, scripts/ollama.sh) runs it as it runs any model, so latency,
// concurrency, usage and finish reasons are real. The rows of the output layer for the
// special tokens are zero, so end-of-sequence is practically never drawn and a request
// runs to its max_tokens.
//
//	go run ./test/gguf -o tiny.gguf                                  # 64 wide, 2 layers, 0.6 MB
//	go run ./test/gguf -o small.gguf -dim 512 -layers 8 -ff 1376 -heads 8   # 103 MB
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
)

// Shape says how big a model is.
type Shape struct {
	Dim, Layers, FF, Heads, KVHeads, Context int
	Seed                                     uint64
	// LogitStd is the spread of the output logits. At 3 the model rarely repeats a
	// token; near 5 it repeats one often enough for Ollama to cut a long answer short.
	LogitStd float64
}

func main() {
	s := Shape{}
	out := flag.String("o", "tiny.gguf", "the file to write")
	flag.IntVar(&s.Dim, "dim", 64, "embedding width")
	flag.IntVar(&s.Layers, "layers", 2, "transformer blocks")
	flag.IntVar(&s.FF, "ff", 128, "feed-forward width")
	flag.IntVar(&s.Heads, "heads", 4, "attention heads")
	flag.IntVar(&s.KVHeads, "kvheads", 0, "key/value heads (0: as many as -heads)")
	flag.IntVar(&s.Context, "ctx", 4096, "context length")
	flag.Uint64Var(&s.Seed, "seed", 1, "seed of the weights")
	flag.Float64Var(&s.LogitStd, "logit-std", 3, "spread of the output logits")
	flag.Parse()

	if err := writeFile(*out, s); err != nil {
		fmt.Fprintln(os.Stderr, "gguf:", err)
		os.Exit(1)
	}
}

func writeFile(name string, s Shape) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	n, err := Write(f, s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	fmt.Printf("wrote %s: %d bytes\n", name, n)
	return nil
}

// GGUF metadata value types.
const (
	typeUint32  = 4
	typeInt32   = 5
	typeFloat32 = 6
	typeBool    = 7
	typeString  = 8
	typeArray   = 9
)

// alignment of the tensor data, in bytes (general.alignment).
const alignment = 32

// chatTemplate is ChatML, byte for byte the template Ollama recognises as "chatml",
// so its chat endpoint formats messages with <|im_start|> and <|im_end|>.
const chatTemplate = "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}" +
	"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"

// Token types of the SentencePiece vocabulary.
const (
	tokenNormal  = 1
	tokenUnknown = 2
	tokenControl = 3
	tokenByte    = 6
)

type vocab struct {
	tokens []string
	scores []float32
	types  []int32
}

func (v *vocab) add(tok string, score float32, typ int32) {
	v.tokens = append(v.tokens, tok)
	v.scores = append(v.scores, score)
	v.types = append(v.types, typ)
}

// newVocab returns the vocabulary and how many of its first tokens are special
// (control and byte tokens), which the model should not write.
func newVocab() (*vocab, int) {
	v := &vocab{}
	v.add("<unk>", 0, tokenUnknown)
	v.add("<s>", 0, tokenControl)
	v.add("</s>", 0, tokenControl)
	v.add("<|im_start|>", 0, tokenControl)
	v.add("<|im_end|>", 0, tokenControl)
	for b := range 256 {
		v.add(fmt.Sprintf("<0x%02X>", b), 0, tokenByte)
	}
	special := len(v.tokens)
	seen := map[string]bool{}
	piece := func(p string) {
		if !seen[p] {
			seen[p] = true
			// Longer pieces score higher, so the tokenizer prefers them.
			v.add(p, float32(len(p))-float32(len(v.tokens))/1000, tokenNormal)
		}
	}
	const space = "\u2581" // SentencePiece's word boundary
	piece(space)
	for c := 'a'; c <= 'z'; c++ {
		piece(space + string(c))
	}
	for c := '!'; c <= '~'; c++ {
		piece(string(c))
	}
	for _, p := range []string{"th", "he", "in", "er", "an", "re", "on", "at", "en", "ed", "is", "it", "or", "es",
		space + "the", space + "and", space + "of", space + "to", space + "in", space + "is", space + "it",
		space + "a", space + "hello", space + "world", space + "batch", space + "request"} {
		piece(p)
	}
	return v, special
}

type tensor struct {
	name string
	dims []uint64 // innermost (contiguous) first, as ggml orders them
	data []float32
}

// Write writes the model of shape s to w and returns how many bytes it wrote.
func Write(w io.Writer, s Shape) (int64, error) {
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	switch {
	case s.Dim <= 0 || s.Layers <= 0 || s.FF <= 0 || s.Heads <= 0 || s.Context <= 0:
		return 0, errors.New("dim, layers, ff, heads and ctx must be positive")
	case s.Dim%s.Heads != 0:
		return 0, fmt.Errorf("dim %d is not a multiple of heads %d", s.Dim, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return 0, fmt.Errorf("heads %d is not a multiple of kvheads %d", s.Heads, s.KVHeads)
	}
	if s.LogitStd == 0 {
		s.LogitStd = 3
	}
	voc, special := newVocab()
	n := len(voc.tokens)
	headDim := s.Dim / s.Heads
	kvDim := s.KVHeads * headDim

	rng := rand.New(rand.NewPCG(s.Seed, 0x9e3779b97f4a7c15))
	normal := func(size int, std float64) []float32 {
		v := make([]float32, size)
		for i := range v {
			v[i] = float32(rng.NormFloat64() * std)
		}
		return v
	}
	ones := func(size int) []float32 {
		v := make([]float32, size)
		for i := range v {
			v[i] = 1
		}
		return v
	}
	// A linear layer from in to out, scaled so activations keep their size.
	linear := func(in, out int) []float32 { return normal(in*out, 1/math.Sqrt(float64(in))) }
	dims := func(d ...int) []uint64 {
		u := make([]uint64, len(d))
		for i, x := range d {
			u[i] = uint64(x)
		}
		return u
	}

	tensors := []tensor{{"token_embd.weight", dims(s.Dim, n), normal(s.Dim*n, 1)}}
	for l := range s.Layers {
		p := fmt.Sprintf("blk.%d.", l)
		tensors = append(tensors,
			tensor{p + "attn_norm.weight", dims(s.Dim), ones(s.Dim)},
			tensor{p + "attn_q.weight", dims(s.Dim, s.Dim), linear(s.Dim, s.Dim)},
			tensor{p + "attn_k.weight", dims(s.Dim, kvDim), linear(s.Dim, kvDim)},
			tensor{p + "attn_v.weight", dims(s.Dim, kvDim), linear(s.Dim, kvDim)},
			tensor{p + "attn_output.weight", dims(s.Dim, s.Dim), linear(s.Dim, s.Dim)},
			tensor{p + "ffn_norm.weight", dims(s.Dim), ones(s.Dim)},
			tensor{p + "ffn_gate.weight", dims(s.Dim, s.FF), linear(s.Dim, s.FF)},
			tensor{p + "ffn_up.weight", dims(s.Dim, s.FF), linear(s.Dim, s.FF)},
			tensor{p + "ffn_down.weight", dims(s.FF, s.Dim), linear(s.FF, s.Dim)},
		)
	}
	output := normal(s.Dim*n, s.LogitStd/math.Sqrt(float64(s.Dim)))
	clear(output[:special*s.Dim]) // the special tokens' logits stay 0, far below the rest's best
	tensors = append(tensors,
		tensor{"output_norm.weight", dims(s.Dim), ones(s.Dim)},
		tensor{"output.weight", dims(s.Dim, n), output},
	)

	meta := []struct {
		key string
		val any
	}{
		{"general.architecture", "llama"},
		{"general.name", "sluice-test-random"},
		{"general.alignment", uint32(alignment)},
		{"general.file_type", uint32(0)}, // all F32
		{"llama.context_length", uint32(s.Context)},
		{"llama.embedding_length", uint32(s.Dim)},
		{"llama.block_count", uint32(s.Layers)},
		{"llama.feed_forward_length", uint32(s.FF)},
		{"llama.attention.head_count", uint32(s.Heads)},
		{"llama.attention.head_count_kv", uint32(s.KVHeads)},
		{"llama.attention.layer_norm_rms_epsilon", float32(1e-5)},
		{"llama.rope.dimension_count", uint32(headDim)},
		{"llama.rope.freq_base", float32(10000)},
		{"llama.vocab_size", uint32(n)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", voc.tokens},
		{"tokenizer.ggml.scores", voc.scores},
		{"tokenizer.ggml.token_type", voc.types},
		{"tokenizer.ggml.unknown_token_id", uint32(0)},
		{"tokenizer.ggml.bos_token_id", uint32(1)},
		{"tokenizer.ggml.eos_token_id", uint32(2)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
		{"tokenizer.chat_template", chatTemplate},
	}

	e := &encoder{w: bufio.NewWriterSize(w, 1<<20)}
	e.raw([]byte("GGUF"))
	e.put(uint32(3))
	e.put(uint64(len(tensors)))
	e.put(uint64(len(meta)))
	for _, m := range meta {
		e.str(m.key)
		e.value(m.val)
	}
	var offset uint64
	for _, t := range tensors {
		e.str(t.name)
		e.put(uint32(len(t.dims)))
		for _, d := range t.dims {
			e.put(d)
		}
		e.put(uint32(0)) // GGML_TYPE_F32
		e.put(offset)
		offset = align(offset + uint64(4*len(t.data)))
	}
	e.pad()
	for _, t := range tensors {
		e.put(t.data)
		e.pad()
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	return e.n, e.err
}

func align(n uint64) uint64 { return (n + alignment - 1) / alignment * alignment }

// encoder writes little-endian GGUF values and keeps the first error and the count.
type encoder struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (e *encoder) raw(b []byte) {
	if e.err == nil {
		var k int
		k, e.err = e.w.Write(b)
		e.n += int64(k)
	}
}

func (e *encoder) put(v any) {
	if e.err == nil {
		e.err = binary.Write(e.w, binary.LittleEndian, v)
		e.n += int64(binary.Size(v))
	}
}

func (e *encoder) str(s string) {
	e.put(uint64(len(s)))
	e.raw([]byte(s))
}

func (e *encoder) pad() {
	if k := align(uint64(e.n)) - uint64(e.n); k > 0 {
		e.raw(make([]byte, k))
	}
}

// value writes a metadata value with its type.
func (e *encoder) value(v any) {
	switch v := v.(type) {
	case string:
		e.put(uint32(typeString))
		e.str(v)
	case uint32:
		e.put(uint32(typeUint32))
		e.put(v)
	case float32:
		e.put(uint32(typeFloat32))
		e.put(v)
	case bool:
		e.put(uint32(typeBool))
		e.put(v)
	case []string:
		e.put(uint32(typeArray))
		e.put(uint32(typeString))
		e.put(uint64(len(v)))
		for _, s := range v {
			e.str(s)
		}
	case []float32:
		e.put(uint32(typeArray))
		e.put(uint32(typeFloat32))
		e.put(uint64(len(v)))
		e.put(v)
	case []int32:
		e.put(uint32(typeArray))
		e.put(uint32(typeInt32))
		e.put(uint64(len(v)))
		e.put(v)
	default:
		e.err = fmt.Errorf("no GGUF type for %T", v)
	}
}
