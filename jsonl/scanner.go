package jsonl

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"math"

	"github.com/sluice-batch/sluice"
)

// Entry is one request line's place in the input file.
type Entry struct {
	Line     int    // 1-based physical line number
	Offset   int64  // byte offset of the first byte of the line (after any BOM when line 1)
	Length   int    // bytes of the line, without "\n" and without a trailing "\r"
	CustomID string // the line's custom_id, decoded
	Tokens   int    // the line's input tokens, when counted
}

// Summary is what a scan learned.
type Summary struct {
	Requests int    // request lines seen (non-blank lines), counted even past MaxRequests
	URL      string // url of the first request line with a string url within the 65536-byte cap, as written
	Model    string // body.model of the first request line with a string model within the cap
	// URLLine and ModelLine are the lines of URL and Model, which every other line is
	// compared with; 0 when there is none.
	URLLine   int
	ModelLine int
	Problems  []sluice.BatchError // in line order, at most sluice.MaxBatchErrors
	BOM       bool                // the file began with a UTF-8 byte-order mark, which was skipped
}

// ScanOptions are the optional settings of NewScanner; nil means the defaults.
type ScanOptions struct {
	// MaxRequests is the most request lines a file may hold; 0 means sluice.MaxRequests.
	MaxRequests int
	// EntryFunc, when set, receives each request line that has no problem, in order, until the
	// first problem of the file; after a problem it is not called again. If it returns an error
	// it is not called again and Close returns that error.
	//
	// The entries of a file are complete only when Close reports no problem: a
	// problem on a later line, or empty_batch, makes the file unusable, and the
	// caller drops what it was given.
	EntryFunc func(Entry) error
}

// bom is the UTF-8 byte-order mark.
var bom = []byte{0xEF, 0xBB, 0xBF}

// Scanner validates JSONL pushed into it with Write. It is an io.Writer, so it can sit
// behind io.TeeReader while the upload streams to disk, and Write never returns an
// error. It reads every byte once, as it arrives, and never holds a line: a line of
// any length costs the same memory, a few kilobytes plus at most 64 KiB for each of
// custom_id, method, url and body.model. It keeps no Entry: it hands each to
// ScanOptions.EntryFunc. Beyond the line it keeps only the custom_id set, which stops
// growing after MaxRequests requests (ScanOptions.MaxRequests, by default
// sluice.MaxRequests).
//
// The custom_id set holds no custom_id: for each it keeps a 96-bit hash, from two
// hash/maphash values under seeds drawn for the Scanner, and the line that first
// used it, 16 bytes in all. Taking maphash as random, two different custom_ids share
// a hash with probability 2^-96, so a file of n custom_ids sees a collision with
// probability at most n²/2^97: below 10^-19 for 100,000, below 10^-17 for a million.
// A collision would report a false duplicate_custom_id; a real duplicate is never
// missed.
//
// Lines end at "\n", whatever comes before it: a newline inside a string ends the
// line, which then is not valid JSON. One trailing "\r" is stripped. A line holding
// only spaces, tabs and carriage returns is blank: not a request and no problem,
// though it counts in line numbers. A line is valid JSON when encoding/json's Valid
// accepts it: it does not check UTF-8 inside strings, and it nests at most 10000
// arrays and objects. Each request line gets at most one problem, the first of: not
// valid JSON (invalid_json_line); not an object; custom_id missing, not a string,
// longer than 65536 bytes, empty or not valid UTF-8; method missing, not a string, longer than 65536
// bytes or not "POST"; url missing, not a string or longer than 65536 bytes; body
// missing or not an object; body.model missing, not a string or longer than 65536
// bytes; body.stream true (all invalid_request); custom_id seen on an earlier line
// (duplicate_custom_id); url not the first line's, compared in NormalizeEndpoint form
// when both are known endpoints (url_mismatch); body.model not the first line's
// (model_mismatch). A string's length is counted in bytes as written between its
// quotes, escapes not decoded; the limit bounds the memory a hostile line can take.
// The url and model a line must match are those of the first line that had a string
// url and a string body.model of at most 65536 bytes, even when that line had a
// problem of its own. The request line past MaxRequests gets too_many_tasks instead
// of any problem of its own. A file with no request lines gets empty_batch at line 0.
// Past MaxRequests, duplicates are found only among the first MaxRequests
// custom_ids.
//
// A Scanner is not safe for concurrent use.
type Scanner struct {
	head    []byte // the first bytes, until it is known whether they are a BOM
	started bool   // the BOM question is settled
	closed  bool

	m         machine
	base      int64 // file offset of the next byte to read
	lineStart int64 // file offset of the current line's first byte
	last      byte  // the last byte read
	lineNo    int   // physical lines ended so far

	maxRequests int
	entryFunc   func(Entry) error
	err         error // from entryFunc

	urlLine   int  // line of Summary.URL; 0 while there is none
	modelLine int  // line of Summary.Model; 0 while there is none
	failed    bool // a problem was found: no more entries
	seeds     [2]maphash.Seed
	ids       idSet
	sum       Summary
}

