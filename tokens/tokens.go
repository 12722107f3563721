package tokens

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/tiktoken-go/tokenizer"
)

// The endpoints Request and Output know.
const (
	chatEndpoint       = "/v1/chat/completions"
	completionEndpoint = "/v1/completions"
	embeddingEndpoint  = "/v1/embeddings"
	responseEndpoint   = "/v1/responses"
	moderationEndpoint = "/v1/moderations"
	imageGenEndpoint   = "/v1/images/generations"
	imageEditEndpoint  = "/v1/images/edits"
	videoEndpoint      = "/v1/videos"
)

// Endpoints lists the endpoints Request and Measure know, in the order of OpenAI's
// Batch API documentation.
var Endpoints = []string{responseEndpoint, chatEndpoint, embeddingEndpoint, completionEndpoint,
	moderationEndpoint, imageGenEndpoint, imageEditEndpoint, videoEndpoint}

// required lists the fields each endpoint's body must have, as OpenAI's API reference
// marks them: one of each group. Responses requires none, as a request may name a
// stored prompt or a previous response instead of an input.
var required = map[string][][]string{
	chatEndpoint:       {{"messages"}},
	completionEndpoint: {{"prompt"}},
	embeddingEndpoint:  {{"input"}},
	moderationEndpoint: {{"input"}},
	imageGenEndpoint:   {{"prompt"}},
	imageEditEndpoint:  {{"prompt"}, {"images", "image"}},
	videoEndpoint:      {{"prompt"}},
}

// encodings lists the known encodings, the default first.
var encodings = []string{"o200k_base", "cl100k_base", "p50k_base", "r50k_base"}

// minCached is the length, in bytes, from which a string's count is cached whole.
// Counting a shorter string piece by piece costs about what a cache lookup does (about
// 50 ns for 6 bytes, both ways); from 16 bytes the lookup is 3 times faster, and from
// 1 KB nearly 40 times.
const minCached = 8

// maxPooledBuf bounds the scratch buffers kept between calls, so one body with a huge
// escaped string does not pin its memory.
const maxPooledBuf = 64 << 10

// Counter counts tokens with one encoding. It is safe for concurrent use.
type Counter struct {
	name     string
	codec    tokenizer.Codec
	funcInit int // cookbook func_init: tokens that start each function of a tools list
	system   int // tokens of the role "system"
	user     int // tokens of the role "user"
	split    splitter
	pieces   *pieces
	cache    *cache
	readers  sync.Pool
}

// New returns a Counter for an encoding name: "o200k_base" (the default when name is
// ""), "cl100k_base", "p50k_base", "r50k_base". Unknown names are an error that lists
// the known ones. A Counter holds a cache of counts, so create one per encoding and
// share it.
func New(encoding string) (*Counter, error) {
	if encoding == "" {
		encoding = encodings[0]
	}
	if !slices.Contains(encodings, encoding) {
		return nil, fmt.Errorf("unknown token encoding %q: known encodings are %s", encoding, strings.Join(encodings, ", "))
	}
	codec, err := tokenizer.Get(tokenizer.Encoding(encoding))
	if err != nil {
		return nil, fmt.Errorf("load token encoding %s: %w", encoding, err)
	}
	c := &Counter{name: encoding, codec: codec, funcInit: funcInitCl100k, split: splitP50k,
		pieces: newPieces(), cache: newCache()}
	switch encoding { // p50k_base and r50k_base share a split
	case "o200k_base":
		c.funcInit, c.split = funcInitO200k, splitO200k
	case "cl100k_base":
		c.split = splitCl100k
	}
	c.readers.New = func() any { return new(reader) }
	c.system = c.encode("system")
	c.user = c.encode("user")
	return c, nil
}

// Encoding returns the encoding's name.
func (c *Counter) Encoding() string { return c.name }

// Text returns the tokens of s.
func (c *Counter) Text(s string) int {
	if len(s) < minCached {
		return countText(c, s)
	}
	e, n, ok := cached(c.cache, kindText, s)
	if !ok {
		n = countText(c, s)
		keep(c.cache, &e, s, n)
	}
	return n
}

