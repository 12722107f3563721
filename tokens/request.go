package tokens

import (
	"bytes"
	"encoding/json"
)

// Chat formatting costs, from OpenAI's cookbook "How to count tokens with tiktoken".
const (
	perMessage   = 3 // each message: <|start|>, <|message|> and <|end|> around role and content
	perName      = 1 // a message with a name
	replyPriming = 3 // every reply is primed with <|start|>assistant<|message|>
)

// Tool definition costs, from the cookbook's num_tokens_for_tools, which it checked
// against the API for gpt-4o and gpt-4o-mini (o200k_base) and gpt-3.5-turbo and gpt-4
// (cl100k_base).
const (
	funcInitO200k  = 7  // each function, o200k_base
	funcInitCl100k = 10 // each function, every other encoding
	propInit       = 3  // a function whose parameters have properties
	propKey        = 3  // each property
	enumInit       = -3 // a property with an enum
	enumItem       = 3  // each enum value
	funcEnd        = 12 // a request with at least one function
)

// sum reads an array, or null, calling each for every element and adding up its counts.
func sum(r *reader, each func() (int, error)) (int, error) {
	if ok, err := r.null(); ok || err != nil {
		return 0, err
	}
	if r.peek() != '[' {
		return 0, r.wrong("an array")
	}
	n := 0
	err := r.array(func(i int) error {
		m, err := each()
		n += m
		if err != nil {
			return at(err, index(i))
		}
		return nil
	})
	return n, err
}

// fields reads an object, or null, calling each with every key; each must read the
// value and returns its count.
func fields(r *reader, each func(key []byte) (int, error)) (int, error) {
	if ok, err := r.null(); ok || err != nil {
		return 0, err
	}
	if r.peek() != '{' {
		return 0, r.wrong("an object")
	}
	n := 0
	err := r.object(func(key []byte) error {
		r.need(key)
		m, err := each(key)
		n += m
		if err != nil {
			return at(err, string(key))
		}
		return nil
	})
	return n, err
}

// text counts a string, or null as 0.
func (c *Counter) text(r *reader) (int, error) {
	switch r.peek() {
	case '"':
		b, err := r.str()
		if err != nil {
			return 0, err
		}
		return c.count(b), nil
	case 'n':
		return 0, r.literal("null")
	}
	return 0, r.wrong("a string")
}

// textOrSkip counts a string and skips any other value.
func (c *Counter) textOrSkip(r *reader) (int, error) {
	if r.peek() == '"' {
		return c.text(r)
	}
	return 0, r.skip()
}

// chat counts a /v1/chat/completions body.
func (c *Counter) chat(r *reader) (int, error) {
	n, err := fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "messages":
			return sum(r, func() (int, error) { return c.message(r) })
		case "tools", "functions":
			return c.tools(r)
		case "response_format":
			return c.schemaIn(r)
		}
		return 0, r.skip()
	})
	return n + replyPriming, err
}

// message counts one chat message: perMessage, every string field (role, name,
// tool_call_id, refusal, …), content, and tool calls.
func (c *Counter) message(r *reader) (int, error) {
	if r.peek() != '{' {
		return 0, r.wrong("an object")
	}
	n, err := fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "content":
			return c.content(r)
		case "tool_calls":
			return sum(r, func() (int, error) { return c.toolCall(r) })
		case "function_call":
			return c.call(r)
		case "name":
			if ok, err := r.null(); ok || err != nil {
				return 0, err
			}
			m, err := c.text(r)
			return m + perName, err
		case "role", "tool_call_id", "refusal":
			return c.text(r)
		}
		return c.textOrSkip(r)
	})
	return n + perMessage, err
}

// content counts a message's content: a string, null, or an array of parts.
func (c *Counter) content(r *reader) (int, error) {
	switch r.peek() {
	case '[':
		return sum(r, func() (int, error) { return c.part(r) })
	case '"', 'n':
		return c.text(r)
	}
	return 0, r.wrong("a string or an array")
}

// part counts a content part of a chat message or a Responses input item: text of
// text, input_text, output_text and refusal parts, and images; audio and files count 0.
func (c *Counter) part(r *reader) (int, error) {
	if r.peek() != '{' {
		return 0, r.wrong("an object")
	}
	var img imagePart
	n, err := fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "type":
			b, err := r.typedStr()
			if err != nil {
				return 0, err
			}
			img.is = img.is || string(b) == "image_url" || string(b) == "input_image"
			return 0, nil
		case "text", "refusal":
			return c.text(r)
		case "image_url":
			img.is = true
			return 0, img.url(r)
		case "detail":
			return 0, img.detail(r)
		}
		return 0, r.skip()
	})
	if img.is {
		n += imageTokens(img.w, img.h, img.low)
		r.images++
	}
	return n, err
}

