package httpapi

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/sluice-batch/sluice"
)

// Limits bound what one caller, one request and one slow client may take of the
// server, so that no client, careless or hostile, starves the others. Zero values
// take the defaults; a negative value turns a limit off.
type Limits struct {
	// MaxUploadBytes is the largest input file, sluice.MaxFileBytes by default. A file
	// upload's whole body may be formSlack more, for its framing and fields; an upload
	// part's, sluice.MaxPartBytes and formSlack; any other request's, 1 MiB.
	MaxUploadBytes int64
	// MaxUploads is how many uploads may run at once on the server (default 8), and
	// MaxUploadsPerKey how many with one API key (default 2). An upload is a request
	// that stores or scans a file: a file upload, an upload part, an upload's
	// completion, a file import, a batch retry. One that would pass either is refused
	// with 429 and Retry-After. Without API keys only the total applies.
	MaxUploads       int
	MaxUploadsPerKey int
	// Rate is how many requests a second one API key may send on average (default
	// 100), and Burst how many at once (default twice Rate): a token bucket per key.
	// Without API keys there is none.
	Rate  float64
	Burst int
	// StallTimeout and MinRate bound a slow client: a request body that arrives, or a
	// response that is taken, at less than MinRate bytes a second (default 10 KiB) over
	// StallTimeout (default 30s) is cut off, and so is one that stops for
	// StallTimeout. Only the time spent waiting for the client counts. A 200 MB upload
	// may so take hours, but a stalled one holds its connection and upload slot for
	// StallTimeout at most.
	StallTimeout time.Duration
	MinRate      int64
}

// Defaults of Limits.
const (
	DefaultMaxUploads       = 8
	DefaultMaxUploadsPerKey = 2
	DefaultRate             = 100
	DefaultStallTimeout     = 30 * time.Second
	DefaultMinRate          = 10 << 10
)

// formSlack is what an upload's body may hold beyond its file or part: the
// multipart framing and the other fields.
const formSlack = 1 << 20

// uploadRetryAfter is the Retry-After of a refusal for too many uploads, in seconds.
const uploadRetryAfter = 2

// withDefaults returns l with its zero values set to the defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxUploadBytes == 0 {
		l.MaxUploadBytes = sluice.MaxFileBytes
	}
	if l.MaxUploads == 0 {
		l.MaxUploads = DefaultMaxUploads
	}
	if l.MaxUploadsPerKey == 0 {
		l.MaxUploadsPerKey = DefaultMaxUploadsPerKey
	}
	if l.Rate == 0 {
		l.Rate = DefaultRate
	}
	if l.Burst == 0 {
		l.Burst = int(max(1, math.Ceil(2*l.Rate)))
	}
	if l.StallTimeout == 0 {
		l.StallTimeout = DefaultStallTimeout
	}
	if l.MinRate == 0 {
		l.MinRate = DefaultMinRate
	}
	return l
}

// limiter holds the state of the limits: uploads running, and a token bucket per key.
type limiter struct {
	Limits
	now func() time.Time

	mu      sync.Mutex
	uploads int   // running, in all
	perKey  []int // running, by key index
	buckets []bucket
}

func newLimiter(l Limits, keys int) *limiter {
	return &limiter{Limits: l.withDefaults(), now: time.Now, perKey: make([]int, keys), buckets: make([]bucket, keys)}
}

// bucket is a token bucket: it holds up to burst tokens and gains rate a second.
type bucket struct {
	tokens float64
	last   time.Time
}

