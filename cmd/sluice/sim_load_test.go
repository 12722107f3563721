package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sluice-batch/sluice/sim"
)

func TestSimLoad(t *testing.T) {
	t.Parallel()
	s := sim.New(sim.Options{Capacity: 4})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	var stdout, stderr bytes.Buffer
	args := []string{"sluice", "sim", "load", "--url", srv.URL + "/v1", "--rate", "200", "--duration", "200ms", "--seed", "7", "--max-tokens", "4"}
	if err := run(t.Context(), args, func(string) string { return "" }, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v; stderr: %s", err, stderr.String())
	}
	var rep sim.LoadReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode %s: %v", stdout.String(), err)
	}
	if rep.Sent == 0 || rep.OK != rep.Sent || rep.Seed != 7 || rep.MaxTokens != 4 || rep.LatencyMS.P99 <= 0 {
		t.Errorf("got report %+v, want every request answered, seed 7 and max_tokens 4", rep)
	}
	if got := s.Stats().Completed; got != rep.Sent {
		t.Errorf("simulator completed %d, want the %d sent", got, rep.Sent)
	}

	err := run(t.Context(), []string{"sluice", "sim", "load", "--rate", "0"}, func(string) string { return "" }, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "rate") {
		t.Errorf("--rate 0: got %v, want an error about the rate", err)
	}
}
