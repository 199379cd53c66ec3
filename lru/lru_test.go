package lru

import (
	"fmt"
	"slices"
	"testing"
)

// has reports which keys are cached, without marking them used.
func has[K comparable, V any](c *Cache[K, V], keys ...K) []bool {
	out := make([]bool, len(keys))
	for i, k := range keys {
		out[i] = c.Contains(k)
	}
	return out
}

func TestCacheEvictsTheLeastRecentlyUsed(t *testing.T) {
	c := New[string, int](2)
	for i, k := range []string{"a", "b"} {
		_, _, epoch := c.Get(k)
		c.Put(k, i, epoch)
	}
	c.Get("a")
	c.Put("c", 3, c.Epoch())
	if got := has(c, "a", "b", "c"); !slices.Equal(got, []bool{true, false, true}) || c.Len() != 2 {
		t.Fatalf("a, b, c cached: %v, len %d; want b gone (least recently used)", got, c.Len())
	}
}

// TestAScanOfNewKeysKeepsTheEntriesInUse: keys promoted twice survive any
// number of keys that are looked up, however often, without being, which
// is what a stranger asking for every public issuer name or client id,
// twice or more, produces.
func TestAScanOfNewKeysKeepsTheEntriesInUse(t *testing.T) {
	c := New[int, int](100)
	for k := range 50 {
		c.Put(k, k, c.Epoch())
		c.Promote(k)
		c.Promote(k)
	}
	for k := 1000; k < 11_000; k++ {
		c.Put(k, k, c.Epoch())
		c.Get(k)
		c.Get(k)
	}
	for k := range 50 {
		if _, ok, _ := c.Get(k); !ok {
			t.Fatalf("entry %d, promoted, was evicted by a scan of 10,000 new keys each looked up twice", k)
		}
	}
	if c.Len() != 100 {
		t.Fatalf("len %d, want the bound 100", c.Len())
	}
	// Entries in use past protected's four fifths fall back to probation,
	// the least recently used first, and a scan can reach those.
	for k := range 100 {
		c.Put(k, k, c.Epoch())
		c.Promote(k)
		c.Promote(k)
	}
	for k := 2000; k < 2100; k++ {
		c.Put(k, k, c.Epoch())
	}
	if got := has(c, 19, 20, 99); !slices.Equal(got, []bool{false, true, true}) {
		t.Fatalf("after 100 entries in use and a scan, 19, 20, 99 cached: %v; want the 80 most recent kept", got)
	}
}

// TestOnlyPromotionsOrderTheProtectedEntries: lookups of protected entries,
// however many, do not choose which one a new promotion demotes; and one
// promotion, as a client that asks once gets, protects nothing.
func TestOnlyPromotionsOrderTheProtectedEntries(t *testing.T) {
	c := New[string, int](5) // 4 protected
	for _, k := range []string{"victim", "a", "b", "c"} {
		c.Put(k, 0, c.Epoch())
		c.Promote(k)
		c.Promote(k)
	}
	c.Promote("victim") // in steady use: promoted last
	for range 100 {
		for _, k := range []string{"a", "b", "c"} {
			c.Get(k)
		}
	}
	c.Put("once", 0, c.Epoch())
	c.Promote("once")
	if got := has(c, "victim", "a", "b", "c", "once"); !slices.Equal(got, []bool{true, true, true, true, true}) {
		t.Fatalf("cached: %v", got)
	}
	c.Put("new", 0, c.Epoch())
	c.Promote("new")
	c.Promote("new")
	// "new" pushed out "once", promoted once, from probation; its own
	// promotion demoted "a", promoted longest ago whatever the lookups,
	// and the next newcomers evict it from probation.
	c.Put("next", 0, c.Epoch())
	c.Put("last", 0, c.Epoch())
	if got := has(c, "victim", "new", "b", "c", "a", "once"); !slices.Equal(got, []bool{true, true, true, true, false, false}) {
		t.Fatalf("victim, new, b, c, a, once cached: %v; want a and once gone and the victim kept", got)
	}
}

// TestAddLeavesACachedValueAlone: a load that read an older value cannot
// replace what a later one stored.
func TestAddLeavesACachedValueAlone(t *testing.T) {
	c := New[string, int](4)
	older := c.Epoch()
	c.Put("k", 2, c.Epoch())
	if c.Add("k", 1, older) {
		t.Fatal("Add replaced a cached value")
	}
	if v, _, _ := c.Get("k"); v != 2 {
		t.Fatalf("value %d, want 2", v)
	}
	if !c.Add("other", 1, older) {
		t.Fatal("Add of a key not cached was refused")
	}
}

func TestPutAfterARemovalIsNotStored(t *testing.T) {
	tests := []struct {
		name   string
		remove func(c *Cache[string, int])
	}{
		{"same key", func(c *Cache[string, int]) { c.Remove("k") }},
		{"by match", func(c *Cache[string, int]) { c.RemoveFunc(func(k string) bool { return k == "x" }) }},
		{"too many keys to remember", func(c *Cache[string, int]) {
			for i := range maxRemovals + 1 {
				c.Remove(string(rune('a'+i%26)) + string(rune(i)))
			}
		}},
		{"everything", func(c *Cache[string, int]) { c.Clear() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := New[string, int](10)
			_, _, epoch := c.Get("k")
			tc.remove(c)
			if c.Put("k", 1, epoch) || has(c, "k")[0] {
				t.Fatal("a load that began before the removal was stored")
			}
			if !c.Put("k", 1, c.Epoch()) {
				t.Fatal("a load begun after the removal was refused")
			}
		})
	}
}

// TestRemovingOtherKeysDoesNotStopALoad: a stranger can make a node look
// up and forget any number of made-up names; a real entry's load, under
// way meanwhile, is still kept.
func TestRemovingOtherKeysDoesNotStopALoad(t *testing.T) {
	c := New[string, int](10)
	_, _, epoch := c.Get("real")
	for i := range 100 {
		c.Remove(string(rune('a' + i)))
	}
	if !c.Put("real", 1, epoch) {
		t.Fatal("removals of other keys stopped a load from being kept")
	}
}

// TestRemoveIfPresentNotesOnlyWhatItHeld: the removal of an issuer found
// gone is counted once however many loads find it so, and a stranger's
// made-up names, found absent, leave no note: past maxRemovals notes the
// cache forgets them all and keeps no load under way, a real one included.
func TestRemoveIfPresentNotesOnlyWhatItHeld(t *testing.T) {
	c := New[string, int](10)
	c.Put("gone", 1, c.Epoch())
	_, _, epoch := c.Get("gone")
	if !c.RemoveIfPresent("gone") || c.RemoveIfPresent("gone") {
		t.Fatal("want exactly the first removal of a held key reported")
	}
	if c.Put("gone", 1, epoch) {
		t.Fatal("a load that began before the removal was stored")
	}

	_, _, realEpoch := c.Get("real")
	for i := range maxRemovals + 1 {
		if c.RemoveIfPresent(fmt.Sprint("made-up-", i)) {
			t.Fatal("a key never held was reported removed")
		}
	}
	if !c.Put("real", 1, realEpoch) {
		t.Fatal("a stranger's made-up names stopped a real load from being kept")
	}
}

func TestZeroBoundStoresNothing(t *testing.T) {
	c := New[string, int](0)
	if c.Put("k", 1, c.Epoch()) || c.Len() != 0 {
		t.Fatal("a cache bounded at zero stored an entry")
	}
}
