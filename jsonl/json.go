package jsonl

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
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

// maxDepth is the deepest nesting of arrays and objects encoding/json accepts.
const maxDepth = 10000

// maxMember is the longest string a captured member (custom_id, method, url,
// body.model) may be, counted in bytes as written between its quotes.
const maxMember = 65536

// maxRaw is how much of a method that is not a string is kept for its message;
// clip needs 65 bytes.
const maxRaw = 128

// maxKey is the longest raw key, between its quotes, that can still name a member
// the checks read: "custom_id" with every letter written as \uXXXX is 54 bytes.
const maxKey = 64

// States of the machine.
const (
	stBegin        uint8 = iota // the line so far is blank
	stValue                     // a value must begin (after ':', after ',' in an array, at the top)
	stValueOrClose              // after '[': a value or ']'
	stKeyOrClose                // after '{': a key or '}'
	stKey                       // after ',' in an object: a key
	stColon                     // after a key: ':'
	stAfter                     // after a value: ',' or a closing bracket; only whitespace at the top
	stString                    // inside a string, a key when isKey
	stEsc                       // after '\' in a string
	stEscU                      // inside \uXXXX; hex digits are still due
	stNeg                       // after '-'
	stZero                      // after a leading 0
	stInt                       // in the digits of an integer part that is not 0
	stDot                       // after '.'
	stFrac                      // in the digits of a fraction
	stExp                       // after 'e' or 'E'
	stExpSign                   // after the exponent's sign
	stExpDigits                 // in the digits of an exponent
	stLiteral                   // inside true, false or null; lit holds the bytes still due
	stBad                       // not valid JSON; the rest of the line is skipped
)

// Members the checks read, indexes of machine.f. mNone stands for a key being captured.
const (
	mNone uint8 = iota
	mCustomID
	mMethod
	mURL
	mBody
	mModel  // body.model
	mStream // body.stream
	nMembers
)

// Captures in progress.
const (
	capNone uint8 = iota
	capStr        // a key or string value, from after its opening quote
	capRaw        // a method that is not a string, as written
)

// field is what the machine learned of one member.
type field struct {
	kind byte   // the value's first byte as written; 0 when the member is absent
	n    int    // bytes of the value seen so far, as written, counting those past the limit
	raw  []byte // a string's bytes between its quotes, or a method that is not a string; bounded
}

// machine checks JSON syntax exactly as encoding/json's Valid does while it reads a
// line byte by byte, and at the same time notes what the checks need of a request
// line: the top-level members custom_id, method, url and body and, when body is an
// object, its members model and stream. It never holds the line: it keeps its parse
// between calls to run and copies out only the few values it captures, each bounded
// (maxMember, maxRaw, maxKey). A member that repeats is taken from its last
// occurrence, as encoding/json takes it. reset starts a line; the zero machine needs
// it before use.
type machine struct {
	// The parse; run keeps these in locals and writes them back.
	state   uint8
	isKey   bool  // the string being read is an object key
	capMode uint8 // capture in progress
	pend    uint8 // member whose value comes next, after the key just read
	hex     uint8 // \u digits still due
	inObj   bool  // the innermost open container is an object
	depth   int   // open containers
	doneAt  int   // depth at which the watched value (a body object, a method that is not a string) ends; -1 for none
	lit     string

	// whole says run sees the whole line in one call, as ParseRequest does: a
	// newline is whitespace there, as in json.Valid, and captures alias the line.
	whole bool

	pos       int   // bytes of the line before the current run
	root      byte  // first byte of the line's value
	inBody    bool  // inside the top-level body object
	capWhat   uint8 // the member being captured; mNone for a key
	key       [maxKey]byte
	keyN      int
	f         [nMembers]field
	bodyStart int // bounds of the last body, when it is an object, in the line
	bodyEnd   int
	stack     [(maxDepth + 63) / 64]uint64 // bit d-1 is set when the container at depth d is an object
}

// plain marks the bytes a string holds without a closer look: not '"', not '\' and
// not a control character. Bytes >= 0x80 are plain: json.Valid does not check UTF-8.
var plain = func() (t [256]bool) {
	for c := range t {
		t[c] = c >= 0x20 && c != '"' && c != '\\'
	}
	return t
}()

// special sets the high bit of each byte of w, eight bytes read little-endian, that
// is '"', '\' or a control character. Bytes after the first such byte may be marked
// too, so only the lowest set bit is exact; it is the one the caller uses.
//
// It is the classic test for a zero byte, (x-0x01…)&^x&0x80…, on w^'"' and w^'\',
// and for a byte below 0x20, (w-0x20…)&^w&0x80…, with the three &^ merged: the
// XORs keep every byte's high bit, which is all the &^ reads.
func special(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := w ^ (ones * '"')
	b := w ^ (ones * '\\')
	return ((q - ones) | (b - ones) | (w - ones*0x20)) &^ w & highs
}

