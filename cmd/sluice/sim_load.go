package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/sluice-batch/sluice/sim"
)

// runSimLoad is `sluice sim load`: an online load of chat completions with Poisson
// arrivals, sent open loop to an OpenAI-compatible server (the simulator, or a real
// one), with its counts and latency percentiles printed as JSON at the end.
func runSimLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sim load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		url         = fs.String("url", "http://127.0.0.1:9000/v1", "base URL of the server, with /v1")
		rate        = fs.Float64("rate", 10, "requests a second on average (Poisson arrivals)")
		duration    = fs.Duration("duration", 10*time.Second, "how long requests keep arriving; the answers are then awaited")
		model       = fs.String("model", sim.DefaultModel, "body.model of each request")
		maxTokens   = fs.Int("max-tokens", sim.DefaultMaxTokens, "body.max_tokens of each request")
		seed        = fs.Int64("seed", 0, "seed of the arrival times and prompts; 0 picks one from the clock")
		timeout     = fs.Duration("timeout", time.Minute, "a request's longest wait for its whole answer")
		maxInFlight = fs.Int("max-in-flight", 10000, "requests unanswered at most; arrivals beyond are dropped and counted")
	)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: sluice sim load --url http://127.0.0.1:9000/v1 --rate 50 --duration 30s [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("sim load: unexpected arguments %q", fs.Args())
	}
	if *maxTokens < 1 || *maxInFlight < 1 || *timeout <= 0 {
		return errors.New("sim load: --max-tokens, --max-in-flight and --timeout must be positive")
	}
	rep, err := sim.RunLoad(ctx, *url, *rate, *duration, &sim.LoadOptions{
		Model: *model, MaxTokens: *maxTokens, Seed: *seed, Timeout: *timeout, MaxInFlight: *maxInFlight,
	})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