// imagePart collects what a content part says about an image.
type imagePart struct {
	is   bool
	w, h int
	low  bool
}

// url reads an image_url: a URL string (Responses) or an object with url and detail
// (chat).
func (img *imagePart) url(r *reader) error {
	switch r.peek() {
	case '"':
		b, err := r.str()
		if err != nil {
			return err
		}
		img.w, img.h = imageSize(b)
		return nil
	case '{':
		_, err := fields(r, func(key []byte) (int, error) {
			switch string(key) {
			case "url":
				if r.peek() != '"' {
					return 0, r.wrong("a string")
				}
				return 0, img.url(r)
			case "detail":
				return 0, img.detail(r)
			}
			return 0, r.skip()
		})
		return err
	}
	return r.wrong("a string or an object")
}

// detail reads an image detail: "low", "high", "auto", or null.
func (img *imagePart) detail(r *reader) error {
	if ok, err := r.null(); ok || err != nil {
		return err
	}
	if r.peek() != '"' {
		return r.wrong("a string")
	}
	b, err := r.str()
	img.low = string(b) == "low"
	return err
}

// toolCall counts a chat tool call: its function's (or custom tool's) name and arguments.
func (c *Counter) toolCall(r *reader) (int, error) {
	if r.peek() != '{' {
		return 0, r.wrong("an object")
	}
	return fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "function", "custom":
			return c.call(r)
		}
		return 0, r.skip()
	})
}

// call counts a function call object: name, and arguments or input.
func (c *Counter) call(r *reader) (int, error) {
	return fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "name", "arguments", "input":
			return c.text(r)
		}
		return 0, r.skip()
	})
}

// tools counts a tools or functions array. The count of its raw JSON is cached, since
// every line of a batch usually carries the same tools.
func (c *Counter) tools(r *reader) (int, error) {
	if ok, err := r.null(); ok || err != nil {
		return 0, err
	}
	if r.peek() != '[' {
		return 0, r.wrong("an array")
	}
	raw, err := r.raw()
	if err != nil {
		return 0, err
	}
	e, n, ok := cached(c.cache, kindTools, raw)
	if ok {
		return n, nil
	}
	functions := 0
	sub := &reader{b: raw}
	n, err = sum(sub, func() (int, error) {
		m, ok, err := c.tool(sub)
		if ok {
			functions++
		}
		return m, err
	})
	if err != nil {
		return 0, err
	}
	if functions > 0 {
		n += funcEnd
	}
	keep(c.cache, &e, raw, n)
	return n, nil
}

// tool counts one function definition following the cookbook: funcInit, the tokens of
// "name:description" (without a final period) and its parameters. It takes the chat
// shape {"type":"function","function":{…}}, the Responses and legacy functions shape
// {"name":…,"parameters":…}, and chat custom tools {"type":"custom","custom":{…}}.
// Other tools, such as Responses' built-in web_search, count 0 and report !ok.
func (c *Counter) tool(r *reader) (n int, ok bool, err error) {
	if r.peek() != '{' {
		return 0, false, r.wrong("an object")
	}
	var name, desc []byte
	n, err = fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "function", "custom":
			if null, err := r.null(); null || err != nil {
				return 0, err
			}
			m, isFunc, err := c.tool(r)
			ok = ok || isFunc
			return m, err
		case "name":
			b, err := copyString(r)
			name = b
			return 0, err
		case "description":
			b, err := copyString(r)
			desc = b
			return 0, err
		case "parameters":
			return c.parameters(r)
		}
		return 0, r.skip()
	})
	if name != nil {
		ok = true
		desc = bytes.TrimSuffix(desc, []byte{'.'})
		n += c.funcInit + c.count(append(append(name, ':'), desc...))
	}
	return n, ok, err
}

// copyString reads a string, or null as nil, into new memory.
func copyString(r *reader) ([]byte, error) {
	if ok, err := r.null(); ok || err != nil {
		return nil, err
	}
	if r.peek() != '"' {
		return nil, r.wrong("a string")
	}
	b, err := r.str()
	return append(make([]byte, 0, len(b)+1), b...), err
}

// parameters counts a function's parameters schema: propInit when it has properties,
// then each property. Keywords other than type, properties, required and
// additionalProperties (such as $defs) add the tokens of "keyword:" and their compact
// JSON.
func (c *Counter) parameters(r *reader) (int, error) {
	if r.peek() != '{' {
		return 0, r.skip()
	}
	return fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "properties":
			if r.peek() != '{' {
				return 0, r.skip()
			}
			props := 0
			n, err := fields(r, func(key []byte) (int, error) {
				props++
				m, err := c.property(string(key), r)
				return propKey + m, err
			})
			if props > 0 {
				n += propInit
			}
			return n, err
		case "type", "required", "additionalProperties":
			return 0, r.skip()
		}
		return c.keyword(string(key), r)
	})
}

