package sim

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"time"
)

// Defaults applied by New to zero fields of Options.
const (
	// DefaultMaxTokens is the completion budget when neither the request nor
	// Options.MaxTokens sets one.
	DefaultMaxTokens = 16
	// DefaultModel is the model id /v1/models lists when Options.Model is empty.
	DefaultModel = "sim"
	// DefaultRetryAfter is the Retry-After sent with simulated 429s when
	// Options.RetryAfter is zero.
	DefaultRetryAfter = time.Second
)

// Options configures the simulator. The zero value is a fast, faultless server.
//
// Faults are drawn once per inference request, in this order: reset, hang, 429, 500.
// Each rate is the probability of its fault among the requests that reached its check,
// so with ResetRate 0.5 and FailRate 1 half the requests are reset and the other half
// answered 500.
type Options struct {
	Latency         time.Duration // fixed delay before each answer (time to first token)
	TokensPerSecond float64       // generation speed per request; 0 = no generation delay
	MaxConcurrency  int           // requests in flight at most; above it answer 429 with Retry-After; 0 = unlimited
	RetryAfter      time.Duration // Retry-After sent with simulated 429s (rounded up to whole seconds, at least 1); default 1s
	FailRate        float64       // probability [0,1] of answering 500 with an OpenAI error body
	RateLimitRate   float64       // probability of answering 429 with Retry-After
	HangRate        float64       // probability of never answering (until the client gives up / request context ends)
	ResetRate       float64       // probability of closing the TCP connection abruptly (hijack; SetLinger(0) on *net.TCPConn) without a response
	Seed            int64         // seed for the fault draws; 0 picks one from the clock
	MaxTokens       int           // completion length when the request sets no max_tokens; default 16
	Model           string        // model id listed by /v1/models; "" lists "sim"
	NoUsage         bool          // answer without a usage object, as some servers do

	// The shared-capacity model (doc.go, "Shared capacity"); off while Capacity is 0.
	Capacity   int     // requests served at once by all callers together; more wait in a FIFO queue; 0 = off
	Slowdown   float64 // with Capacity: share of a lone request's generation time each other request served adds; 0 = none
	QueueLimit int     // with Capacity: requests waiting at most; more answer 429 with Retry-After; 0 = no limit

	// The prefix cache: the prompts of the last PrefixCache distinct prefixes (a chat's
	// leading system and developer messages, a response's instructions) are kept, and a
	// request with a kept prefix waits PrefixSaving less of Latency. 0 = no cache.
	PrefixCache  int
	PrefixSaving float64 // share of Latency a cached prefix saves, in [0,1]; default 0.5
}

// RegisterFlags adds the knobs as flags: -latency, -tokens-per-second, -max-concurrency,
// -retry-after, -fail-rate, -rate-limit-rate, -hang-rate, -reset-rate, -seed,
// -max-tokens, -model, -no-usage, -capacity, -slowdown, -queue-limit, -prefix-cache,
// -prefix-saving. Each flag's default is the field's current value, or the
// default New would apply when the field is zero.
func (o *Options) RegisterFlags(fs *flag.FlagSet) {
	if o.RetryAfter == 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.MaxTokens == 0 {
		o.MaxTokens = DefaultMaxTokens
	}
	if o.Model == "" {
		o.Model = DefaultModel
	}
	fs.DurationVar(&o.Latency, "latency", o.Latency, "fixed delay before each simulated answer (time to first token)")
	fs.Float64Var(&o.TokensPerSecond, "tokens-per-second", o.TokensPerSecond, "simulated generation speed per request; 0 means no generation delay")
	fs.IntVar(&o.MaxConcurrency, "max-concurrency", o.MaxConcurrency, "requests in flight at most, above which the simulator answers 429; 0 means unlimited")
	fs.DurationVar(&o.RetryAfter, "retry-after", o.RetryAfter, "Retry-After sent with simulated 429s, rounded up to whole seconds")
	fs.Float64Var(&o.FailRate, "fail-rate", o.FailRate, "probability in [0,1] of answering 500")
	fs.Float64Var(&o.RateLimitRate, "rate-limit-rate", o.RateLimitRate, "probability in [0,1] of answering 429")
	fs.Float64Var(&o.HangRate, "hang-rate", o.HangRate, "probability in [0,1] of never answering until the client gives up")
	fs.Float64Var(&o.ResetRate, "reset-rate", o.ResetRate, "probability in [0,1] of resetting the TCP connection without an answer")
	fs.Int64Var(&o.Seed, "seed", o.Seed, "seed for the fault draws; 0 picks one from the clock")
	fs.IntVar(&o.MaxTokens, "max-tokens", o.MaxTokens, "completion length when a request sets no max_tokens")
	fs.StringVar(&o.Model, "model", o.Model, "model id listed by /v1/models")
	fs.BoolVar(&o.NoUsage, "no-usage", o.NoUsage, "answer without a usage object, as some servers do")
	fs.IntVar(&o.Capacity, "capacity", o.Capacity, "requests served at once by all callers together; more wait in a FIFO queue; 0 means no shared-capacity model")
	fs.Float64Var(&o.Slowdown, "slowdown", o.Slowdown, "with -capacity: share of a lone request's generation time that each other request served adds")
	fs.IntVar(&o.QueueLimit, "queue-limit", o.QueueLimit, "with -capacity: requests waiting at most, above which the simulator answers 429; 0 means no limit")
	fs.IntVar(&o.PrefixCache, "prefix-cache", o.PrefixCache, "prompt prefixes (leading system messages, instructions) kept in a simulated prefix cache; 0 means none")
	fs.Float64Var(&o.PrefixSaving, "prefix-saving", o.PrefixSaving, "with -prefix-cache: share of -latency a request with a cached prefix saves (default 0.5)")
}

