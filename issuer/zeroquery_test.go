package issuer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
	"github.com/authz-dev/authz/store/postgres/pgtest"
)

// TestWarmTokenRequestsSendNoQueries proves the hot path's promise: once a
// client is cached, issuing its tokens touches PostgreSQL not at all, for
// native issuers and for Keycloak-style ones, whose tokens carry the roles
// mapped to the client.
func TestWarmTokenRequestsSendNoQueries(t *testing.T) {
	for _, style := range []struct{ name, urlStyle, tokenPath string }{
		{"native", store.URLStyleNative, "/issuers/payments/token"},
		{"keycloak", store.URLStyleKeycloak, "/realms/payments/protocol/openid-connect/token"},
	} {
		t.Run(style.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			st := newPostgresStore(t)
			bed := newTestbed(t, withStore(st), withIssuer(func(iss *store.Issuer) {
				iss.SigningAlgorithm, iss.AvailableScopes, iss.Audience = keys.ES256, []string{"read"}, "a"
				iss.URLStyle = style.urlStyle
			}))
			bed.addClient(store.Client{ID: "api", Enabled: true})
			role, err := st.CreateRole(ctx, store.Role{IssuerName: "payments", ClientID: "api", Name: "reader"})
			if err != nil {
				t.Fatal(err)
			}
			const clients = 10
			secrets := map[string]string{}
			for i := range clients {
				id := fmt.Sprintf("c-%d", i)
				secrets[id] = bed.addClient(store.Client{ID: id, Scopes: []string{"read"}, Audience: "a", Enabled: true,
					RoleMappings: []store.RoleRef{{ID: role.ID}}, FullScopeAllowed: true})
			}
			token := func(id string) {
				req, _ := http.NewRequest(http.MethodPost, bed.srv.URL+style.tokenPath, strings.NewReader("grant_type=client_credentials&scope=read"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(id, secrets[id])
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("token for %s: status %d", id, resp.StatusCode)
				}
			}
			// Warm the cache after every notification of the set-up has been
			// obeyed: a late one would evict a client during the count.
			bed.settle(ctx)
			for id := range secrets {
				token(id)
			}
			before := st.Queries()
			for i := range 1000 {
				token(fmt.Sprintf("c-%d", i%clients))
			}
			if n := st.Queries() - before; n != 0 {
				t.Fatalf("1000 warm token requests sent %d queries to PostgreSQL, want 0", n)
			}
			t.Logf("1000 warm token requests: 0 queries (warm-up sent %d)", before)
		})
	}
}

// TestWarmTokensAcrossManyIssuersSendNoQueries: with 2,000 issuers stored,
// loaded in bulk and each first used by this test, tokens of warm clients
// spread over 50 of them still send no query: issuers and keys are loaded
// once, on first use, and then held.
func TestWarmTokensAcrossManyIssuersSendNoQueries(t *testing.T) {
	ctx := context.Background()
	st := newPostgresStore(t)
	bed := newTestbed(t, withStore(st), withConfig(func(c *issuer.Config) { c.IssuerCacheSize = 100 }))
	const issuers, warm = 2000, 50
	names := importIssuers(t, bed, st, issuers, "many-issuers")
	token := func(i int) {
		if status := bed.tokenStatusAt(t, names[i], "c-"+names[i], "many-issuers"); status != http.StatusOK {
			t.Fatalf("token of %s: status %d", names[i], status)
		}
	}
	bed.settle(ctx)
	for i := range warm {
		token(i * (issuers / warm))
	}
	before := st.Queries()
	for i := range 1000 {
		token((i % warm) * (issuers / warm))
	}
	if n := st.Queries() - before; n != 0 {
		t.Fatalf("1000 warm token requests over %d issuers sent %d queries to PostgreSQL, want 0", warm, n)
	}
}