// idHash is a custom_id's 96-bit hash: h[0] whole, and the low 32 bits of h[1].
type idHash [2]uint64

// idSet maps custom_id hashes to the line that first used each. It is a hash table
// with open addressing and linear probing rather than a map: the keys are random
// already, so their low bits pick the slot, and it grows by doubling, a few
// allocations per file where a map's tables split every few hundred lines.
type idSet struct {
	slots []idSlot // a power of two of them, or none
	n     int      // slots in use
}

// idSlot is one slot of an idSet, 16 bytes: 96 bits of hash and the line; line 0
// marks it empty.
type idSlot struct {
	h0   uint64
	h1   uint32
	line uint32
}

func (sl *idSlot) is(h idHash) bool { return sl.h0 == h[0] && sl.h1 == uint32(h[1]) }

// line returns the line recorded for h, or 0.
func (t *idSet) line(h idHash) int {
	mask := uint64(len(t.slots) - 1)
	for i := h[0] & mask; len(t.slots) > 0; i = (i + 1) & mask {
		switch sl := &t.slots[i]; {
		case sl.line == 0:
			return 0
		case sl.is(h):
			return int(sl.line)
		}
	}
	return 0
}

// add records h, which the set does not hold, at line, which is above 0. It keeps at
// most 7/8 of the slots in use.
func (t *idSet) add(h idHash, line int) {
	if (t.n+1)*8 > len(t.slots)*7 {
		old := t.slots
		t.slots = make([]idSlot, max(256, 2*len(old)))
		for _, sl := range old {
			if sl.line != 0 {
				t.put(sl)
			}
		}
	}
	t.put(idSlot{h[0], uint32(h[1]), uint32(min(line, math.MaxUint32))}) // past 4e9 lines the message names the 4e9th
	t.n++
}

// put stores sl in the first free slot from its hash on.
func (t *idSet) put(sl idSlot) {
	mask := uint64(len(t.slots) - 1)
	i := sl.h0 & mask
	for t.slots[i].line != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = sl
}

