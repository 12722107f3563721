package sim

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// maxBody is the largest request body the simulator reads.
const maxBody = 32 << 20

// Server is the simulator; it is an http.Handler. Its methods are safe for concurrent use.
type Server struct {
	latency   time.Duration
	tps       float64
	maxConc   int64
	maxTokens int
	noUsage   bool
	model     string
	seed      int64
	seedHi    uint64 // PCG seed half for the fault draws
	anyFault  bool
	reset     float64
	hang      float64
	limited   float64
	fail      float64
	pool      *pool        // the shared-capacity model; nil when off
	prefixes  *prefixCache // the prefix cache; nil when off
	saving    float64      // share of latency a cached prefix saves

	idHi, idSalt uint64 // make request ids unique across servers

	retryAfter   []string // Retry-After header value
	retryAfterMS []string // retry-after-ms header value, which OpenAI's SDKs honour
	overBody     []byte   // 429 body for requests over MaxConcurrency
	queueBody    []byte   // 429 body for requests over QueueLimit
	limitBody    []byte   // 429 body for RateLimitRate
	failBody     []byte   // 500 body for FailRate
	modelsBody   []byte   // GET /v1/models
	modelBody    []byte   // GET /v1/models/{model}

	ids       atomic.Uint64
	requests  atomic.Int64
	completed atomic.Int64

	prefixHits, prefixMisses atomic.Int64
	invalid                  atomic.Int64
	canceled                 atomic.Int64
	inFlight                 atomic.Int64
	maxInFlight              atomic.Int64
	faults                   struct {
		serverError, rateLimited, overConcurrency, queueFull, hang, reset atomic.Int64
	}
	answers [len(endpointRoutes)][len(answerStatuses)]atomic.Int64 // by endpoint and status
}

// Stats are a Server's counters since New. Each counter is read atomically, but while
// requests are in flight the set is not one snapshot. Once InFlight is 0,
// Requests == Completed + Invalid + Canceled + Faults.Total(). GET /stats serves them
// as JSON, with the answers by route (Server.Answers).
type Stats struct {
	Requests    int64  `json:"requests"`      // POSTs to an inference route (every route but models, healthz, stats and metrics)
	Completed   int64  `json:"completed"`     // 2xx answers to them
	Invalid     int64  `json:"invalid"`       // 4xx answers to malformed ones (bad JSON, stream, bad parameters, too large)
	Canceled    int64  `json:"canceled"`      // requests whose context ended while they waited for a slot, during Latency or generation, so no answer was written
	Faults      Faults `json:"faults"`        // injected faults by kind
	InFlight    int64  `json:"in_flight"`     // requests admitted under MaxConcurrency and not yet finished, now: Running plus Waiting, and those being read or drawn
	MaxInFlight int64  `json:"max_in_flight"` // the most InFlight seen
	Running     int64  `json:"running"`       // requests holding one of Capacity's slots now; without Capacity, InFlight
	Waiting     int64  `json:"waiting"`       // requests waiting for one of Capacity's slots now
	MaxWaiting  int64  `json:"max_waiting"`   // the most Waiting seen
	// With a prefix cache: answered requests whose prompt prefix was kept, and those
	// with a prefix that was not. Requests without a prefix count in neither.
	PrefixHits   int64 `json:"prefix_hits"`
	PrefixMisses int64 `json:"prefix_misses"`
}

// Faults counts a Server's injected faults by kind.
type Faults struct {
	ServerError     int64 `json:"server_error"`     // 500s drawn from FailRate
	RateLimited     int64 `json:"rate_limited"`     // 429s drawn from RateLimitRate
	OverConcurrency int64 `json:"over_concurrency"` // 429s because MaxConcurrency requests were in flight
	QueueFull       int64 `json:"queue_full"`       // 429s because QueueLimit requests waited for Capacity's slots
	Hang            int64 `json:"hang"`             // requests left unanswered, drawn from HangRate
	Reset           int64 `json:"reset"`            // connections reset, drawn from ResetRate
}

// Total returns the sum of f's counters.
func (f Faults) Total() int64 {
	return f.ServerError + f.RateLimited + f.OverConcurrency + f.QueueFull + f.Hang + f.Reset
}

