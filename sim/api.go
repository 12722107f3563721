package sim

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"
)

// Request limits. They mirror OpenAI's where OpenAI has one.
const (
	maxChoices     = 128  // n
	maxInputs      = 2048 // items of an embeddings input or a completions prompt, times n
	maxDimensions  = 4096
	defaultDims    = 8
	overheadPerMsg = 3 // prompt tokens each chat message costs beyond its text
)

// unset marks an integer field the request did not set (or set to null).
const unset = math.MinInt

type chatRequest struct {
	Model               string        `json:"model"`
	Messages            []chatMessage `json:"messages"`
	MaxTokens           int           `json:"max_tokens"`
	MaxCompletionTokens int           `json:"max_completion_tokens"`
	N                   int           `json:"n"`
	Stream              bool          `json:"stream"`
}

type chatMessage struct {
	Role    string      `json:"role"`
	Content messageText `json:"content"`
}

// messageText is a message's text content: a string, null, or an array of content parts
// whose "text" parts are joined with newlines (so their token counts add up). Other parts,
// such as images, carry no text and count no tokens.
type messageText string

func (t *messageText) UnmarshalJSON(b []byte) error {
	switch b[0] {
	case 'n':
		*t = ""
		return nil
	case '"':
		if s, ok := plainString(b); ok {
			*t = messageText(s)
			return nil
		}
		return json.Unmarshal(b, (*string)(t))
	case '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(b, &parts); err != nil {
			return invalid("messages", "Invalid content parts in 'messages': each part must be an object with a type.")
		}
		var sb strings.Builder
		for _, p := range parts {
			if p.Type != "text" {
				continue
			}
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(p.Text)
		}
		*t = messageText(sb.String())
		return nil
	}
	return invalid("messages", "Invalid type for 'messages.content': expected a string or an array of content parts.")
}

// plainString returns the JSON string literal b as a Go string without a second pass of
// encoding/json when it has no escapes, control characters or invalid UTF-8.
func plainString(b []byte) (string, bool) {
	if len(b) < 2 || b[len(b)-1] != '"' {
		return "", false
	}
	b = b[1 : len(b)-1]
	for _, c := range b {
		if c < 0x20 || c == '\\' || c == '"' {
			return "", false
		}
	}
	if !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// promptItem is one prompt or input: the FNV-64a hash of its text (or token ids) and its
// token count.
type promptItem struct {
	hash   uint64
	tokens int
}

// promptField is a completions prompt; inputField is an embeddings input. Both accept a
// string, an array of strings, an array of token ids, or an array of such arrays.
type (
	promptField []promptItem
	inputField  []promptItem
)

func (f *promptField) UnmarshalJSON(b []byte) (err error) {
	*f, err = parsePrompts(b, "prompt")
	return err
}

func (f *inputField) UnmarshalJSON(b []byte) (err error) {
	*f, err = parsePrompts(b, "input")
	return err
}

func parsePrompts(b []byte, param string) ([]promptItem, error) {
	bad := invalid(param, "Invalid type for '"+param+"': expected a string, an array of strings, an array of token ids, or an array of such arrays.")
	text := func(s string) promptItem { return promptItem{fnvString(fnvOffset, s), CountTokens(s)} }
	ids := func(t []int) promptItem {
		h := fnvString(fnvOffset, "\x00tokens")
		for _, v := range t {
			h = fnvUint64(h, uint64(v))
		}
		return promptItem{h, len(t)}
	}
	switch b[0] {
	case 'n':
		return nil, nil
	case '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, bad
		}
		return []promptItem{text(s)}, nil
	case '[':
	default:
		return nil, bad
	}
	first := strings.TrimLeft(string(b[1:min(len(b), 64)]), " \t\r\n")
	switch {
	case first == "" || first[0] == ']':
		return []promptItem{}, nil
	case first[0] == '"':
		var ss []string
		if err := json.Unmarshal(b, &ss); err != nil {
			return nil, bad
		}
		items := make([]promptItem, len(ss))
		for i, s := range ss {
			items[i] = text(s)
		}
		return items, nil
	case first[0] == '[':
		var tt [][]int
		if err := json.Unmarshal(b, &tt); err != nil {
			return nil, bad
		}
		items := make([]promptItem, len(tt))
		for i, t := range tt {
			items[i] = ids(t)
		}
		return items, nil
	default:
		var t []int
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, bad
		}
		return []promptItem{ids(t)}, nil
	}
}

