package issuer_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

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
			url := pgtest.NewDatabase(t)
			if err := postgres.Migrate(ctx, url); err != nil {
				t.Fatal(err)
			}
			st, err := postgres.Open(ctx, url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
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
