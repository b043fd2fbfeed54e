package elfx

import "container/list"

// LRU is a least-recently-used cache bounded by a total cost (bytes, or
// entries when every cost is 1). It is not safe for concurrent use.
type LRU[K comparable, V any] struct {
	budget  int64
	used    int64
	ll      *list.List
	items   map[K]*list.Element
	onEvict func(K, V)
}

type lruEntry[K comparable, V any] struct {
	key  K
	val  V
	cost int64
}

// NewLRU returns a cache holding at most budget in total cost. onEvict, if
// not nil, is called for each entry pushed out or replaced.
func NewLRU[K comparable, V any](budget int64, onEvict func(K, V)) *LRU[K, V] {
	return &LRU[K, V]{budget: budget, ll: list.New(), items: make(map[K]*list.Element), onEvict: onEvict}
}

// Get returns the value for k and marks it recently used.
func (c *LRU[K, V]) Get(k K) (V, bool) {
	if e, ok := c.items[k]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruEntry[K, V]).val, true
	}
	var zero V
	return zero, false
}

// Add inserts or replaces k. An entry costing more than the whole budget is
// still kept (alone) so that one huge object does not defeat caching.
func (c *LRU[K, V]) Add(k K, v V, cost int64) {
	if cost < 1 {
		cost = 1
	}
	if e, ok := c.items[k]; ok {
		c.remove(e)
	}
	c.items[k] = c.ll.PushFront(&lruEntry[K, V]{key: k, val: v, cost: cost})
	c.used += cost
	for c.used > c.budget && c.ll.Len() > 1 {
		c.remove(c.ll.Back())
	}
}

// Remove drops k if present.
func (c *LRU[K, V]) Remove(k K) {
	if e, ok := c.items[k]; ok {
		c.remove(e)
	}
}

// Len is the number of entries.
func (c *LRU[K, V]) Len() int { return c.ll.Len() }

// Used is the total cost of the entries held.
func (c *LRU[K, V]) Used() int64 { return c.used }

func (c *LRU[K, V]) remove(e *list.Element) {
	ent := e.Value.(*lruEntry[K, V])
	c.ll.Remove(e)
	delete(c.items, ent.key)
	c.used -= ent.cost
	if c.onEvict != nil {
		c.onEvict(ent.key, ent.val)
	}
}
