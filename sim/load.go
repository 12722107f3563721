package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// LoadOptions are the optional settings of RunLoad.
type LoadOptions struct {
	Model       string        // body.model; default DefaultModel
	MaxTokens   int           // body.max_tokens; default DefaultMaxTokens
	Seed        int64         // seed of the arrival times and prompts; 0 picks one from the clock
	Timeout     time.Duration // a request's longest wait for its whole answer; default 60s
	MaxInFlight int           // requests unanswered at most; an arrival beyond it is dropped, not sent; default 10000
	HTTPClient  *http.Client  // nil: a client that keeps up to 1024 idle connections
}

// LoadReport is what RunLoad measured. Latencies run from a request's scheduled
// arrival, not from when it was sent, so a generator that falls behind its schedule
// shows as latency rather than as a lower rate.
type LoadReport struct {
	URL          string           `json:"url"`
	Rate         float64          `json:"rate"`       // arrivals a second asked for
	Duration     float64          `json:"duration_s"` // arrivals' span, seconds: d, or less when ctx ended
	Seed         int64            `json:"seed"`
	MaxTokens    int              `json:"max_tokens"`
	Sent         int64            `json:"sent"`
	SentRate     float64          `json:"sent_rate"`      // Sent over Duration
	OK           int64            `json:"ok"`             // 2xx answers
	Statuses     map[string]int64 `json:"statuses"`       // answers by status; "error" for no answer (connection error, timeout)
	Dropped      int64            `json:"dropped"`        // arrivals not sent because MaxInFlight were unanswered
	MeanInFlight float64          `json:"mean_in_flight"` // requests unanswered on average over Duration (sum of all latencies over Duration)
	LatencyMS    Percentiles      `json:"latency_ms"`     // of the 2xx answers, milliseconds
	FirstError   string           `json:"first_error,omitempty"`
}

// Percentiles summarises latencies: nearest-rank percentiles, the mean and the largest.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// RunLoad sends an online load to the OpenAI-compatible server at baseURL (such as
// http://127.0.0.1:9000/v1): chat completions arriving as a Poisson process at rate a
// second for d, open loop (each request is sent at its arrival whatever the others are
// doing), and waits for every answer. Each request asks one short question of its own
// with max_tokens set. The arrival times and prompts follow from the seed, so two runs
// with one seed send the same requests at the same offsets. It stops sending when ctx
// ends, and reports what it measured; it fails only on bad arguments.
func RunLoad(ctx context.Context, baseURL string, rate float64, d time.Duration, opts *LoadOptions) (*LoadReport, error) {
	var o LoadOptions
	if opts != nil {
		o = *opts
	}
	switch {
	case !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://"):
		return nil, fmt.Errorf("sim: load URL %q: want an http:// or https:// base URL such as http://127.0.0.1:9000/v1", baseURL)
	case !(rate > 0) || math.IsInf(rate, 1):
		return nil, fmt.Errorf("sim: load rate %v: want a positive number of requests a second", rate)
	case d <= 0:
		return nil, fmt.Errorf("sim: load duration %v: want a positive duration", d)
	case o.MaxTokens < 0 || o.MaxInFlight < 0 || o.Timeout < 0:
		return nil, errors.New("sim: load MaxTokens, MaxInFlight and Timeout cannot be negative")
	}
	if o.Model == "" {
		o.Model = DefaultModel
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	if o.Seed == 0 {
		o.Seed = time.Now().UnixNano()
	}
	if o.Timeout == 0 {
		o.Timeout = time.Minute
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = 10000
	}
	hc := o.HTTPClient
	if hc == nil {
		tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, DisableCompression: true}
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	url := strings.TrimSuffix(baseURL, "/") + "/chat/completions"
	rep := &LoadReport{URL: baseURL, Rate: rate, Duration: d.Seconds(), Seed: o.Seed, MaxTokens: o.MaxTokens, Statuses: map[string]int64{}}

	var (
		mu        sync.Mutex
		latencies []time.Duration // of 2xx answers
		total     time.Duration   // of every request, answered or not
		inFlight  int
		wg        sync.WaitGroup
	)
	send := func(i int64, at time.Time) {
		defer wg.Done()
		status, err := loadRequest(ctx, hc, url, loadBody(o.Model, o.MaxTokens, o.Seed, i), o.Timeout)
		lat := time.Since(at)
		mu.Lock()
		defer mu.Unlock()
		inFlight--
		total += lat
		switch {
		case err != nil:
			rep.Statuses["error"]++
			if rep.FirstError == "" {
				rep.FirstError = err.Error()
			}
		default:
			rep.Statuses[strconv.Itoa(status)]++
			if status/100 == 2 {
				rep.OK++
				latencies = append(latencies, lat)
			}
		}
	}

	arrivals := rand.New(rand.NewPCG(uint64(o.Seed), 0x5eed_10ad))
	start := time.Now()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var next time.Duration // the next arrival's offset from start
	for i := int64(0); ; i++ {
		next += time.Duration(arrivals.ExpFloat64() / rate * float64(time.Second))
		if next >= d {
			break
		}
		if wait := time.Until(start.Add(next)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		mu.Lock()
		if inFlight >= o.MaxInFlight {
			rep.Dropped++
			mu.Unlock()
			continue
		}
		inFlight++
		mu.Unlock()
		rep.Sent++
		wg.Add(1)
		go send(i, start.Add(next))
	}
	span := min(time.Since(start), d) // shorter when ctx ended
	wg.Wait()
	rep.Duration = span.Seconds()
	rep.SentRate = float64(rep.Sent) / span.Seconds()
	rep.MeanInFlight = total.Seconds() / span.Seconds()
	rep.LatencyMS = summarize(latencies)
	return rep, nil
}

// loadRequest posts body to url and reads the whole answer.
func loadRequest(ctx context.Context, hc *http.Client, url string, body []byte, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// loadBody is the i-th request of a load: a short question of its own, drawn from the
// seed and i.
func loadBody(model string, maxTokens int, seed, i int64) []byte {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(i)))
	b := []byte(`{"model":`)
	b = appendString(b, model)
	b = append(b, `,"messages":[{"role":"user","content":"Question `...)
	b = strconv.AppendInt(b, i, 10)
	b = append(b, ": tell me about"...)
	for range 8 {
		b = append(b, ' ')
		b = append(b, words[r.IntN(len(words))]...)
	}
	b = append(b, `."}],"max_tokens":`...)
	b = strconv.AppendInt(b, int64(maxTokens), 10)
	return append(b, '}')
}

// summarize returns the percentiles of ds in milliseconds; it sorts ds.
func summarize(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	slices.Sort(ds)
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 } // to the microsecond
	return Percentiles{
		P50: ms(percentile(ds, 50)), P95: ms(percentile(ds, 95)), P99: ms(percentile(ds, 99)), P999: ms(percentile(ds, 99.9)),
		Max: ms(ds[len(ds)-1]), Mean: ms(sum / time.Duration(len(ds))),
	}
}

// percentile returns the nearest-rank p-th percentile of sorted, which is not empty:
// the smallest value that at least p percent of the values are at or below.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := int64(len(sorted))
	rank := (int64(math.Round(p*1000))*n + 100_000 - 1) / 100_000 // ceil(p/100 × n) in integers
	return sorted[max(1, min(rank, n))-1]
}
