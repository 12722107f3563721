package engine

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/jsonl"
)

// scanTee is an io.Reader over an upload that hands a copy of every byte it reads to a
// scanner running in its own goroutine, so storing and scanning use a core each, and,
// when it has one, to a line counter that counts on every core. The counter gets each
// chunk as it is read, before the scanner: neither waits for the other, and the index
// pairs the scanner's entries with the counts as both come (see ingest). At most
// scanBuffers chunks are in flight: a scanner or counter that falls behind slows the
// reads.
type scanTee struct {
	src   io.Reader
	scan  *jsonl.Scanner
	count *lineCounter      // given each chunk, when set
	cur   []byte            // filling
	work  chan *sharedChunk // full chunks for the scanner
	free  chan []byte       // chunks the scanner and the counter are done with
	done  chan struct{}     // closed when the scanner goroutine ends
	// scanned, when set, is told after each chunk how many lines the scanner has
	// finished: their entries, if any, are out.
	scanned func(lines int)
}

var newline = []byte{'\n'}

const (
	scanChunk   = 256 << 10
	scanBuffers = 8
	// entryQueue is how many of the scanner's entries may wait for their lines' counts.
	entryQueue = 4096
)

func newScanTee(src io.Reader, scan *jsonl.Scanner, count *lineCounter, scanned func(lines int)) *scanTee {
	t := &scanTee{
		src: src, scan: scan, count: count, scanned: scanned,
		work: make(chan *sharedChunk, scanBuffers), free: make(chan []byte, scanBuffers), done: make(chan struct{}),
	}
	for range scanBuffers {
		t.free <- make([]byte, 0, scanChunk)
	}
	t.cur = <-t.free
	go func() {
		defer close(t.done)
		lines := 0
		for c := range t.work {
			_, _ = t.scan.Write(c.buf) // never fails
			if t.scanned != nil {
				lines += bytes.Count(c.buf, newline)
				t.scanned(lines)
			}
			c.refs.Wait() // the counter has copied what it needs
			t.free <- c.buf[:0]
		}
	}()
	return t
}

// send hands the filled chunk to the counter and the scanner.
func (t *scanTee) send() {
	c := &sharedChunk{buf: t.cur}
	if t.count != nil {
		c.refs.Add(1)
		t.count.add(c)
	}
	t.work <- c
	t.cur = nil
}

// Read implements io.Reader.
func (t *scanTee) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	for q := p[:n]; len(q) > 0; {
		m := copy(t.cur[len(t.cur):cap(t.cur)], q)
		t.cur = t.cur[:len(t.cur)+m]
		q = q[m:]
		if len(t.cur) == cap(t.cur) {
			t.send()
			t.cur = <-t.free
		}
	}
	return n, err
}

// finish hands the scanner and the counter what is left, waits for the scanner, and
// returns its summary. The counter goes on counting what it was given.
func (t *scanTee) finish() (*jsonl.Summary, error) {
	if len(t.cur) > 0 {
		t.send()
	}
	if t.count != nil {
		t.count.close()
	}
	close(t.work)
	<-t.done
	return t.scan.Close()
}

// indexSink streams a line index to the bucket as the scan finds entries.
type indexSink struct {
	iw    *jsonl.IndexWriter
	pw    *io.PipeWriter
	put   chan error
	first int // line of the first entry
}

var errIndexAborted = errors.New("line index not wanted")

func newIndexSink(ctx context.Context, bucket sluice.Bucket, key string) *indexSink {
	pr, pw := io.Pipe()
	s := &indexSink{iw: jsonl.NewIndexWriter(pw), pw: pw, put: make(chan error, 1)}
	go func() {
		_, err := bucket.Put(ctx, key, pr)
		pr.CloseWithError(err) // unblocks the writer if Put stopped early
		s.put <- err
	}()
	return s
}

func (s *indexSink) add(e jsonl.Entry) error {
	if s.first == 0 {
		s.first = e.Line
	}
	return s.iw.Add(e)
}

// finish writes the index's directory and waits until it is stored.
func (s *indexSink) finish() (int64, error) {
	size, err := s.iw.Close()
	if err != nil {
		s.pw.CloseWithError(err)
		<-s.put
		return 0, err
	}
	s.pw.Close()
	if err := <-s.put; err != nil {
		return 0, err
	}
	return size, nil
}

// abort stops the index: nothing is stored.
func (s *indexSink) abort() {
	s.pw.CloseWithError(errIndexAborted)
	<-s.put
}
