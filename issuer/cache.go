package issuer

import (
	"container/list"
	"sync"
	"time"

	"github.com/authz-dev/authz/store"
)

// clientCache keeps recently used clients, and the knowledge that a client
// does not exist, so that steady-state token requests never reach the
// database. Changes from any node evict entries. Callers say how old an
// entry may be: the TTL normally, which bounds the damage of a change
// notification that was somehow missed, and the longer staleness window
// while the database is unreachable. Only the LRU bound evicts.
//
// A read from the store can race with an invalidation: the reader loads the
// old record, the change lands and evicts, then the reader stores the old
// record. The epoch prevents that: every invalidation bumps it, and a load
// that began in an earlier epoch is not stored.
type clientCache struct {
	mu      sync.Mutex
	max     int
	now     func() time.Time
	epoch   uint64
	order   *list.List // of *clientEntry, most recently used first
	entries map[clientKey]*list.Element
}

type clientKey struct{ issuer, id string }

type clientEntry struct {
	key      clientKey
	client   *store.Client // nil: the client does not exist
	loadedAt time.Time
}

func newClientCache(max int, now func() time.Time) *clientCache {
	return &clientCache{max: max, now: now, order: list.New(), entries: map[clientKey]*list.Element{}}
}

// get returns an entry younger than maxAge; ok is false otherwise, and
// epoch is then the value to hand to put after loading.
func (c *clientCache) get(key clientKey, maxAge time.Duration) (client *store.Client, ok bool, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, found := c.entries[key]
	if !found {
		return nil, false, c.epoch
	}
	e := el.Value.(*clientEntry)
	if c.now().Sub(e.loadedAt) >= maxAge {
		return nil, false, c.epoch
	}
	c.order.MoveToFront(el)
	return e.client, true, c.epoch
}

// put stores a loaded client (nil for "does not exist") unless something was
// invalidated since the load began.
func (c *clientCache) put(key clientKey, client *store.Client, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch || c.max <= 0 {
		return
	}
	if el, found := c.entries[key]; found {
		c.remove(el)
	}
	c.entries[key] = c.order.PushFront(&clientEntry{key: key, client: client, loadedAt: c.now()})
	for c.order.Len() > c.max {
		c.remove(c.order.Back())
	}
}

func (c *clientCache) remove(el *list.Element) {
	delete(c.entries, el.Value.(*clientEntry).key)
	c.order.Remove(el)
}

// invalidate evicts one client.
func (c *clientCache) invalidate(key clientKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if el, found := c.entries[key]; found {
		c.remove(el)
	}
}

// invalidateIssuer evicts every client of one issuer.
func (c *clientCache) invalidateIssuer(issuerName string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for key, el := range c.entries {
		if key.issuer == issuerName {
			c.remove(el)
		}
	}
}

// clear evicts everything.
func (c *clientCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.order.Init()
	clear(c.entries)
}

func (c *clientCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
