package jsonl

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// object iterates over the top-level members of a JSON object without decoding them.
// Callers check the input with json.Valid first; on anything else object never panics,
// it only stops early with bad set.
type object struct {
	data    []byte
	open    int // index of the '{'
	i       int // index of the next member's key
	members int // members returned so far
	done    bool
	bad     bool
}

// openObject starts iterating data, one JSON value with optional surrounding
// whitespace. It reports false when that value is not an object.
func openObject(data []byte) (object, bool) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return object{}, false
	}
	o := object{data: data, open: i, i: skipSpace(data, i+1)}
	if o.i < len(data) && data[o.i] == '}' {
		o.done = true
	}
	return o, true
}

// next returns the next member: its raw key, quotes included, and the bounds of its
// raw value in data. ok is false after the last member or on malformed input.
func (o *object) next() (key []byte, start, end int, ok bool) {
	if o.done || o.bad {
		return nil, 0, 0, false
	}
	d := o.data
	i := o.i
	if i >= len(d) || d[i] != '"' {
		o.bad = true
		return nil, 0, 0, false
	}
	ke := skipString(d, i)
	if ke < 0 {
		o.bad = true
		return nil, 0, 0, false
	}
	key = d[i:ke]
	i = skipSpace(d, ke)
	if i >= len(d) || d[i] != ':' {
		o.bad = true
		return nil, 0, 0, false
	}
	start = skipSpace(d, i+1)
	end = skipValue(d, start)
	if end < 0 {
		o.bad = true
		return nil, 0, 0, false
	}
	i = skipSpace(d, end)
	if i >= len(d) {
		o.bad = true
		return nil, 0, 0, false
	}
	switch d[i] {
	case ',':
		o.i = skipSpace(d, i+1)
	case '}':
		o.done = true
		o.i = i + 1
	default:
		o.bad = true
		return nil, 0, 0, false
	}
	o.members++
	return key, start, end, true
}

// isSpace reports whether b is JSON whitespace.
func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\r' || b == '\n' }

func skipSpace(d []byte, i int) int {
	for i < len(d) && isSpace(d[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at d[i] (a '"'), or
// -1 when it does not end.
func skipString(d []byte, i int) int {
	j := i + 1
	for j <= len(d) {
		k := bytes.IndexByte(d[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && d[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
	return -1
}

// skipValue returns the index just past the value that starts at d[i], or -1.
func skipValue(d []byte, i int) int {
	if i >= len(d) {
		return -1
	}
	switch d[i] {
	case '"':
		return skipString(d, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(d); j++ {
			switch d[j] {
			case '"':
				e := skipString(d, j)
				if e < 0 {
					return -1
				}
				j = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	case '}', ']', ',', ':':
		return -1
	}
	j := i
	for j < len(d) && !isSpace(d[j]) && d[j] != ',' && d[j] != '}' && d[j] != ']' {
		j++
	}
	return j
}

// memberName returns the name a raw key (quotes included) stands for. It allocates
// only for a key with escapes.
func memberName(raw []byte) []byte {
	if len(raw) < 2 {
		return nil
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return inner
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil
	}
	return []byte(s)
}

// stringBytes returns the contents of a raw JSON string, unescaped. The result
// aliases raw unless raw has escapes or bytes that need checking. It reports false
// when raw is not a string.
func stringBytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	for _, b := range inner {
		if b < 0x20 || b >= utf8.RuneSelf || b == '\\' || b == '"' {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, false
			}
			return []byte(s), true
		}
	}
	return inner, true
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaped as encoding/json escapes it except
// that <, > and & are left alone: invalid UTF-8 becomes U+FFFD, and U+2028 and U+2029
// are escaped so the result is safe in JavaScript too.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
