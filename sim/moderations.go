package sim

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// moderationCategories are the categories of a moderation result, in the order of the
// OpenAI spec. image says whether the category also applies to images.
var moderationCategories = [...]struct {
	name  string
	image bool
}{
	{"hate", false},
	{"hate/threatening", false},
	{"harassment", false},
	{"harassment/threatening", false},
	{"illicit", false},
	{"illicit/violent", false},
	{"self-harm", true},
	{"self-harm/intent", true},
	{"self-harm/instructions", true},
	{"sexual", true},
	{"sexual/minors", false},
	{"violence", true},
	{"violence/graphic", true},
}

// FlagMarker starts the marker that makes the moderations route flag a category: an
// input text that contains "[flag:violence]" is flagged for violence, with a score of at
// least 0.9. Any category name may follow the colon.
const FlagMarker = "[flag:"

// FlagThreshold is the score from which the moderations route flags a category. Scores
// of categories not marked with FlagMarker are below 0.01, so only marked ones reach it.
const FlagThreshold = 0.5

type moderationRequest struct {
	Model string          `json:"model"`
	Input json.RawMessage `json:"input"`
}

// moderationInput is what one result classifies: its text, the hash its scores are
// drawn from, and the kinds of input it has.
type moderationInput struct {
	text     string
	hash     uint64
	hasText  bool
	hasImage bool
}

// parseModerationInput reads input: a string, an array of strings (one result each), or
// an array of text and image_url parts (one result for all).
func parseModerationInput(raw json.RawMessage) ([]moderationInput, *apiError) {
	bad := invalid("input", "Invalid type for 'input': expected a string, an array of strings, or an array of text and image_url parts.")
	if isNull(raw) {
		return nil, invalid("input", "Missing required parameter: 'input'.")
	}
	text := func(s string) moderationInput {
		return moderationInput{text: s, hash: fnvString(fnvOffset, s), hasText: true}
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, bad
		}
		return []moderationInput{text(s)}, nil
	case '[':
	default:
		return nil, bad
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, bad
	}
	if len(items) == 0 {
		return nil, invalid("input", "Invalid 'input': empty array. Expected an array with at least one item.")
	}
	if len(items) > maxInputs {
		return nil, invalid("input", "Invalid 'input': at most 2048 inputs are allowed.")
	}
	if items[0][0] == '"' {
		out := make([]moderationInput, len(items))
		for i, it := range items {
			var s string
			if it[0] != '"' || json.Unmarshal(it, &s) != nil {
				return nil, bad
			}
			out[i] = text(s)
		}
		return out, nil
	}
	in := moderationInput{hash: fnvOffset}
	var sb strings.Builder
	for i, it := range items {
		param := "input[" + strconv.Itoa(i) + "]"
		var p struct {
			Type     string  `json:"type"`
			Text     *string `json:"text"`
			ImageURL *struct {
				URL *string `json:"url"`
			} `json:"image_url"`
		}
		if it[0] != '{' || json.Unmarshal(it, &p) != nil {
			return nil, bad
		}
		switch p.Type {
		case "text":
			if p.Text == nil {
				return nil, invalid(param+".text", "Missing required parameter: '"+param+".text'.")
			}
			if in.hasText {
				sb.WriteByte('\n')
			}
			sb.WriteString(*p.Text)
			in.hasText = true
			in.hash = foldMessage(in.hash, p.Type, *p.Text)
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == nil {
				return nil, invalid(param+".image_url", "Missing required parameter: '"+param+".image_url.url'.")
			}
			in.hasImage = true
			in.hash = foldMessage(in.hash, p.Type, *p.ImageURL.URL)
		case "":
			return nil, invalid(param+".type", "Missing required parameter: '"+param+".type'.")
		default:
			return nil, invalid(param+".type", "Invalid value: '"+p.Type+"'. Supported values are: 'text' and 'image_url'.")
		}
	}
	in.text = sb.String()
	return []moderationInput{in}, nil
}

// marked returns the categories text marks with FlagMarker, one bit each in the order
// of moderationCategories.
func marked(text string) uint32 {
	var bits uint32
	for {
		i := strings.Index(text, FlagMarker)
		if i < 0 {
			return bits
		}
		text = text[i+len(FlagMarker):]
		j := strings.IndexByte(text, ']')
		if j < 0 {
			return bits
		}
		for k, c := range moderationCategories {
			if text[:j] == c.name {
				bits |= 1 << k
			}
		}
		text = text[j+1:]
	}
}

// moderation appends the moderation answering body to b. Each category's score is drawn
// from the hash of its input: below 0.01 unless the text marks it with FlagMarker, and
// then at least 0.9. A category is flagged when its score reaches FlagThreshold.
// Moderation generates nothing, so it costs no generation time.
func (s *Server) moderation(b, body []byte, model, id string) ([]byte, int, *apiError) {
	var req moderationRequest
	if e := decode(body, &req); e != nil {
		return b, 0, e
	}
	inputs, e := parseModerationInput(req.Input)
	if e != nil {
		return b, 0, e
	}
	if req.Model != "" {
		model = req.Model
	}

	var scores [len(moderationCategories)]float64
	b = append(b, `{"id":"modr-`...)
	b = append(b, id...)
	b = append(b, `","model":`...)
	b = appendString(b, model)
	b = append(b, `,"results":[`...)
	for i, in := range inputs {
		if i > 0 {
			b = append(b, ',')
		}
		marks := marked(in.text)
		var p rand.PCG
		seedStream(&p, in.hash, 0)
		flagged := false
		for k := range scores {
			u := unit(p.Uint64())
			if marks&(1<<k) != 0 {
				scores[k] = 0.9 + 0.1*u
			} else {
				scores[k] = math.Pow(10, -2-5*u) // from 1e-7 to 1e-2
			}
			flagged = flagged || scores[k] >= FlagThreshold
		}
		b = append(b, `{"flagged":`...)
		b = strconv.AppendBool(b, flagged)
		b = append(b, `,"categories":{`...)
		for k, c := range moderationCategories {
			b = appendKey(b, k, c.name)
			b = strconv.AppendBool(b, scores[k] >= FlagThreshold)
		}
		b = append(b, `},"category_scores":{`...)
		for k, c := range moderationCategories {
			b = appendKey(b, k, c.name)
			b = strconv.AppendFloat(b, scores[k], 'g', -1, 64)
		}
		b = append(b, `},"category_applied_input_types":{`...)
		for k, c := range moderationCategories {
			b = appendKey(b, k, c.name)
			b = append(b, '[')
			if in.hasText {
				b = append(b, `"text"`...)
			}
			if in.hasImage && c.image {
				if in.hasText {
					b = append(b, ',')
				}
				b = append(b, `"image"`...)
			}
			b = append(b, ']')
		}
		b = append(b, "}}"...)
	}
	return append(b, "]}\n"...), 0, nil
}

// appendKey appends the k-th member's key of an object: a comma unless k is 0, the
// quoted name (which needs no escaping) and a colon.
func appendKey(b []byte, k int, name string) []byte {
	if k > 0 {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, name...)
	return append(b, `":`...)
}
