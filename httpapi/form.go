package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"path/filepath"
	"strings"
)

// formReader reads a multipart/form-data body part by part, as mime/multipart's Reader
// does, for uploads of hundreds of megabytes. mime/multipart looks for the boundary in
// windows of 4 KiB and, in each, scans back byte by byte for a '\r' that could begin
// one; on a file of JSON Lines, which has none, that scan was a third of an upload's
// CPU. formReader keeps a large buffer and finds the boundary with bytes.Index, which
// is vectorised. Its rules are mime/multipart's, step for step: the preamble, LWSP
// after a boundary, bare "\n" line ends when the first boundary line uses them, a part
// whose data starts with the boundary. FuzzFormReader checks it against
// mime/multipart. It reads only what form-data needs of a part's header
// (Content-Disposition's name and filename) and does not decode
// Content-Transfer-Encoding, which form-data does not use.
type formReader struct {
	src    io.Reader
	buf    []byte // buffered bytes are buf[r:w]
	r, w   int
	srcErr error // what src returned after the buffered bytes

	nl        []byte // "\r\n", or "\n" when the first boundary line ends so
	dash      []byte // "--" + boundary
	dashDash  []byte // "--" + boundary + "--"
	nlDash    []byte // nl + "--" + boundary: what ends a part's data
	partsRead int
	part      *formPart
}

// Limits of a part's header, as mime/multipart's, and of a form's parts: an upload
// has two to four (purpose, file, expires_after), and no field needs a long
// Content-Disposition (a file name is at most MaxFilenameBytes).
const (
	maxPartHeaderBytes = 10 << 20
	maxPartHeaders     = 10000
	maxFormParts       = 32
	maxDisposition     = 8 << 10
)

func newFormReader(src io.Reader, boundary string, size int) *formReader {
	return &formReader{
		src: src, buf: make([]byte, max(size, 4096)),
		nl: []byte("\r\n"), dash: []byte("--" + boundary), dashDash: []byte("--" + boundary + "--"),
		nlDash: []byte("\r\n--" + boundary),
	}
}

// fill reads more of src into the buffer, moving the buffered bytes to its start when
// that makes room. It reports whether it read anything.
func (f *formReader) fill() bool {
	if f.srcErr != nil {
		return false
	}
	if f.r > 0 && (f.w == len(f.buf) || f.r >= len(f.buf)/2) {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	if f.w == len(f.buf) {
		return false
	}
	for {
		n, err := f.src.Read(f.buf[f.w:])
		f.w += n
		if err != nil {
			f.srcErr = err
		}
		if n > 0 || err != nil {
			return n > 0
		}
	}
}

// readLine returns the next line with its "\n", like bufio.Reader.ReadSlice('\n'): at
// the end of the input it returns what is left and the input's error.
func (f *formReader) readLine() ([]byte, error) {
	for from := 0; ; {
		if i := bytes.IndexByte(f.buf[f.r+from:f.w], '\n'); i >= 0 {
			line := f.buf[f.r : f.r+from+i+1]
			f.r += from + i + 1
			return line, nil
		}
		from = f.w - f.r
		if !f.fill() {
			if f.srcErr == nil {
				return nil, errors.New("multipart: line too long")
			}
			line := f.buf[f.r:f.w]
			f.r = f.w
			return line, f.srcErr
		}
	}
}

func (f *formReader) isBoundaryDelimiterLine(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, f.dash)
	if !ok {
		return false
	}
	rest = skipLWSP(rest)
	// A first boundary line that ends in a bare "\n" makes "\n" the line end, as
	// mime/multipart allows.
	if f.partsRead == 0 && len(rest) == 1 && rest[0] == '\n' {
		f.nl = f.nl[1:]
		f.nlDash = f.nlDash[1:]
	}
	return bytes.Equal(rest, f.nl)
}