// count is Text for the bytes of a decoded JSON string.
func (c *Counter) count(b []byte) int {
	if len(b) < minCached {
		return countText(c, b)
	}
	e, n, ok := cached(c.cache, kindText, b)
	if !ok {
		n = countText(c, b)
		keep(c.cache, &e, b, n)
	}
	return n
}

// encode counts s with the library.
func (c *Counter) encode(s string) int {
	if s == "" {
		return 0
	}
	n, err := c.codec.Count(s)
	if err != nil {
		// The codecs fail only when their regexp times out, and they set no timeout.
		// Should that change, a quarter of the bytes is the usual rule of thumb.
		return ceilDiv(len(s), 4)
	}
	return n
}

// Request returns the prompt tokens of a request body (the `body` object of a batch
// line, as raw JSON) sent to endpoint, one of Endpoints (anything else: an error). A
// body that is not a JSON object, whose known fields have the wrong JSON types, or that
// lacks a field its endpoint requires, is an error: a *FieldError when the body is
// well-formed JSON. The package documentation lists what is counted.
func (c *Counter) Request(endpoint string, body []byte) (int, error) {
	p, err := c.Measure(endpoint, body)
	return p.Tokens, err
}

// Prompt is what Measure learns of a request body.
type Prompt struct {
	Tokens int // as Request counts them
	Images int // image parts of its messages or input
}

// Measure is Request, also counting the image parts of the prompt, so that a
// deployment whose model takes text only can refuse a line that holds an image.
func (c *Counter) Measure(endpoint string, body []byte) (Prompt, error) {
	var walk func(*reader) (int, error)
	switch endpoint {
	case chatEndpoint:
		walk = c.chat
	case completionEndpoint:
		walk = c.completion
	case embeddingEndpoint:
		walk = c.embedding
	case responseEndpoint:
		walk = c.response
	case moderationEndpoint:
		walk = c.moderation
	case imageGenEndpoint, videoEndpoint:
		walk = c.generation
	case imageEditEndpoint:
		walk = c.imageEdit
	default:
		return Prompt{}, fmt.Errorf("unknown endpoint %q: known endpoints are %s", endpoint, strings.Join(Endpoints, ", "))
	}
	r := c.reader(body)
	defer c.release(r)
	if r.peek() != '{' {
		if err := r.skip(); err != nil {
			return Prompt{}, err
		}
		r.i = 0
		return Prompt{}, fmt.Errorf("invalid request body: got %s, want an object", r.kind())
	}
	r.want = required[endpoint]
	n, err := walk(r)
	if err == nil {
		err = r.end()
	}
	for i, group := range r.want {
		if err == nil && r.found&(1<<i) == 0 {
			err = &FieldError{Path: strings.Join(group, "' or '"), Want: "a value"}
		}
	}
	if err != nil {
		return Prompt{}, err
	}
	return Prompt{Tokens: n, Images: r.images}, nil
}

// Output returns an estimate of the completion tokens of a successful response body
// from endpoint: the tokens of the text it generated (chat: choices[].message.content
// (string or parts), refusal, tool_calls function name+arguments; completions:
// choices[].text; responses: output[] message content output_text text, function_call
// name+arguments, reasoning summary text; embeddings: 0). Never fails: what it cannot
// read counts 0.
func (c *Counter) Output(endpoint string, body []byte) int {
	var spec *outSpec
	switch endpoint {
	case chatEndpoint:
		spec = chatOutput
	case completionEndpoint:
		spec = completionOutput
	case responseEndpoint:
		spec = responseOutput
	default:
		return 0
	}
	r := c.reader(body)
	defer c.release(r)
	if r.peek() != '{' {
		return 0
	}
	n, _ := c.loose(r, spec) // a syntax error ends the walk; what was read still counts
	return n
}

func (c *Counter) reader(b []byte) *reader {
	r := c.readers.Get().(*reader)
	*r = reader{b: b, buf: r.buf[:0], kbuf: r.kbuf[:0]}
	return r
}

func (c *Counter) release(r *reader) {
	r.b = nil
	if cap(r.buf) > maxPooledBuf {
		r.buf = nil
	}
	if cap(r.kbuf) > maxPooledBuf {
		r.kbuf = nil
	}
	c.readers.Put(r)
}