// TestMadeUpIssuerNamesCannotEvictRealIssuers: issuer names are public and
// anyone may send made-up ones; they are cached apart, so a flood of them
// cannot push a real issuer out of a small cache and turn its warm tokens
// into database queries.
func TestMadeUpIssuerNamesCannotEvictRealIssuers(t *testing.T) {
	ctx := context.Background()
	st := newPostgresStore(t)
	bed := newTestbed(t, withStore(st), withConfig(func(c *issuer.Config) {
		c.IssuerCacheSize, c.AuthFailuresPerAddress = 10, 0
	}), withIssuer(func(iss *store.Issuer) { iss.SigningAlgorithm = keys.ES256 }))
	secret := bed.addClient(store.Client{ID: "c-1", Enabled: true})
	bed.settle(ctx)
	if status := bed.tokenStatus(t, "c-1", secret); status != http.StatusOK {
		t.Fatalf("warm-up: %d", status)
	}
	for i := range 100 {
		resp, err := http.Post(fmt.Sprintf("%s/issuers/made-up-%d/token", bed.srv.URL, i), "application/x-www-form-urlencoded",
			strings.NewReader("grant_type=client_credentials"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("made-up issuer %d: status %d", i, resp.StatusCode)
		}
	}
	before := st.Queries()
	if status := bed.tokenStatus(t, "c-1", secret); status != http.StatusOK {
		t.Fatalf("after the flood: %d", status)
	}
	if n := st.Queries() - before; n != 0 {
		t.Fatalf("a warm token after 100 made-up issuer names sent %d queries, want 0", n)
	}
}

// TestStrangersCannotEvictIssuersOrClientsInUse: issuer names and client
// ids are public. A stranger who fetches every issuer's JWKS and metadata,
// and tries every client id with a wrong secret, twice each, must not push
// the issuers and clients in steady use out of the caches: their warm
// tokens, and introspections of an issuer only introspected here, would
// turn into database queries. Only uses a stranger cannot make (a token
// issued, an authenticated introspection, a valid token verified) protect
// an entry.
func TestStrangersCannotEvictIssuersOrClientsInUse(t *testing.T) {
	ctx := context.Background()
	st := newPostgresStore(t)
	bed := newTestbed(t, withStore(st), withConfig(func(c *issuer.Config) {
		c.IssuerCacheSize, c.ClientCacheSize, c.AuthFailuresPerAddress = 10, 10, 0
	}))
	const issuers, warm = 50, 6
	names := importIssuers(t, bed, st, issuers, "in-use")
	bed.settle(ctx)
	for range 2 { // a second use protects an entry: one-off clients do not
		for _, name := range names[:warm] {
			if status := bed.tokenStatusAt(t, name, "c-"+name, "in-use"); status != http.StatusOK {
				t.Fatalf("warm-up of %s: %d", name, status)
			}
		}
	}
	// An issuer this node only introspects for: one token, then
	// introspections of it.
	introspected := names[warm]
	_, issued := bed.formAt(t, introspected, "token", "c-"+introspected, "in-use", url.Values{"grant_type": {"client_credentials"}})
	token, _ := issued["access_token"].(string)
	introspect := func() {
		t.Helper()
		status, body := bed.formAt(t, introspected, "introspect", "c-"+introspected, "in-use", url.Values{"token": {token}})
		if status != http.StatusOK || body["active"] != true {
			t.Fatalf("introspection at %s: %d %v", introspected, status, body)
		}
	}
	introspect()
	get := func(url string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", url, resp.StatusCode)
		}
	}
	for range 2 {
		for _, name := range names {
			get(bed.srv.URL + "/issuers/" + name + "/jwks.json")
			get(bed.srv.URL + "/issuers/" + name + "/.well-known/openid-configuration")
			if status := bed.tokenStatusAt(t, name, "c-"+name, "not-the-secret"); status != http.StatusUnauthorized {
				t.Fatalf("wrong secret at %s: %d", name, status)
			}
		}
	}
	before := st.Queries()
	for _, name := range names[:warm] {
		if status := bed.tokenStatusAt(t, name, "c-"+name, "in-use"); status != http.StatusOK {
			t.Fatalf("token of %s after the scan: %d", name, status)
		}
	}
	introspect()
	if n := st.Queries() - before; n != 0 {
		t.Fatalf("%d warm tokens and an introspection after a stranger's scan of %d issuers sent %d queries, want 0", warm, issuers, n)
	}
}