// New returns a simulator configured by opts. It does not validate opts (see
// Options.Validate): negative numbers count as zero, and rates above 1 as 1.
func New(opts Options) *Server {
	s := &Server{
		latency:   max(opts.Latency, 0),
		maxConc:   int64(max(opts.MaxConcurrency, 0)),
		maxTokens: opts.MaxTokens,
		noUsage:   opts.NoUsage,
		model:     opts.Model,
		seed:      opts.Seed,
		reset:     opts.ResetRate,
		hang:      opts.HangRate,
		limited:   opts.RateLimitRate,
		fail:      opts.FailRate,
	}
	if tps := opts.TokensPerSecond; tps > 0 && !math.IsInf(tps, 1) {
		s.tps = tps
	}
	if opts.Capacity > 0 {
		slowdown := opts.Slowdown
		if !(slowdown > 0) || math.IsInf(slowdown, 1) {
			slowdown = 0
		}
		s.pool = newPool(opts.Capacity, max(opts.QueueLimit, 0), s.tps, slowdown)
	}
	if opts.PrefixCache > 0 {
		s.prefixes = newPrefixCache(opts.PrefixCache)
		s.saving = 0.5
		if v := opts.PrefixSaving; v > 0 && v <= 1 {
			s.saving = v
		}
	}
	if s.maxTokens <= 0 {
		s.maxTokens = DefaultMaxTokens
	}
	if s.model == "" {
		s.model = DefaultModel
	}
	if s.seed == 0 {
		s.seed = time.Now().UnixNano()
	}
	s.seedHi = mix64(uint64(s.seed))
	s.anyFault = s.reset > 0 || s.hang > 0 || s.limited > 0 || s.fail > 0

	var salt [16]byte
	_, _ = crand.Read(salt[:]) // never fails: crypto/rand.Read panics rather than return an error
	s.idHi = binary.LittleEndian.Uint64(salt[:8])
	s.idSalt = binary.LittleEndian.Uint64(salt[8:])

	ra := opts.RetryAfter
	if ra <= 0 {
		ra = DefaultRetryAfter
	}
	s.retryAfter = []string{strconv.FormatInt(int64((ra+time.Second-1)/time.Second), 10)}
	s.retryAfterMS = []string{strconv.FormatInt(int64((ra+time.Millisecond-1)/time.Millisecond), 10)}
	s.overBody = appendError(nil, &apiError{
		status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "rate_limit_exceeded",
		message: "Too many concurrent requests: the simulator allows " + strconv.FormatInt(s.maxConc, 10) + " in flight. Please retry after a short wait.",
	})
	s.queueBody = appendError(nil, &apiError{
		status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "rate_limit_exceeded",
		message: "The server is busy: " + strconv.Itoa(max(opts.QueueLimit, 0)) + " requests are waiting already (simulated). Please retry after a short wait.",
	})
	s.limitBody = appendError(nil, &apiError{
		status: http.StatusTooManyRequests, typ: "rate_limit_error", code: "rate_limit_exceeded",
		message: "Rate limit reached (simulated). Please retry after a short wait.",
	})
	s.failBody = appendError(nil, &apiError{
		status: http.StatusInternalServerError, typ: "server_error",
		message: "The server had an error while processing your request. Sorry about that! (simulated)",
	})
	s.modelBody = appendModel(nil, s.model, time.Now().Unix())
	s.modelsBody = append(append([]byte(`{"object":"list","data":[`), s.modelBody[:len(s.modelBody)-1]...), "]}\n"...)
	return s
}

