package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keycloak/realm/realmtest"
	"github.com/authz-dev/authz/store/postgres"
	"github.com/authz-dev/authz/store/postgres/pgtest"
)

// countingBody records how much of a body was read.
type countingBody struct {
	r    *bytes.Reader
	read int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

// TestImportReadsNoBodyBeforeItKnowsASystemAdmin reproduces the attack
// the import's large bound invites: a stranger, or a tenant's admin,
// sending a realm-sized body. It is refused without a byte of it read.
func TestImportReadsNoBodyBeforeItKnowsASystemAdmin(t *testing.T) {
	f := newFixture(t)
	for name, tc := range map[string]struct {
		token  string
		status int
	}{
		"no token":              {"", http.StatusUnauthorized},
		"a token without admin": {f.weakToken, http.StatusForbidden},
	} {
		body := &countingBody{r: bytes.NewReader(bytes.Repeat([]byte(" "), 32<<20))}
		req := httptest.NewRequest(http.MethodPost, api.ImportPath, body)
		req.Header.Set("Content-Type", "application/json")
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		f.apiHandler.ServeHTTP(rec, req)
		if rec.Code != tc.status || body.read != 0 {
			t.Errorf("%s: %d after reading %d bytes, want %d after none", name, rec.Code, body.read, tc.status)
		}
	}
}

// TestImportRefusalsChangeNothing: every way an export cannot be imported
// whole is refused with a problem that says why, and nothing is written.
func TestImportRefusalsChangeNothing(t *testing.T) {
	f := newFixture(t)
	r := realmtest.New(t, "orders", 1)
	var doc map[string]any
	if err := json.Unmarshal(r.Export, &doc); err != nil {
		t.Fatal(err)
	}
	clients := doc["clients"].([]any)
	for _, c := range clients {
		if c := c.(map[string]any); c["clientId"] == realmtest.PartnerJWKS {
			c["attributes"].(map[string]any)["jwks.url"] = "https://169.254.169.254/latest/meta-data"
		}
	}
	metadataURL, _ := json.Marshal(doc)
	before := snapshot(t, f.store)
	for name, tc := range map[string]struct {
		body   string
		query  string
		status int
		says   string
	}{
		"truncated":                       {string(r.Export[:len(r.Export)/2]), "", 400, "ends too early"},
		"not a realm":                     {`{"clients": []}`, "", 400, `no "realm"`},
		"a jwks.url to the metadata":      {string(metadataURL), "", 422, "jwks.url"},
		"an issuer name authz cannot use": {string(r.Export), "?issuer=" + url.QueryEscape("Not A Name"), 422, "--issuer"},
	} {
		resp, body := f.do(t, call{method: http.MethodPost, path: "/imports/keycloak" + tc.query, body: tc.body, token: f.token})
		if resp.StatusCode != tc.status || !strings.Contains(body["detail"].(string), tc.says) {
			t.Errorf("%s: %d %v, want %d saying %q", name, resp.StatusCode, body["detail"], tc.status, tc.says)
		}
		if strings.Contains(body["detail"].(string), r.Secrets[realmtest.Billing]) {
			t.Errorf("%s: the problem quotes a secret", name)
		}
	}
	if after := snapshot(t, f.store); !reflect.DeepEqual(before, after) {
		t.Error("a refused import changed the store")
	}
	f.must(t, http.StatusOK, call{method: http.MethodPost, path: "/imports/keycloak", body: string(r.Export), token: f.token})
	f.must(t, http.StatusCreated, call{method: http.MethodPut, path: "/issuers/payments", body: `{"audience": "a"}`, token: f.token})
	for name, tc := range map[string]struct {
		path   string
		status int
		says   string
	}{
		// A realm named system, or imported as it, would replace the
		// server's own admins and their signing key.
		"the system issuer": {"/imports/keycloak?issuer=system", 422, "holds this server's admins"},
		// An issuer of the operator's own, served natively.
		"a native issuer": {"/imports/keycloak?issuer=payments", 409, "/issuers/payments"},
		// The same file again, without leave to update what exists.
		"an issuer that exists": {"/imports/keycloak", 409, "--update"},
		// The same realm under a second name: its keys are the first's,
		// and a kid names one key of one issuer.
		"the same keys under a second issuer": {"/imports/keycloak?issuer=orders-copy", 409, "conflicts"},
	} {
		before := snapshot(t, f.store)
		resp, body := f.do(t, call{method: http.MethodPost, path: tc.path, body: string(r.Export), token: f.token})
		if resp.StatusCode != tc.status || !strings.Contains(body["detail"].(string), tc.says) {
			t.Errorf("%s: %d %v, want %d saying %q", name, resp.StatusCode, body["detail"], tc.status, tc.says)
		}
		if after := snapshot(t, f.store); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: the store changed", name)
		}
	}
}

