package sim

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// minOutputTokens is the least max_output_tokens the Responses API accepts.
const minOutputTokens = 16

type responseRequest struct {
	Model              string          `json:"model"`
	Input              json.RawMessage `json:"input"`
	Instructions       *string         `json:"instructions"`
	MaxOutputTokens    int             `json:"max_output_tokens"`
	MaxToolCalls       *int            `json:"max_tool_calls"`
	Stream             bool            `json:"stream"`
	Background         bool            `json:"background"`
	PreviousResponseID string          `json:"previous_response_id"`
	Conversation       json.RawMessage `json:"conversation"`
	Prompt             json.RawMessage `json:"prompt"`
	Temperature        *float64        `json:"temperature"`
	TopP               *float64        `json:"top_p"`
	TopLogprobs        *int            `json:"top_logprobs"`
	Text               struct {
		Format    json.RawMessage `json:"format"`
		Verbosity string          `json:"verbosity"`
	} `json:"text"`
	Tools             json.RawMessage `json:"tools"`
	ToolChoice        json.RawMessage `json:"tool_choice"`
	ParallelToolCalls *bool           `json:"parallel_tool_calls"`
	Metadata          json.RawMessage `json:"metadata"`
	Reasoning         json.RawMessage `json:"reasoning"`
	Store             *bool           `json:"store"`
	Truncation        string          `json:"truncation"`
	ServiceTier       string          `json:"service_tier"`
	User              *string         `json:"user"`
	PromptCacheKey    *string         `json:"prompt_cache_key"`
	SafetyIdentifier  *string         `json:"safety_identifier"`
}

// responseItem is one item of a Responses input: a message (a role, with or without
// type "message"), a tool call or its output, or another item the simulator reads only
// the type of.
type responseItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Input     json.RawMessage `json:"input"`
	Output    json.RawMessage `json:"output"`
}

// responseInput is what the simulator reads of a Responses request's instructions and
// input: the hash its reply is drawn from, and its input tokens.
type responseInput struct {
	hash   uint64
	tokens int
}

// message folds a message of role and text in, as chat folds each of its messages, so
// the same conversation hashes alike on both routes.
func (in *responseInput) message(role, text string) {
	in.hash = foldMessage(in.hash, role, text)
	in.tokens += CountTokens(text) + overheadPerMsg
}

// call folds in a tool call: its name and its arguments (or input).
func (in *responseInput) call(typ, name, args string) {
	in.hash = foldMessage(in.hash, typ, name+"\x00"+args)
	in.tokens += CountTokens(name) + CountTokens(args) + overheadPerMsg
}

// parseResponseInput reads instructions and input: a string, which is one user message,
// or an array of items.
func parseResponseInput(instructions *string, raw json.RawMessage) (responseInput, *apiError) {
	in := responseInput{hash: fnvOffset}
	if instructions != nil {
		in.message("system", *instructions)
	}
	if isNull(raw) {
		return in, invalid("input", "Missing required parameter: 'input'. The simulator keeps no stored prompts or previous responses, so every request needs an input.")
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return in, invalid("input", "Invalid 'input': expected a string or an array of input items.")
		}
		in.message("user", s)
		return in, nil
	case '[':
	default:
		return in, invalid("input", "Invalid type for 'input': expected a string or an array of input items.")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return in, invalid("input", "Invalid 'input': expected a string or an array of input items.")
	}
	if len(items) == 0 {
		return in, invalid("input", "Invalid 'input': empty array. Expected an array with at least one item.")
	}
	for i, rawItem := range items {
		param := "input[" + strconv.Itoa(i) + "]"
		var it responseItem
		if len(rawItem) == 0 || rawItem[0] != '{' || json.Unmarshal(rawItem, &it) != nil {
			return in, invalid(param, "Invalid '"+param+"': expected an input item, an object.")
		}
		switch {
		case it.Type == "message" || it.Type == "" && it.Role != "":
			switch it.Role {
			case "user", "assistant", "system", "developer":
			case "":
				return in, invalid(param+".role", "Missing required parameter: '"+param+".role'.")
			default:
				return in, invalid(param+".role", "Invalid value: '"+it.Role+"'. Supported values are: 'user', 'assistant', 'system', and 'developer'.")
			}
			text, e := partsText(it.Content, param+".content", true)
			if e != nil {
				return in, e
			}
			in.message(it.Role, text)
		case it.Type == "":
			return in, invalid(param, "Invalid '"+param+"': an input item needs a type, or a role for a message.")
		case it.Type == "function_call":
			in.call(it.Type, it.Name, it.Arguments)
		case it.Type == "custom_tool_call":
			input, e := partsText(it.Input, param+".input", false)
			if e != nil {
				return in, e
			}
			in.call(it.Type, it.Name, input)
		case strings.HasSuffix(it.Type, "_call_output"):
			out, e := partsText(it.Output, param+".output", false)
			if e != nil {
				return in, e
			}
			in.message(it.Type, out)
		default: // reasoning, item_reference, built-in tool calls: no text the simulator reads
			in.hash = fnvString(in.hash, it.Type)
		}
	}
	return in, nil
}

