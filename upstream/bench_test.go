package upstream_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sluice-batch/sluice"
	"github.com/sluice-batch/sluice/upstream"
)

// BenchmarkDo sends a chat request and reads a typical answer through each of the
// client's transports, from parallel goroutines, to a net/http server in this process:
//
//	go test -run '^$' -bench Do -benchmem ./upstream
//
// The server's cost is in both; the difference between the two is the client's.
func BenchmarkDo(b *testing.B) {
	answer := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"A short answer of a few words."},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":8,"total_tokens":28}}`)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("x-request-id", "req-1")
		w.Write(answer)
	}))
	defer ts.Close()
	body := []byte(`{"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Say something about line 12345, in a few words."}],"max_tokens":16}`)
	const concurrency = 16
	up := sluice.Upstream{BaseURL: ts.URL + "/v1", APIKey: "k", MaxConcurrency: concurrency}
	for _, tc := range []struct {
		name string
		c    *upstream.Client
	}{
		{"h1", upstream.NewClient(up, nil)},
		{"net-http", upstream.NewClient(up, &http.Client{Transport: upstream.NewTransport(concurrency, 0)})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer tc.c.CloseIdleConnections()
			b.SetParallelism(4) // goroutines per P, fewer than the connections
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 4096)
				for pb.Next() {
					resp, err := tc.c.Do(b.Context(), "/chat/completions", body, buf)
					if err != nil || resp.Status != http.StatusOK || len(resp.Body) != len(answer) {
						b.Errorf("status %d, %d bytes, %v", resp.Status, len(resp.Body), err)
						return
					}
				}
			})
		})
	}
}
