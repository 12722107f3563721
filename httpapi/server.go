// Package httpapi serves the Files and Batches APIs over HTTP, in both route families:
// the OpenAI API under /v1 and the Azure OpenAI API under /openai with api-version.
// Both return the same objects in the OpenAI wire shape, and errors in its error shape.
package httpapi

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/sluice-batch/sluice"
)

// APIVersions are the api-version values the /openai routes accept.
var APIVersions = []string{"2024-10-21", "2024-07-01-preview", "2024-10-01-preview", "2025-03-01-preview", "2025-04-01-preview"}

// Options are the optional settings of a Server.
type Options struct {
	// APIKeys are the keys callers may present; none means the API is open.
	APIKeys []string
	Logger  *slog.Logger
	// Deployments are the configured deployments, for their prices.
	Deployments []sluice.Deployment
	// MaxFiles and MaxExpiringFiles bound the files kept without an expiry and with
	// one, output files included; 0 means the product's 500 and 10,000, and a
	// negative number no limit.
	MaxFiles         int
	MaxExpiringFiles int
}

// The product's limits on files kept.
const (
	DefaultMaxFiles         = 500
	DefaultMaxExpiringFiles = 10000
)

// Server is the API's HTTP handler.
type Server struct {
	store   sluice.Store
	service sluice.Service
	keys    [][]byte
	log     *slog.Logger
	handler http.Handler
	// deployments are the configured deployments by name.
	deployments map[string]sluice.Deployment

	maxFiles, maxExpiringFiles int
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
			s.keys = append(s.keys, []byte(k))
		}
	}
	s.handler = s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// apiFunc is a handler that returns its error instead of writing it.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

func (s *Server) handle(fn apiFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// authenticate accepts a configured key as "api-key: K" or "Authorization: Bearer K".
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(s.keys) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		key := r.Header.Get("api-key")
		if key == "" {
			if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
				key = strings.TrimSpace(v)
			}
		}
		if key == "" {
			writeError(w, r, s.log, sluice.Errorf(sluice.KindUnauthorized,
				"You didn't provide an API key. Send it in an 'api-key' header or as 'Authorization: Bearer KEY'."))
			return
		}
		for _, k := range s.keys {
			if subtle.ConstantTimeCompare(k, []byte(key)) == 1 {
				next.ServeHTTP(w, r)
				return
			}
		}
		code := "invalid_api_key"
		if family(r) == familyAzure {
			code = "unauthorized" // Azure's ErrorCode has no invalid_api_key
		}
		writeError(w, r, s.log, sluice.Errorf(sluice.KindUnauthorized, "Incorrect API key provided.").WithCode(code))
	})
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
