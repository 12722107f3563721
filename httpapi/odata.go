package httpapi

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-batch/sluice"
)

// odataToken is a word, number or quoted string of a $filter, and where it starts.
type odataToken struct {
	text   string
	quoted bool // a 'string', text unquoted
	pos    int  // 1-based character position
}

// lexFilter splits a $filter into tokens.
func lexFilter(s string) ([]odataToken, error) {
	var out []odataToken
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '\'':
			var b strings.Builder
			j := i + 1
			for ; ; j++ {
				if j >= len(s) {
					return nil, filterError(i+1, "the string that starts here has no closing quote")
				}
				if s[j] == '\'' {
					if j+1 < len(s) && s[j+1] == '\'' { // '' stands for '
						b.WriteByte('\'')
						j++
						continue
					}
					break
				}
				b.WriteByte(s[j])
			}
			out = append(out, odataToken{text: b.String(), quoted: true, pos: i + 1})
			i = j + 1
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '\t' && s[j] != '\'' {
				j++
			}
			out = append(out, odataToken{text: s[i:j], pos: i + 1})
			i = j
		}
	}
	return out, nil
}

func filterError(pos int, format string, args ...any) error {
	return sluice.Errorf(sluice.KindInvalid, "Invalid $filter at character %d: %s. Use created_at gt|ge|lt|le <unix seconds> and status eq '<status>', joined with and.",
		pos, fmt.Sprintf(format, args...)).WithParam("$filter")
}

// parseBatchFilter reads a $filter of the batch list into f: created_at compared with
// gt, ge, lt or le to whole unix seconds, and status eq a quoted status (any case),
// joined with and. It reports false when the terms cannot all hold (two statuses).
func parseBatchFilter(s string, f *sluice.BatchFilter) (bool, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return false, err
	}
	if len(toks) == 0 {
		return true, nil
	}
	possible := true
	for i := 0; ; {
		if i+3 > len(toks) {
			at := len(s) + 1
			if i < len(toks) {
				at = toks[i].pos
			}
			return false, filterError(at, "a comparison is cut short")
		}
		field, op, val := toks[i], toks[i+1], toks[i+2]
		switch strings.ToLower(field.text) {
		case "created_at":
			n, err := strconv.ParseInt(val.text, 10, 64)
			if err != nil || val.quoted {
				return false, filterError(val.pos, "created_at compares with a whole number of unix seconds, not %q", val.text)
			}
			switch strings.ToLower(op.text) {
			case "gt":
				f.CreatedFrom = maxPtr(f.CreatedFrom, n+1)
			case "ge":
				f.CreatedFrom = maxPtr(f.CreatedFrom, n)
			case "lt":
				f.CreatedTo = minPtr(f.CreatedTo, n-1)
			case "le":
				f.CreatedTo = minPtr(f.CreatedTo, n)
			default:
				return false, filterError(op.pos, "created_at takes gt, ge, lt or le, not %q", op.text)
			}
		case "status":
			if strings.ToLower(op.text) != "eq" {
				return false, filterError(op.pos, "status takes eq, not %q", op.text)
			}
			st := sluice.Status(strings.ToLower(val.text))
			if !val.quoted || !knownStatus(st) {
				return false, filterError(val.pos, "%q is not a batch status in quotes, such as 'completed'", val.text)
			}
			if len(f.Status) > 0 && f.Status[0] != st {
				possible = false
			}
			f.Status = []sluice.Status{st}
		default:
			return false, filterError(field.pos, "%q is not a field the list filters on (created_at, status)", field.text)
		}
		i += 3
		if i == len(toks) {
			return possible, nil
		}
		if strings.ToLower(toks[i].text) != "and" || toks[i].quoted {
			return false, filterError(toks[i].pos, "expected and, found %q", toks[i].text)
		}
		i++
	}
}

func knownStatus(s sluice.Status) bool {
	switch s {
	case sluice.StatusValidating, sluice.StatusFailed, sluice.StatusInProgress, sluice.StatusFinalizing,
		sluice.StatusCompleted, sluice.StatusExpired, sluice.StatusCancelling, sluice.StatusCancelled:
		return true
	}
	return false
}

func maxPtr(p *int64, n int64) *int64 {
	if p != nil && *p > n {
		return p
	}
	return &n
}

func minPtr(p *int64, n int64) *int64 {
	if p != nil && *p < n {
		return p
	}
	return &n
}

// parseOrderBy reads a $orderby of the batch list: created_at, asc (the OData default)
// or desc.
func parseOrderBy(s string) (asc bool, err error) {
	f := strings.Fields(strings.ToLower(s))
	switch {
	case len(f) == 0:
		return false, nil
	case f[0] != "created_at" || len(f) > 2:
		return false, sluice.Errorf(sluice.KindInvalid, "Invalid $orderby %q: use created_at asc or created_at desc.", s).WithParam("$orderby")
	case len(f) == 1 || f[1] == "asc":
		return true, nil
	case f[1] == "desc":
		return false, nil
	}
	return false, sluice.Errorf(sluice.KindInvalid, "Invalid $orderby %q: use created_at asc or created_at desc.", s).WithParam("$orderby")
}