// isHex marks hexadecimal digits.
var isHex = func() (t [256]bool) {
	for c := range t {
		t[c] = '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
	}
	return t
}()

// reset readies the machine for a new line.
func (m *machine) reset() {
	m.state, m.isKey, m.capMode, m.pend, m.inObj = stBegin, false, capNone, mNone, false
	m.depth, m.doneAt, m.pos, m.root, m.inBody = 0, -1, 0, 0, false
	for i := range m.f {
		m.f[i] = field{raw: m.f[i].raw[:0]}
	}
	m.bodyStart, m.bodyEnd = 0, 0
}

// run reads p, the next bytes of the line, and returns len(p). Unless the machine is
// whole, a newline ends the line: run stops at it and returns its index instead.
// The newline is then read as far as the verdict goes, as json.Valid would read
// whitespace (a number ends, a string or literal is cut short), so that eol can tell
// the line's verdict; the caller skips it.
//
// This is the hot loop. The parse lives in locals; the per-member work is in small
// methods called only at the members the checks read.
func (m *machine) run(p []byte) int {
	state, isKey, capMode, pend := m.state, m.isKey, m.capMode, m.pend
	hex, inObj, depth, doneAt, lit := m.hex, m.inObj, m.depth, m.doneAt, m.lit
	capFrom := 0 // index in p where the capture in progress resumes
	i := 0
loop:
	for i < len(p) {
		switch state {
		case stString:
			// Skip plain bytes sixteen at a time, then one at a time.
			for q := p[i:]; len(q) >= 16; q = q[16:] {
				t := special(binary.LittleEndian.Uint64(q))
				if t == 0 {
					if t = special(binary.LittleEndian.Uint64(q[8:])); t != 0 {
						i += 8
					}
				}
				if t != 0 {
					i += bits.TrailingZeros64(t) >> 3
					goto stop
				}
				i += 16
			}
			for i < len(p) && plain[p[i]] {
				i++
			}
			if i == len(p) {
				break loop
			}
		stop:
			switch p[i] {
			case '"':
				if capMode == capStr {
					m.capture(p[capFrom:i])
					capMode = capNone
					if isKey {
						pend = m.member(depth)
					}
				}
				i++
				if isKey {
					state = stColon
				} else {
					state = stAfter
				}
			case '\\':
				i++
				state = stEsc
			default: // a control character, a newline among them
				state = stBad
			}

		case stEsc:
			switch p[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				state = stString
			case 'u':
				state, hex = stEscU, 4
			default:
				state = stBad
				continue
			}
			i++

		case stEscU:
			if !isHex[p[i]] {
				state = stBad
				continue
			}
			i++
			if hex--; hex == 0 {
				state = stString
			}

		case stAfter:
			c := p[i]
			switch c {
			case ' ', '\t', '\r':
				i++
			case '\n':
				if !m.whole {
					break loop
				}
				i++
			case ',':
				if depth == 0 {
					state = stBad
					continue
				}
				i++
				if inObj {
					state = stKey
				} else {
					state = stValue
				}
			case '}', ']':
				if depth == 0 || inObj != (c == '}') {
					state = stBad
					continue
				}
				i++
				depth--
				if depth > 0 {
					inObj = m.stack[(depth-1)>>6]&(1<<((depth-1)&63)) != 0
				}
				if depth == doneAt {
					capMode, doneAt = m.done(p, capFrom, i, capMode)
				}
			default:
				state = stBad
			}

		case stValue:
			c := p[i]
			switch c {
			case ' ', '\t', '\r':
				i++
				continue
			case '\n':
				if !m.whole {
					break loop
				}
				i++
				continue
			}
			if pend != mNone {
				var watch int
				if capMode, watch = m.start(pend, c, i, depth); watch >= 0 {
					doneAt = watch
				}
				capFrom = i
				if capMode == capStr {
					capFrom = i + 1
				}
				pend = mNone
			}
			i++
			switch c {
			case '"':
				state, isKey = stString, false
			case '{', '[':
				depth++
				if depth > maxDepth {
					state = stBad
					continue
				}
				inObj = c == '{'
				if inObj {
					m.stack[(depth-1)>>6] |= 1 << ((depth - 1) & 63)
					state = stKeyOrClose
				} else {
					m.stack[(depth-1)>>6] &^= 1 << ((depth - 1) & 63)
					state = stValueOrClose
				}
			case '-':
				state = stNeg
			case '0':
				state = stZero
			case '1', '2', '3', '4', '5', '6', '7', '8', '9':
				state = stInt
			case 't':
				state, lit = stLiteral, "rue"
			case 'f':
				state, lit = stLiteral, "alse"
			case 'n':
				state, lit = stLiteral, "ull"
			default:
				state = stBad
			}

		case stKeyOrClose, stKey:
			switch p[i] {
			case ' ', '\t', '\r':
				i++
			case '\n':
				if !m.whole {
					break loop
				}
				i++
			case '"':
				i++
				state, isKey = stString, true
				if depth == 1 || depth == 2 && m.inBody {
					capMode, capFrom = capStr, i
					m.capWhat, m.keyN = mNone, 0
				}
			case '}':
				if state == stKey {
					state = stBad
					continue
				}
				state = stAfter // which closes the object
			default:
				state = stBad
			}

		case stColon:
			switch p[i] {
			case ' ', '\t', '\r':
				i++
			case '\n':
				if !m.whole {
					break loop
				}
				i++
			case ':':
				i++
				state = stValue
			default:
				state = stBad
			}

		case stValueOrClose:
			switch p[i] {
			case ' ', '\t', '\r':
				i++
			case '\n':
				if !m.whole {
					break loop
				}
				i++
			case ']':
				state = stAfter // which closes the array
			default:
				state = stValue
			}

		case stBegin:
			switch c := p[i]; c {
			case ' ', '\t', '\r':
				i++
			case '\n':
				if !m.whole {
					break loop
				}
				i++
			default:
				m.root = c
				state = stValue
			}

		case stInt, stFrac, stExpDigits:
			for i < len(p) && '0' <= p[i] && p[i] <= '9' {
				i++
			}
			if i == len(p) {
				break loop
			}
			c := p[i]
			if c == '.' && state == stInt {
				state = stDot
				i++
				continue
			}
			if (c == 'e' || c == 'E') && state != stExpDigits {
				state = stExp
				i++
				continue
			}
			state = stAfter // the number ended before c
			if depth == doneAt {
				capMode, doneAt = m.done(p, capFrom, i, capMode)
			}

		case stZero:
			switch p[i] {
			case '.':
				state = stDot
				i++
			case 'e', 'E':
				state = stExp
				i++
			default:
				state = stAfter
				if depth == doneAt {
					capMode, doneAt = m.done(p, capFrom, i, capMode)
				}
			}

		case stNeg:
			switch c := p[i]; {
			case c == '0':
				state = stZero
			case '1' <= c && c <= '9':
				state = stInt
			default:
				state = stBad
				continue
			}
			i++

		case stDot, stExpSign:
			if c := p[i]; c < '0' || c > '9' {
				state = stBad
				continue
			}
			i++
			if state == stDot {
				state = stFrac
			} else {
				state = stExpDigits
			}

		case stExp:
			switch c := p[i]; {
			case c == '+' || c == '-':
				state = stExpSign
			case '0' <= c && c <= '9':
				state = stExpDigits
			default:
				state = stBad
				continue
			}
			i++

		case stLiteral:
			if p[i] != lit[0] {
				state = stBad
				continue
			}
			i++
			if lit = lit[1:]; lit == "" {
				state = stAfter
				if depth == doneAt {
					capMode, doneAt = m.done(p, capFrom, i, capMode)
				}
			}

		case stBad:
			capMode, pend, doneAt = capNone, mNone, -1
			if m.whole {
				i = len(p)
				break loop
			}
			j := bytes.IndexByte(p[i:], '\n')
			if j < 0 {
				i = len(p)
				break loop
			}
			i += j
			break loop
		}
	}
	if capMode != capNone && i == len(p) {
		m.capture(p[capFrom:])
	}
	m.state, m.isKey, m.capMode, m.pend = state, isKey, capMode, pend
	m.hex, m.inObj, m.depth, m.doneAt, m.lit = hex, inObj, depth, doneAt, lit
	m.pos += i
	return i
}

