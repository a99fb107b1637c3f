package usecase

import "sync"

// claims are the settled deployments whose stored verdicts a request is
// reading and will put in the cache. A request missing the same ones waits
// for that read instead of reading them again: the DORA page asks for 26
// weeks and four quarters at once, and on a fresh process over a year both
// would read and decode the same thousands of stored verdicts. (Judging
// from the windows is not shared this way: a small request would wait for
// a large one's judgements.)
//
// A request releases its claims before it waits for anyone else's, so no
// two can wait for each other.
type claims struct {
	mu sync.Mutex
	m  map[verdictKey]chan struct{}
}

// claim takes, among idx (indices of keys), those nobody has claimed:
// mine, for the caller to get, released by release (which may be called
// more than once). The others are theirs, and waits closes (every one)
// when the requests getting them have released them.
func (c *claims) claim(keys []verdictKey, idx []int) (mine, theirs []int, waits []chan struct{}, release func()) {
	done := make(chan struct{})
	var taken []verdictKey
	seen := map[chan struct{}]bool{}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[verdictKey]chan struct{}{}
	}
	for _, i := range idx {
		k := keys[i]
		if w, ok := c.m[k]; ok && w != done {
			theirs = append(theirs, i)
			if !seen[w] {
				seen[w] = true
				waits = append(waits, w)
			}
			continue
		}
		c.m[k] = done
		taken = append(taken, k)
		mine = append(mine, i)
	}
	c.mu.Unlock()
	var once sync.Once
	return mine, theirs, waits, func() {
		once.Do(func() {
			c.mu.Lock()
			for _, k := range taken {
				if c.m[k] == done {
					delete(c.m, k)
				}
			}
			c.mu.Unlock()
			close(done)
		})
	}
}