// TestAColdIssuersFirstTokenWaitsForTheStoreOnce: the issuer, its keys and
// the client a token request names are read in one round trip, and the
// answer, the client or its absence, is cached for the request's own
// lookup. A request refused before client authentication (here, one
// without grant_type) reads no client: a stranger's malformed requests
// neither read nor cache clients.
func TestAColdIssuersFirstTokenWaitsForTheStoreOnce(t *testing.T) {
	ctx := context.Background()
	st := newPostgresStore(t)
	bed := newTestbed(t, withStore(st))
	names := importIssuers(t, bed, st, 3, "cold")
	bed.settle(ctx)
	for i, tc := range []struct {
		what             string
		clientID, secret string
		form             url.Values
		status           int
		statements       int64
	}{
		{"a token", "c-" + names[0], "cold", url.Values{"grant_type": {"client_credentials"}}, http.StatusOK, 3},
		{"a client the issuer does not have", "c-nobody", "cold", url.Values{"grant_type": {"client_credentials"}}, http.StatusUnauthorized, 3},
		{"no grant_type", "c-" + names[2], "cold", url.Values{}, http.StatusBadRequest, 2},
	} {
		trips, statements := st.RoundTrips(), st.Queries()
		if status, _ := bed.formAt(t, names[i], "token", tc.clientID, tc.secret, tc.form); status != tc.status {
			t.Fatalf("%s at a cold issuer: status %d, want %d", tc.what, status, tc.status)
		}
		if n, q := st.RoundTrips()-trips, st.Queries()-statements; n != 1 || q != tc.statements {
			t.Errorf("%s at a cold issuer waited %d times for %d statements; want 1 round trip of %d", tc.what, n, q, tc.statements)
		}
	}
	if status := bed.tokenStatusAt(t, names[0], "c-"+names[0], "wrong"); status != http.StatusUnauthorized {
		t.Fatalf("a wrong secret after the client was read with its issuer: %d, want 401", status)
	}
}

// TestAThrottledCallersRequestToAColdIssuerReadsNoClient: a caller past
// its failures for a client is refused before client authentication, so a
// cold load for its request reads the issuer and its keys, not the client.
func TestAThrottledCallersRequestToAColdIssuerReadsNoClient(t *testing.T) {
	ctx := context.Background()
	st := newPostgresStore(t)
	bed := newTestbed(t, withStore(st), withConfig(func(c *issuer.Config) { c.AuthFailuresPerClient = 2 }))
	name := importIssuers(t, bed, st, 1, "cold")[0]
	bed.settle(ctx)
	for range 3 {
		bed.tokenStatusAt(t, name, "c-"+name, "wrong")
	}
	// A write heard makes the issuer cold again.
	bed.issuer.Invalidate(store.Change{Kind: store.ChangeIssuer, Issuer: name})
	bed.keys.Invalidate(name)
	trips, statements := st.RoundTrips(), st.Queries()
	if status := bed.tokenStatusAt(t, name, "c-"+name, "cold"); status != http.StatusTooManyRequests {
		t.Fatalf("the throttled caller's token request: %d, want 429", status)
	}
	if n, q := st.RoundTrips()-trips, st.Queries()-statements; n != 1 || q != 2 {
		t.Fatalf("a throttled caller's request to a cold issuer waited %d times for %d statements; want 1 round trip of 2: the issuer and its keys", n, q)
	}
}

// newPostgresStore opens a migrated PostgreSQL store on a database of the
// test's own.
func newPostgresStore(t testing.TB) *postgres.Store {
	t.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

// importIssuers loads n ES256 issuers, t-00001 on, each with an active key
// and one client, c-<issuer name>, whose secret is secret, as authz-bench
// seed loads them; it returns the issuers' names.
func importIssuers(t testing.TB, bed *testbed, st *postgres.Store, n int, secret string) []string {
	t.Helper()
	ctx := context.Background()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("t-%05d", i+1)
	}
	sealed, err := bed.keys.NewFirstKeys(names, keys.ES256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ImportIssuers(ctx, n, func(i int) (store.Issuer, []store.SigningKey) {
		return store.Issuer{Name: names[i], AvailableScopes: []string{"read"}, Audience: "a", TokenLifetime: time.Minute,
			SigningAlgorithm: keys.ES256, ClientAuthenticators: []string{credential.ClientSecret}}, []store.SigningKey{sealed[i]}
	}); err != nil {
		t.Fatal(err)
	}
	stored := credential.StoredSecret(secret)
	if err := st.ImportClients(ctx, n, func(i int) store.Client {
		return store.Client{IssuerName: names[i], ID: "c-" + names[i], Scopes: []string{"read"}, Audience: "a", Enabled: true,
			Secrets: []store.Secret{{ID: "s1", Digest: stored.Digest, Hint: stored.Hint}}}
	}); err != nil {
		t.Fatal(err)
	}
	return names
}