// take takes a token, or says how long until one is there.
func (b *bucket) take(now time.Time, rate float64, burst int) time.Duration {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else if d := now.Sub(b.last); d > 0 {
		b.tokens = min(float64(burst), b.tokens+d.Seconds()*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// allow takes a request of key index k from its bucket, or returns the refusal.
func (l *limiter) allow(k int) error {
	if k < 0 || l.Rate < 0 {
		return nil
	}
	l.mu.Lock()
	wait := l.buckets[k].take(l.now(), l.Rate, l.Burst)
	l.mu.Unlock()
	if wait == 0 {
		return nil
	}
	return &retryError{after: wait, err: sluice.Errorf(sluice.KindRateLimited,
		"Too many requests with this API key: it may send %g a second, %d at once. Retry after the time in the Retry-After header.", l.Rate, l.Burst)}
}

// startUpload takes an upload slot for key index k (-1: no key), or returns the
// refusal. release gives the slot back.
func (l *limiter) startUpload(k int) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.MaxUploads > 0 && l.uploads >= l.MaxUploads:
		return nil, &retryError{after: uploadRetryAfter * time.Second, err: sluice.Errorf(sluice.KindRateLimited,
			"The server is running %d uploads, the most it runs at once. Retry shortly.", l.uploads)}
	case k >= 0 && l.MaxUploadsPerKey > 0 && l.perKey[k] >= l.MaxUploadsPerKey:
		return nil, &retryError{after: uploadRetryAfter * time.Second, err: sluice.Errorf(sluice.KindRateLimited,
			"This API key has %d uploads running, the most it may run at once. Retry when one has finished.", l.perKey[k])}
	}
	l.uploads++
	if k >= 0 {
		l.perKey[k]++
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.uploads--
			if k >= 0 {
				l.perKey[k]--
			}
		})
	}, nil
}

// retryError is a refusal that the caller may retry after a while: its answer
// carries Retry-After.
type retryError struct {
	after time.Duration
	err   error
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// writeRetryError answers with err, and Retry-After when it is a retryError.
func (s *Server) writeRetryError(w http.ResponseWriter, r *http.Request, err error) {
	err = s.storageFault(r, err)
	var re *retryError
	if errors.As(err, &re) {
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, math.Ceil(re.after.Seconds())))))
	}
	writeError(w, r, s.log, err)
}

// uploadRoute reports whether the route pattern is an upload's: one that stores or
// scans a file.
func uploadRoute(pattern string) bool {
	switch {
	case !strings.HasPrefix(pattern, "POST "):
		return false
	case strings.HasSuffix(pattern, "/files"), strings.HasSuffix(pattern, "/files/import"),
		strings.HasSuffix(pattern, "/parts"), strings.HasSuffix(pattern, "/complete"),
		strings.HasSuffix(pattern, "/retry"):
		return true
	}
	return false
}

// bodyLimit returns the largest body the route pattern takes.
func (l *limiter) bodyLimit(pattern string) int64 {
	switch {
	case !strings.HasPrefix(pattern, "POST "):
	case strings.HasSuffix(pattern, "/files"):
		return l.MaxUploadBytes + formSlack
	case strings.HasSuffix(pattern, "/parts"):
		return sluice.MaxPartBytes + formSlack
	}
	return maxJSONBytes
}

// admit applies the limits of the route r was routed to: its body size, and an upload
// slot for an upload. release ends what admit took.
func (s *Server) admit(r *http.Request) (release func(), err error) {
	g := guardOf(r)
	if g == nil {
		return func() {}, nil
	}
	g.setLimit(s.limits.bodyLimit(r.Pattern))
	if !uploadRoute(r.Pattern) {
		return func() {}, nil
	}
	return s.limits.startUpload(g.key)
}

// guardKey is the context key of a request's guard.
type guardKey struct{}

func guardOf(r *http.Request) *guard {
	g, _ := r.Context().Value(guardKey{}).(*guard)
	return g
}

// guard is what the server knows of a request beyond net/http: the API key it
// authenticated with, and how its body is read. It reads the body with a read
// deadline of StallTimeout on each read, so that a body that stops is cut, measures
// the rate at which it arrives, bounds its size, and keeps the first error reading it
// met, so that a failure caused by the client (gone, too slow, too much) is answered
// and logged as the client's.
type guard struct {
	body    io.ReadCloser
	rc      *http.ResponseController
	stall   time.Duration
	minRate int64
	now     func() time.Time
	key     int // index of the API key the request authenticated with; -1: none

	mu    sync.Mutex
	limit int64 // most bytes the body may have; 0: no limit
	n     int64 // bytes read
	err   error // the first error reading the body met, but io.EOF
	// The window over which the rate is measured: bytes read, and time spent waiting
	// for them.
	winBytes int64
	winTime  time.Duration
	eof      bool // the whole body was read
}