// partsText returns the text of a content field: a string, or an array of content parts
// whose input_text, output_text and text parts (and refusal parts' refusal) are joined
// with newlines. Other parts, such as images and files, carry no text. A missing
// content is an error when required.
func partsText(raw json.RawMessage, param string, required bool) (string, *apiError) {
	if isNull(raw) {
		if required {
			return "", invalid(param, "Missing required parameter: '"+param+"'.")
		}
		return "", nil
	}
	bad := invalid(param, "Invalid type for '"+param+"': expected a string or an array of content parts.")
	switch raw[0] {
	case '"':
		if s, ok := plainString(raw); ok {
			return s, nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", bad
		}
		return s, nil
	case '[':
	default:
		return "", bad
	}
	var parts []struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Refusal string `json:"refusal"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", invalid(param, "Invalid '"+param+"': each content part must be an object with a type.")
	}
	var sb strings.Builder
	for j, p := range parts {
		var t string
		switch p.Type {
		case "input_text", "output_text", "text":
			t = p.Text
		case "refusal":
			t = p.Refusal
		case "":
			pp := param + "[" + strconv.Itoa(j) + "].type"
			return "", invalid(pp, "Missing required parameter: '"+pp+"'.")
		default:
			continue
		}
		if sb.Len() > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString(t)
	}
	return sb.String(), nil
}

// isNull reports whether a raw field is absent or null.
func isNull(raw json.RawMessage) bool { return len(raw) == 0 || raw[0] == 'n' }

// validate checks the parameters of a Responses request the simulator echoes or
// refuses, in the order OpenAI's API would name them.
func (req *responseRequest) validate() *apiError {
	if req.Stream {
		return errStream()
	}
	if req.Background {
		return invalid("background", "background is not supported by the simulator: it answers every request at once.")
	}
	if req.PreviousResponseID != "" {
		return &apiError{status: 400, typ: "invalid_request_error", param: "previous_response_id", code: "previous_response_not_found",
			message: "Previous response with id '" + req.PreviousResponseID + "' not found. The simulator stores no responses."}
	}
	if !isNull(req.Conversation) {
		return invalid("conversation", "conversation is not supported by the simulator: it stores no conversations.")
	}
	if !isNull(req.Prompt) {
		return invalid("prompt", "prompt is not supported by the simulator: it stores no prompt templates. Send the text as input.")
	}
	if req.MaxOutputTokens != unset && req.MaxOutputTokens < minOutputTokens {
		return &apiError{status: 400, typ: "invalid_request_error", param: "max_output_tokens", code: "integer_below_min_value",
			message: "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got " + strconv.Itoa(req.MaxOutputTokens) + " instead."}
	}
	if t := req.Temperature; t != nil && !(*t >= 0 && *t <= 2) {
		return invalid("temperature", "Invalid 'temperature': it must be between 0 and 2.")
	}
	if p := req.TopP; p != nil && !(*p >= 0 && *p <= 1) {
		return invalid("top_p", "Invalid 'top_p': it must be between 0 and 1.")
	}
	if n := req.TopLogprobs; n != nil && (*n < 0 || *n > 20) {
		return invalid("top_logprobs", "Invalid 'top_logprobs': it must be between 0 and 20.")
	}
	if n := req.MaxToolCalls; n != nil && *n < 1 {
		return invalid("max_tool_calls", "Invalid 'max_tool_calls': it must be at least 1.")
	}
	switch req.Truncation {
	case "", "auto", "disabled":
	default:
		return invalid("truncation", "Invalid value: '"+req.Truncation+"'. Supported values are: 'auto' and 'disabled'.")
	}
	switch req.Text.Verbosity {
	case "", "low", "medium", "high":
	default:
		return invalid("text.verbosity", "Invalid value: '"+req.Text.Verbosity+"'. Supported values are: 'low', 'medium', and 'high'.")
	}
	if e := checkFormat(req.Text.Format); e != nil {
		return e
	}
	if !isNull(req.Tools) && req.Tools[0] != '[' {
		return invalid("tools", "Invalid type for 'tools': expected an array.")
	}
	if !isNull(req.ToolChoice) {
		switch req.ToolChoice[0] {
		case '{':
		case '"':
			switch string(req.ToolChoice) {
			case `"none"`, `"auto"`, `"required"`:
			default:
				return invalid("tool_choice", "Invalid value for 'tool_choice': expected 'none', 'auto', 'required', or an object.")
			}
		default:
			return invalid("tool_choice", "Invalid type for 'tool_choice': expected a string or an object.")
		}
	}
	if !isNull(req.Metadata) && req.Metadata[0] != '{' {
		return invalid("metadata", "Invalid type for 'metadata': expected an object.")
	}
	if !isNull(req.Reasoning) && req.Reasoning[0] != '{' {
		return invalid("reasoning", "Invalid type for 'reasoning': expected an object.")
	}
	return nil
}

// checkFormat checks text.format: text, json_object, or json_schema with a name and a
// schema.
func checkFormat(raw json.RawMessage) *apiError {
	if isNull(raw) {
		return nil
	}
	var f struct {
		Type   string          `json:"type"`
		Name   *string         `json:"name"`
		Schema json.RawMessage `json:"schema"`
	}
	if raw[0] != '{' || json.Unmarshal(raw, &f) != nil {
		return invalid("text.format", "Invalid type for 'text.format': expected an object with a type.")
	}
	switch f.Type {
	case "text", "json_object":
	case "json_schema":
		if f.Name == nil || *f.Name == "" {
			return invalid("text.format.name", "Missing required parameter: 'text.format.name'.")
		}
		if isNull(f.Schema) {
			return invalid("text.format.schema", "Missing required parameter: 'text.format.schema'.")
		}
		if f.Schema[0] != '{' {
			return invalid("text.format.schema", "Invalid type for 'text.format.schema': expected an object.")
		}
	case "":
		return invalid("text.format.type", "Missing required parameter: 'text.format.type'.")
	default:
		return invalid("text.format.type", "Invalid value: '"+f.Type+"'. Supported values are: 'text', 'json_object', and 'json_schema'.")
	}
	return nil
}

// response appends the response object answering a Responses body to b and returns it
// with the number of output tokens. Its one output message is the reply chat gives the
// same conversation; a reply cut at max_output_tokens leaves the response incomplete.
func (s *Server) response(b, body []byte, model, id string) ([]byte, int, *apiError) {
	req := responseRequest{MaxOutputTokens: unset}
	if e := decode(body, &req); e != nil {
		return b, 0, e
	}
	if e := req.validate(); e != nil {
		return b, 0, e
	}
	in, e := parseResponseInput(req.Instructions, req.Input)
	if e != nil {
		return b, 0, e
	}
	budget := s.maxTokens
	if req.MaxOutputTokens != unset {
		budget = req.MaxOutputTokens
	}
	if req.Model != "" {
		model = req.Model
	}

	now := time.Now()
	b = append(b, `{"id":"resp_`...)
	b = append(b, id...)
	b = append(b, `","object":"response","created_at":`...)
	b = strconv.AppendInt(b, now.Unix(), 10)
	b = append(b, `,"error":null,"instructions":`...)
	if req.Instructions != nil {
		b = appendString(b, *req.Instructions)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"max_output_tokens":`...)
	b = appendOptInt(b, req.MaxOutputTokens != unset, req.MaxOutputTokens)
	b = append(b, `,"max_tool_calls":`...)
	b = appendOptInt(b, req.MaxToolCalls != nil, deref(req.MaxToolCalls))
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	b = append(b, `,"output":[{"id":"msg_`...)
	b = appendHex64(b, mix64(fnvString(fnvOffset, id)))
	b = append(b, id...)
	b = append(b, `","type":"message","role":"assistant","content":[{"type":"output_text","annotations":[],"logprobs":[],"text":"`...)
	var p rand.PCG
	seedStream(&p, in.hash, 0)
	b, output, cut := generate(b, &p, budget, s.maxTokens) // plain ASCII words: no escaping needed
	// The status follows the output it depends on; JSON members have no order.
	if cut {
		b = append(b, `"}],"status":"incomplete"}],"status":"incomplete","background":false,"completed_at":null,"incomplete_details":{"reason":"max_output_tokens"}`...)
	} else {
		b = append(b, `"}],"status":"completed"}],"status":"completed","background":false,"completed_at":`...)
		b = strconv.AppendInt(b, now.Add(s.delay(output)).Unix(), 10)
		b = append(b, `,"incomplete_details":null`...)
	}
	b = append(b, `,"parallel_tool_calls":`...)
	b = strconv.AppendBool(b, req.ParallelToolCalls == nil || *req.ParallelToolCalls)
	b = append(b, `,"previous_response_id":null,"prompt_cache_key":`...)
	b = appendOptString(b, req.PromptCacheKey)
	b = append(b, `,"reasoning":`...)
	b = appendRaw(b, req.Reasoning, `{"effort":null,"summary":null}`)
	b = append(b, `,"safety_identifier":`...)
	b = appendOptString(b, req.SafetyIdentifier)
	b = append(b, `,"service_tier":`...)
	if req.ServiceTier == "" || req.ServiceTier == "auto" {
		b = append(b, `"default"`...)
	} else {
		b = appendString(b, req.ServiceTier)
	}
	b = append(b, `,"store":`...)
	b = strconv.AppendBool(b, req.Store == nil || *req.Store)
	b = append(b, `,"temperature":`...)
	b = appendFloat(b, req.Temperature, 1)
	b = append(b, `,"text":{"format":`...)
	b = appendRaw(b, req.Text.Format, `{"type":"text"}`)
	b = append(b, `,"verbosity":`...)
	if req.Text.Verbosity == "" {
		b = append(b, `"medium"`...)
	} else {
		b = appendString(b, req.Text.Verbosity)
	}
	b = append(b, `},"tool_choice":`...)
	b = appendRaw(b, req.ToolChoice, `"auto"`)
	b = append(b, `,"tools":`...)
	b = appendRaw(b, req.Tools, `[]`)
	b = append(b, `,"top_logprobs":`...)
	b = appendInt(b, deref(req.TopLogprobs))
	b = append(b, `,"top_p":`...)
	b = appendFloat(b, req.TopP, 1)
	b = append(b, `,"truncation":`...)
	if req.Truncation == "" {
		b = append(b, `"disabled"`...)
	} else {
		b = appendString(b, req.Truncation)
	}
	if !s.noUsage {
		b = append(b, `,"usage":{"input_tokens":`...)
		b = appendInt(b, in.tokens)
		b = append(b, `,"input_tokens_details":{"cached_tokens":0,"cache_write_tokens":0},"output_tokens":`...)
		b = appendInt(b, output)
		b = append(b, `,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":`...)
		b = appendInt(b, in.tokens+output)
		b = append(b, '}')
	}
	b = append(b, `,"user":`...)
	b = appendOptString(b, req.User)
	b = append(b, `,"metadata":`...)
	b = appendRaw(b, req.Metadata, `{}`)
	b = append(b, "}\n"...)
	return b, output, nil
}

// appendRaw appends the JSON value raw, compacted, or def when raw is absent or null.
// raw was checked by encoding/json, so it is valid.
func appendRaw(b []byte, raw json.RawMessage, def string) []byte {
	if isNull(raw) {
		return append(b, def...)
	}
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return append(b, def...)
	}
	return buf.Bytes()
}

// appendOptInt appends n, or null when it is not set.
func appendOptInt(b []byte, set bool, n int) []byte {
	if !set {
		return append(b, "null"...)
	}
	return appendInt(b, n)
}

// appendOptString appends *s, or null when s is nil.
func appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return appendString(b, *s)
}

// appendFloat appends *v, or def when v is nil.
func appendFloat(b []byte, v *float64, def float64) []byte {
	if v != nil {
		def = *v
	}
	return strconv.AppendFloat(b, def, 'g', -1, 64)
}

// appendHex64 appends v as 16 lower-case hex digits.
func appendHex64(b []byte, v uint64) []byte {
	const hexDigits = "0123456789abcdef"
	for i := 60; i >= 0; i -= 4 {
		b = append(b, hexDigits[v>>uint(i)&0xf])
	}
	return b
}

func deref(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}