// keyword counts a schema keyword the cookbook does not cover: "key:" and the compact
// JSON of its value.
func (c *Counter) keyword(key string, r *reader) (int, error) {
	raw, err := r.raw()
	if err != nil {
		return 0, err
	}
	b := append([]byte(key), ':')
	return c.count(compact(b, raw)), nil
}

func compact(dst, raw []byte) []byte {
	buf := bytes.NewBuffer(dst)
	if json.Compact(buf, raw) != nil {
		return append(dst, raw...) // raw was checked by the reader; this cannot happen
	}
	return buf.Bytes()
}

// property counts one property of a parameters schema following the cookbook: the
// tokens of "name:type:description" (without a final period), and for an enum,
// enumInit plus enumItem and the tokens of each value. Other keywords count as in
// keyword.
func (c *Counter) property(name string, r *reader) (int, error) {
	line := append([]byte(name), ':')
	var desc []byte
	n := 0
	if r.peek() == '{' {
		var err error
		n, err = fields(r, func(key []byte) (int, error) {
			switch string(key) {
			case "type":
				if r.peek() == '"' {
					b, err := r.str()
					line = append(line, b...)
					return 0, err
				}
				raw, err := r.raw() // such as ["string","null"]
				line = compact(line, raw)
				return 0, err
			case "description":
				b, err := copyString(r)
				desc = b
				return 0, err
			case "enum":
				m, err := sum(r, func() (int, error) {
					m, err := c.textOrRaw(r)
					return enumItem + m, err
				})
				return enumInit + m, err
			}
			return c.keyword(string(key), r)
		})
		if err != nil {
			return 0, err
		}
	} else if err := r.skip(); err != nil {
		return 0, err
	}
	line = append(append(line, ':'), bytes.TrimSuffix(desc, []byte{'.'})...)
	return n + c.count(line), nil
}

// textOrRaw counts a string's text, or the JSON text of any other value.
func (c *Counter) textOrRaw(r *reader) (int, error) {
	if r.peek() == '"' {
		return c.text(r)
	}
	raw, err := r.raw()
	return c.count(raw), err
}

// schemaIn counts the json_schema of a chat response_format or a Responses text
// config: the tokens of the compact JSON of its schema, cached by its raw JSON.
func (c *Counter) schemaIn(r *reader) (int, error) {
	return fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "json_schema", "format":
			return c.schemaIn(r)
		case "schema":
			raw, err := r.raw()
			if err != nil {
				return 0, err
			}
			e, n, ok := cached(c.cache, kindSchema, raw)
			if !ok {
				n = c.count(compact(nil, raw))
				keep(c.cache, &e, raw, n)
			}
			return n, nil
		}
		return 0, r.skip()
	})
}

// completion counts a /v1/completions body: prompt and suffix.
func (c *Counter) completion(r *reader) (int, error) {
	return fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "prompt":
			return c.prompt(r)
		case "suffix":
			return c.text(r)
		}
		return 0, r.skip()
	})
}

// embedding counts a /v1/embeddings body: input.
func (c *Counter) embedding(r *reader) (int, error) {
	return fields(r, func(key []byte) (int, error) {
		if string(key) == "input" {
			return c.prompt(r)
		}
		return 0, r.skip()
	})
}

// prompt counts a completions prompt or an embeddings input: a string, an array of
// strings, an array of token ids, or an array of arrays of token ids.
func (c *Counter) prompt(r *reader) (int, error) {
	switch r.peek() {
	case '[':
	case '"', 'n':
		return c.text(r)
	default:
		return 0, r.wrong("a string or an array")
	}
	var first byte
	return sum(r, func() (int, error) {
		k := r.peek()
		if first == 0 {
			first = k
		}
		switch {
		case first == '"' && k == '"':
			return c.text(r)
		case first == '[' && k == '[':
			return sum(r, func() (int, error) { return 1, tokenID(r) })
		case isNumber(first) && isNumber(k):
			return 1, tokenID(r)
		}
		return 0, r.wrong("strings, token ids or arrays of token ids, all of one kind")
	})
}

func isNumber(c byte) bool { return c == '-' || '0' <= c && c <= '9' }

// tokenID reads an integer.
func tokenID(r *reader) error {
	if !isNumber(r.peek()) {
		return r.wrong("an integer")
	}
	start := r.i
	isInt, err := r.number()
	if err == nil && !isInt {
		r.i = start
		return &FieldError{Got: "a fraction", Want: "an integer"}
	}
	return err
}

