package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// h1Transport sends POST requests over HTTP/1.1 to one plain-http server, on at most
// concurrency connections, which it keeps open between requests. It is what a Client
// sends through when nothing else is asked for and no proxy is in the way: a local
// inference server, where a request's own work is small and net/http's per-request cost
// (a Request and a Response with their header maps, a reader and a writer goroutine
// per connection, and the channels between them) was about 27 µs of CPU a line, more
// than all the rest of a batch's hot path. Here a request is one write of a prepared
// head and the body, and one buffered read of the answer into the caller's buffer; the
// headers a batch needs are picked out as they pass, and none is kept.
//
// A context ends a request as it ends one in net/http: the connection is closed (its
// deadline set in the past), so an inference server sees the client go and stops
// generating. fasthttp was measured too, and is about as fast, but it takes only a
// deadline, not a context, and cannot abandon a request without leaving it to run.
type h1Transport struct {
	addr   string // host:port to dial
	dialer net.Dialer
	idle   chan *h1Conn  // connections open and free
	slots  chan struct{} // one per connection open or being opened
}

func newH1Transport(addr string, concurrency int, connectTimeout time.Duration) *h1Transport {
	concurrency = max(concurrency, 1)
	if connectTimeout <= 0 {
		connectTimeout = DefaultConnectTimeout
	}
	return &h1Transport{
		addr:   addr,
		dialer: net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second},
		idle:   make(chan *h1Conn, concurrency),
		slots:  make(chan struct{}, concurrency),
	}
}

// Limits on what is read besides the body, as net/http has them.
const (
	maxHeaderBytes = 1 << 20 // the status line and headers of one answer
	maxCopiedBody  = 32 << 10
)

// aLongTimeAgo is a deadline that makes every read and write on a connection fail at once.
var aLongTimeAgo = time.Unix(1, 0)

// h1Conn is one open connection.
type h1Conn struct {
	nc    net.Conn
	br    *bufio.Reader
	wb    []byte          // the request being written: head, length, body
	long  []byte          // a header line longer than br's buffer
	rc    syscall.RawConn // for alive's peek; nil where there is none
	probe func(fd uintptr) bool
	peek  [1]byte
	open  bool // what probe saw
}

// do sends one request: head (the request line and fixed headers, ending with
// "Content-Length: "), then body, and reads the answer's body into dst's storage when
// it fits.
func (t *h1Transport) do(ctx context.Context, head, body, dst []byte) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	pc, err := t.get(ctx)
	if err != nil {
		return Response{}, err
	}
	var stop func() bool
	if ctx.Done() != nil {
		nc := pc.nc
		stop = context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	}
	resp, keep, err := pc.exchange(head, body, dst)
	if stop != nil && !stop() {
		// The context ended during the exchange: the connection's deadline is past.
		// An answer read whole is still an answer.
		keep = false
		if err != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
	}
	if err != nil || !keep {
		t.discard(pc)
	} else {
		t.idle <- pc // never blocks: there are no more connections than room
	}
	return resp, err
}

// get returns a free connection, opening one when none is free and fewer than
// concurrency are open, or waiting for one otherwise.
func (t *h1Transport) get(ctx context.Context) (*h1Conn, error) {
	for {
		var pc *h1Conn
		select {
		case pc = <-t.idle:
		default:
			select {
			case pc = <-t.idle:
			case t.slots <- struct{}{}:
				return t.dial(ctx)
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		if pc.alive() {
			return pc, nil
		}
		t.discard(pc)
	}
}

func (t *h1Transport) dial(ctx context.Context) (*h1Conn, error) {
	nc, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		<-t.slots
		// The dialer puts the context's deadline on the socket, which may fire before
		// the context's own timer: say which bound it was, as for a read.
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		} else if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%v)", cerr, err)
		}
		return nil, err
	}
	pc := &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 8<<10)}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			pc.rc = rc
			pc.probe = func(fd uintptr) bool {
				pc.open = peekWouldBlock(fd, pc.peek[:])
				return true // done: never wait for the socket to be readable
			}
		}
	}
	return pc, nil
}

// discard closes a connection and frees its slot.
func (t *h1Transport) discard(pc *h1Conn) {
	pc.nc.Close()
	<-t.slots
}

// closeIdle closes the connections that are open and free.
func (t *h1Transport) closeIdle() {
	for {
		select {
		case pc := <-t.idle:
			t.discard(pc)
		default:
			return
		}
	}
}