// NewScanner returns a Scanner at the start of a file.
func NewScanner(opts *ScanOptions) *Scanner {
	s := &Scanner{
		maxRequests: sluice.MaxRequests,
		seeds:       [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
	}
	if opts != nil {
		if opts.MaxRequests > 0 {
			s.maxRequests = opts.MaxRequests
		}
		s.entryFunc = opts.EntryFunc
	}
	s.m.reset()
	return s
}

// Write scans p. It always returns len(p) and a nil error, and it does not keep p.
// Writes after Close are ignored.
func (s *Scanner) Write(p []byte) (int, error) {
	n := len(p)
	if s.closed {
		return n, nil
	}
	if !s.started {
		take := min(len(bom)-len(s.head), len(p))
		s.head = append(s.head, p[:take]...)
		p = p[take:]
		if len(s.head) < len(bom) && bytes.HasPrefix(bom, s.head) {
			return n, nil
		}
		s.start()
	}
	s.feed(p)
	return n, nil
}

// start settles whether the file began with a BOM and scans the bytes held till then.
func (s *Scanner) start() {
	s.started = true
	if bytes.Equal(s.head, bom) {
		s.sum.BOM = true
		s.base, s.lineStart = int64(len(bom)), int64(len(bom))
	} else {
		s.feed(s.head)
	}
	s.head = nil
}

// feed runs p through the machine, ending a line at each newline.
func (s *Scanner) feed(p []byte) {
	for len(p) > 0 {
		i := s.m.run(p)
		s.base += int64(i)
		if i == len(p) {
			s.last = p[i-1]
			return
		}
		cr := s.last == '\r'
		if i > 0 {
			cr = p[i-1] == '\r'
		}
		s.endLine(cr)
		s.base++ // the "\n"
		s.lineStart, s.last = s.base, '\n'
		p = p[i+1:]
	}
}

// endLine handles the line that ends at s.base; cr says its last byte is "\r".
func (s *Scanner) endLine(cr bool) {
	s.lineNo++
	if s.m.state != stBegin {
		length := int(s.base - s.lineStart)
		if cr {
			length--
		}
		s.request(s.m.eol(), s.lineStart, length)
	}
	s.m.reset()
}

// request checks one request line; valid is the machine's verdict.
func (s *Scanner) request(valid bool, offset int64, length int) {
	s.sum.Requests++
	var f facts
	p := s.m.check(valid, &f)
	if f.hasURL && s.urlLine == 0 {
		s.sum.URL, s.urlLine = string(f.url), s.lineNo
		s.sum.URLLine = s.lineNo
	}
	if f.hasModel && s.modelLine == 0 {
		s.sum.Model, s.modelLine = string(f.model), s.lineNo
		s.sum.ModelLine = s.lineNo
	}
	var h idHash
	first := 0 // the line that first used this custom_id
	if f.hasID {
		h = idHash{maphash.Bytes(s.seeds[0], f.id), maphash.Bytes(s.seeds[1], f.id)}
		first = s.ids.line(h)
	}
	switch {
	case s.sum.Requests == s.maxRequests+1:
		p = problem{code: codeTooMany, msg: fmt.Sprintf(
			"is request %d; a batch holds at most %d requests.", s.sum.Requests, s.maxRequests)}
	case p.code != "":
	case first != 0:
		p = problem{codeDuplicateID, "custom_id", fmt.Sprintf(
			"repeats custom_id %s of line %d; custom_id must be unique within a batch.",
			quote(string(f.id)), first)}
	case string(f.url) != s.sum.URL && !sameEndpoint(string(f.url), s.sum.URL):
		p = problem{codeURLMismatch, "url", fmt.Sprintf(
			"has url %s but line %d has url %s; every request in a batch must use the same url.",
			quote(string(f.url)), s.urlLine, quote(s.sum.URL))}
	case string(f.model) != s.sum.Model:
		p = problem{codeModelMismatch, "body.model", fmt.Sprintf(
			"has body.model %s but line %d has body.model %s; every request in a batch must use the same model.",
			quote(string(f.model)), s.modelLine, quote(s.sum.Model))}
	}
	if s.sum.Requests > s.maxRequests {
		if p.code != "" {
			s.problem(p)
		}
		return
	}
	if f.hasID && first == 0 {
		s.ids.add(h, s.lineNo)
	}
	if p.code != "" {
		s.problem(p)
		return
	}
	if !s.failed && s.entryFunc != nil && s.err == nil {
		s.err = s.entryFunc(Entry{Line: s.lineNo, Offset: offset, Length: length, CustomID: string(f.id)})
	}
}

// sameEndpoint reports whether two urls name the same known endpoint.
func sameEndpoint(a, b string) bool {
	na := NormalizeEndpoint(a)
	return na != "" && na == NormalizeEndpoint(b)
}

// problem records a problem on the current line; no entry follows it.
func (s *Scanner) problem(p problem) {
	s.failed = true
	if len(s.sum.Problems) < sluice.MaxBatchErrors {
		s.sum.Problems = append(s.sum.Problems, sluice.BatchError{
			Code: p.code, Message: lineMessage(s.lineNo, p.msg), Param: p.param, Line: s.lineNo,
		})
	}
}

// Close handles a final line without a newline and returns the summary. It adds an
// empty_batch problem (Line 0) when there were no request lines. The error is the
// one ScanOptions.EntryFunc returned, if it did; the summary is complete even then.
// Calling Close again returns the same summary and error.
func (s *Scanner) Close() (*Summary, error) {
	if s.closed {
		return &s.sum, s.err
	}
	if !s.started {
		s.start()
	}
	s.closed = true
	if s.base > s.lineStart {
		s.endLine(s.last == '\r')
	}
	s.ids = idSet{}
	if s.sum.Requests == 0 {
		s.failed = true
		s.sum.Problems = append(s.sum.Problems, sluice.BatchError{
			Code:    codeEmpty,
			Message: "The file has no request lines; a batch needs at least one request.",
		})
	}
	return &s.sum, s.err
}
