package issuer_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
)

// A cache TTL, and an age past the point where an entry in use is
// reloaded ahead of it.
const (
	cacheTTL       = time.Minute
	pastRefreshAge = 50 * time.Second
)

// refreshBed is a testbed on PostgreSQL, to count queries, without change
// notifications: the changes its tests make are ones whose notification
// was lost.
func refreshBed(t *testing.T) (*testbed, *postgres.Store) {
	st := newPostgresStore(t)
	b := newTestbed(t, withStore(st), withoutWatch, withConfig(func(c *issuer.Config) { c.CacheTTL = cacheTTL }))
	b.freeze()
	return b, st
}

// waitForQueries waits until st has sent want queries since before, and
// a moment more for any it should not send.
func waitForQueries(st *postgres.Store, before, want int64) int64 {
	for deadline := time.Now().Add(10 * time.Second); st.Queries()-before < want && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	return st.Queries() - before
}

// TestEntriesInUseAreReloadedBeforeTheirTTL: a cached issuer and client in
// steady use are read again in the background before their TTL ends, so
// that no request waits for the database when it does, and a change whose
// notification was lost shows before the TTL.
func TestEntriesInUseAreReloadedBeforeTheirTTL(t *testing.T) {
	ctx := context.Background()
	b, st := refreshBed(t)
	readerSecret := b.addClient(store.Client{ID: "reader", Enabled: true})
	leaverSecret := b.addClient(store.Client{ID: "leaver", Enabled: true})
	for id, secret := range map[string]string{"reader": readerSecret, "leaver": leaverSecret} {
		if status := b.tokenStatus(t, id, secret); status != http.StatusOK {
			t.Fatalf("first token for %s: %d", id, status)
		}
	}
	if _, err := st.UpdateClient(ctx, "payments", "leaver", func(c *store.Client) error {
		c.Enabled = false
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	b.advance(pastRefreshAge)
	before := st.Queries()
	// These tokens are issued from the cache, and start the reloads.
	if status := b.tokenStatus(t, "reader", readerSecret); status != http.StatusOK {
		t.Fatalf("token for reader before its TTL: %d", status)
	}
	refused := false
	for deadline := time.Now().Add(10 * time.Second); !refused && time.Now().Before(deadline); {
		refused = b.tokenStatus(t, "leaver", leaverSecret) != http.StatusOK
		if !refused {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !refused {
		t.Fatalf("a client disabled without a notification was still served %v after it was cached, before its TTL of %v: no reload ahead of the TTL",
			pastRefreshAge, cacheTTL)
	}
	// The issuer, reader and leaver, each read once.
	if n := waitForQueries(st, before, 3); n != 3 {
		t.Fatalf("the reloads sent %d queries, want 3", n)
	}

	// Past the TTL of the first loads, the reloaded entries serve without
	// a query.
	b.advance(cacheTTL - pastRefreshAge + 10*time.Second)
	before = st.Queries()
	for range 20 {
		if status := b.tokenStatus(t, "reader", readerSecret); status != http.StatusOK {
			t.Fatalf("token for reader past the first TTL: %d", status)
		}
	}
	if n := st.Queries() - before; n != 0 {
		t.Fatalf("20 tokens after the TTL of the first load sent %d queries, want 0: the entries were not reloaded ahead", n)
	}
}

// TestAStrangersLookupsStartNoReload: client ids and issuer names are
// public, and anyone can make a cached entry be looked up. Such lookups of
// entries due for their reload start none: only a token issued does, once.
func TestAStrangersLookupsStartNoReload(t *testing.T) {
	b, st := refreshBed(t)
	secret := b.addClient(store.Client{ID: "victim", Enabled: true})
	if status := b.tokenStatus(t, "victim", secret); status != http.StatusOK {
		t.Fatalf("first token: %d", status)
	}
	b.advance(pastRefreshAge)
	before := st.Queries()
	for range 50 {
		if status := b.tokenStatus(t, "victim", "not-the-secret"); status == http.StatusOK {
			t.Fatal("a wrong secret got a token")
		}
	}
	if n := waitForQueries(st, before, 0); n != 0 {
		t.Fatalf("50 refused requests for a client due for its reload sent %d queries, want 0", n)
	}
	for range 20 {
		if status := b.tokenStatus(t, "victim", secret); status != http.StatusOK {
			t.Fatalf("token: %d", status)
		}
	}
	if n := waitForQueries(st, before, 2); n != 2 {
		t.Fatalf("20 tokens of a client due for its reload sent %d queries, want 2 (the client and its issuer, once each)", n)
	}
}