// alive reports whether a free connection can carry a request: the server has not
// closed it, nor sent anything unasked. A server closes a connection it has kept idle
// for a while (uvicorn after 5 s), and a request written to it then would fail with
// nothing to tell whether the server saw it; net/http learns of the close from the
// reader goroutine it keeps on every connection, this from one non-blocking peek.
func (pc *h1Conn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false
	}
	if pc.rc == nil {
		return true
	}
	if err := pc.rc.Read(pc.probe); err != nil {
		return false
	}
	return pc.open
}

// exchange writes one request and reads its answer. keep reports whether the
// connection can carry another.
func (pc *h1Conn) exchange(head, body, dst []byte) (resp Response, keep bool, err error) {
	if cap(pc.long) > 64<<10 {
		pc.long = nil // one answer's long header line is not kept for every later one
	}
	wb := append(pc.wb[:0], head...)
	wb = strconv.AppendInt(wb, int64(len(body)), 10)
	wb = append(wb, "\r\n\r\n"...)
	if len(body) <= maxCopiedBody {
		wb = append(wb, body...)
		_, err = pc.nc.Write(wb)
	} else {
		bufs := net.Buffers{wb, body}
		_, err = bufs.WriteTo(pc.nc)
	}
	pc.wb = wb[:0]
	if err != nil {
		// A server may answer and close before it reads the whole request (a 413):
		// its answer says more than the write's error.
		if r, _, rerr := pc.readResponse(dst); rerr == nil {
			return r, false, nil
		}
		return Response{}, false, fmt.Errorf("write request: %w", err)
	}
	return pc.readResponse(dst)
}

// readResponse reads one answer: the status line and headers, then the body.
func (pc *h1Conn) readResponse(dst []byte) (resp Response, keep bool, err error) {
	budget := maxHeaderBytes
	var h answerHeader
	for {
		line, err := pc.line(&budget)
		if err != nil {
			if errors.Is(err, io.EOF) && budget == maxHeaderBytes {
				return Response{}, false, io.EOF // closed before any byte of an answer
			}
			return Response{}, false, noEOF(err)
		}
		h = answerHeader{length: -1}
		if err := h.parseStatus(line); err != nil {
			return Response{}, false, err
		}
		for {
			line, err := pc.line(&budget)
			if err != nil {
				return Response{}, false, noEOF(err)
			}
			if len(line) == 0 {
				break
			}
			if err := h.parseField(line); err != nil {
				return Response{}, false, err
			}
		}
		if h.status >= 200 || h.status == 101 {
			break
		}
		// 100 Continue and the other interim answers come before the real one.
	}
	if h.status == 101 {
		return Response{}, false, errors.New("the server switched protocols, which was not asked")
	}
	resp = Response{Status: h.status, RequestID: h.requestID, RetryAfter: retryAfterOf(h.retryAfterMs, h.retryAfter)}
	if resp.RequestID == "" {
		resp.RequestID = h.azureID
	}
	keep = h.keep()
	switch {
	case h.status == 204 || h.status == 304:
		resp.Body = dst[:0]
	case h.chunked:
		resp.Body, err = pc.readChunked(dst[:0])
	case h.length >= 0:
		if h.length > MaxResponseBytes {
			return Response{}, false, fmt.Errorf("response of %d bytes is over the %d byte limit: %w", h.length, MaxResponseBytes, ErrResponseTooLarge)
		}
		if int64(cap(dst)) < h.length {
			dst = make([]byte, h.length)
		}
		resp.Body = dst[:h.length]
		_, err = io.ReadFull(pc.br, resp.Body)
	default: // the body runs to the end of the connection
		keep = false
		resp.Body, err = readBody(pc.br, -1, dst[:0])
	}
	if err != nil {
		return Response{}, false, fmt.Errorf("read response: %w", noEOF(err))
	}
	return resp, keep, nil
}

