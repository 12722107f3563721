package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"slices"
	"sync"

	"github.com/sluice-batch/sluice/jsonl"
	"github.com/sluice-batch/sluice/tokens"
)

// lineCounter counts the input tokens of every line of an upload on all cores while the
// scanner validates it. The scanner's goroutine hands it each chunk before scanning it
// (add); a splitter cuts the chunks into lines and gives batches of lines to one
// worker per core; a collector puts the counts back in line order, and the scanner's
// entry function waits for the count of each request line (wait) before the line goes
// into the index. Counting runs at most the scan's few chunks ahead, so memory does not
// grow with the file.
type lineCounter struct {
	pick func(model string) *tokens.Counter // the counter for the deployment a line names

	in    chan *sharedChunk // chunks, in file order
	work  chan *countBatch  // batches for the workers
	order chan *countBatch  // the same batches, in file order, for the collector
	spare chan *countBatch  // batches counted and collected, to reuse

	mu     sync.Mutex
	cond   *sync.Cond
	base   int         // line number of counts[head]
	floor  int         // no line below it will be asked for
	counts []lineCount // from head on, the counts of lines base, base+1, ... not yet taken
	head   int
	done   bool   // every line is counted
	enc    string // the encoding used, once known
}

// sharedChunk is a chunk of an upload read by the scanner and the counter at once; the
// last of them to finish with it gives it back.
type sharedChunk struct {
	buf  []byte
	refs sync.WaitGroup
}

// lineCount is what counting found in one line.
type lineCount struct {
	tokens int32
	images bool               // the prompt holds an image
	bad    *tokens.FieldError // the body lacks a required field or has one of the wrong type
}

// countBatch is a run of consecutive lines, packed into one buffer, to count together.
type countBatch struct {
	counter *tokens.Counter
	buf     []byte
	ends    []int // where each line ends in buf
	counts  []lineCount
	ready   chan struct{}
}

// Bounds of the counter's work.
const (
	countBatchBytes = 128 << 10
	countBatchLines = 256
	// maxCountedLine is the longest line counted token by token; a longer line is
	// estimated at a token per 4 bytes, as a line that long is mostly base64 data (2 MiB
	// of text is some 500k tokens, past most models' context). Counting costs memory
	// some 30 times the line's length (a 15 MB line peaked at 510 MB RSS), so the bound
	// keeps an upload's counting near 60 MB a worker whatever its lines.
	maxCountedLine = 2 << 20
)

func newLineCounter(pick func(string) *tokens.Counter) *lineCounter {
	workers := runtime.GOMAXPROCS(0)
	lc := &lineCounter{
		pick:  pick,
		in:    make(chan *sharedChunk, scanBuffers),
		work:  make(chan *countBatch, workers),
		order: make(chan *countBatch, 4*workers),
		spare: make(chan *countBatch, 6*workers),
		base:  1,
	}
	lc.cond = sync.NewCond(&lc.mu)
	for range workers {
		go lc.worker()
	}
	go lc.split()
	go lc.collect()
	return lc
}

// add hands the counter a chunk; it calls c.refs.Done when it has copied what it needs.
func (lc *lineCounter) add(c *sharedChunk) { lc.in <- c }

// close says no chunk follows.
func (lc *lineCounter) close() { close(lc.in) }

