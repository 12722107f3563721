package httpapi

import "net/http"

// routes lists every route of the API. Each resource is served three times: under /v1
// as the OpenAI API does, under /openai with a required api-version as Azure OpenAI
// does, and under /openai/v1, Azure's OpenAI-compatible family, where api-version is
// optional. One handler set serves them all; family tells them apart.
func (s *Server) routes() http.Handler {
	api := http.NewServeMux()
	// The Azure clients built for one deployment send a batch create to the deployment.
	api.Handle("POST /openai/deployments/{deployment}/batches", s.handle(s.handleBatchCreate))
	for _, prefix := range []string{"/v1", "/openai", "/openai/v1"} {
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