// limit returns the token budget set by field v, or def when v is unset.
func limit(v int, param string, def int) (int, *apiError) {
	if v == unset {
		return def, nil
	}
	if v < 1 {
		return 0, invalid(param, "Invalid '"+param+"': it must be at least 1.")
	}
	return v, nil
}

// choices returns the n of a request.
func choices(n int) (int, *apiError) {
	if n == unset {
		return 1, nil
	}
	if n < 1 || n > maxChoices {
		return 0, invalid("n", "Invalid 'n': it must be between 1 and 128.")
	}
	return n, nil
}

func errStream() *apiError {
	return invalid("stream", "stream is not supported by the simulator")
}

func finishReason(cut bool) string {
	if cut {
		return "length"
	}
	return "stop"
}

// chat appends the chat.completion answering body to b and returns it with the number of
// completion tokens. b must not alias body.
func (s *Server) chat(b, body []byte, model, id string) ([]byte, int, *apiError) {
	req := chatRequest{MaxTokens: unset, MaxCompletionTokens: unset, N: unset}
	if e := decode(body, &req); e != nil {
		return b, 0, e
	}
	if req.Stream {
		return b, 0, errStream()
	}
	if len(req.Messages) == 0 {
		return b, 0, invalid("messages", "Invalid 'messages': it must be a non-empty array.")
	}
	n, e := choices(req.N)
	if e != nil {
		return b, 0, e
	}
	budget, e := limit(req.MaxTokens, "max_tokens", s.maxTokens)
	if e != nil {
		return b, 0, e
	}
	if budget, e = limit(req.MaxCompletionTokens, "max_completion_tokens", budget); e != nil {
		return b, 0, e
	}
	h := uint64(fnvOffset)
	prompt := 0
	for _, m := range req.Messages {
		h = foldMessage(h, m.Role, string(m.Content))
		prompt += CountTokens(string(m.Content)) + overheadPerMsg
	}
	if req.Model != "" {
		model = req.Model
	}

	b = append(b, `{"id":"chatcmpl-`...)
	b = append(b, id...)
	b = append(b, `","object":"chat.completion","created":`...)
	b = appendInt(b, int(time.Now().Unix()))
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	b = append(b, `,"choices":[`...)
	completion := 0
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = appendInt(b, i)
		b = append(b, `,"message":{"role":"assistant","content":"`...)
		var p rand.PCG
		seedStream(&p, h, i)
		var t int
		var cut bool
		b, t, cut = generate(b, &p, budget, s.maxTokens) // plain ASCII words: no escaping needed
		completion += t
		b = append(b, `","refusal":null},"logprobs":null,"finish_reason":"`...)
		b = append(b, finishReason(cut)...)
		b = append(b, `"}`...)
	}
	b = s.appendUsage(b, prompt, completion)
	return b, completion, nil
}

type completionRequest struct {
	Model     string      `json:"model"`
	Prompt    promptField `json:"prompt"`
	MaxTokens int         `json:"max_tokens"`
	N         int         `json:"n"`
	Stream    bool        `json:"stream"`
}

// completion appends the text_completion answering body to b and returns it with the
// number of completion tokens. Each prompt gets n choices, indexed prompt-major.
func (s *Server) completion(b, body []byte, model, id string) ([]byte, int, *apiError) {
	req := completionRequest{MaxTokens: unset, N: unset}
	if e := decode(body, &req); e != nil {
		return b, 0, e
	}
	if req.Stream {
		return b, 0, errStream()
	}
	if len(req.Prompt) == 0 {
		return b, 0, invalid("prompt", "Invalid 'prompt': it is required and must not be empty.")
	}
	n, e := choices(req.N)
	if e != nil {
		return b, 0, e
	}
	if len(req.Prompt)*n > maxInputs {
		return b, 0, invalid("prompt", "Invalid 'prompt': the number of prompts times n must be at most 2048.")
	}
	budget, e := limit(req.MaxTokens, "max_tokens", s.maxTokens)
	if e != nil {
		return b, 0, e
	}
	if req.Model != "" {
		model = req.Model
	}

	b = append(b, `{"id":"cmpl-`...)
	b = append(b, id...)
	b = append(b, `","object":"text_completion","created":`...)
	b = appendInt(b, int(time.Now().Unix()))
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	b = append(b, `,"choices":[`...)
	prompt, completion := 0, 0
	for j, item := range req.Prompt {
		prompt += item.tokens
		for i := range n {
			if j > 0 || i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"text":"`...)
			var p rand.PCG
			seedStream(&p, item.hash, i)
			var t int
			var cut bool
			b, t, cut = generate(b, &p, budget, s.maxTokens)
			completion += t
			b = append(b, `","index":`...)
			b = appendInt(b, j*n+i)
			b = append(b, `,"logprobs":null,"finish_reason":"`...)
			b = append(b, finishReason(cut)...)
			b = append(b, `"}`...)
		}
	}
	b = s.appendUsage(b, prompt, completion)
	return b, completion, nil
}