func appendModel(b []byte, id string, created int64) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"object":"model","created":`...)
	b = strconv.AppendInt(b, created, 10)
	return append(b, `,"owned_by":"sluice-sim"}`+"\n"...)
}

// Seed returns the seed of the fault draws, the one New picked when Options.Seed was 0.
// Options with this Seed reproduce the sequence of faults of a run whose requests
// arrive in the same order.
func (s *Server) Seed() int64 { return s.seed }

// Stats returns counters since New: Requests (all POSTs to an inference route), Completed
// (2xx answers), Faults by kind (500, 429 injected, 429 over concurrency or queue limit,
// hang, reset), InFlight, Running and Waiting now, and MaxInFlight and MaxWaiting seen.
func (s *Server) Stats() Stats {
	st := Stats{
		Requests:  s.requests.Load(),
		Completed: s.completed.Load(),
		Invalid:   s.invalid.Load(),
		Canceled:  s.canceled.Load(),
		Faults: Faults{
			ServerError:     s.faults.serverError.Load(),
			RateLimited:     s.faults.rateLimited.Load(),
			OverConcurrency: s.faults.overConcurrency.Load(),
			QueueFull:       s.faults.queueFull.Load(),
			Hang:            s.faults.hang.Load(),
			Reset:           s.faults.reset.Load(),
		},
		InFlight:     s.inFlight.Load(),
		MaxInFlight:  s.maxInFlight.Load(),
		PrefixHits:   s.prefixHits.Load(),
		PrefixMisses: s.prefixMisses.Load(),
	}
	if s.pool == nil {
		st.Running = st.InFlight
		return st
	}
	running, waiting, maxWaiting := s.pool.load()
	st.Running, st.Waiting, st.MaxWaiting = int64(running), int64(waiting), int64(maxWaiting)
	return st
}

// Header values shared by every answer; net/http never modifies them.
var (
	jsonType = []string{"application/json"}
	textType = []string{"text/plain; charset=utf-8"}
)

type endpoint uint8

const (
	chatEndpoint endpoint = iota
	completionEndpoint
	embeddingEndpoint
	responseEndpoint
	moderationEndpoint
	imageGenerationEndpoint
	imageEditEndpoint
	videoEndpoint
)

// ServeHTTP answers one request. Every answer carries an x-request-id header unique to it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := s.newID()
	h := w.Header()
	h["X-Request-Id"] = []string{id}

	path, deployment := route(r.URL.Path)
	switch path {
	case "/chat/completions":
		s.serveCompletion(w, r, h, chatEndpoint, deployment, id[len("req_"):])
	case "/completions":
		s.serveCompletion(w, r, h, completionEndpoint, deployment, id[len("req_"):])
	case "/embeddings":
		s.serveCompletion(w, r, h, embeddingEndpoint, deployment, "")
	case "/responses":
		s.serveCompletion(w, r, h, responseEndpoint, deployment, id[len("req_"):])
	case "/moderations":
		s.serveCompletion(w, r, h, moderationEndpoint, deployment, id[len("req_"):])
	case "/images/generations":
		s.serveCompletion(w, r, h, imageGenerationEndpoint, deployment, "")
	case "/images/edits":
		s.serveCompletion(w, r, h, imageEditEndpoint, deployment, "")
	case "/videos":
		s.serveCompletion(w, r, h, videoEndpoint, deployment, id[len("req_"):])
	case "/models":
		if allow(w, r, h, http.MethodGet) {
			writeBody(w, h, http.StatusOK, jsonType, s.modelsBody)
		}
	case "/healthz":
		if allow(w, r, h, http.MethodGet) {
			writeBody(w, h, http.StatusOK, textType, []byte("ok"))
		}
	case "/stats":
		if allow(w, r, h, http.MethodGet) {
			writeBody(w, h, http.StatusOK, jsonType, s.appendStats(nil))
		}
	case "/metrics":
		if allow(w, r, h, http.MethodGet) {
			writeBody(w, h, http.StatusOK, metricsType, s.appendMetrics(nil))
		}
	default:
		if m, ok := strings.CutPrefix(path, "/models/"); ok {
			if !allow(w, r, h, http.MethodGet) {
				return
			}
			if m == s.model {
				writeBody(w, h, http.StatusOK, jsonType, s.modelBody)
				return
			}
			writeError(w, h, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", param: "model", code: "model_not_found",
				message: "The model '" + m + "' does not exist or you do not have access to it."})
			return
		}
		writeError(w, h, &apiError{status: http.StatusNotFound, typ: "invalid_request_error",
			message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")."})
	}
}

// route strips the prefixes a base URL may carry (/openai/deployments/{deployment},
// /openai, /v1) from path, and returns what is left and the deployment.
func route(path string) (rest, deployment string) {
	if p, ok := strings.CutPrefix(path, "/openai/deployments/"); ok {
		i := strings.IndexByte(p, '/')
		if i <= 0 {
			return "", ""
		}
		deployment, path = p[:i], p[i:]
	} else if strings.HasPrefix(path, "/openai/") {
		path = path[len("/openai"):]
	}
	if strings.HasPrefix(path, "/v1/") {
		path = path[len("/v1"):]
	}
	return path, deployment
}

// allow answers 405 and returns false unless r's method is method (or HEAD for GET).
func allow(w http.ResponseWriter, r *http.Request, h http.Header, method string) bool {
	if r.Method == method || method == http.MethodGet && r.Method == http.MethodHead {
		return true
	}
	allowed := method
	if method == http.MethodGet {
		allowed = "GET, HEAD"
	}
	h["Allow"] = []string{allowed}
	writeError(w, h, &apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error",
		message: "Method " + r.Method + " is not allowed for " + r.URL.Path + "; use " + method + "."})
	return false
}

// serveCompletion answers a POST to an inference route: the concurrency limit first, then
// the fault draws, then the answer after its latency and generation time (with Capacity,
// after its wait for a slot too).
func (s *Server) serveCompletion(w http.ResponseWriter, r *http.Request, h http.Header, ep endpoint, deployment, id string) {
	if !allow(w, r, h, http.MethodPost) {
		return
	}
	n := s.requests.Add(1)
	status := 0 // the answer's status; 0 while none is written
	admitted := false
	defer func() {
		s.answers[ep][statusSlot(status)].Add(1)
		if admitted { // after the count, so that a caller who sees none in flight sees it
			s.inFlight.Add(-1)
		}
	}()
	if !s.admit() {
		s.faults.overConcurrency.Add(1)
		status = s.writeRetry(w, h, s.overBody)
		return
	}
	admitted = true
	if s.anyFault {
		var faulted bool
		if status, faulted = s.injectFault(w, r, h, uint64(n)); faulted {
			return
		}
	}

	bp := bufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooled {
			bufPool.Put(bp)
		}
	}()
	body := (*bp)[:0]
	var err error
	if r.Body != nil {
		body, err = readBody(r.Body, body, r.ContentLength)
	}
	*bp = body[:0]
	if err != nil {
		s.invalid.Add(1)
		e := invalid("", "We could not read the body of your request.")
		if errors.Is(err, errTooLarge) {
			e = &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error",
				message: "The request body is larger than the simulator's limit of 32 MiB."}
		}
		status = e.status
		writeError(w, h, e)
		return
	}

	model := deployment
	if model == "" {
		model = s.model
	}
	out := body[len(body):] // appends after the body, never over it
	var tokens int
	var e *apiError
	switch ep {
	case chatEndpoint:
		out, tokens, e = s.chat(out, body, model, id)
	case completionEndpoint:
		out, tokens, e = s.completion(out, body, model, id)
	case responseEndpoint:
		out, tokens, e = s.response(out, body, model, id)
	case moderationEndpoint:
		out, tokens, e = s.moderation(out, body, model, id)
	case imageGenerationEndpoint, imageEditEndpoint:
		out, tokens, e = s.images(out, body, model, ep == imageEditEndpoint)
	case videoEndpoint:
		out, tokens, e = s.video(out, body, model, id)
	default:
		out, tokens, e = s.embedding(out, body, model)
	}
	if cap(out) > cap(body)-len(body) { // out outgrew the pooled buffer: keep the larger one
		*bp = out[:0]
	}
	if e != nil {
		s.invalid.Add(1)
		status = e.status
		writeBody(w, h, e.status, jsonType, appendError(out[:0], e))
		return
	}
	latency := s.latency
	if s.prefixes != nil {
		if h := prefixHash(ep, body); h != 0 {
			if s.prefixes.touch(h) {
				s.prefixHits.Add(1)
				latency = time.Duration(float64(latency) * (1 - s.saving))
			} else {
				s.prefixMisses.Add(1)
			}
		}
	}
	if s.pool != nil {
		switch s.pool.serve(r.Context(), latency, float64(tokens)) {
		case poolFull:
			s.faults.queueFull.Add(1)
			status = s.writeRetry(w, h, s.queueBody)
			return
		case poolCanceled:
			s.canceled.Add(1)
			return
		}
	} else if !s.wait(r.Context(), latency, tokens) {
		s.canceled.Add(1)
		return
	}
	status = http.StatusOK
	writeBody(w, h, http.StatusOK, jsonType, out)
	s.completed.Add(1)
}

// admit takes an in-flight slot, or returns false when MaxConcurrency are taken.
func (s *Server) admit() bool {
	var now int64
	if s.maxConc > 0 {
		for {
			c := s.inFlight.Load()
			if c >= s.maxConc {
				return false
			}
			if s.inFlight.CompareAndSwap(c, c+1) {
				now = c + 1
				break
			}
		}
	} else {
		now = s.inFlight.Add(1)
	}
	for {
		m := s.maxInFlight.Load()
		if now <= m || s.maxInFlight.CompareAndSwap(m, now) {
			return true
		}
	}
}

// injectFault draws the faults of the n-th inference request, in order reset, hang,
// 429, 500, and acts out the one drawn. It returns false when none was drawn, and the
// status it answered (0 for none). The draws come from a PCG seeded with the Server's
// seed and n, so they need no lock and the sequence depends only on the seed and the
// order requests arrive in.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, h http.Header, n uint64) (status int, faulted bool) {
	var p rand.PCG
	p.Seed(s.seedHi, mix64(n))
	reset, hang, limited, fail := unit(p.Uint64()), unit(p.Uint64()), unit(p.Uint64()), unit(p.Uint64())
	switch {
	case reset < s.reset:
		s.faults.reset.Add(1)
		resetConn(w)
	case hang < s.hang:
		s.faults.hang.Add(1)
		// net/http notices the client going away only once the body is read.
		if r.Body != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
		}
		<-r.Context().Done()
	case limited < s.limited:
		s.faults.rateLimited.Add(1)
		status = s.writeRetry(w, h, s.limitBody)
	case fail < s.fail:
		s.faults.serverError.Add(1)
		status = http.StatusInternalServerError
		writeBody(w, h, status, jsonType, s.failBody)
	default:
		return 0, false
	}
	return status, true
}

// resetConn closes the client's connection without an answer: with a TCP RST where the
// connection is TCP, else by aborting the handler (HTTP/2 resets the stream).
func resetConn(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	c := conn
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok { // *tls.Conn
		c = nc.NetConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// delay returns Latency plus the generation time of tokens: how long an answer waits.
func (s *Server) delay(tokens int) time.Duration {
	d := s.latency
	if s.tps > 0 && tokens > 0 {
		d += time.Duration(min(float64(tokens)/s.tps*float64(time.Second), math.MaxInt64/2))
	}
	return d
}

// wait sleeps for latency and the generation time of tokens, and returns false if ctx
// ended first.
func (s *Server) wait(ctx context.Context, latency time.Duration, tokens int) bool {
	d := latency + s.delay(tokens) - s.latency
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// writeRetry answers 429 with Retry-After, and returns the status.
func (s *Server) writeRetry(w http.ResponseWriter, h http.Header, body []byte) int {
	h["Retry-After"] = s.retryAfter
	h["Retry-After-Ms"] = s.retryAfterMS
	writeBody(w, h, http.StatusTooManyRequests, jsonType, body)
	return http.StatusTooManyRequests
}

func writeError(w http.ResponseWriter, h http.Header, e *apiError) {
	writeBody(w, h, e.status, jsonType, appendError(nil, e))
}

func writeBody(w http.ResponseWriter, h http.Header, status int, contentType []string, body []byte) {
	h["Content-Type"] = contentType // net/http adds Content-Length to short bodies itself
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// newID returns a new request id, "req_" and 32 hex digits.
func (s *Server) newID() string {
	var raw [16]byte
	binary.BigEndian.PutUint64(raw[:8], s.idHi)
	binary.BigEndian.PutUint64(raw[8:], mix64(s.ids.Add(1)^s.idSalt))
	var id [4 + 32]byte
	copy(id[:], "req_")
	hex.Encode(id[4:], raw[:])
	return string(id[:])
}

const maxPooled = 1 << 20

var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 8<<10)
	return &b
}}

var errTooLarge = errors.New("sim: request body too large")

// readBody reads r into b, growing it as needed, up to maxBody bytes.
func readBody(r io.Reader, b []byte, size int64) ([]byte, error) {
	if size > maxBody {
		return b, errTooLarge
	}
	if size > 0 && int64(cap(b)) < 2*size+512 { // room for the body and the answer after it
		b = make([]byte, 0, 2*size+512)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if len(b) > maxBody {
			return b, errTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
