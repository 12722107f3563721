package jsonl

// PromptPrefix returns the raw bytes of the part of a request line's prompt that other
// lines may share and an upstream's prefix cache may keep: for chat, its leading system
// and developer messages; for responses, its instructions. It returns nil when the line
// has none. It is on the hot path, so it reads only as far as it must: the members
// before the body's, the body's before its messages, and the leading messages, never
// the rest of the prompt. Like DispatchBody it does not validate the line again, and
// never panics on malformed input.
func PromptPrefix(line []byte) []byte {
	body, ok := memberStart(line, skipSpace(line, 0), func(name []byte) bool { return string(name) == "body" })
	if !ok {
		return nil
	}
	var name []byte
	i, ok := memberStart(line, body, func(n []byte) bool {
		name = n
		return string(n) == "messages" || string(n) == "instructions"
	})
	if !ok {
		return nil
	}
	if string(name) == "instructions" {
		if e := skipValue(line, i); e > 0 && line[i] == '"' {
			return line[i:e]
		}
		return nil
	}
	if line[i] != '[' {
		return nil
	}
	from, end := i, 0
	for i = skipSpace(line, i+1); i < len(line) && line[i] == '{'; {
		e := skipValue(line, i)
		if e < 0 {
			break
		}
		role, _ := stringBytes(topMember(line[i:e], "role"))
		if string(role) != "system" && string(role) != "developer" {
			break
		}
		end = e
		i = skipSpace(line, e)
		if i >= len(line) || line[i] != ',' {
			break
		}
		i = skipSpace(line, i+1)
	}
	if end == 0 {
		return nil
	}
	return line[from:end]
}

// memberStart returns where the value of the first member of the object at d[open]
// whose name want accepts begins, skipping the values of the members before it only.
func memberStart(d []byte, open int, want func(name []byte) bool) (int, bool) {
	if open >= len(d) || d[open] != '{' {
		return 0, false
	}
	i := skipSpace(d, open+1)
	for i < len(d) && d[i] == '"' {
		ke := skipString(d, i)
		if ke < 0 {
			return 0, false
		}
		key := d[i:ke]
		i = skipSpace(d, ke)
		if i >= len(d) || d[i] != ':' {
			return 0, false
		}
		start := skipSpace(d, i+1)
		if start >= len(d) {
			return 0, false
		}
		if want(memberName(key)) {
			return start, true
		}
		end := skipValue(d, start)
		if end < 0 {
			return 0, false
		}
		i = skipSpace(d, end)
		if i >= len(d) || d[i] != ',' {
			return 0, false
		}
		i = skipSpace(d, i+1)
	}
	return 0, false
}
