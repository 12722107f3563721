package jsonl

import (
	"github.com/sluice-batch/sluice"
)

// ParseUsage reads the usage an upstream reported in a response body: the top-level
// "usage" object, in the chat and completions form (prompt_tokens, completion_tokens,
// prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens) or
// the responses form (input_tokens, output_tokens, input_tokens_details.cached_tokens,
// output_tokens_details.reasoning_tokens). Embeddings report prompt tokens only. It
// reports false when the body has no usage object with an input or output count, so
// that the caller counts the tokens itself.
func ParseUsage(body []byte) (sluice.Usage, bool) {
	raw := topMember(body, "usage")
	o, ok := openObject(raw)
	if !ok {
		return sluice.Usage{}, false
	}
	var u sluice.Usage
	found := false
	for {
		key, start, end, ok := o.next()
		if !ok {
			break
		}
		v := raw[start:end]
		switch string(memberName(key)) {
		case "prompt_tokens", "input_tokens":
			if n, ok := count(v); ok {
				u.InputTokens, found = n, true
			}
		case "completion_tokens", "output_tokens":
			if n, ok := count(v); ok {
				u.OutputTokens, found = n, true
			}
		case "prompt_tokens_details", "input_tokens_details":
			u.CachedTokens = detail(v, "cached_tokens")
		case "completion_tokens_details", "output_tokens_details":
			u.ReasoningTokens = detail(v, "reasoning_tokens")
		}
	}
	u.CachedTokens = min(u.CachedTokens, u.InputTokens)
	u.ReasoningTokens = min(u.ReasoningTokens, u.OutputTokens)
	return u, found
}

// detail returns the count under name in the details object raw, or 0.
func detail(raw []byte, name string) int64 {
	n, _ := count(topMember(raw, name))
	return n
}

// count reads a token count: a JSON number that is a whole number from 0 to 2^53.
func count(raw []byte) (int64, bool) {
	if len(raw) == 0 || len(raw) > 16 {
		return 0, false
	}
	var n int64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= 1<<53
}

// Field returns the raw value of the top-level member name of the JSON object obj,
// or nil when obj is not an object or has no such member; the last one when the name
// repeats, as encoding/json takes it. It does not decode or copy anything, and does not
// check that obj is valid JSON.
func Field(obj []byte, name string) []byte { return topMember(obj, name) }

// Fields is Field for several names in one pass over obj: values[i] is set to the
// value of names[i], or nil.
func Fields(obj []byte, names []string, values [][]byte) {
	clear(values)
	o, ok := openObject(obj)
	if !ok {
		return
	}
	for {
		key, start, end, ok := o.next()
		if !ok {
			return
		}
		name := memberName(key)
		for i, n := range names {
			if string(name) == n {
				values[i] = obj[start:end]
			}
		}
	}
}

// topMember returns the value of the member name of the JSON object body, or nil; the
// last one when the name repeats, as encoding/json takes it. It looks only at the
// object's own members, not inside nested values.
func topMember(body []byte, name string) []byte {
	o, ok := openObject(body)
	if !ok {
		return nil
	}
	var found []byte
	for {
		key, start, end, ok := o.next()
		if !ok {
			return found
		}
		if string(memberName(key)) == name {
			found = body[start:end]
		}
	}
}
