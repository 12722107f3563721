package httpapi

import (
	"net/http"
	"strings"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/console"
)

// routes lists every route of the API. Each resource is served three times: under /v1
// as the OpenAI API does, under /openai with a required api-version as Azure OpenAI
// does, and under /openai/v1, Azure's OpenAI-compatible family, where api-version is
// optional. One handler set serves them all; family tells them apart.
func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	// The Azure clients built for one deployment send a batch create to the deployment.
	api.Handle("POST /openai/deployments/{deployment}/batches", s.idempotent(s.handle(s.handleBatchCreate)))
	// Azure's Files_Import: a file from a blob of a configured storage account.
	api.Handle("POST /openai/files/import", s.idempotent(s.handle(s.handleFileImport)))
	for _, prefix := range []string{"/v1", "/openai", "/openai/v1"} {
		api.Handle("POST "+prefix+"/files", s.idempotent(s.handle(s.handleFileUpload)))
		api.Handle("GET "+prefix+"/files", s.handle(s.handleFileList))
		api.Handle("GET "+prefix+"/files/{file_id}", s.handle(s.handleFileGet))
		api.Handle("DELETE "+prefix+"/files/{file_id}", s.handle(s.handleFileDelete))
		api.Handle("GET "+prefix+"/files/{file_id}/content", s.handle(s.handleFileContent))

		api.Handle("POST "+prefix+"/batches", s.idempotent(s.handle(s.handleBatchCreate)))
		api.Handle("GET "+prefix+"/batches", s.handle(s.handleBatchList))
		api.Handle("GET "+prefix+"/batches/{batch_id}", s.handle(s.handleBatchGet))
		api.Handle("POST "+prefix+"/batches/{batch_id}/cancel", s.handle(s.handleBatchCancel))
		api.Handle("GET "+prefix+"/batches/{batch_id}/results", s.handle(s.handleBatchResults))
		api.Handle("POST "+prefix+"/batches/{batch_id}/retry", s.idempotent(s.handle(s.handleBatchRetry)))

		api.Handle("POST "+prefix+"/uploads", s.idempotent(s.handle(s.handleUploadCreate)))
		api.Handle("POST "+prefix+"/uploads/{upload_id}/parts", s.handle(s.handleUploadPart))
		api.Handle("POST "+prefix+"/uploads/{upload_id}/complete", s.idempotent(s.handle(s.handleUploadComplete)))
		api.Handle("POST "+prefix+"/uploads/{upload_id}/cancel", s.handle(s.handleUploadCancel))

		api.Handle("GET "+prefix+"/deployments", s.handle(s.handleDeploymentList))
		api.Handle("GET "+prefix+"/deployments/{deployment}", s.handle(s.handleDeploymentGet))
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", handleHealth)
	mux.HandleFunc("GET /readyz", s.handleReady)
	// The Batch jobs page holds no data, so it needs no key; its API calls carry one.
	mux.Handle("GET "+console.Prefix, console.Handler())
	mux.Handle("GET /console", http.RedirectHandler(console.Prefix, http.StatusMovedPermanently))
	mux.Handle("/", s.authenticate(s.requireAPIVersion(s.unrouted(api))))
	return mux
}

// unrouted answers, in the API's error shape, what api has no route for: 405 with
// Allow when the path has routes for other methods, 404 otherwise.
func (s *Server) unrouted(api *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := api.Handler(r); pattern != "" {
			api.ServeHTTP(w, r)
			return
		}
		var allow []string
		for _, m := range []string{"GET", "POST", "DELETE"} {
			probe := r.Clone(r.Context())
			probe.Method = m
			if _, pattern := api.Handler(probe); pattern != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			writeError(w, r, s.log, sluice.Errorf(sluice.KindNotFound, "Invalid URL (%s %s).", r.Method, r.URL.Path))
			return
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, r, s.log, sluice.Errorf(sluice.KindMethodNotAllowed, "%s is not allowed on %s; use %s.", r.Method, r.URL.Path, strings.Join(allow, " or ")))
	})
}