// eol ends the line as json.Valid ends its input, and reports whether the line is
// valid JSON. A blank line is not; the caller tells it by state stBegin first.
func (m *machine) eol() bool {
	switch m.state {
	case stZero, stInt, stFrac, stExpDigits:
		m.state = stAfter // the end of input ends a number
	}
	return m.state == stAfter && m.depth == 0
}

// capture adds b to the key or member being captured, up to its limit.
func (m *machine) capture(b []byte) {
	if m.capWhat == mNone {
		if m.keyN < maxKey {
			copy(m.key[m.keyN:], b)
		}
		m.keyN += len(b)
		return
	}
	f := &m.f[m.capWhat]
	limit := maxMember
	if f.kind != '"' {
		limit = maxRaw
	}
	f.n += len(b)
	if room := limit - len(f.raw); room > 0 {
		if len(b) > room {
			b = b[:room]
		}
		if m.whole {
			f.raw = b // the one piece of the capture, within the line
		} else {
			f.raw = append(f.raw, b...)
		}
	}
}

// member returns the member that the key just captured names in an object at depth.
func (m *machine) member(depth int) uint8 {
	if m.keyN > maxKey {
		return mNone
	}
	k := m.key[:m.keyN]
	if bytes.IndexByte(k, '\\') >= 0 {
		var buf [maxKey]byte
		var ok bool
		if k, ok = asciiName(k, buf[:0]); !ok {
			return mNone
		}
	}
	if depth == 1 {
		switch string(k) {
		case "custom_id":
			return mCustomID
		case "method":
			return mMethod
		case "url":
			return mURL
		case "body":
			return mBody
		}
		return mNone
	}
	switch string(k) {
	case "model":
		return mModel
	case "stream":
		return mStream
	}
	return mNone
}