// unread reports whether the request has a body not read to its end.
func (g *guard) unread() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.body != nil && !g.eof
}

// errTooSlow and errStalled are what a guard's Read returns for a body that comes
// too slowly, or stops.
var (
	errTooSlow = errors.New("the request body arrives too slowly")
	errStalled = errors.New("the request body stopped arriving")
)

func (g *guard) setLimit(n int64) {
	g.mu.Lock()
	g.limit = n
	g.mu.Unlock()
}

// Read reads the body. Calls come from one goroutine at a time; the lock orders them
// with fault and the log, which the handler reads after, and is not held while the
// read waits.
func (g *guard) Read(p []byte) (int, error) {
	g.mu.Lock()
	if g.err != nil {
		defer g.mu.Unlock()
		return 0, g.err
	}
	if g.limit > 0 && int64(len(p)) > g.limit-g.n+1 {
		p = p[:g.limit-g.n+1] // one byte over tells a body that is too large
	}
	g.mu.Unlock()
	if g.stall > 0 {
		// Set on each read, not once: the time the server spends between reads (storing
		// what it read) is not the client's.
		_ = g.rc.SetReadDeadline(g.now().Add(g.stall))
	}
	start := g.now()
	n, err := g.body.Read(p)
	waited := g.now().Sub(start)

	g.mu.Lock()
	defer g.mu.Unlock()
	g.n += int64(n)
	if g.limit > 0 && g.n > g.limit {
		n -= int(g.n - g.limit)
		g.n = g.limit
		g.err = &http.MaxBytesError{Limit: g.limit}
		return n, g.err
	}
	if g.stall > 0 && g.minRate > 0 && err == nil {
		g.winBytes += int64(n)
		g.winTime += waited
		if g.winTime >= g.stall {
			if float64(g.winBytes) < float64(g.minRate)*g.winTime.Seconds() {
				g.err = errTooSlow
			}
			g.winBytes, g.winTime = 0, 0
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		g.eof = true
		// The whole body is read. net/http now reads on in the background to see the
		// client go, and that read must not meet the deadline.
		_ = g.rc.SetReadDeadline(time.Time{})
		return n, err
	case errors.As(err, &ne) && ne.Timeout():
		g.err = errStalled
	case err != nil:
		g.err = err
	}
	if g.err != nil {
		return n, g.err
	}
	return n, nil
}

func (g *guard) Close() error { return g.body.Close() }

// fault returns the caller's error for a request whose body could not be read, or
// nil when reading it went well: the client is then not to blame.
func (g *guard) fault() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	var tooBig *http.MaxBytesError
	switch {
	case g.err == nil:
		return nil
	case errors.As(g.err, &tooBig):
		return sluice.Errorf(sluice.KindTooLarge, "The request body is larger than %d bytes, the most this route takes.", tooBig.Limit)
	case errors.Is(g.err, errTooSlow), errors.Is(g.err, errStalled):
		return sluice.Errorf(sluice.KindInvalid, "The request body arrived too slowly: this server needs %d bytes a second over any %s. Check the connection and send it again.",
			g.minRate, g.stall).WithCode("request_timeout").WithErr(g.err)
	}
	return sluice.Errorf(sluice.KindInvalid, "The request body ended after %d bytes, before it was complete.", g.n).WithErr(g.err)
}

