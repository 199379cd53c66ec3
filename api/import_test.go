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
	// The same realm under a second name: its keys are the first's, and a
	// kid names one key of one issuer.
	f.must(t, http.StatusOK, call{method: http.MethodPost, path: "/imports/keycloak", body: string(r.Export), token: f.token})
	resp, body := f.do(t, call{method: http.MethodPost, path: "/imports/keycloak?issuer=orders-copy", body: string(r.Export), token: f.token})
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("the same keys under a second issuer: %d %v", resp.StatusCode, body)
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
