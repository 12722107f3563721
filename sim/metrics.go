package sim

import (
	"encoding/json"
	"strconv"
	"strings"
)

// endpointRoutes names each endpoint by its route, in endpoint order.
var endpointRoutes = [...]string{
	chatEndpoint:            "/v1/chat/completions",
	completionEndpoint:      "/v1/completions",
	embeddingEndpoint:       "/v1/embeddings",
	responseEndpoint:        "/v1/responses",
	moderationEndpoint:      "/v1/moderations",
	imageGenerationEndpoint: "/v1/images/generations",
	imageEditEndpoint:       "/v1/images/edits",
	videoEndpoint:           "/v1/videos",
}

// answerStatuses are the statuses an inference route answers, counted each on its own;
// 0 is no answer (canceled, hung, reset) and -1 any other status.
var answerStatuses = [...]int{0, 200, 400, 404, 413, 429, 500, -1}

// statusSlot returns the index of code in answerStatuses.
func statusSlot(code int) int {
	switch code {
	case 0:
		return 0
	case 200:
		return 1
	case 400:
		return 2
	case 404:
		return 3
	case 413:
		return 4
	case 429:
		return 5
	case 500:
		return 6
	}
	return len(answerStatuses) - 1
}

// statusLabel names a status of answerStatuses as /stats and /metrics show it.
func statusLabel(code int) string {
	switch code {
	case 0:
		return "none"
	case -1:
		return "other"
	}
	return strconv.Itoa(code)
}

// Answers returns how the POSTs to each inference route were answered since New: by
// route (such as "/v1/chat/completions", whatever prefix the request used) and status,
// where "none" counts requests that got no answer (canceled, hung or reset). Routes and
// statuses with no request are left out.
func (s *Server) Answers() map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for ep := range s.answers {
		for i := range s.answers[ep] {
			n := s.answers[ep][i].Load()
			if n == 0 {
				continue
			}
			route := endpointRoutes[ep]
			if out[route] == nil {
				out[route] = map[string]int64{}
			}
			out[route][statusLabel(answerStatuses[i])] = n
		}
	}
	return out
}

// statsBody is GET /stats.
type statsBody struct {
	Stats
	Capacity int                         `json:"capacity"` // Options.Capacity; 0 when the model is off
	Answers  map[string]map[string]int64 `json:"answers"`
}

// appendStats appends the JSON of GET /stats to b.
func (s *Server) appendStats(b []byte) []byte {
	body := statsBody{Stats: s.Stats(), Answers: s.Answers()}
	if s.pool != nil {
		body.Capacity = s.pool.slots
	}
	j, _ := json.Marshal(body) // cannot fail: numbers and strings only
	return append(append(b, j...), '\n')
}

// labelEscaper escapes a label value of the text exposition format.
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// metricsType is the content type of Prometheus's text exposition format.
var metricsType = []string{"text/plain; version=0.0.4; charset=utf-8"}

// appendMetrics appends GET /metrics to b, in Prometheus's text exposition format: the
// simulator's own counters and gauges, and the gauges of vLLM's that online-protection
// code reads, under vLLM's names.
func (s *Server) appendMetrics(b []byte) []byte {
	st := s.Stats()
	b = append(b, "# HELP sim_requests_total POSTs to inference routes, by route and answer status; status none counts requests that got no answer.\n"+
		"# TYPE sim_requests_total counter\n"...)
	for ep := range s.answers {
		for i := range s.answers[ep] {
			n := s.answers[ep][i].Load()
			if n == 0 {
				continue
			}
			b = append(b, `sim_requests_total{route="`...)
			b = append(b, endpointRoutes[ep]...)
			b = append(b, `",status="`...)
			b = append(b, statusLabel(answerStatuses[i])...)
			b = append(b, `"} `...)
			b = strconv.AppendInt(b, n, 10)
			b = append(b, '\n')
		}
	}
	b = append(b, "# HELP sim_faults_total Injected faults by kind.\n# TYPE sim_faults_total counter\n"...)
	for _, f := range []struct {
		kind string
		n    int64
	}{
		{"server_error", st.Faults.ServerError}, {"rate_limited", st.Faults.RateLimited},
		{"over_concurrency", st.Faults.OverConcurrency}, {"queue_full", st.Faults.QueueFull},
		{"hang", st.Faults.Hang}, {"reset", st.Faults.Reset},
	} {
		b = append(b, `sim_faults_total{kind="`...)
		b = append(b, f.kind...)
		b = append(b, `"} `...)
		b = strconv.AppendInt(b, f.n, 10)
		b = append(b, '\n')
	}
	gauge := func(b []byte, name, help, labels string, v int64) []byte {
		b = append(b, "# HELP "+name+" "+help+"\n# TYPE "+name+" gauge\n"+name+labels+" "...)
		b = strconv.AppendInt(b, v, 10)
		return append(b, '\n')
	}
	b = gauge(b, "sim_requests_in_flight", "Requests admitted and not finished: running, waiting, or being read.", "", st.InFlight)
	b = gauge(b, "sim_requests_running", "Requests holding a slot of the shared capacity (all in flight when there is none).", "", st.Running)
	b = gauge(b, "sim_requests_waiting", "Requests waiting for a slot of the shared capacity.", "", st.Waiting)
	model := `{model_name="` + labelEscaper.Replace(s.model) + `"}`
	b = gauge(b, "vllm:num_requests_running", "Number of requests in model execution batches.", model, st.Running)
	b = gauge(b, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", model, st.Waiting)
	return b
}
