package sim

import (
	"container/list"
	"encoding/json"
	"sync"
)

// prefixCache models an inference server's prefix cache (vLLM's automatic prefix
// caching, SGLang's radix cache): it keeps the computed prompts of the last n distinct
// prefixes, least recently used out. A request whose prefix is kept skips part of its
// prefill, so its time to first token is shorter.
type prefixCache struct {
	mu    sync.Mutex
	n     int
	order *list.List               // of uint64, most recent first
	keys  map[uint64]*list.Element // prefix hash -> its element in order
}

func newPrefixCache(n int) *prefixCache {
	return &prefixCache{n: n, order: list.New(), keys: make(map[uint64]*list.Element, n)}
}

// touch reports whether the prefix h is kept, and keeps it as the most recent.
func (c *prefixCache) touch(h uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.keys[h]; ok {
		c.order.MoveToFront(e)
		return true
	}
	c.keys[h] = c.order.PushFront(h)
	if c.order.Len() > c.n {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.keys, last.Value.(uint64))
	}
	return false
}

// prefixHash returns the hash of a request's prompt prefix, what a prefix cache could
// keep of it across requests: a chat's leading system and developer messages, a
// response's instructions; 0 when it has none. It decodes the body again, which costs
// only when the cache is on.
func prefixHash(ep endpoint, body []byte) uint64 {
	h := uint64(fnvOffset)
	switch ep {
	case chatEndpoint:
		var req struct {
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if json.Unmarshal(body, &req) != nil {
			return 0
		}
		n := 0
		for _, m := range req.Messages {
			if m.Role != "system" && m.Role != "developer" {
				break
			}
			h = foldMessage(h, m.Role, string(m.Content))
			n++
		}
		if n == 0 {
			return 0
		}
	case responseEndpoint:
		var req struct {
			Instructions *string `json:"instructions"`
		}
		if json.Unmarshal(body, &req) != nil || req.Instructions == nil {
			return 0
		}
		h = fnvString(h, *req.Instructions)
	default:
		return 0
	}
	return h | 1 // never 0
}