func (f *formReader) isFinalBoundary(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, f.dashDash)
	if !ok {
		return false
	}
	rest = skipLWSP(rest)
	return len(rest) == 0 || bytes.Equal(rest, f.nl)
}

func skipLWSP(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// NextPart returns the next part, reading past what is left of the current one, or
// io.EOF after the final boundary.
func (f *formReader) NextPart() (*formPart, error) {
	if f.part != nil {
		if _, err := io.Copy(io.Discard, f.part); err != nil && err != io.EOF {
			return nil, err
		}
		f.part = nil
	}
	expectNewPart := false
	for {
		line, err := f.readLine()
		if err == io.EOF && f.isFinalBoundary(line) {
			return nil, io.EOF
		}
		if err != nil {
			return nil, fmt.Errorf("multipart: NextPart: %w", err)
		}
		if f.isBoundaryDelimiterLine(line) {
			if f.partsRead == maxFormParts {
				return nil, fmt.Errorf("multipart: the form has more than %d parts", maxFormParts)
			}
			f.partsRead++
			p := &formPart{f: f}
			if err := p.readHeader(); err != nil {
				return nil, err
			}
			f.part = p
			return p, nil
		}
		if f.isFinalBoundary(line) {
			return nil, io.EOF
		}
		if expectNewPart {
			return nil, fmt.Errorf("multipart: expecting a new Part; got line %q", clipBytes(line))
		}
		if f.partsRead == 0 {
			continue // the preamble
		}
		if bytes.Equal(line, f.nl) {
			expectNewPart = true // the line end before the boundary line
			continue
		}
		return nil, fmt.Errorf("multipart: unexpected line in Next(): %q", clipBytes(line))
	}
}

func clipBytes(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// formPart is one part of a form: its name and file name, and its data as a reader.
type formPart struct {
	f        *formReader
	name     string
	filename string
	total    int64 // data bytes read so far
	n        int   // buffered data bytes known to come before the delimiter
	err      error // what Read returns once those are read: io.EOF at the delimiter
}

// readHeader reads the part's header and takes its name and file name from
// Content-Disposition, as mime/multipart's FormName and FileName do.
func (p *formPart) readHeader() error {
	f := p.f
	var lines, size int
	var disposition string
	inDisposition := false // the last header line was the first Content-Disposition
	for {
		line, err := f.readLine()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("multipart: NextPart: %w", err)
		}
		size += len(line)
		if lines++; lines > maxPartHeaders || size > maxPartHeaderBytes {
			return errors.New("multipart: message too large")
		}
		body := bytes.TrimSuffix(line, []byte("\n"))
		body = bytes.TrimSuffix(body, []byte("\r"))
		if len(body) == 0 {
			break
		}
		for _, c := range body {
			if c < ' ' && c != '\t' || c == 0x7f {
				return fmt.Errorf("multipart: NextPart: malformed MIME header line: %q", clipBytes(body))
			}
		}
		if body[0] == ' ' || body[0] == '\t' {
			// A continuation of the header line before, joined with one space.
			if lines == 1 {
				return fmt.Errorf("multipart: NextPart: malformed MIME header initial line: %s", clipBytes(body))
			}
			if inDisposition {
				disposition += " " + string(bytes.TrimSpace(body))
				if len(disposition) > maxDisposition {
					return errors.New("multipart: Content-Disposition is too long")
				}
			}
			continue
		}
		k, v, ok := bytes.Cut(body, []byte(":"))
		if !ok || !isHeaderName(k) {
			return fmt.Errorf("multipart: NextPart: malformed MIME header line: %s", clipBytes(body))
		}
		inDisposition = false
		if strings.EqualFold(string(k), "Content-Disposition") && disposition == "" {
			disposition = string(bytes.TrimSpace(v))
			inDisposition = true
			if len(disposition) > maxDisposition {
				return errors.New("multipart: Content-Disposition is too long")
			}
		}
	}
	// As mime/multipart: the name only of a form-data part, the file name of any.
	disp, params, err := mime.ParseMediaType(disposition)
	if err == nil {
		if disp == "form-data" {
			p.name = params["name"]
		}
		if fn := params["filename"]; fn != "" {
			p.filename = filepath.Base(fn)
		}
	}
	return nil
}

// isHeaderName reports whether k is a header name as mime/multipart takes one: one or
// more RFC 7230 token characters or spaces. A space is not a token character, but
// net/textproto accepts one (a space before the colon, "Name : value"), keeping such a
// name as it is, so that it never names Content-Disposition.
func isHeaderName(k []byte) bool {
	if len(k) == 0 {
		return false
	}
	for _, c := range k {
		if c < ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// FormName returns the part's name.
func (p *formPart) FormName() string { return p.name }

// FileName returns the base of the part's file name, or "".
func (p *formPart) FileName() string { return p.filename }

// Read reads the part's data.
func (p *formPart) Read(b []byte) (int, error) {
	f := p.f
	for p.n == 0 && p.err == nil {
		readErr := f.srcErr
		if readErr == io.EOF {
			readErr = io.ErrUnexpectedEOF
		}
		p.n, p.err = p.scan(f.buf[f.r:f.w], readErr)
		if p.n == 0 && p.err == nil && !f.fill() && f.srcErr == nil {
			return 0, errors.New("multipart: part data does not fit the buffer")
		}
	}
	if p.n == 0 {
		return 0, p.err
	}
	n := copy(b, f.buf[f.r:f.r+min(p.n, len(b))])
	f.r += n
	p.n -= n
	p.total += int64(n)
	if p.n == 0 && p.err != nil {
		return n, p.err
	}
	return n, nil
}

// scan returns how many bytes of buf are the part's data for sure, and the error that
// follows them: io.EOF when the delimiter follows, readErr when the input ended. It is
// mime/multipart's scanUntilBoundary.
func (p *formPart) scan(buf []byte, readErr error) (int, error) {
	f := p.f
	if p.total == 0 {
		// At the start of the data the delimiter may come without its line end.
		if bytes.HasPrefix(buf, f.dash) {
			switch afterDelimiter(buf, f.dash, readErr) {
			case -1:
				return len(f.dash), nil
			case 0:
				return 0, nil
			case +1:
				return 0, io.EOF
			}
		}
		if bytes.HasPrefix(f.dash, buf) {
			return 0, readErr
		}
	}
	if i := bytes.Index(buf, f.nlDash); i >= 0 {
		switch afterDelimiter(buf[i:], f.nlDash, readErr) {
		case -1:
			return i + len(f.nlDash), nil
		case 0:
			return i, nil
		case +1:
			return i, io.EOF
		}
	}
	if bytes.HasPrefix(f.nlDash, buf) {
		return 0, readErr
	}
	// Hold back a tail that may begin the delimiter. The delimiter holds its first
	// byte once, so only the last such byte in the buffer can begin it.
	tail := max(0, len(buf)-len(f.nlDash))
	if i := bytes.LastIndexByte(buf[tail:], f.nlDash[0]); i >= 0 && bytes.HasPrefix(f.nlDash, buf[tail+i:]) {
		return tail + i, nil
	}
	return len(buf), readErr
}

// afterDelimiter tells from what follows prefix at the start of buf whether it is a
// delimiter: +1 yes (whitespace or "--"), -1 no, 0 not known until more is read. It is
// mime/multipart's matchAfterPrefix.
func afterDelimiter(buf, prefix []byte, readErr error) int {
	if len(buf) == len(prefix) {
		if readErr != nil {
			return +1
		}
		return 0
	}
	c := buf[len(prefix)]
	if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
		return +1
	}
	if c == '-' {
		if len(buf) == len(prefix)+1 {
			if readErr != nil {
				return -1
			}
			return 0
		}
		if buf[len(prefix)+1] == '-' {
			return +1
		}
	}
	return -1
}
