// Package sim is Sluice's built-in simulated OpenAI-compatible inference server: the
// zero-config default upstream, the upstream of tests, and the one benchmarks run
// against.
//
// # Routes
//
// A Server answers POST /v1/chat/completions, /v1/completions and /v1/embeddings,
// GET /v1/models, /v1/models/{model} and /healthz. Every route is served with and
// without the /v1 prefix, under /openai/v1/, and under /openai/deployments/{deployment}/
// for Azure-style clients, where the deployment is the model when the body names none.
// Credentials and query parameters such as api-version are ignored. Other paths answer
// 404, other methods 405, and malformed bodies 400, each with an OpenAI error body whose
// param and code are null unless set. Every answer carries a unique x-request-id header.
// Streaming is not supported.
//
// # Honest answers
//
// The text of a reply is a deterministic function of the prompt: the messages' roles and
// text for chat, the prompt for completions. It is words drawn from a fixed list by a
// generator seeded with an FNV-64a hash of the prompt, so the same prompt gets the same
// reply on any Server and a different prompt almost surely a different one. With n > 1,
// choice 0 is the reply n = 1 gets and each other choice is drawn on its own.
//
// Usage is counted with CountTokens. A chat prompt costs CountTokens of each message's
// text plus 3 tokens per message; a completions prompt or an embeddings input costs
// CountTokens of its text, or its length when given as token ids. A reply has a natural
// length drawn from the prompt hash between 5 and Options.MaxTokens tokens, and is cut at
// the request's budget (max_completion_tokens, else max_tokens, else Options.MaxTokens)
// when that is shorter: finish_reason is "length" then, and "stop" otherwise.
// completion_tokens is always CountTokens of the text returned, summed over the choices.
// Embeddings are unit vectors drawn from the hash of each input.
//
// # Timing and faults
//
// A completion request first takes a slot under Options.MaxConcurrency (else 429), then
// draws its faults (see Options), then waits Options.Latency plus its completion tokens
// divided by Options.TokensPerSecond before it answers; a request whose context ends
// while waiting gets no answer. Fault draws come from a PCG seeded with Options.Seed and
// the request's arrival number, so they take no lock and a run can be replayed. Stats
// counts what happened.
package sim