// split cuts the chunks into lines, physical line numbers from 1, a BOM dropped.
func (lc *lineCounter) split() {
	defer close(lc.work)
	defer close(lc.order)
	var (
		b       *countBatch
		line    []byte // the line being gathered across chunks
		skip    bool   // the line is past maxCountedLine: only its length is kept
		skipLen int
		first   = true
		counter *tokens.Counter
	)
	flush := func() {
		if b != nil && len(b.ends) > 0 {
			if counter == nil { // only blank lines so far
				counter = lc.pick("")
			}
			b.counter = counter
			b.counts = slices.Grow(b.counts[:0], len(b.ends))[:len(b.ends)]
			lc.order <- b
			lc.work <- b
		}
		b = nil
	}
	end := func() {
		if first {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		if counter == nil && len(bytes.TrimSpace(line)) > 0 {
			counter = lc.pick(lineModel(line))
			lc.mu.Lock()
			lc.enc = counter.Encoding()
			lc.mu.Unlock()
		}
		first = false
		if b == nil {
			b = lc.batch()
		}
		if skip {
			// Too long to hold: its length stands in, marked by a negative end.
			b.ends = append(b.ends, -skipLen-1)
		} else {
			b.buf = append(b.buf, line...)
			b.ends = append(b.ends, len(b.buf))
		}
		line, skip, skipLen = line[:0], false, 0
		if len(b.buf) >= countBatchBytes || len(b.ends) >= countBatchLines {
			flush()
		}
	}
	for c := range lc.in {
		p := c.buf
		for len(p) > 0 {
			i := bytes.IndexByte(p, '\n')
			part := p
			if i >= 0 {
				part = p[:i]
			}
			switch {
			case skip:
				skipLen += len(part)
			case len(line)+len(part) > maxCountedLine:
				skip, skipLen = true, len(line)+len(part)
				line = nil
			default:
				line = append(line, part...)
			}
			if i < 0 {
				break
			}
			end()
			p = p[i+1:]
		}
		// The scanner may wait for any line that ended in this chunk before it takes the
		// next: count them now.
		flush()
		c.refs.Done()
	}
	if len(line) > 0 || skip {
		end()
	}
	flush()
}

// worker counts batches.
func (lc *lineCounter) worker() {
	var urls endpoints
	for b := range lc.work {
		start := 0
		for i, e := range b.ends {
			if e < 0 {
				b.counts[i] = lineCount{tokens: int32(min((-e-1)/4, math.MaxInt32))}
				continue
			}
			p, bad := measureLine(b.counter, b.buf[start:e], &urls)
			b.counts[i] = lineCount{tokens: int32(p.Tokens), images: p.Images > 0, bad: bad}
			start = e
		}
		close(b.ready)
	}
}

// collect gathers the counts in line order.
func (lc *lineCounter) collect() {
	for b := range lc.order {
		<-b.ready
		lc.mu.Lock()
		lc.counts = append(lc.counts, b.counts...)
		lc.trim()
		lc.mu.Unlock()
		lc.cond.Broadcast()
		if cap(b.buf) <= 2*countBatchBytes {
			select {
			case lc.spare <- b:
			default:
			}
		}
	}
	lc.mu.Lock()
	lc.done = true
	lc.mu.Unlock()
	lc.cond.Broadcast()
}

// batch returns an empty batch, its buffers reused from one the collector is done
// with when there is one: an upload's batches would otherwise be as many bytes of
// garbage as the file.
func (lc *lineCounter) batch() *countBatch {
	select {
	case b := <-lc.spare:
		*b = countBatch{buf: b.buf[:0], ends: b.ends[:0], counts: b.counts[:0], ready: make(chan struct{})}
		return b
	default:
		return &countBatch{ready: make(chan struct{})} // its buffers grow as lines come
	}
}

// wait returns the count of a line, waiting for it. Lines must be asked for in
// increasing order; the counts of earlier lines are dropped.
func (lc *lineCounter) wait(line int) lineCount {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	for line >= lc.base+len(lc.counts)-lc.head && !lc.done {
		lc.cond.Wait()
	}
	if line < lc.base || line >= lc.base+len(lc.counts)-lc.head {
		return lineCount{}
	}
	n := lc.counts[lc.head+line-lc.base]
	lc.floor = max(lc.floor, line+1)
	lc.trim()
	return n
}

// forget says that no line up to and including line will be asked for, so that the
// counts of lines no one waits for (blank lines, the lines after a scan's first
// problem or past its most requests) do not pile up: a file of 40 MiB of newlines
// held 2 GB of counts.
func (lc *lineCounter) forget(line int) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	lc.floor = max(lc.floor, line+1)
	lc.trim()
}

// trim drops the counts of the lines below floor that have come. The room they took is
// used again once they are half the slice: slicing them off the front would make
// every append after a drop allocate anew. The room is kept for the upload's length:
// at most the counts of the lines the counter runs ahead of the scan. lc.mu is held.
func (lc *lineCounter) trim() {
	drop := min(lc.floor-lc.base, len(lc.counts)-lc.head)
	if drop <= 0 {
		return
	}
	lc.head += drop
	lc.base += drop
	if lc.head >= len(lc.counts)/2 {
		n := copy(lc.counts, lc.counts[lc.head:])
		lc.counts, lc.head = lc.counts[:n], 0
	}
}

// encoding returns the encoding used, "" when no line was counted.
func (lc *lineCounter) encoding() string {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.enc
}

// countLine returns the input tokens of one request line, 0 for a line that is blank or
// not a request: the scan reports those.
func countLine(c *tokens.Counter, line []byte) int {
	p, _ := measureLine(c, line, nil)
	return p.Tokens
}

// measureLine returns the input tokens and images of one request line, none for a
// line that is blank or not a request, and what is wrong with the fields its
// endpoint requires, if anything. A line whose url is not an endpoint, or whose body
// is not a JSON object, is the scan's to report. urls, when not nil, remembers the
// last url read.
func measureLine(c *tokens.Counter, line []byte, urls *endpoints) (tokens.Prompt, *tokens.FieldError) {
	var fields [2][]byte
	jsonl.Fields(line, lineFields, fields[:])
	url, body := fields[0], fields[1]
	if len(body) == 0 {
		return tokens.Prompt{}, nil
	}
	endpoint := urls.of(url)
	if endpoint == "" {
		return tokens.Prompt{}, nil
	}
	p, err := c.Measure(endpoint, body)
	if err != nil {
		var fe *tokens.FieldError
		if errors.As(err, &fe) && fe.Path != "" {
			return tokens.Prompt{}, fe
		}
		return tokens.Prompt{}, nil
	}
	return p, nil
}

// lineFields are the fields of a request line that measureLine reads.
var lineFields = []string{"url", "body"}

// endpoints remembers the last url field read and its endpoint, as a file's lines all
// name the same: decoding it again on every line was a tenth of an upload's garbage.
type endpoints struct {
	raw      []byte
	endpoint string
}

// of returns the endpoint of a url field's raw JSON, "" when it is none.
func (u *endpoints) of(raw []byte) string {
	if u != nil && u.raw != nil && bytes.Equal(raw, u.raw) {
		return u.endpoint
	}
	var url string
	if json.Unmarshal(raw, &url) != nil {
		return ""
	}
	endpoint := jsonl.NormalizeEndpoint(url)
	if u != nil && len(raw) <= 1024 {
		u.raw, u.endpoint = append(u.raw[:0], raw...), endpoint
	}
	return endpoint
}

// lineModel returns the body.model a request line names, or "".
func lineModel(line []byte) string {
	var model string
	_ = json.Unmarshal(jsonl.Field(jsonl.Field(line, "body"), "model"), &model)
	return model
}