// response counts a /v1/responses body: instructions as a system message, input as a
// user message when it is a string, else its items, tools, and text.format's schema.
func (c *Counter) response(r *reader) (int, error) {
	n, err := fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "instructions":
			return c.implicitMessage(r, c.system)
		case "input":
			if r.peek() == '"' {
				return c.implicitMessage(r, c.user)
			}
			if r.peek() != '[' {
				if ok, err := r.null(); ok || err != nil {
					return 0, err
				}
				return 0, r.wrong("a string or an array")
			}
			return sum(r, func() (int, error) { return c.item(r) })
		case "tools":
			return c.tools(r)
		case "text":
			return c.schemaIn(r)
		}
		return 0, r.skip()
	})
	return n + replyPriming, err
}

// implicitMessage counts a string the API turns into a message whose role costs role.
func (c *Counter) implicitMessage(r *reader, role int) (int, error) {
	if ok, err := r.null(); ok || err != nil {
		return 0, err
	}
	n, err := c.text(r)
	return perMessage + role + n, err
}

// Responses input item types that count.
const (
	itemOther = iota
	itemMessage
	itemCall
	itemCallOutput
)

// item counts a Responses input item: a message (role and content), a function or
// custom tool call (name and arguments or input) or its output, each with perMessage.
// Other items, such as reasoning or item_reference, count 0.
func (c *Counter) item(r *reader) (int, error) {
	if r.peek() != '{' {
		return 0, r.wrong("an object")
	}
	kind, hasRole := itemOther, false
	var msg, call, out int
	_, err := fields(r, func(key []byte) (int, error) {
		var m int
		var err error
		switch string(key) {
		case "type":
			var b []byte
			if b, err = r.typedStr(); err != nil {
				return 0, err
			}
			switch string(b) {
			case "message":
				kind = itemMessage
			case "function_call", "custom_tool_call":
				kind = itemCall
			case "function_call_output", "custom_tool_call_output":
				kind = itemCallOutput
			}
		case "role":
			hasRole = true
			m, err = c.text(r)
			msg += m
		case "content":
			m, err = c.content(r)
			msg += m
		case "name", "arguments":
			m, err = c.text(r)
			call += m
		case "input":
			m, err = c.textOrSkip(r)
			call += m
		case "output":
			if r.peek() == '[' {
				m, err = sum(r, func() (int, error) { return c.part(r) })
			} else {
				m, err = c.textOrSkip(r)
			}
			out += m
		default:
			err = r.skip()
		}
		return 0, err
	})
	if kind == itemOther && hasRole {
		kind = itemMessage
	}
	switch kind {
	case itemMessage:
		return perMessage + msg, err
	case itemCall:
		return perMessage + call, err
	case itemCallOutput:
		return perMessage + out, err
	}
	return 0, err
}

// moderation counts a /v1/moderations body: input, a string, an array of strings, or
// an array of parts (text, and image_url counted as images).
func (c *Counter) moderation(r *reader) (int, error) {
	return fields(r, func(key []byte) (int, error) {
		if string(key) != "input" {
			return 0, r.skip()
		}
		switch r.peek() {
		case '"', 'n':
			return c.text(r)
		case '[':
			return sum(r, func() (int, error) {
				if r.peek() == '"' {
					return c.text(r)
				}
				return c.part(r)
			})
		}
		return 0, r.wrong("a string or an array")
	})
}

// generation counts a body whose prompt is its one text: /v1/images/generations and
// /v1/videos.
func (c *Counter) generation(r *reader) (int, error) {
	return fields(r, func(key []byte) (int, error) {
		if string(key) == "prompt" {
			return c.text(r)
		}
		return 0, r.skip()
	})
}

// imageEdit counts a /v1/images/edits body: prompt, and each of images (image_url or
// file_id objects, or the older single image) and mask as an image.
func (c *Counter) imageEdit(r *reader) (int, error) {
	return fields(r, func(key []byte) (int, error) {
		switch string(key) {
		case "prompt":
			return c.text(r)
		case "images":
			return sum(r, func() (int, error) { return c.inputImage(r) })
		case "image", "mask":
			if ok, err := r.null(); ok || err != nil {
				return 0, err
			}
			return c.inputImage(r)
		}
		return 0, r.skip()
	})
}

// inputImage counts an image reference of an image edit: an object with image_url (a
// URL string) or file_id, or a bare URL string.
func (c *Counter) inputImage(r *reader) (int, error) {
	var img imagePart
	switch r.peek() {
	case '"':
		if err := img.url(r); err != nil {
			return 0, err
		}
	case '{':
		if _, err := fields(r, func(key []byte) (int, error) {
			if string(key) == "image_url" {
				return 0, img.url(r)
			}
			return 0, r.skip()
		}); err != nil {
			return 0, err
		}
	default:
		return 0, r.wrong("an object or a string")
	}
	r.images++
	return imageTokens(img.w, img.h, img.low), nil
}
