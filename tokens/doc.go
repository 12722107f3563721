// Package tokens counts the tokens of OpenAI-style requests and responses: the prompt
// tokens of each line of a batch input file, counted at upload for the enqueued-token
// quota, and an estimate of the completion tokens of a response whose upstream returned
// no usage.
//
// Counts use OpenAI's tiktoken encodings through github.com/tiktoken-go/tokenizer and
// follow the rules of OpenAI's cookbook "How to count tokens with tiktoken", which it
// checked against the API. Where neither the cookbook nor OpenAI's documentation gives
// a rule, the estimate below is this package's choice.
//
// # Request: what is counted
//
// Every string is JSON-decoded (escapes resolved) before it is counted. Null counts as
// an absent field. Fields not named here are skipped, but must be valid JSON.
//
// /v1/chat/completions:
//   - Each message costs 3, plus the tokens of every string field of the message (role,
//     content, name, tool_call_id, refusal, and any other), plus 1 when name is set.
//   - content is a string or an array of parts: text and refusal parts count their
//     text; image_url parts count as images (below); input_audio and file parts count 0,
//     since their cost is not text and is not known before the upstream reads them.
//   - tool_calls count, per call, the tokens of the function's name and of its arguments
//     text (input for custom tools); a legacy function_call counts the same way.
//   - The request costs 3 more for the priming of the reply.
//   - tools and legacy functions follow the cookbook's num_tokens_for_tools: each
//     function costs 7 (o200k_base) or 10 (other encodings) plus the tokens of
//     "name:description" with any final period dropped; a function whose parameters
//     have properties costs 3 more, and each property 3 plus the tokens of
//     "name:type:description"; a property with an enum costs -3 plus, per value, 3 and
//     its tokens; a non-empty list costs 12 once. Schema keywords the cookbook does not
//     render (items, nested properties, anyOf, $defs, format, ...) add the tokens of
//     "keyword:" and the compact JSON of their value. Tools that are not functions, such
//     as Responses' built-in web_search, count 0.
//   - response_format with a json_schema costs the tokens of the compact JSON of its
//     schema.
//
// /v1/completions: prompt, which is a string, an array of strings (their tokens added),
// an array of token ids (its length) or an array of arrays of token ids (their lengths
// added), and suffix.
//
// /v1/embeddings: input, of the same shapes as prompt.
//
// /v1/moderations: input, a string, an array of strings, or an array of parts as in
// chat (text counted, image_url parts as images).
//
// /v1/images/generations and /v1/videos: prompt.
//
// /v1/images/edits: prompt, and each image of images (objects with image_url or
// file_id), of the older single image, and mask, as an image.
//
// Each endpoint but /v1/responses requires a field, as OpenAI's API reference marks
// it, and a body without it (or with it null) is an error: messages (chat), prompt
// (completions, image generations, videos), input (embeddings, moderations), prompt
// and images or image (image edits). A Responses request may name a stored prompt or
// a previous response instead of an input.
//
// /v1/responses:
//   - instructions count as a system message: 3 plus the tokens of "system" and of the
//     text. An input string counts as a user message: 3 plus the tokens of "user" and
//     of the text.
//   - Each input item costs 3 plus: for a message, its role and content (a string or
//     parts as in chat: input_text, output_text and refusal parts count their text,
//     input_image parts count as images, input_file and input_audio parts count 0); for
//     a function_call or custom_tool_call, its name and arguments or input; for their
//     outputs, output (a string, or parts). Other items (reasoning, item_reference, ...)
//     count 0.
//   - tools count as in chat (Responses' flat function shape is understood), text.format
//     with a json_schema as response_format, and the reply priming 3.
//
// Images follow OpenAI's vision pricing: detail "low" costs 85. Otherwise ("high",
// "auto", or none) the image is scaled to fit in 2048x2048, then so that its shortest
// side is 768 (never up), and costs 85 plus 170 per 512-pixel tile. The size is read
// from the header of a base64 data URL in PNG, JPEG or GIF. An image whose size is not
// known (a remote URL, a file id, WebP or another format, an unreadable header) is
// assumed to be 1024x1024: 765 tokens. Image data is never tokenized as text.
//
// # Output: what is counted
//
// Output adds up the tokens of the generated text: for chat, choices[].message content
// (a string or parts), refusal, tool_calls function name and arguments, function_call,
// and reasoning_content (sent by some self-hosted servers); for completions,
// choices[].text; for responses, output[] message content text and refusals,
// function_call and custom_tool_call name and arguments or input, and reasoning summary
// text. Embeddings count 0. Formatting tokens and hidden reasoning tokens are not
// counted, so Output underestimates slightly what an upstream would report.
//
// # Speed and memory
//
// The library tokenizes at roughly 8 MB/s per core, most of it in its regexp engine,
// which splits text into pieces (words with their leading space, runs of digits,
// punctuation or spaces) before it encodes each piece. A Counter splits ASCII text
// itself, with plain Go that follows what the library's split regexps match, quirks
// included, and counts each piece once: a lock-free table of 65,536 pieces (2 MiB)
// holds their counts, so a word seen before costs a map-like lookup and no allocation,
// and only new pieces reach the library. A piece of up to fifteen bytes is looked up
// first in a table of 16,384 such pieces (256 KiB), where the piece and its count fit
// in two atomic 64-bit words: two loads and one comparison.
//
// In o200k_base and cl100k_base, ASCII prose is split 64 bytes at a time: each byte is
// classed (letter, upper-case, digit, space, punctuation, or none of these) into one
// bitmask a class, with AVX2 where the processor has it and eight bytes to a word
// otherwise, and where the pieces start follows from the masks with shifts and logical
// operations (the rules are in block.go); the pieces of the block are then looked up one
// after another, none waiting on the end of the one before. A byte in no class (a
// newline, a tab, an apostrophe, DEL) stops a block, and the pieces around it are found
// one by one; p50k_base and r50k_base are always split so. Text that is not ASCII is
// cut where the split regexp always cuts (before a space followed by anything but white
// space, before a digit after punctuation or a letter, and, but in p50k_base, after a
// newline), so it comes in segments of about a word, and only the segments that hold
// bytes from 0x80 go to the library whole, cached like pieces. Counts are the library's:
// tests compare the split with the library's regexps, the block split with the one by
// one, and the counts with the library's own, on fuzzed and generated text. Generated
// text from a vocabulary of a few dozen words counts at about 360 MB/s per core in
// English, 150 in French and 180 in Korean; technical manuals, with more distinct words,
// at 30 to 70; text of words never seen before, and text without spaces such as
// Japanese, at about the library's speed.
//
// A Counter also caches the count of every string of 8 bytes or more that it sees a
// second time, and of whole tools lists and json_schema schemas by their raw JSON, so
// text repeated across a batch's lines, such as a system prompt, few-shot examples or
// tool definitions, costs two hashes and a lookup; the JSON is walked in place, without
// decoding it into values. That cache is keyed by a 128-bit hash of the text, so it
// never holds the text itself, in a lock-free table of 16,384 counts (512 KiB). A
// string seen once is only noted, by its first hash, which is all that a batch's many
// unique strings cost it, and takes the place of a count kept only in a bucket whose
// two slots both hold one. A Counter's caches so take about 2.8 MiB whatever it counts,
// allocated once.
package tokens
