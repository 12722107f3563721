// Package httpapi serves the Files and Batches APIs over HTTP, in both route families:
// the OpenAI API under /v1 and the Azure OpenAI API under /openai with api-version.
// Both return the same objects in the OpenAI wire shape, and errors in its error shape.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-batch/sluice"
)

// APIVersions are the api-version values the /openai routes accept.
var APIVersions = []string{"2024-10-21", "2024-07-01-preview", "2024-10-01-preview", "2025-03-01-preview", "2025-04-01-preview"}

// Options are the optional settings of a Server.
type Options struct {
	// APIKeys are admin keys of the default project. With Keys, they are the keys
	// callers may present; none means the API is open, to an admin of the default
	// project.
	APIKeys []string
	// Keys are the keys of projects, each with its project and role.
	Keys   []Key
	Logger *slog.Logger
	// Deployments are the configured deployments, for their prices.
	Deployments []sluice.Deployment
	// MaxFiles and MaxExpiringFiles bound the files kept without an expiry and with
	// one, output files included; 0 means the product's 500 and 10,000, and a
	// negative number no limit.
	MaxFiles         int
	MaxExpiringFiles int
	// Limits bound each caller's and each request's share of the server.
	Limits Limits
	// Fault says which errors are faults of the server's own storage that should pass:
	// they answer 503 with the reason and Retry-After. Default sluice.StorageFault.
	Fault sluice.FaultFunc
	// Ready answers GET /readyz: nil when the server can serve, or why not. Nil: always
	// ready.
	Ready func(ctx context.Context) error
}

// storageRetry is the Retry-After of an answer that met a storage fault: long enough
// for an operator's fix or a database's failover.
const storageRetry = 30 * time.Second

// storageFault returns err as a 503 that says what failed when it is a fault of the
// server's own storage, and err otherwise. The answer names no path or address; the
// log has the whole error.
func (s *Server) storageFault(r *http.Request, err error) error {
	if e, ok := asError(err); ok && e.Kind != sluice.KindInternal {
		return err
	}
	reason, ok := s.fault(err)
	if !ok {
		return err
	}
	return &retryError{after: storageRetry, err: sluice.Errorf(sluice.KindUnavailable,
		"The server cannot store or read right now: %s. Nothing stored before is lost; retry later.", reason).WithCode("storage_unavailable").WithErr(err)}
}

// handleReady answers the readiness probe: 200 when the server can serve, 503 with the
// reason and Retry-After when its storage fails. /healthz stays the liveness probe: a
// server whose disk is full is alive and mends itself once there is room.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			w.Header().Set("Retry-After", strconv.Itoa(int(storageRetry.Seconds())))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not_ready", "reason": sluice.ErrorMessage(err)})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// The product's limits on files kept.
const (
	DefaultMaxFiles         = 500
	DefaultMaxExpiringFiles = 10000
)

// Key is an API key and who presents it.
type Key struct {
	// Secret is the key. SHA256, the hex SHA-256 of the key, may be given instead, so
	// that the config holds no key a reader could use.
	Secret string
	SHA256 string
	Caller sluice.Caller
}

// hash returns the SHA-256 of the key, and false for a key with neither a secret nor a
// well-formed hash.
func (k Key) hash() ([sha256.Size]byte, bool) {
	if k.Secret != "" {
		return sha256.Sum256([]byte(k.Secret)), true
	}
	var h [sha256.Size]byte
	b, err := hex.DecodeString(strings.TrimSpace(k.SHA256))
	if err != nil || len(b) != sha256.Size {
		return h, false
	}
	copy(h[:], b)
	return h, true
}

// Server is the API's HTTP handler.
type Server struct {
	store   sluice.Store
	service sluice.Service
	// keys are the SHA-256 hashes of the API keys: every key compares in the same
	// time, whatever its length. callers[i] is who presents keys[i].
	keys    [][sha256.Size]byte
	callers []sluice.Caller
	log     *slog.Logger
	limits  *limiter
	handler http.Handler
	// deployments are the configured deployments by name.
	deployments map[string]sluice.Deployment

	maxFiles, maxExpiringFiles int

	fault sluice.FaultFunc
	ready func(ctx context.Context) error
}

// NewServer returns the API over store (reads) and service (changes).
func NewServer(store sluice.Store, service sluice.Service, opts *Options) *Server {
	if opts == nil {
		opts = &Options{}
	}
	s := &Server{store: store, service: service, log: opts.Logger, deployments: make(map[string]sluice.Deployment)}
	for _, d := range opts.Deployments {
		s.deployments[d.Name] = d
	}
	s.maxFiles, s.maxExpiringFiles = opts.MaxFiles, opts.MaxExpiringFiles
	s.fault, s.ready = opts.Fault, opts.Ready
	if s.fault == nil {
		s.fault = sluice.StorageFault
	}
	if s.maxFiles == 0 {
		s.maxFiles = DefaultMaxFiles
	}
	if s.maxExpiringFiles == 0 {
		s.maxExpiringFiles = DefaultMaxExpiringFiles
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range opts.APIKeys {
		if k != "" {
			s.keys = append(s.keys, sha256.Sum256([]byte(k)))
			s.callers = append(s.callers, openCaller)
		}
	}
	for _, k := range opts.Keys {
		if h, ok := k.hash(); ok {
			c := k.Caller
			c.Project = sluice.ProjectName(c.Project)
			if c.Role == "" {
				c.Role = sluice.RoleUser
			}
			s.keys = append(s.keys, h)
			s.callers = append(s.callers, c)
		}
	}
	s.limits = newLimiter(opts.Limits, len(s.keys))
	s.handler = s.guardRequests(s.routes())
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// apiFunc is a handler that returns its error instead of writing it.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

// handle serves fn within the limits of its route (body size, upload slots). An
// error that the client caused (it went away, its body stalled or was too large) is
// answered and logged as the client's, whatever fn made of it.
func (s *Server) handle(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.admitted(w, r, fn); err != nil {
			s.writeRetryError(w, r, s.blame(w, r, err))
		}
	})
}

