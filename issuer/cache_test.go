package issuer

import (
	"fmt"
	"testing"
	"time"

	"github.com/authz-dev/authz/store"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }

// get returns an entry younger than maxAge; ok is false otherwise.
func (c *clientCache) get(key clientKey, maxAge time.Duration) (client *store.Client, ok bool, epoch uint64) {
	e, found, epoch := c.lookup(key)
	if !found || c.now().Sub(e.loadedAt) >= maxAge {
		return nil, false, epoch
	}
	return e.client, true, epoch
}

func TestClientCacheEvictsLeastRecentlyUsed(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newClientCache(2, clock.now)
	for _, id := range []string{"a", "b"} {
		_, _, epoch := c.get(clientKey{"i", id}, time.Minute)
		c.put(clientKey{"i", id}, &store.Client{ID: id}, epoch)
	}
	c.get(clientKey{"i", "a"}, time.Minute) // a is now the most recently used
	_, _, epoch := c.get(clientKey{"i", "c"}, time.Minute)
	c.put(clientKey{"i", "c"}, &store.Client{ID: "c"}, epoch)
	if _, ok, _ := c.get(clientKey{"i", "b"}, time.Minute); ok {
		t.Fatal("b survived although least recently used")
	}
	for _, id := range []string{"a", "c"} {
		if _, ok, _ := c.get(clientKey{"i", id}, time.Minute); !ok {
			t.Fatalf("%s was evicted", id)
		}
	}
	if c.len() != 2 {
		t.Fatalf("len = %d, want the bound 2", c.len())
	}
}

func TestClientCacheHonoursTheAgeTheCallerAccepts(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newClientCache(10, clock.now)
	key := clientKey{"i", "a"}
	_, _, epoch := c.get(key, time.Minute)
	c.put(key, &store.Client{ID: "a"}, epoch)
	clock.t = clock.t.Add(59 * time.Second)
	if _, ok, _ := c.get(key, time.Minute); !ok {
		t.Fatal("entry gone before its TTL")
	}
	clock.t = clock.t.Add(time.Second)
	if _, ok, _ := c.get(key, time.Minute); ok {
		t.Fatal("entry served as fresh at its TTL")
	}
	// Kept, for when the database is unreachable and stale is better than
	// nothing.
	if _, ok, _ := c.get(key, 15*time.Minute); !ok {
		t.Fatal("entry dropped at its TTL; it must stay for the staleness window")
	}
}

func TestClientCacheDropsLoadsThatRaceAnInvalidation(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	tests := []struct {
		name       string
		invalidate func(c *clientCache)
	}{
		{"same client", func(c *clientCache) { c.invalidate(clientKey{"i", "a"}) }},
		{"its issuer", func(c *clientCache) { c.invalidateIssuer("i") }},
		{"everything", func(c *clientCache) { c.clear() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClientCache(10, clock.now)
			key := clientKey{"i", "a"}
			_, _, epoch := c.get(key, time.Minute) // a load begins...
			tc.invalidate(c)                       // ...a change lands while it reads...
			c.put(key, &store.Client{ID: "a", Name: "stale"}, epoch)
			if _, ok, _ := c.get(key, time.Minute); ok {
				t.Fatal("a load that began before the invalidation was cached")
			}
		})
	}
}

// TestClientCacheKeepsLoadsThatRaceOtherInvalidations: changes to other
// clients (a stranger can make some, by registering clients where
// anonymous registration is open) must not keep a client's load from
// being cached.
func TestClientCacheKeepsLoadsThatRaceOtherInvalidations(t *testing.T) {
	c := newClientCache(10, (&fakeClock{t: time.Unix(1000, 0)}).now)
	key := clientKey{"i", "a"}
	_, _, epoch := c.get(key, time.Minute)
	for i := range 100 {
		c.invalidate(clientKey{"i", fmt.Sprint("other-", i)})
	}
	c.put(key, &store.Client{ID: "a"}, epoch)
	if _, ok, _ := c.get(key, time.Minute); !ok {
		t.Fatal("invalidations of other clients kept a load from being cached")
	}
}

func TestClientCacheInvalidateIssuerKeepsOtherIssuers(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newClientCache(100, clock.now)
	for i := range 10 {
		for _, iss := range []string{"x", "y"} {
			key := clientKey{iss, fmt.Sprint(i)}
			_, _, epoch := c.get(key, time.Minute)
			c.put(key, nil, epoch)
		}
	}
	c.invalidateIssuer("x")
	if c.len() != 10 {
		t.Fatalf("len = %d after dropping issuer x, want 10", c.len())
	}
	if _, ok, _ := c.get(clientKey{"y", "3"}, time.Minute); !ok {
		t.Fatal("issuer y lost its entries")
	}
}
