package jsonl

// Member is what the validator learned of one member of a request line, for tests.
type Member struct {
	Kind  byte   // the value's first byte as written; 0 when the member is absent
	Len   int    // a string's bytes between its quotes, as written
	Value string // a string's decoded value, when it is at most 65536 bytes
	Raw   string // a method that is not a string, as written, at most 128 bytes
}

// LineFields is what the validator learned of one line, for tests. Only Valid is set
// for a line that is not valid JSON, and only Valid and Root for one that is not an
// object. Model and Stream are set only when the (last) body is an object.
type LineFields struct {
	Valid                 bool
	Root                  byte // the first byte of the line's value
	CustomID, Method, URL Member
	Body                  byte // the first byte of body's value
	Model                 Member
	Stream                byte // the first byte of body.stream's value
	BodyText              string
}

// ValidateLine runs the validator over line. With chunk 0 it reads the line as
// ParseRequest does, in one piece with newlines as whitespace; otherwise it reads it
// as the Scanner does, in pieces of chunk bytes, and line must hold no newline.
func ValidateLine(line []byte, chunk int) LineFields {
	var m machine
	m.reset()
	if chunk <= 0 {
		m.whole = true
		m.run(line)
	} else {
		for p := line; len(p) > 0; {
			n := min(chunk, len(p))
			if m.run(p[:n]) != n {
				panic("jsonl: ValidateLine: the machine stopped before a newline")
			}
			p = p[n:]
		}
	}
	lf := LineFields{Valid: m.eol()}
	if !lf.Valid {
		return lf
	}
	lf.Root = m.root
	if lf.Root != '{' {
		return lf
	}
	member := func(w uint8) Member {
		f := m.f[w]
		mb := Member{Kind: f.kind}
		switch {
		case f.kind == '"':
			mb.Len = f.n
			if f.n <= maxMember {
				mb.Value = string(decodeString(f.raw))
			}
		case w == mMethod:
			mb.Raw = string(f.raw)
		}
		return mb
	}
	lf.CustomID, lf.Method, lf.URL = member(mCustomID), member(mMethod), member(mURL)
	lf.Body = m.f[mBody].kind
	if lf.Body == '{' {
		lf.Model, lf.Stream = member(mModel), m.f[mStream].kind
		if chunk <= 0 {
			lf.BodyText = string(line[m.bodyStart:m.bodyEnd])
		}
	}
	return lf
}

// Valid is the validator AppendResponse checks answers with.
var Valid = valid
