package realm_test

import (
	"testing"
	"time"

	"github.com/authz-dev/authz/keycloak/realm"
	"github.com/authz-dev/authz/keycloak/realm/realmtest"
)

// FuzzRealmImport feeds the parser and the translation anything: neither
// may panic or loop, and a translation that succeeds holds only clients it
// could hold, each once.
func FuzzRealmImport(f *testing.F) {
	f.Add(realmtest.New(f, "orders", 1).Export)
	f.Add([]byte(`{"realm":"a-realm","roles":{"realm":[{"name":"x","composite":true,"composites":{"realm":["x"]}}]},"users":[{"serviceAccountClientId":"c","realmRoles":["x","missing"]}],"clients":[{"clientId":"c","serviceAccountsEnabled":true,"secret":"0123456789abcdef0123"}]}`))
	f.Add([]byte(`{"realm":"a-realm","components":{"org.keycloak.keys.KeyProvider":[{"name":"k","providerId":"rsa","config":{"privateKey":["AAAA"]}}]}}`))
	f.Fuzz(func(t *testing.T, export []byte) {
		rep, err := realm.ParseBytes(export)
		if err != nil {
			return
		}
		plan, err := realm.Translate(rep, realm.Options{Now: time.Unix(1_800_000_000, 0)})
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, c := range plan.Import.Clients {
			if seen[c.ID] || c.ID == "" {
				t.Fatalf("client %q imported twice or without an id", c.ID)
			}
			seen[c.ID] = true
		}
	})
}