// admitted runs fn if the limits of its route admit r.
func (s *Server) admitted(w http.ResponseWriter, r *http.Request, fn apiFunc) error {
	release, err := s.admit(r)
	if err != nil {
		return err
	}
	defer release()
	return fn(w, r)
}

// authenticate accepts a configured key as "api-key: K" or "Authorization: Bearer K"
// (the scheme in any case), and holds each key to its request rate.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.keys) == 0 {
			next.ServeHTTP(w, withCaller(r, openCaller))
			return
		}
		key := r.Header.Get("api-key")
		if key == "" {
			if scheme, v, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " "); ok && strings.EqualFold(scheme, "Bearer") {
				key = strings.TrimSpace(v)
			}
		}
		if key == "" {
			writeError(w, r, s.log, sluice.Errorf(sluice.KindUnauthorized,
				"You didn't provide an API key. Send it in an 'api-key' header or as 'Authorization: Bearer KEY'."))
			return
		}
		// Every key is compared, in constant time, so the time taken says nothing of
		// which key matched or how much of one.
		sum, found := sha256.Sum256([]byte(key)), -1
		for i, k := range s.keys {
			if subtle.ConstantTimeCompare(k[:], sum[:]) == 1 && found < 0 {
				found = i
			}
		}
		if found >= 0 {
			if err := s.limits.allow(found); err != nil {
				s.writeRetryError(w, r, err)
				return
			}
			if g := guardOf(r); g != nil {
				g.key = found
			}
			next.ServeHTTP(w, withCaller(r, s.callers[found]))
			return
		}
		code := "invalid_api_key"
		if family(r) == familyAzure {
			code = "unauthorized" // Azure's ErrorCode has no invalid_api_key
		}
		writeError(w, r, s.log, sluice.Errorf(sluice.KindUnauthorized, "Incorrect API key provided.").WithCode(code))
	})
}

// openCaller is who calls an API without keys, and who presents a key of APIKeys.
var openCaller = sluice.Caller{Project: sluice.DefaultProject, Role: sluice.RoleAdmin}

type callerKey struct{}

// withCaller returns r carrying its caller.
func withCaller(r *http.Request, c sluice.Caller) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
}

// callerOf returns who sent r, as authenticate found.
func callerOf(r *http.Request) sluice.Caller {
	if c, ok := r.Context().Value(callerKey{}).(sluice.Caller); ok {
		return c
	}
	return openCaller
}

// projectFilter is the project a list for r is limited to: its caller's, or "" (all)
// for an admin.
func projectFilter(r *http.Request) string {
	c := callerOf(r)
	if c.Role == sluice.RoleAdmin {
		return ""
	}
	return sluice.ProjectName(c.Project)
}

// visible returns err, or a not-found error for id when r's caller may not see an
// object of project: another project's objects do not exist for it, and the answer is
// the store's for an ID that exists nowhere, word for word.
func visible(r *http.Request, project, kind, id, param string, err error) error {
	if err == nil && !callerOf(r).Sees(project) {
		err = sluice.Errorf(sluice.KindNotFound, "No such %s object: %s", kind, id)
	}
	return withParam(err, param)
}

// Route families: what a path's prefix says about the dialect to answer in.
const (
	familyOpenAI  = iota // /v1: the OpenAI API
	familyAzure          // /openai: Azure OpenAI, api-version required
	familyAzureV1        // /openai/v1: Azure's OpenAI-compatible routes, api-version optional
)

// family returns the route family of r.
func family(r *http.Request) int {
	p := r.URL.Path
	switch {
	case p == "/openai/v1" || strings.HasPrefix(p, "/openai/v1/"):
		return familyAzureV1
	case p == "/openai" || strings.HasPrefix(p, "/openai/"):
		return familyAzure
	}
	return familyOpenAI
}

// requireAPIVersion checks api-version on the /openai routes; /openai/v1 takes any.
func (s *Server) requireAPIVersion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if family(r) != familyAzure {
			next.ServeHTTP(w, r)
			return
		}
		v := r.URL.Query().Get("api-version")
		if !slices.Contains(APIVersions, v) {
			msg := "Missing required query parameter 'api-version'."
			if v != "" {
				msg = "Unsupported api-version '" + v + "'."
			}
			writeError(w, r, s.log, sluice.Errorf(sluice.KindInvalid, "%s Supported versions: %s.", msg, strings.Join(APIVersions, ", ")).
				WithParam("api-version"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

func handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
