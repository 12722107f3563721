package harness

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// IDCheck checks result files: together they must hold one line for each of the
// custom_ids req-0 … req-(n-1), each exactly once, and nothing else.
type IDCheck struct {
	seen    []bool
	lines   int
	partial []byte // a line cut by the end of a Write

	dups, unknown, malformed int
	firstDup, firstUnknown   string
	firstMalformed           string
}

// NewIDCheck returns an IDCheck that expects req-0 … req-(n-1).
func NewIDCheck(n int) *IDCheck { return &IDCheck{seen: make([]bool, n)} }

// Line records one result line, without its newline. Blank lines are ignored.
func (c *IDCheck) Line(line []byte) {
	if len(bytes.TrimSpace(line)) == 0 {
		return
	}
	c.lines++
	id, err := CustomID(line)
	if err != nil {
		if c.malformed == 0 {
			c.firstMalformed = fmt.Sprintf("line %d: %v", c.lines, err)
		}
		c.malformed++
		return
	}
	i, ok := c.index(id)
	switch {
	case !ok:
		if c.unknown == 0 {
			c.firstUnknown = id
		}
		c.unknown++
	case c.seen[i]:
		if c.dups == 0 {
			c.firstDup = id
		}
		c.dups++
	default:
		c.seen[i] = true
	}
}

// index returns i for the custom_id req-i when i is in range and written plainly.
func (c *IDCheck) index(id string) (int, bool) {
	s, ok := strings.CutPrefix(id, "req-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(c.seen) || strconv.Itoa(i) != s {
		return 0, false
	}
	return i, true
}

// Write records the lines in p, so a result file can be copied into an IDCheck as it
// downloads. A line cut at the end of p is completed by the next Write; Close ends it.
func (c *IDCheck) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			c.partial = append(c.partial, p...)
			break
		}
		if len(c.partial) > 0 {
			c.partial = append(c.partial, p[:i]...)
			c.Line(c.partial)
			c.partial = c.partial[:0]
		} else {
			c.Line(p[:i])
		}
		p = p[i+1:]
	}
	return n, nil
}

// EndFile records a last line that had no newline. Call it after each file.
func (c *IDCheck) EndFile() {
	if len(c.partial) > 0 {
		c.Line(c.partial)
		c.partial = c.partial[:0]
	}
}

// Lines returns the number of non-blank lines recorded.
func (c *IDCheck) Lines() int { return c.lines }

// Err says what was wrong, or returns nil when every expected custom_id was seen
// exactly once and nothing else was.
func (c *IDCheck) Err() error {
	var missing int
	first := -1
	for i, ok := range c.seen {
		if !ok {
			if first < 0 {
				first = i
			}
			missing++
		}
	}
	var errs []error
	if missing > 0 {
		errs = append(errs, fmt.Errorf("%d of %d custom_ids missing, the first req-%d", missing, len(c.seen), first))
	}
	if c.dups > 0 {
		errs = append(errs, fmt.Errorf("%d duplicated result lines, the first for %s", c.dups, c.firstDup))
	}
	if c.unknown > 0 {
		errs = append(errs, fmt.Errorf("%d result lines for unknown custom_ids, the first %q", c.unknown, c.firstUnknown))
	}
	if c.malformed > 0 {
		errs = append(errs, fmt.Errorf("%d result lines without a custom_id, the first at %s", c.malformed, c.firstMalformed))
	}
	return errors.Join(errs...)
}

// CustomID returns the string value of the top-level "custom_id" key of a JSON object
// line. It walks the bytes rather than decoding the line, which would cost the
// benchmark more CPU than the server spends writing it; keys inside nested values
// are skipped.
func CustomID(line []byte) (string, error) {
	i := skipSpace(line, 0)
	if i == len(line) || line[i] != '{' {
		return "", errors.New("not a JSON object")
	}
	depth := 0
	for i < len(line) {
		switch line[i] {
		case '"':
			end := stringEnd(line, i)
			if end < 0 {
				return "", errors.New("unterminated string")
			}
			colon := skipSpace(line, end)
			if depth == 1 && colon < len(line) && line[colon] == ':' && string(line[i+1:end-1]) == "custom_id" {
				v := skipSpace(line, colon+1)
				if v == len(line) || line[v] != '"' {
					return "", errors.New("custom_id is not a string")
				}
				vend := stringEnd(line, v)
				if vend < 0 {
					return "", errors.New("unterminated custom_id")
				}
				raw := line[v:vend]
				if bytes.IndexByte(raw, '\\') < 0 {
					return string(raw[1 : len(raw)-1]), nil
				}
				var s string
				if err := json.Unmarshal(raw, &s); err != nil {
					return "", fmt.Errorf("custom_id: %w", err)
				}
				return s, nil
			}
			i = end
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
		i++
	}
	return "", errors.New("no custom_id")
}

// stringEnd returns the index just past the closing quote of the string whose opening
// quote is at line[i], or -1.
func stringEnd(line []byte, i int) int {
	for j := i + 1; j < len(line); j++ {
		switch line[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

func skipSpace(line []byte, i int) int {
	for i < len(line) && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n') {
		i++
	}
	return i
}

// Deployment is the deployment the benchmarks' request lines name and sluice serves
// from the simulator.
const Deployment = "bench"

// Requests returns n short chat-completion request lines for Deployment, with the custom_ids req-0 … req-(n-1) that an IDCheck expects.
func Requests(n int) []byte { return RequestsSized(n, 0) }

// RequestsSized is Requests with each line padded to about size bytes by a longer
// user message; size 0 or below the short line's size pads nothing.
func RequestsSized(n, size int) []byte {
	var b bytes.Buffer
	const filler = "Consider its price, its colour, its size and what customers said of it. "
	for i := range n {
		start := b.Len()
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"`+Deployment+`","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Summarise item %d of the catalogue in one sentence.`, i, i)
		for pad := size - 100 - (b.Len() - start); pad > 0; pad -= len(filler) {
			b.WriteString(filler[:min(pad, len(filler))])
		}
		b.WriteString(`"}],"max_tokens":16}}` + "\n")
	}
	return b.Bytes()
}
