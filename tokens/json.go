package tokens

import (
	"fmt"
	"math/bits"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects a reader accepts, as encoding/json does.
const maxDepth = 10000

// reader walks one JSON document in place without building a tree: callers ask for the
// values they need and skip the rest. It checks the syntax of everything it passes over,
// so a document it walks to the end is valid JSON.
type reader struct {
	b      []byte
	i      int
	depth  int
	buf    []byte     // unescaped string values; valid until the next call to str
	kbuf   []byte     // unescaped object keys; valid until the next key
	images int        // image parts met, for Measure
	want   [][]string // groups of top-level fields; the body needs one of each
	found  uint8      // bit i: a field of want[i] was met with a value that is not null
}

// need notes a top-level field about to be read: if it is in a group of r.want and its
// value is not null, the body has that group.
func (r *reader) need(key []byte) {
	if len(r.want) == 0 || r.depth != 1 || r.peek() == 'n' {
		return
	}
	for i, group := range r.want {
		for _, w := range group {
			if w == string(key) {
				r.found |= 1 << i
			}
		}
	}
}

// syntaxError reports JSON that is not well formed.
type syntaxError struct {
	off int
	msg string
}

func (e *syntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at byte %d: %s", e.off, e.msg)
}

// FieldError reports a known field of a request body of the wrong JSON type, or a
// required field that is missing (Got empty). Path grows as the error is returned up
// through the objects and arrays that hold the field: "messages[2].content".
type FieldError struct {
	Path      string
	Got, Want string
}

func (e *FieldError) Error() string {
	if e.Got == "" {
		return fmt.Sprintf("missing required field '%s'", e.Path)
	}
	return fmt.Sprintf("invalid type for '%s': got %s, want %s", e.Path, e.Got, e.Want)
}

// at prefixes the path of a FieldError with seg, an object key or an "[i]" index.
// Other errors pass through unchanged.
func at(err error, seg string) error {
	te, ok := err.(*FieldError)
	if !ok {
		return err
	}
	switch {
	case te.Path == "":
		te.Path = seg
	case te.Path[0] == '[':
		te.Path = seg + te.Path
	default:
		te.Path = seg + "." + te.Path
	}
	return err
}

// index is the path segment of array element i.
func index(i int) string { return fmt.Sprintf("[%d]", i) }

func (r *reader) fail(msg string) error { return &syntaxError{r.i, msg} }

// wrong returns a FieldError for the next value, which is not what want describes, or a
// syntaxError when no value starts there.
func (r *reader) wrong(want string) error {
	switch c := r.peek(); c {
	case '{', '[', '"', 't', 'f', 'n':
	default:
		if !isNumber(c) {
			return r.fail("want a value")
		}
	}
	return &FieldError{Got: r.kind(), Want: want}
}

// peek skips whitespace and returns the next byte, or 0 at the end of the input.
func (r *reader) peek() byte {
	for r.i < len(r.b) {
		switch c := r.b[r.i]; c {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return c
		}
	}
	return 0
}

// kind names the JSON type of the next value, for error messages.
func (r *reader) kind() string {
	switch r.peek() {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// null consumes a null and reports whether the next value was one.
func (r *reader) null() (bool, error) {
	if r.peek() != 'n' {
		return false, nil
	}
	return true, r.literal("null")
}

// end checks that nothing but whitespace follows the value just read.
func (r *reader) end() error {
	if r.peek(); r.i < len(r.b) {
		return r.fail("unexpected data after the top-level value")
	}
	return nil
}

func (r *reader) literal(lit string) error {
	if len(r.b)-r.i < len(lit) || string(r.b[r.i:r.i+len(lit)]) != lit {
		return r.fail("invalid literal")
	}
	r.i += len(lit)
	return nil
}

// str reads a string and returns its decoded bytes. They alias the input or the
// reader's scratch buffer, so they are valid only until the next call to str.
func (r *reader) str() ([]byte, error) {
	return r.decode(&r.buf)
}

// typedStr is str for a field that must be a string: any other value is a FieldError.
func (r *reader) typedStr() ([]byte, error) {
	if r.peek() != '"' {
		return nil, r.wrong("a string")
	}
	return r.str()
}

// decode reads the string at r.i, unescaping into *buf only when it has escapes.
func (r *reader) decode(buf *[]byte) ([]byte, error) {
	if r.peek() != '"' {
		return nil, r.fail("want a string")
	}
	start := r.i + 1
	switch i := plainEnd(r.b, start); {
	case i == len(r.b):
		r.i = i
		return nil, r.fail("unterminated string")
	case r.b[i] == '"':
		r.i = i + 1
		return r.b[start:i], nil
	case r.b[i] == '\\':
		out, err := r.unescape(append((*buf)[:0], r.b[start:i]...), i)
		*buf = out
		return out, err
	default:
		r.i = i
		return nil, r.fail("control character in string")
	}
}

// unescape appends the rest of the string starting at r.b[i] to out, resolving escapes
// the way encoding/json does (a lone surrogate becomes U+FFFD).
func (r *reader) unescape(out []byte, i int) ([]byte, error) {
	for i < len(r.b) {
		c := r.b[i]
		switch {
		case c == '"':
			r.i = i + 1
			return out, nil
		case c < 0x20:
			r.i = i
			return out, r.fail("control character in string")
		case c != '\\':
			j := plainEnd(r.b, i+1)
			out = append(out, r.b[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(r.b) {
			break
		}
		switch e := r.b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			rr, ok := hex4(r.b, i+2)
			if !ok {
				r.i = i
				return out, r.fail("invalid \\u escape")
			}
			i += 6
			if utf16.IsSurrogate(rr) {
				if r2, ok := hex4(r.b, i+2); ok && r.b[i] == '\\' && r.b[i+1] == 'u' {
					if d := utf16.DecodeRune(rr, r2); d != utf8.RuneError {
						rr = d
						i += 6
					} else {
						rr = utf8.RuneError
					}
				} else {
					rr = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, rr)
			continue
		default:
			r.i = i
			return out, r.fail("invalid escape")
		}
		i += 2
	}
	r.i = len(r.b)
	return out, r.fail("unterminated string")
}

// hex4 decodes the four hex digits at b[i:i+4].
func hex4(b []byte, i int) (rune, bool) {
	if i < 0 || i+4 > len(b) {
		return 0, false
	}
	var v rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | rune(c)
	}
	return v, true
}

// number reads a number and reports whether it is an integer (no fraction or exponent).
func (r *reader) number() (isInt bool, err error) {
	b, i := r.b, r.i
	digits := func() bool {
		j := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i > j
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case !digits():
		return false, r.fail("invalid number")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		i++
		if !digits() {
			r.i = i
			return false, r.fail("invalid number")
		}
		isInt = false
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if !digits() {
			r.i = i
			return false, r.fail("invalid number")
		}
		isInt = false
	}
	r.i = i
	return isInt, nil
}

// skip reads one value of any type and discards it.
func (r *reader) skip() error {
	switch c := r.peek(); c {
	case '"':
		_, err := r.str()
		return err
	case '{':
		return r.object(func([]byte) error { return r.skip() })
	case '[':
		return r.array(func(int) error { return r.skip() })
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	case 0:
		return r.fail("unexpected end of input")
	default:
		if c == '-' || '0' <= c && c <= '9' {
			_, err := r.number()
			return err
		}
		return r.fail("unexpected character")
	}
}

// raw reads one value and returns its JSON text.
func (r *reader) raw() ([]byte, error) {
	r.peek()
	start := r.i
	if err := r.skip(); err != nil {
		return nil, err
	}
	return r.b[start:r.i], nil
}

// object reads an object, calling fn with each key; fn must read the key's value.
// The key is valid only during the call. The next value must be an object.
func (r *reader) object(fn func(key []byte) error) error {
	if r.peek() != '{' {
		return r.fail("want an object")
	}
	if r.depth++; r.depth > maxDepth {
		return r.fail("nested too deeply")
	}
	r.i++
	if r.peek() == '}' {
		r.i++
		r.depth--
		return nil
	}
	for {
		key, err := r.decode(&r.kbuf)
		if err != nil {
			return err
		}
		if r.peek() != ':' {
			return r.fail("want ':' after an object key")
		}
		r.i++
		if r.peek() == 0 {
			return r.fail("unexpected end of input")
		}
		if err := fn(key); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			r.depth--
			return nil
		default:
			return r.fail("want ',' or '}' in an object")
		}
	}
}

// array reads an array, calling fn for each element with its index; fn must read the
// element. The next value must be an array.
func (r *reader) array(fn func(i int) error) error {
	if r.peek() != '[' {
		return r.fail("want an array")
	}
	if r.depth++; r.depth > maxDepth {
		return r.fail("nested too deeply")
	}
	r.i++
	if r.peek() == ']' {
		r.i++
		r.depth--
		return nil
	}
	for i := 0; ; i++ {
		if r.peek() == 0 {
			return r.fail("unexpected end of input")
		}
		if err := fn(i); err != nil {
			return err
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			r.depth--
			return nil
		default:
			return r.fail("want ',' or ']' in an array")
		}
	}
}

// plainEnd returns the index of the first byte of b from i that ends a run of plain
// string bytes, a quote, a backslash or a control character, or len(b). It tests eight
// bytes at a time: in each test a byte flags when it is one of them, and a byte above
// such a byte may flag wrongly, but the lowest flag is always right.
func plainEnd(b []byte, i int) int {
	if n := len(b) - i; haveAVX2 && n >= 32 {
		j := plainEndAVX2(&b[i], n)
		if j < n&^31 {
			return i + j
		}
		i += j
	}
	for ; i+8 <= len(b); i += 8 {
		w := load8(b, i)
		quote, backslash := w^(ones*'"'), w^(ones*'\\')
		m := ((quote-ones)&^quote | (backslash-ones)&^backslash | (w-ones*0x20)&^w) & high
		if m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return len(b)
}
