package httpapi

import "net/http"

// routes lists every route of the API. Each resource is served twice: under /v1 as the
// OpenAI API does, and under /openai with a required api-version as Azure OpenAI does.
func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	for _, prefix := range []string{"/v1", "/openai"} {
		api.Handle("POST "+prefix+"/files", s.handle(s.handleFileUpload))
		api.Handle("GET "+prefix+"/files", s.handle(s.handleFileList))
		api.Handle("GET "+prefix+"/files/{file_id}", s.handle(s.handleFileGet))
		api.Handle("DELETE "+prefix+"/files/{file_id}", s.handle(s.handleFileDelete))
		api.Handle("GET "+prefix+"/files/{file_id}/content", s.handle(s.handleFileContent))

		api.Handle("POST "+prefix+"/batches", s.handle(s.handleBatchCreate))
		api.Handle("GET "+prefix+"/batches", s.handle(s.handleBatchList))
		api.Handle("GET "+prefix+"/batches/{batch_id}", s.handle(s.handleBatchGet))
		api.Handle("POST "+prefix+"/batches/{batch_id}/cancel", s.handle(s.handleBatchCancel))

		api.Handle("GET "+prefix+"/deployments", s.handle(s.handleDeploymentList))
		api.Handle("GET "+prefix+"/deployments/{deployment}", s.handle(s.handleDeploymentGet))
	}
	api.Handle("/", s.handle(s.handleNotFound))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", handleHealth)
	mux.Handle("/", s.authenticate(s.requireAPIVersion(api)))
	return mux
}