// Validate returns an error naming the field when a rate is outside [0,1] or a number is
// negative, or when Slowdown or QueueLimit is set without Capacity. It reports every
// such field, joined. New does not call it: New treats a
// negative number as zero, and a rate above 1 as 1.
func (o Options) Validate() error {
	var errs []error
	rate := func(field, flag string, v float64) {
		if !(v >= 0 && v <= 1) { // also rejects NaN
			errs = append(errs, fmt.Errorf("sim: %s (-%s) is %v, want a probability in [0,1]", field, flag, v))
		}
	}
	rate("FailRate", "fail-rate", o.FailRate)
	rate("RateLimitRate", "rate-limit-rate", o.RateLimitRate)
	rate("HangRate", "hang-rate", o.HangRate)
	rate("ResetRate", "reset-rate", o.ResetRate)
	rate("PrefixSaving", "prefix-saving", o.PrefixSaving)
	negative := func(field, flag string, v any) {
		errs = append(errs, fmt.Errorf("sim: %s (-%s) is %v, want it not negative", field, flag, v))
	}
	if o.Latency < 0 {
		negative("Latency", "latency", o.Latency)
	}
	if o.TokensPerSecond < 0 || math.IsNaN(o.TokensPerSecond) {
		negative("TokensPerSecond", "tokens-per-second", o.TokensPerSecond)
	}
	if o.MaxConcurrency < 0 {
		negative("MaxConcurrency", "max-concurrency", o.MaxConcurrency)
	}
	if o.RetryAfter < 0 {
		negative("RetryAfter", "retry-after", o.RetryAfter)
	}
	if o.MaxTokens < 0 {
		negative("MaxTokens", "max-tokens", o.MaxTokens)
	}
	if o.Capacity < 0 {
		negative("Capacity", "capacity", o.Capacity)
	}
	if o.PrefixCache < 0 {
		negative("PrefixCache", "prefix-cache", o.PrefixCache)
	}
	if o.Slowdown < 0 || math.IsNaN(o.Slowdown) || math.IsInf(o.Slowdown, 1) {
		errs = append(errs, fmt.Errorf("sim: Slowdown (-slowdown) is %v, want a finite number not negative", o.Slowdown))
	}
	if o.QueueLimit < 0 {
		negative("QueueLimit", "queue-limit", o.QueueLimit)
	}
	if o.Capacity == 0 && (o.Slowdown != 0 || o.QueueLimit != 0) {
		errs = append(errs, errors.New("sim: Slowdown (-slowdown) and QueueLimit (-queue-limit) take effect only with Capacity (-capacity) set"))
	}
	return errors.Join(errs...)
}
