package issuer

import (
	"log/slog"
	"strings"
	"time"

	"github.com/authz-dev/authz/lru"
	"github.com/authz-dev/authz/store"
)

// clientCache keeps recently used clients, and the knowledge that a client
// does not exist, so that steady-state token requests never reach the
// database. Changes from any node evict entries. Callers say how old an
// entry may be: the TTL normally, which bounds the damage of a change
// notification that was somehow missed, and the longer staleness window
// while the database is unreachable. Only the LRU bound evicts; its epoch
// keeps a load that raced with an invalidation from being stored.
type clientCache struct {
	entries *lru.Cache[clientKey, clientEntry]
	now     func() time.Time
}

type clientKey struct{ issuer, id string }

// LogValue names the client in logs, whose JSON would show none of the
// key's unexported fields.
func (k clientKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("issuer", k.issuer), slog.String("client_id", k.id))
}

type clientEntry struct {
	client   *store.Client // nil: the client does not exist
	loadedAt time.Time
}

func newClientCache(max int, now func() time.Time) *clientCache {
	return &clientCache{entries: lru.New[clientKey, clientEntry](max), now: now}
}

// lookup returns key's entry; found is false without one, and epoch is
// the value to hand to put after loading.
func (c *clientCache) lookup(key clientKey) (e clientEntry, found bool, epoch uint64) {
	return c.entries.Get(key)
}

// put stores a loaded client (nil for "does not exist") unless something was
// invalidated since the load began.
//
// The key is stored as strings of its own: a request's client id is often a
// slice of the string that also holds its secret (the decoded Basic
// credentials, or a form body without escapes), which would otherwise stay
// in memory, in plain text, for as long as the entry does.
func (c *clientCache) put(key clientKey, client *store.Client, epoch uint64) {
	if client != nil && client.IssuerName == key.issuer && client.ID == key.id {
		key = clientKey{client.IssuerName, client.ID}
	} else {
		key = clientKey{strings.Clone(key.issuer), strings.Clone(key.id)}
	}
	c.entries.Put(key, clientEntry{client: client, loadedAt: c.now()}, epoch)
}

// promote protects a client from being pushed out by lookups of others,
// and returns its entry as lookup does.
func (c *clientCache) promote(key clientKey) (e clientEntry, found bool, epoch uint64) {
	return c.entries.Promote(key)
}

// invalidate evicts one client.
func (c *clientCache) invalidate(key clientKey) { c.entries.Remove(key) }

// invalidateIssuer evicts every client of one issuer.
func (c *clientCache) invalidateIssuer(issuerName string) {
	c.entries.RemoveFunc(func(k clientKey) bool { return k.issuer == issuerName })
}

// clear evicts everything.
func (c *clientCache) clear() { c.entries.Clear() }

func (c *clientCache) len() int { return c.entries.Len() }