// start notes that the value of member w begins with c, at index at of the run, in
// an object at depth. It returns the capture to begin and, when the value's end must
// be watched (a body object, a method that is not a string), the depth at which it
// ends, else -1. Only members at depth 1 are watched, so watches never nest.
func (m *machine) start(w uint8, c byte, at, depth int) (uint8, int) {
	m.f[w] = field{kind: c, raw: m.f[w].raw[:0]}
	switch w {
	case mBody:
		m.f[mModel] = field{raw: m.f[mModel].raw[:0]}
		m.f[mStream] = field{}
		if c == '{' {
			m.inBody, m.bodyStart = true, m.pos+at
			return capNone, depth
		}
		return capNone, -1
	case mStream:
		return capNone, -1
	}
	m.capWhat = w
	switch {
	case c == '"':
		return capStr, -1
	case w == mMethod:
		return capRaw, depth
	}
	return capNone, -1
}

// done ends the watched value, which ends just before p[end]; from is where its
// capture resumes in p.
func (m *machine) done(p []byte, from, end int, capMode uint8) (uint8, int) {
	if capMode == capRaw {
		m.capture(p[from:end])
	}
	if m.inBody {
		m.inBody, m.bodyEnd = false, m.pos+end
	}
	return capNone, -1
}

// asciiName decodes raw, the inside of a valid JSON string with escapes, into dst
// as far as it could name a member: it reports false when raw decodes to anything
// but ASCII, which no member name is.
func asciiName(raw, dst []byte) ([]byte, bool) {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c >= utf8.RuneSelf {
			return nil, false
		}
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		if i++; i >= len(raw) {
			return nil, false
		}
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			if i+4 >= len(raw) {
				return nil, false
			}
			r := 0
			for _, h := range raw[i+1 : i+5] {
				switch {
				case '0' <= h && h <= '9':
					r = r<<4 | int(h-'0')
				case 'a' <= h && h <= 'f':
					r = r<<4 | int(h-'a'+10)
				case 'A' <= h && h <= 'F':
					r = r<<4 | int(h-'A'+10)
				default:
					return nil, false
				}
			}
			if r >= utf8.RuneSelf {
				return nil, false // a surrogate or any other rune past ASCII
			}
			dst = append(dst, byte(r))
			i += 4
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst, true
}

// decodeString returns the value of a JSON string given its bytes between the
// quotes, as encoding/json decodes it. It returns raw itself when raw has no escapes
// and is valid UTF-8, which encoding/json takes as written; otherwise it decodes
// with json.Unmarshal, turning invalid UTF-8 into U+FFFD.
func decodeString(raw []byte) []byte {
	i := 0
	for i < len(raw) && raw[i] != '\\' && raw[i] < utf8.RuneSelf {
		i++
	}
	if i == len(raw) || bytes.IndexByte(raw[i:], '\\') < 0 && utf8.Valid(raw[i:]) {
		return raw
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	var s string
	if json.Unmarshal(q, &s) != nil {
		return nil // not a valid string's inside; the machine never captures one
	}
	return []byte(s)
}

// valid reports whether data is one JSON value, with whitespace around it allowed,
// exactly as json.Valid does, with the machine reading data in one piece: a few times
// faster than json.Valid, which checks every byte through a function call.
func valid(data []byte) bool {
	var m machine
	m.reset()
	m.whole = true
	m.run(data)
	return m.state != stBegin && m.eol()
}
