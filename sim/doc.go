// Package sim is Sluice's built-in simulated OpenAI-compatible inference server: the
// zero-config default upstream, the upstream of tests, and the one benchmarks run
// against.
//
// # Routes
//
// A Server answers POST /v1/chat/completions, /v1/completions, /v1/embeddings,
// /v1/responses, /v1/moderations, /v1/images/generations, /v1/images/edits and
// /v1/videos (every endpoint a batch may use), and GET /v1/models, /v1/models/{model},
// /healthz, /stats and /metrics. Every route is served with and without the /v1 prefix, under
// /openai/v1/, and under /openai/deployments/{deployment}/ for Azure-style clients,
// where the deployment is the model when the body names none. Credentials and query
// parameters such as api-version are ignored. Other paths answer 404, other methods 405,
// and malformed bodies 400, each with an OpenAI error body whose param and code are null
// unless set. Every answer carries a unique x-request-id header. Streaming is not
// supported.
//
// # Honest answers
//
// The text of a reply is a deterministic function of the prompt: the messages' roles and
// text for chat and responses, the prompt for completions. It is words drawn from a
// fixed list by a generator seeded with an FNV-64a hash of the prompt, so the same prompt
// gets the same reply on any Server and a different prompt almost surely a different
// one. With n > 1, choice 0 is the reply n = 1 gets and each other choice is drawn on its
// own. Moderation scores and images are drawn from such hashes too; no answer depends on
// Options.Seed, which drives only the faults.
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
// # Responses
//
// A /v1/responses request is read as a chat conversation: instructions are a system
// message, an input string a user message, and each input item a message of its role
// whose text is its string content or its input_text, output_text and refusal parts
// joined with newlines (images, files and audio carry no text). A function_call or
// custom_tool_call item is a message of its name and arguments, a *_call_output item
// one of its output; other items (reasoning, item_reference, ...) add only their type to
// the hash and cost nothing. So the same conversation gets the same reply on both routes,
// and input_tokens count as chat's prompt_tokens do. The answer is a response object with
// one assistant message of one output_text part; max_output_tokens (at least 16, as
// OpenAI requires) cuts the reply as max_tokens does in chat, and then the response and
// its message are "incomplete" with incomplete_details.reason "max_output_tokens".
// completed_at is created_at plus the answer's wait (below). The request's settings
// (temperature, top_p, tools, tool_choice, text, metadata, store, ...) are echoed, or
// their defaults given; the reply is prose whatever text.format asks for, as chat's is
// whatever response_format asks for. The simulator stores nothing, so stream,
// background, previous_response_id, conversation and stored prompts are refused with a
// 400 naming the parameter.
//
// # Moderations
//
// A /v1/moderations input that is a string or an array of strings gets one result per
// string; an array of text and image_url parts gets one result for all of them. Every
// result has the full category set of OpenAI's spec. Each score is drawn from the hash
// of its input's text (and image URLs) and is below 0.01, so nothing is flagged, unless
// the text carries FlagMarker with the category's name, as in "[flag:violence]": that
// category then scores at least 0.9. A category is flagged when its score reaches
// FlagThreshold, and a result when any category is. category_applied_input_types lists
// "text" when the input has text, and "image" when it has an image and the category is
// one OpenAI scores images for. Moderations cost no generation time.
//
// # Images
//
// /v1/images/generations and /v1/images/edits take JSON bodies, as in a batch: a
// prompt, n from 1 to 10, and for an edit one to 16 images (images, an array of objects
// with image_url or file_id, or the older image) and an optional mask. Nothing is
// fetched: image URLs and file ids only feed the hash. Every image is 8x8 pixels of one
// colour drawn from the hash of the prompt (and of an edit's images and mask) and its
// index, whatever size is asked, so answers stay small and the same request gets the
// same images. It is a PNG, or a JPEG or lossless WebP when output_format asks. It comes
// as b64_json, or with response_format "url" as a data: URL, since the simulator has no
// file host to link to. Models named dall-e-* answer as DALL·E does: PNG, url by
// default, revised_prompt for dall-e-3, and no output_format, quality or usage; other
// models answer as the GPT image models do, with b64_json by default. Usage counts the
// prompt's tokens as text_tokens, 85 tokens per input image and mask as image_tokens,
// and a fixed cost per output image by quality, gpt-image-1's at 1024x1024: 272 for
// low, 4160 for high or hd, 1056 otherwise. The output tokens set the generation wait.
//
// # Videos
//
// A /v1/videos request (a JSON prompt, with optional model, seconds, size and
// input_reference) is answered with its video job, already completed: the answer waits
// for the clip, at 1000 tokens per second of it, and completed_at is created_at plus
// that wait. seconds is "4" unless set to 8, 12, 16 or 20, size "720x1280" unless set
// to another size Sora renders. The simulator renders nothing, so no content can be
// downloaded; expires_at is an hour after completed_at.
//
// # Timing and faults
//
// An inference request (a POST to any route but models, healthz, stats and metrics)
// first takes a slot under Options.MaxConcurrency (else 429), then draws its faults
// (see Options), then waits Options.Latency plus its generated tokens divided by
// Options.TokensPerSecond (with Capacity, see below) before it answers: completion or output tokens for text, the fixed costs above for
// images and videos, none for embeddings and moderations. A request whose context ends
// while waiting gets no answer. Fault draws come from a PCG seeded with Options.Seed and
// the request's arrival number, so they take no lock and a run can be replayed. Stats
// counts what happened.
//
// # Shared capacity
//
// Options.Capacity turns on a model of one inference server shared by every caller,
// batch and online alike, as vLLM, SGLang or Ollama serve: Capacity slots, each a
// request being served, and a FIFO queue in front of them. A request that finds every
// slot taken, or others waiting, waits its turn instead of being refused: there is no
// 429 or 503, however long the queue, unless Options.QueueLimit is set, and then a
// request that finds QueueLimit waiting is answered 429 with Retry-After. The wait
// comes after the fault draws and the reading of the body, so a malformed request is
// refused at once, as a real server's front end refuses it. Holding its slot, a
// request waits Options.Latency (time to first token, which does not grow with load),
// then generates its tokens, and gives the slot back as it answers.
//
// Generation slows as the server fills, as continuous batching does: each decoding
// step serves every running request, and a step takes longer the more requests it
// carries, so each request gets fewer tokens a second while the server's total grows
// toward a ceiling. Every running request generates at
//
//	TokensPerSecond / (1 + Slowdown × (running − 1))
//
// tokens a second, where running counts the slots taken (those still in their Latency
// too), and the speed changes the moment a request takes or gives back a slot. With
// Slowdown 0 a request takes Latency plus its tokens over TokensPerSecond, as without
// the model, and the server's rate is Capacity times one request's; with Slowdown s the
// total rate at full capacity C is TokensPerSecond × C / (1 + s(C − 1)), which tends to
// TokensPerSecond / s. Decoding is bound by memory reads, and a step reads the
// weights once and each running sequence's KV cache once, so its time grows linearly
// with the batch: a 7B model in 16 bits has 14 GB of weights and half a MiB of KV
// cache per token of context, so a step of 64 sequences of 550 tokens reads 2.3 times
// what a step of one does, which is Slowdown 0.02 at Capacity 64.
// Requests without generation time (embeddings, moderations, or TokensPerSecond 0)
// hold their slot for Latency alone. A request whose context ends gives back its slot,
// or its place in the queue. Nothing in the model is drawn at random: given the order
// in which requests arrive, their slots and times follow.
//
// # Stats and metrics
//
// The simulator reports what it served. GET /stats answers Stats as JSON, with the
// capacity and the answers to each inference route by status (Server.Answers), where
// "none" counts requests that got no answer. GET /metrics answers the same in
// Prometheus's text exposition format: sim_requests_total by route and status,
// sim_faults_total by kind, the gauges sim_requests_in_flight, sim_requests_running
// and sim_requests_waiting, and vLLM's vllm:num_requests_running and
// vllm:num_requests_waiting (labelled with model_name), so that code that protects
// online traffic by watching a vLLM server can be tested against the simulator.
// Without Capacity, every request in flight counts as running and none as waiting.
//
// # Load
//
// RunLoad is an online load generator: chat completions with Poisson arrivals at a
// given rate, open loop, with latency percentiles at the end (`sluice sim load`). With
// the shared-capacity model it stands in for the interactive users a batch must not
// crowd out.
package sim