// guardRequests gives every request a guard and its response a guardWriter. It is
// the outermost handler.
func (s *Server) guardRequests(next http.Handler) http.Handler {
	l := s.limits
	stall, chunk := l.StallTimeout, 0
	if stall > 0 {
		chunk = int(max(32<<10, float64(l.MinRate)*stall.Seconds()))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		g := &guard{rc: rc, stall: max(stall, 0), minRate: l.MinRate, now: l.now, key: -1, limit: maxJSONBytes}
		// A copy: net/http looks at the original's Body after the handler, to close
		// the connection gently when the handler left much of it unread.
		r = r.WithContext(context.WithValue(r.Context(), guardKey{}, g))
		if r.Body != nil && r.Body != http.NoBody {
			g.body = r.Body
			r.Body = g
		}
		if stall <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		// net/http flushes what is buffered after the handler returns: that write gets
		// a deadline too. And when the handler answered without reading the body (a
		// 401, a 429, a 404), net/http reads what is left of a small body before it
		// answers: that read gets one, or a client that never sends the body it
		// announced would hold the connection, and a goroutine, for good.
		defer func() {
			_ = rc.SetWriteDeadline(l.now().Add(stall))
			if g.unread() {
				_ = rc.SetReadDeadline(l.now().Add(stall))
			}
		}()
		next.ServeHTTP(&guardWriter{ResponseWriter: w, rc: rc, stall: stall, chunk: chunk, now: l.now, g: g}, r)
	})
}

// guardWriter writes a response in chunks of what a client taking MinRate bytes a
// second takes in StallTimeout, each with a write deadline StallTimeout away, so that
// a client that stops reading is cut off, however long the response.
type guardWriter struct {
	http.ResponseWriter
	rc    *http.ResponseController
	stall time.Duration
	chunk int
	now   func() time.Time
	g     *guard
	wrote bool
}

