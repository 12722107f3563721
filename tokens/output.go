package tokens

// outSpec says where generated text sits in a response body. A string counts where text
// is set; an array is walked element by element with the same spec; an object is walked
// into the keys of fields. Everything else is skipped, so a body of an unexpected shape
// counts what matches and never fails.
type outSpec struct {
	text   bool
	fields map[string]*outSpec
}

var (
	textOut  = &outSpec{text: true}
	callOut  = &outSpec{fields: map[string]*outSpec{"name": textOut, "arguments": textOut, "input": textOut}}
	partsOut = &outSpec{text: true, fields: map[string]*outSpec{"text": textOut, "refusal": textOut}}

	chatOutput = &outSpec{fields: map[string]*outSpec{
		"choices": {fields: map[string]*outSpec{
			"message": {fields: map[string]*outSpec{
				"content":           partsOut,
				"refusal":           textOut,
				"reasoning_content": textOut,
				"tool_calls":        {fields: map[string]*outSpec{"function": callOut, "custom": callOut}},
				"function_call":     callOut,
			}},
		}},
	}}

	completionOutput = &outSpec{fields: map[string]*outSpec{
		"choices": {fields: map[string]*outSpec{"text": textOut}},
	}}

	responseOutput = &outSpec{fields: map[string]*outSpec{
		"output": {fields: map[string]*outSpec{
			"content":   partsOut, // message output_text and refusal parts
			"summary":   partsOut, // reasoning summary_text parts
			"name":      textOut,  // function_call and custom_tool_call
			"arguments": textOut,
			"input":     textOut,
		}},
	}}
)

// loose counts the text s locates in the next value. It stops at a syntax error and
// returns what it counted so far with the error.
func (c *Counter) loose(r *reader, s *outSpec) (int, error) {
	n := 0
	var err error
	switch r.peek() {
	case '"':
		if !s.text {
			return 0, r.skip()
		}
		var b []byte
		if b, err = r.str(); err == nil {
			n = c.count(b)
		}
	case '[':
		err = r.array(func(int) error {
			m, err := c.loose(r, s)
			n += m
			return err
		})
	case '{':
		if s.fields == nil {
			return 0, r.skip()
		}
		err = r.object(func(key []byte) error {
			f := s.fields[string(key)]
			if f == nil {
				return r.skip()
			}
			m, err := c.loose(r, f)
			n += m
			return err
		})
	default:
		err = r.skip()
	}
	return n, err
}