// noEOF turns an end of the connection inside an answer into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readChunked reads a body in the chunked transfer coding, then its trailers. Each
// chunk's size line has a header line's bound, and the trailers together the headers'
// bound; the number of chunks is bounded by the body's.
func (pc *h1Conn) readChunked(dst []byte) ([]byte, error) {
	trailers := maxHeaderBytes
	for {
		budget := maxHeaderBytes
		line, err := pc.line(&budget)
		if err != nil {
			return nil, err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // a chunk extension
		}
		n, err := strconv.ParseUint(string(bytes.TrimRight(line, " \t")), 16, 63)
		if err != nil {
			return nil, fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			for { // trailers, up to the empty line
				line, err := pc.line(&trailers)
				if err != nil {
					return nil, err
				}
				if len(line) == 0 {
					return dst, nil
				}
			}
		}
		if uint64(len(dst))+n > MaxResponseBytes {
			return nil, fmt.Errorf("response is over the %d byte limit: %w", MaxResponseBytes, ErrResponseTooLarge)
		}
		m := len(dst) + int(n)
		if cap(dst) < m {
			dst = append(make([]byte, 0, max(m, 2*cap(dst))), dst...)
		}
		if _, err := io.ReadFull(pc.br, dst[len(dst):m]); err != nil {
			return nil, err
		}
		dst = dst[:m]
		budget = maxHeaderBytes
		if line, err := pc.line(&budget); err != nil || len(line) != 0 {
			if err == nil {
				err = errors.New("a chunk is longer than its size")
			}
			return nil, err
		}
	}
}

// line returns the next line without its CRLF (or LF), valid until the next read, and
// takes its length from budget.
func (pc *h1Conn) line(budget *int) ([]byte, error) {
	line, err := pc.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		pc.long = append(pc.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) && len(pc.long) <= *budget {
			line, err = pc.br.ReadSlice('\n')
			pc.long = append(pc.long, line...)
		}
		line = pc.long
	}
	if *budget -= len(line); *budget < 0 {
		return nil, fmt.Errorf("a line of the answer's headers or chunk sizes is over %d bytes", maxHeaderBytes)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// answerHeader is what a batch needs of an answer's status line and headers.
type answerHeader struct {
	status                   int
	length                   int64 // Content-Length, or -1
	chunked                  bool
	http10, close, keepAlive bool
	requestID, azureID       string // x-request-id, apim-request-id
	retryAfter, retryAfterMs string
}

// keep reports whether the connection carries another request after this answer.
func (h *answerHeader) keep() bool { return !h.close && (!h.http10 || h.keepAlive) }

// parseStatus reads "HTTP/1.1 200 OK".
func (h *answerHeader) parseStatus(line []byte) error {
	proto, rest, _ := bytes.Cut(line, []byte(" "))
	code, _, _ := bytes.Cut(rest, []byte(" "))
	switch string(proto) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return fmt.Errorf("malformed HTTP answer %q", truncate(line))
	}
	n, err := strconv.Atoi(string(code))
	if err != nil || len(code) != 3 || n < 100 {
		return fmt.Errorf("malformed HTTP status line %q", truncate(line))
	}
	h.status = n
	return nil
}

// parseField reads one header field, "Name: value".
func (h *answerHeader) parseField(line []byte) error {
	name, value, ok := bytes.Cut(line, []byte(":"))
	if !ok || len(name) == 0 || name[len(name)-1] == ' ' || name[0] == ' ' || name[0] == '\t' {
		return fmt.Errorf("malformed HTTP header line %q", truncate(line))
	}
	value = bytes.Trim(value, " \t")
	switch {
	case fieldIs(name, "content-length"):
		n, err := strconv.ParseInt(string(value), 10, 64)
		if err != nil || len(value) == 0 || value[0] < '0' || value[0] > '9' || h.length >= 0 && h.length != n {
			return fmt.Errorf("bad Content-Length %q", value)
		}
		h.length = n
	case fieldIs(name, "transfer-encoding"):
		if !bytes.EqualFold(value, []byte("chunked")) {
			return fmt.Errorf("unsupported transfer encoding %q", value)
		}
		h.chunked = true
	case fieldIs(name, "connection"):
		for tok := range bytes.SplitSeq(value, []byte(",")) {
			switch tok = bytes.Trim(tok, " \t"); {
			case bytes.EqualFold(tok, []byte("close")):
				h.close = true
			case bytes.EqualFold(tok, []byte("keep-alive")):
				h.keepAlive = true
			}
		}
	case fieldIs(name, "x-request-id"):
		h.requestID = string(value)
	case fieldIs(name, "apim-request-id"):
		h.azureID = string(value)
	case fieldIs(name, "retry-after"):
		h.retryAfter = string(value)
	case fieldIs(name, "retry-after-ms"):
		h.retryAfterMs = string(value)
	}
	return nil
}

// fieldIs reports whether a header name is lower, which is in lower case, in any case.
func fieldIs(name []byte, lower string) bool {
	if len(name) != len(lower) {
		return false
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func truncate(b []byte) []byte { return b[:min(len(b), 80)] }