// WriteHeader answers with Connection: close when the handler left the request's body
// unread (a 401, a 429): net/http would otherwise read the rest of a small body before
// it answers, and a client that never sends the body it announced would get no answer.
func (w *guardWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if w.g != nil && w.g.unread() {
			w.Header().Set("Connection", "close")
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	n := 0
	for len(p) > 0 {
		c := min(len(p), w.chunk)
		_ = w.rc.SetWriteDeadline(w.now().Add(w.stall))
		m, err := w.ResponseWriter.Write(p[:c])
		n += m
		if err != nil {
			return n, err
		}
		p = p[c:]
	}
	return n, nil
}

// ReadFrom copies src in chunks through the ResponseWriter's own ReadFrom, which
// sends a file's bytes with sendfile.
func (w *guardWriter) ReadFrom(src io.Reader) (int64, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	var total int64
	for {
		_ = w.rc.SetWriteDeadline(w.now().Add(w.stall))
		n, err := io.Copy(w.ResponseWriter, io.LimitReader(src, int64(w.chunk)))
		total += n
		if err != nil || n < int64(w.chunk) {
			return total, err
		}
	}
}

// Flush sends what is buffered.
func (w *guardWriter) Flush() { _ = w.rc.Flush() }

// Unwrap returns the ResponseWriter, for http.ResponseController.
func (w *guardWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// blame returns what to answer for err, the error of a handler, when the client
// caused it: its body could not be read (it went away, stalled, or sent too much), or
// it went away while the request ran. Such errors are logged as the client's doing,
// at INFO or WARN, never as a server failure. Otherwise it returns err.
func (s *Server) blame(w http.ResponseWriter, r *http.Request, err error) error {
	ctx := r.Context()
	if g := guardOf(r); g != nil {
		if f := g.fault(); f != nil {
			// The rest of the body is not read: the connection cannot take another
			// request.
			w.Header().Set("Connection", "close")
			e, _ := asError(f)
			switch {
			case e.Kind == sluice.KindTooLarge:
			case e.Code == "request_timeout":
				s.logClient(ctx, slog.LevelInfo, "request body too slow; cut off", r, e.Err)
			default:
				s.logClient(ctx, slog.LevelWarn, "client went away mid-request", r, e.Err)
			}
			return f
		}
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		s.logClient(ctx, slog.LevelWarn, "client went away mid-request", r, err)
		return sluice.Errorf(sluice.KindInvalid, "The request was cancelled by the client.").WithErr(err)
	}
	return err
}

func (s *Server) logClient(ctx context.Context, level slog.Level, msg string, r *http.Request, err error) {
	args := []any{"method", r.Method, "path", r.URL.Path, "remote_addr", r.RemoteAddr, "err", err}
	if g := guardOf(r); g != nil {
		g.mu.Lock()
		args = append(args, "body_bytes", g.n)
		g.mu.Unlock()
	}
	s.log.Log(ctx, level, msg, args...)
}

// MaxFilenameBytes is the longest file name an upload may give.
const MaxFilenameBytes = 255

// cleanFilename returns the name to store for an upload's file name: its last path
// element (a browser may send C:\Users\me\in.jsonl), which must be valid UTF-8 with
// no control characters and at most MaxFilenameBytes long. "" stays "".
func cleanFilename(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	bad := func(why string) error {
		return sluice.Errorf(sluice.KindInvalid, "Invalid file name: %s.", why).WithParam("file")
	}
	switch {
	case name == "" || name == "." || name == "..":
		return "", bad("it names a folder, not a file")
	case len(name) > MaxFilenameBytes:
		return "", bad("it is longer than " + strconv.Itoa(MaxFilenameBytes) + " bytes")
	case !utf8.ValidString(name):
		return "", bad("it is not UTF-8")
	}
	for _, c := range name {
		if c < ' ' || c == 0x7f || (c >= 0x80 && c < 0xa0) {
			return "", bad("it holds a control character")
		}
	}
	return name, nil
}

// Listener is a net.Listener that keeps at most a given number of connections open,
// so that clients cannot use up the process's file descriptors. At the limit it
// closes the connection that has waited idle for its next request the longest (the
// client's next request opens another), and when none is idle, it waits to accept
// until one closes, as golang.org/x/net/netutil's LimitListener does. Set the
// server's ConnState to its ConnState, which tells it the idle ones.
type Listener struct {
	net.Listener
	sem       chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	wentIdle  chan struct{} // signalled when a connection goes idle

	mu   sync.Mutex
	idle map[*limitedConn]time.Time // idle since
}

// LimitListener returns ln, keeping at most n connections open.
func LimitListener(ln net.Listener, n int) *Listener {
	return &Listener{Listener: ln, sem: make(chan struct{}, n), done: make(chan struct{}), wentIdle: make(chan struct{}, 1),
		idle: make(map[*limitedConn]time.Time)}
}

// Accept waits for a connection and a place for it.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.sem <- struct{}{}:
			return &limitedConn{Conn: c, l: l}, nil
		default:
		}
		l.closeIdle()
		select {
		case l.sem <- struct{}{}:
			return &limitedConn{Conn: c, l: l}, nil
		case <-l.wentIdle: // close it, and take its place
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// closeIdle closes the connection idle the longest, if any is.
func (l *Listener) closeIdle() {
	l.mu.Lock()
	var (
		oldest *limitedConn
		since  time.Time
	)
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
	l.mu.Unlock()
	if oldest != nil {
		oldest.Close()
	}
}

// ConnState is the http.Server's ConnState hook: it tracks the idle connections.
func (l *Listener) ConnState(c net.Conn, state http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if state == http.StateIdle {
		l.idle[lc] = time.Now()
		select {
		case l.wentIdle <- struct{}{}:
		default:
		}
	} else {
		delete(l.idle, lc)
	}
}

// Close closes the listener; an Accept waiting for a place returns.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its place back when it is closed.
type limitedConn struct {
	net.Conn
	l         *Listener
	closeOnce sync.Once
}

// CloseWrite and ReadFrom pass through to the connection, for net/http: it half-closes
// a connection before closing it with a request's body unread, so the client reads
// the answer rather than a reset, and sends files with sendfile.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() {
		c.l.mu.Lock()
		delete(c.l.idle, c)
		c.l.mu.Unlock()
		<-c.l.sem
	})
	return err
}
