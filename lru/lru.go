// Package lru is a size-bounded map that evicts the least recently used
// entry, with an epoch that keeps a slow load from storing what an
// invalidation made stale meanwhile. The client, issuer and key caches are
// all of this shape.
//
// It is a segmented LRU: an entry enters a probation segment, and moves to
// a protected segment of four fifths of the bound when its caller has
// promoted it twice. Eviction takes probation's least recently used entry
// first, and the protected segment is ordered by promotions alone. Issuer
// names and client ids are public, so anyone can make a node look them up,
// once or a thousand times each; the caches promote an entry only for a
// use a stranger cannot make (a token issued to an authenticated client),
// so such lookups churn only probation: they can neither push out the
// entries in steady use, which would turn their warm requests into
// database queries, nor choose which of them goes first. Two promotions,
// not one, so that clients that ask once (a batch job over millions of
// them) churn probation too.
package lru

import (
	"container/list"
	"sync"
)

// Cache maps keys to values, holding at most its bound. It is safe for
// concurrent use.
//
// A load from the store can race with an invalidation: the loader reads the
// old record, the change lands and evicts, then the loader stores the old
// record. The epoch prevents that: every removal bumps it and notes it
// against the key removed, Get returns it, and Put refuses a key removed
// after that epoch. The note is per key, so that invalidations of other
// keys (a stranger can cause one per made-up name) never stop a load from
// being kept.
type Cache[K comparable, V any] struct {
	mu           sync.Mutex
	max          int
	protectedMax int
	epoch        uint64
	// removedAt is the epoch of each key's last removal; floor is that of
	// the last removal of everything, and of the last time removedAt grew
	// too large and was forgotten.
	removedAt map[K]uint64
	floor     uint64
	// Most recently used first, each.
	probation, protected *list.List // of *entry[K, V]
	entries              map[K]*list.Element
}

type entry[K comparable, V any] struct {
	key       K
	value     V
	protected bool
	// promoted: promoted once, in probation still.
	promoted bool
}

// New returns a cache of at most max entries; with max ≤ 0 it stores
// nothing.
func New[K comparable, V any](max int) *Cache[K, V] {
	return &Cache[K, V]{max: max, protectedMax: max * 4 / 5, probation: list.New(), protected: list.New(),
		entries: map[K]*list.Element{}, removedAt: map[K]uint64{}}
}

// Get returns key's value, marking it used if it is in probation; it
// neither promotes an entry nor reorders the protected ones. epoch is the
// value to hand to Put after loading what was missing.
func (c *Cache[K, V]) Get(key K) (value V, ok bool, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, found := c.entries[key]
	if !found {
		return value, false, c.epoch
	}
	c.touch(el)
	return el.Value.(*entry[K, V]).value, true, c.epoch
}

// Promote counts a use that protects key, if cached: its second moves it
// to the front of the protected segment, and each after that keeps it
// there. It returns key's value and epoch as Get does, for a caller that
// refreshes what it promotes.
func (c *Cache[K, V]) Promote(key K) (value V, ok bool, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, found := c.entries[key]
	if !found {
		return value, false, c.epoch
	}
	e := el.Value.(*entry[K, V])
	if !e.protected && !e.promoted {
		e.promoted = true
		c.touch(el)
	} else {
		c.promote(el)
	}
	return e.value, true, c.epoch
}

// Contains reports whether key is cached, without marking it used.
func (c *Cache[K, V]) Contains(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, found := c.entries[key]
	return found
}

// touch moves a probation entry to the front of probation. Protected
// entries keep their order, which only promotions set.
func (c *Cache[K, V]) touch(el *list.Element) {
	if !el.Value.(*entry[K, V]).protected {
		c.probation.MoveToFront(el)
	}
}

// promote moves an entry to the front of protected; probation's front
// takes the protected entry that no longer fits.
func (c *Cache[K, V]) promote(el *list.Element) {
	e := el.Value.(*entry[K, V])
	if e.protected {
		c.protected.MoveToFront(el)
		return
	}
	c.probation.Remove(el)
	e.protected = true
	c.entries[e.key] = c.protected.PushFront(e)
	if c.protected.Len() > c.protectedMax {
		last := c.protected.Back()
		demoted := c.protected.Remove(last).(*entry[K, V])
		demoted.protected = false
		c.entries[demoted.key] = c.probation.PushFront(demoted)
	}
}

// Epoch is the current epoch, for a load that does not begin with Get.
func (c *Cache[K, V]) Epoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// Put stores value under key, evicting past the bound, unless key was
// removed since epoch was read. It reports whether it stored.
func (c *Cache[K, V]) Put(key K, value V, epoch uint64) bool {
	return c.put(key, value, epoch, true)
}

// Add is Put of a key that is not cached: it leaves a cached key's value
// alone, as a load that began earlier may have read an older one.
func (c *Cache[K, V]) Add(key K, value V, epoch uint64) bool {
	return c.put(key, value, epoch, false)
}

func (c *Cache[K, V]) put(key K, value V, epoch uint64, replace bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch < c.floor || epoch < c.removedAt[key] || c.max <= 0 {
		return false
	}
	if el, found := c.entries[key]; found {
		if !replace {
			return false
		}
		el.Value.(*entry[K, V]).value = value
		c.touch(el)
		return true
	}
	c.entries[key] = c.probation.PushFront(&entry[K, V]{key: key, value: value})
	for c.probation.Len()+c.protected.Len() > c.max {
		victim := c.probation.Back()
		if victim == nil {
			victim = c.protected.Back()
		}
		c.remove(victim)
	}
	return true
}

func (c *Cache[K, V]) remove(el *list.Element) {
	e := el.Value.(*entry[K, V])
	delete(c.entries, e.key)
	if e.protected {
		c.protected.Remove(el)
	} else {
		c.probation.Remove(el)
	}
}

// maxRemovals bounds the per-key notes of removals; past it they are
// forgotten at once, and the loads under way then are not kept.
const maxRemovals = 4096

// Remove evicts key.
func (c *Cache[K, V]) Remove(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.noteRemoval(key)
	if el, found := c.entries[key]; found {
		c.remove(el)
	}
}

// noteRemoval bumps the epoch and notes it against key, so that a load of
// key that began before is not stored.
func (c *Cache[K, V]) noteRemoval(key K) {
	c.epoch++
	if len(c.removedAt) >= maxRemovals {
		c.forgetRemovals()
	}
	c.removedAt[key] = c.epoch
}

// RemoveIfPresent evicts key if it is cached, and reports whether it was.
// A key it does not hold leaves no note: callers that a stranger drives
// (lookups of made-up names) cannot make the cache forget its removals.
// Of concurrent callers for one key, exactly one is told it removed it.
func (c *Cache[K, V]) RemoveIfPresent(key K) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, found := c.entries[key]
	if !found {
		return false
	}
	c.noteRemoval(key)
	c.remove(el)
	return true
}

// forgetRemovals replaces the per-key notes with one floor.
func (c *Cache[K, V]) forgetRemovals() {
	c.floor = c.epoch
	clear(c.removedAt)
}

// RemoveFunc evicts every entry whose key matches.
func (c *Cache[K, V]) RemoveFunc(match func(K) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.forgetRemovals()
	for key, el := range c.entries {
		if match(key) {
			c.remove(el)
		}
	}
}

// Clear evicts everything.
func (c *Cache[K, V]) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.forgetRemovals()
	c.probation.Init()
	c.protected.Init()
	clear(c.entries)
}

// Len is how many entries are cached.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.probation.Len() + c.protected.Len()
}
