package tokens

import (
	"fmt"
	"testing"
)

func TestCacheBound(t *testing.T) {
	t.Parallel()
	c := newCache()
	hot := c.key(kindText, []byte("a system prompt seen on every line"))
	c.put(hot, 42)
	for i := range 4 * cacheShards * shardEntries {
		c.put(c.key(kindText, fmt.Appendf(nil, "unique %d", i)), i)
		if i%1000 == 0 { // used now and then, so it must survive the rotations
			if n, ok := c.get(hot); !ok || n != 42 {
				t.Fatalf("after %d puts: got %d, %v for the hot key, want 42, true", i, n, ok)
			}
		}
	}
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		if len(s.cur) > shardEntries || len(s.old) > shardEntries {
			t.Errorf("shard %d holds %d + %d entries, want at most %d each", i, len(s.cur), len(s.old), shardEntries)
		}
		total += len(s.cur) + len(s.old)
	}
	if max := 2 * cacheShards * shardEntries; total > max {
		t.Errorf("cache holds %d entries, want at most %d", total, max)
	}
}

func TestCacheKinds(t *testing.T) {
	t.Parallel()
	c := newCache()
	b := []byte(`[{"name":"f"}]`)
	c.put(c.key(kindText, b), 1)
	c.put(c.key(kindTools, b), 2)
	for _, tc := range []struct {
		kind uint64
		want int
	}{{kindText, 1}, {kindTools, 2}} {
		if n, ok := c.get(c.key(tc.kind, b)); !ok || n != tc.want {
			t.Errorf("kind %d: got %d, %v, want %d, true", tc.kind, n, ok, tc.want)
		}
	}
	if _, ok := c.get(c.key(kindSchema, b)); ok {
		t.Error("kind schema: got a hit, want none")
	}
	if c.key(kindText, b) != c.keyString(kindText, string(b)) {
		t.Error("key and keyString differ for the same text")
	}
}