// TestReimportMakesTheFilesSecretsAndKeysTheClients: a later export, in
// which Keycloak regenerated a secret and signs with a new key, replaces
// the old secret, and publishes the new key to sign after the publication
// lead while the imported key goes on signing.
func TestReimportMakesTheFilesSecretsAndKeysTheClients(t *testing.T) {
	f := newFixture(t)
	r := realmtest.New(t, "orders", 0)
	f.must(t, http.StatusOK, call{method: http.MethodPost, path: "/imports/keycloak", body: string(r.Export), token: f.token})
	later := realmtest.New(t, "orders", 0)
	var doc map[string]any
	_ = json.Unmarshal(later.Export, &doc)
	for _, c := range doc["clients"].([]any) { // the same clients, ids and service accounts as the first export
		c := c.(map[string]any)
		if id, ok := r.InternalIDs[c["clientId"].(string)]; ok {
			c["id"] = id
		}
	}
	for _, u := range doc["users"].([]any) {
		u := u.(map[string]any)
		if id, ok := r.ServiceAccounts[fmt.Sprint(u["serviceAccountClientId"])]; ok {
			u["id"] = id
		}
	}
	export, _ := json.Marshal(doc)
	_, body := f.must(t, http.StatusOK, call{method: http.MethodPost, path: "/imports/keycloak?update=true", body: string(export), token: f.token})
	ctx := context.Background()
	billing, err := f.store.GetClient(ctx, "orders", realmtest.Billing)
	if err != nil {
		t.Fatal(err)
	}
	if len(billing.Secrets) != 1 || !bytes.Equal(billing.Secrets[0].Digest, credentialDigest(later.Secrets[realmtest.Billing])) {
		t.Errorf("billing keeps %d secrets after Keycloak regenerated its secret; want only the new one (%v)", len(billing.Secrets), body["summary"])
	}
	states := map[string]string{}
	keys, _ := f.store.ListSigningKeys(ctx, "orders")
	for _, k := range keys {
		states[k.ID] = string(k.State)
	}
	if states[r.Keys[0].KID] != "active" || states[later.Keys[0].KID] != "pending" {
		t.Errorf("key states %v: the imported key signs until the new one's publication lead has passed", states)
	}
}

// BenchmarkImportKeycloakRealm10000Clients imports a realm of 10,000
// secret clients into PostgreSQL through the admin API, as `authz import
// keycloak` does: parse, translate, seal, one transaction. "again" is
// the same file a second time, which changes nothing.
func BenchmarkImportKeycloakRealm10000Clients(b *testing.B) {
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(b)
	if err := postgres.Migrate(ctx, dbURL); err != nil {
		b.Fatal(err)
	}
	st, err := postgres.Open(ctx, dbURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(st.Close)
	f := newFixtureOn(b, st)
	importOnce := func(b *testing.B, export []byte) {
		resp, body := f.do(b, call{method: http.MethodPost, path: "/imports/keycloak", body: string(export), token: f.token})
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("import: %d %v", resp.StatusCode, body)
		}
	}
	b.Run("first", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			r := realmtest.New(b, fmt.Sprintf("orders-%03d", i), 10000)
			b.StartTimer()
			importOnce(b, r.Export)
		}
	})
	r := realmtest.New(b, "orders-again", 10000)
	importOnce(b, r.Export)
	b.Run("again", func(b *testing.B) {
		for b.Loop() {
			importOnce(b, r.Export)
		}
	})
}

func credentialDigest(secret string) []byte { return credential.SecretDigest(secret) }