// appendUsage closes the choices array and the object with their usage, or without
// when the server reports none.
func (s *Server) appendUsage(b []byte, prompt, completion int) []byte {
	if s.noUsage {
		return append(b, "]}\n"...)
	}
	b = append(b, `],"usage":{"prompt_tokens":`...)
	b = appendInt(b, prompt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, completion)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, prompt+completion)
	return append(b, "}}\n"...)
}

type embeddingRequest struct {
	Model          string     `json:"model"`
	Input          inputField `json:"input"`
	Dimensions     int        `json:"dimensions"`
	EncodingFormat string     `json:"encoding_format"`
}

// embedding appends the list of embeddings answering body to b. Each vector is a unit
// vector drawn from the hash of its input, so equal inputs embed equally.
func (s *Server) embedding(b, body []byte, model string) ([]byte, int, *apiError) {
	req := embeddingRequest{Dimensions: unset}
	if e := decode(body, &req); e != nil {
		return b, 0, e
	}
	if len(req.Input) == 0 {
		return b, 0, invalid("input", "Invalid 'input': it is required and must not be empty.")
	}
	if len(req.Input) > maxInputs {
		return b, 0, invalid("input", "Invalid 'input': at most 2048 inputs are allowed.")
	}
	dims := defaultDims
	if req.Dimensions != unset {
		if req.Dimensions < 1 || req.Dimensions > maxDimensions {
			return b, 0, invalid("dimensions", "Invalid 'dimensions': it must be between 1 and 4096.")
		}
		dims = req.Dimensions
	}
	var raw []byte // float32s before base64 encoding; nil for the float format
	switch req.EncodingFormat {
	case "", "float":
	case "base64":
		raw = make([]byte, 4*dims)
	default:
		return b, 0, invalid("encoding_format", "Invalid 'encoding_format': it must be float or base64.")
	}
	if req.Model != "" {
		model = req.Model
	}

	b = append(b, `{"object":"list","data":[`...)
	prompt := 0
	for j, item := range req.Input {
		prompt += item.tokens
		if j > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"object":"embedding","index":`...)
		b = appendInt(b, j)
		b = append(b, `,"embedding":`...)
		// Two passes over the same stream: the first finds the norm, the second writes.
		var p rand.PCG
		seedStream(&p, item.hash, 0)
		sum := 0.0
		for range dims {
			v := signed(p.Uint64())
			sum += v * v
		}
		norm := math.Sqrt(sum)
		if norm == 0 {
			norm = 1
		}
		seedStream(&p, item.hash, 0)
		if raw != nil {
			for k := range dims {
				binary.LittleEndian.PutUint32(raw[4*k:], math.Float32bits(float32(signed(p.Uint64())/norm)))
			}
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, raw)
			b = append(b, '"')
		} else {
			b = append(b, '[')
			for k := range dims {
				if k > 0 {
					b = append(b, ',')
				}
				v := float32(signed(p.Uint64()) / norm)
				b = strconvAppendFloat32(b, v)
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	b = append(b, `],"model":`...)
	b = appendString(b, model)
	if s.noUsage {
		return append(b, "}\n"...), 0, nil
	}
	b = append(b, `,"usage":{"prompt_tokens":`...)
	b = appendInt(b, prompt)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, prompt)
	return append(b, "}}\n"...), 0, nil
}

// signed maps x to a float64 in [-1,1).
func signed(x uint64) float64 { return float64(int64(x)) * 0x1p-63 }
