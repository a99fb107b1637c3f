package usecase

import (
	"container/list"
	"sync"
)

// lru is a fixed-size least-recently-used cache of window statistics and
// their judgements.
type lru struct {
	mu    sync.Mutex
	size  int
	ll    *list.List // front = most recent; values *lruEntry
	items map[string]*list.Element
}

type lruEntry struct {
	key string
	val cached
}

func newLRU(size int) *lru {
	return &lru{size: size, ll: list.New(), items: make(map[string]*list.Element, size)}
}

func (c *lru) get(key string) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.ll.MoveToFront(el)
		return el.Value.(*lruEntry).val, true
	}
	return cached{}, false
}

func (c *lru) put(key string, val cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		el.Value.(*lruEntry).val = val
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&lruEntry{key: key, val: val})
	for c.ll.Len() > c.size {
		last := c.ll.Back()
		c.ll.Remove(last)
		delete(c.items, last.Value.(*lruEntry).key)
	}
}

func (c *lru) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
