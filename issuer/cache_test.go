package issuer

import (
	"fmt"
	"testing"
	"time"

	"github.com/authz-dev/authz/store"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) now() time.Time { return f.t }

func TestClientCacheEvictsLeastRecentlyUsed(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newClientCache(2, time.Minute, clock.now)
	for _, id := range []string{"a", "b"} {
		_, _, epoch := c.get(clientKey{"i", id})
		c.put(clientKey{"i", id}, &store.Client{ID: id}, epoch)
	}
	c.get(clientKey{"i", "a"}) // a is now the most recently used
	_, _, epoch := c.get(clientKey{"i", "c"})
	c.put(clientKey{"i", "c"}, &store.Client{ID: "c"}, epoch)
	if _, ok, _ := c.get(clientKey{"i", "b"}); ok {
		t.Fatal("b survived although least recently used")
	}
	for _, id := range []string{"a", "c"} {
		if _, ok, _ := c.get(clientKey{"i", id}); !ok {
			t.Fatalf("%s was evicted", id)
		}
	}
	if c.len() != 2 {
		t.Fatalf("len = %d, want the bound 2", c.len())
	}
}

func TestClientCacheEntriesExpireAfterTTL(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newClientCache(10, time.Minute, clock.now)
	key := clientKey{"i", "a"}
	_, _, epoch := c.get(key)
	c.put(key, &store.Client{ID: "a"}, epoch)
	clock.t = clock.t.Add(59 * time.Second)
	if _, ok, _ := c.get(key); !ok {
		t.Fatal("entry gone before its TTL")
	}
	clock.t = clock.t.Add(time.Second)
	if _, ok, _ := c.get(key); ok {
		t.Fatal("entry served at its TTL")
	}
}

func TestClientCacheDropsLoadsThatRaceAnInvalidation(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	tests := []struct {
		name       string
		invalidate func(c *clientCache)
	}{
		{"same client", func(c *clientCache) { c.invalidate(clientKey{"i", "a"}) }},
		{"another client", func(c *clientCache) { c.invalidate(clientKey{"i", "zzz"}) }},
		{"its issuer", func(c *clientCache) { c.invalidateIssuer("i") }},
		{"everything", func(c *clientCache) { c.clear() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newClientCache(10, time.Minute, clock.now)
			key := clientKey{"i", "a"}
			_, _, epoch := c.get(key) // a load begins...
			tc.invalidate(c)          // ...a change lands while it reads...
			c.put(key, &store.Client{ID: "a", Name: "stale"}, epoch)
			if _, ok, _ := c.get(key); ok {
				t.Fatal("a load that began before the invalidation was cached")
			}
		})
	}
}

func TestClientCacheInvalidateIssuerKeepsOtherIssuers(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1000, 0)}
	c := newClientCache(100, time.Minute, clock.now)
	for i := range 10 {
		for _, iss := range []string{"x", "y"} {
			key := clientKey{iss, fmt.Sprint(i)}
			_, _, epoch := c.get(key)
			c.put(key, nil, epoch)
		}
	}
	c.invalidateIssuer("x")
	if c.len() != 10 {
		t.Fatalf("len = %d after dropping issuer x, want 10", c.len())
	}
	if _, ok, _ := c.get(clientKey{"y", "3"}); !ok {
		t.Fatal("issuer y lost its entries")
	}
}
