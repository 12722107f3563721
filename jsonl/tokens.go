package jsonl

import (
	"errors"
	"strconv"
)

// TokenFields names, per endpoint in normal form, the body members that bound how
// many tokens a request generates, and the one a default is added as. Endpoints that
// generate no text have none.
var TokenFields = map[string]struct {
	Fields []string
	Add    string
}{
	"/v1/chat/completions": {[]string{"max_tokens", "max_completion_tokens"}, "max_tokens"},
	"/v1/completions":      {[]string{"max_tokens"}, "max_tokens"},
	"/v1/responses":        {[]string{"max_output_tokens"}, "max_output_tokens"},
}

// LimitTokens bounds the tokens a request body may generate: each of the members
// fields (top level) that is a number above ceiling is set to ceiling, and when none
// is there, add is inserted with def. A zero def or ceiling leaves that part out. It
// returns the body (body itself when nothing changed) and the limit in force, 0 when
// none. A member that is not a number (null, say) is left to the upstream to judge.
func LimitTokens(body []byte, fields []string, add string, def, ceiling int) ([]byte, int, error) {
	obj, ok := openObject(body)
	if !ok {
		return nil, 0, errors.New("jsonl: limit tokens: body is not a JSON object")
	}
	type span struct{ a, b int }
	var over []span
	found, limit := false, 0
	for key, a, b, ok := obj.next(); ok; key, a, b, ok = obj.next() {
		name := string(memberName(key))
		match := false
		for _, f := range fields {
			match = match || name == f
		}
		if !match {
			continue
		}
		found = true
		n, err := strconv.ParseFloat(string(body[a:b]), 64)
		if err != nil {
			continue
		}
		v := int(n)
		if ceiling > 0 && v > ceiling {
			over = append(over, span{a, b})
			v = ceiling
		}
		if limit == 0 || v < limit {
			limit = v
		}
	}
	if obj.bad {
		return nil, 0, errors.New("jsonl: limit tokens: body is not valid JSON")
	}
	switch {
	case !found && def > 0 && add != "":
		v := def
		if ceiling > 0 {
			v = min(v, ceiling)
		}
		out := make([]byte, 0, len(body)+len(add)+24)
		out = append(out, body[:obj.open+1]...)
		out = appendString(out, add)
		out = append(out, ':')
		out = strconv.AppendInt(out, int64(v), 10)
		if obj.members > 0 {
			out = append(out, ',')
		}
		return append(out, body[obj.open+1:]...), v, nil
	case len(over) == 0:
		return body, limit, nil
	}
	out := make([]byte, 0, len(body)+8)
	prev := 0
	for _, sp := range over {
		out = append(out, body[prev:sp.a]...)
		out = strconv.AppendInt(out, int64(ceiling), 10)
		prev = sp.b
	}
	return append(out, body[prev:]...), limit, nil
}
