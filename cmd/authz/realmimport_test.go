package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
	"github.com/authz-dev/authz/keycloak/realm/realmtest"
)

// keycloakServiceAccountToken signs, with the realm's first key and its
// Keycloak kid, the access token Keycloak writes for billing's service
// account (client_credentials, default client scopes, Keycloak 26): the
// claims the README lists side by side with authz's.
func keycloakServiceAccountToken(t *testing.T, r realmtest.Realm, issuerURL string) (string, map[string]any) {
	t.Helper()
	now := time.Now().Unix()
	claims := map[string]any{
		"exp": now + 600, "iat": now, "jti": "5f0b8a54-7c1e-4a55-9d43-0f1e2d3c4b5a",
		"iss": issuerURL, "aud": []string{realmtest.OrdersAPI, "account"},
		"sub": r.ServiceAccounts[realmtest.Billing], "typ": "Bearer", "azp": realmtest.Billing, "acr": "1",
		"realm_access": map[string]any{"roles": []string{"default-roles-" + r.Name, "offline_access", "uma_authorization"}},
		"resource_access": map[string]any{
			realmtest.OrdersAPI: map[string]any{"roles": []string{"read"}},
			"account":           map[string]any{"roles": []string{"manage-account", "manage-account-links", "view-profile"}},
		},
		"scope": "profile email", "clientHost": "127.0.0.1", "email_verified": false,
		"preferred_username": "service-account-" + realmtest.Billing, "clientAddress": "127.0.0.1", "client_id": realmtest.Billing,
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: r.Keys[0].Private, KeyID: r.Keys[0].KID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	runLog.remember("a token Keycloak signed", raw)
	return raw, claims
}

// keycloakJWKS is the JWKS the realm's Keycloak published, as a gateway
// cached it before the cut-over.
func keycloakJWKS(r realmtest.Realm) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range r.Keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: k.KID, Algorithm: "RS256", Use: "sig"})
	}
	return set
}

// normalizedClaims makes two claim sets comparable: lists whose order
// carries no meaning (aud, roles, scope) sorted, and the claims every
// token has of its own (jti, iat, exp) dropped.
func normalizedClaims(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	delete(claims, "jti")
	delete(claims, "iat")
	delete(claims, "exp")
	var walk func(v any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case []any:
			out := make([]string, 0, len(v))
			for _, e := range v {
				out = append(out, e.(string))
			}
			slices.Sort(out)
			return out
		case map[string]any:
			for k, e := range v {
				v[k] = walk(e)
			}
		}
		return v
	}
	walk(claims)
	if s, ok := claims["scope"].(string); ok {
		scopes := strings.Fields(s)
		slices.Sort(scopes)
		claims["scope"] = scopes
	}
	return claims
}

// dumpDatabase reads every row an import could write, in a stable order,
// so that two dumps are equal exactly when nothing changed.
func dumpDatabase(t *testing.T, databaseURL string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var b strings.Builder
	for _, table := range []string{"issuers", "clients", "client_secrets", "roles", "role_mappings", "signing_keys"} {
		var rows string
		if err := conn.QueryRow(ctx, `select coalesce(string_agg(t::text, E'\n' order by t::text), '') from `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		b.WriteString(table + ":\n" + rows + "\n")
	}
	return b.String()
}

// TestMovingAKeycloakRealmKeepsSecretsKeysAndClaims is the cut-over: a
// token Keycloak signed just before verifies after the import with the
// jwt-keycloak rules and with go-oidc at the old discovery URL, every
// imported secret client gets a token with its old secret through the
// portal tutorial's form post, the new token's claims are the old token's
// but for jti, iat and exp, and a gateway that cached Keycloak's JWKS
// meets no unknown kid. A dry run and a corrupted file change nothing, a
// second import reports everything unchanged, and no secret or key from
// the file reaches any log (the run's log scan).
func TestMovingAKeycloakRealmKeepsSecretsKeysAndClaims(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := realmtest.New(t, "orders", 3)
	for id, s := range r.Secrets {
		runLog.remember("the Keycloak secret of "+id, s)
	}
	for _, fragment := range r.PrivatePEMs() {
		runLog.remember("a private key of the realm export", fragment)
	}
	databaseURL, _, env := postgresEnv(t)
	addr := freeLoopbackAddr(t)
	issuerURL := "http://" + addr + "/realms/" + r.Name
	oldToken, oldClaims := keycloakServiceAccountToken(t, r, issuerURL)
	cached := keycloakJWKS(r)

	p := startPostgresServer(t, env, "--public-addr", addr, "--public-url", "http://"+addr)
	admin := p.api(t)
	empty := dumpDatabase(t, databaseURL)

	// Through the CLI: the dry run reports and writes nothing.
	c := newInProcess(t)
	c.ok("login", "--admin-url", p.adminURL, "--public-url", p.publicURL, "--client-id", p.admin.clientID, "--client-secret", p.admin.clientSecret)
	file := filepath.Join(t.TempDir(), "realm-export.json")
	if err := os.WriteFile(file, r.Export, 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.ok("import", "keycloak", "-f", file, "--dry-run")
	for _, want := range []string{"would be created", "client   web-app", "would be skipped", "key      rsa-enc-generated"} {
		if !strings.Contains(strings.Join(strings.Fields(out), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("the dry run does not say %q:\n%s", want, out)
		}
	}
	if got := dumpDatabase(t, databaseURL); got != empty {
		t.Fatalf("the dry run changed the database:\n%s", got)
	}

	var report api.ImportResponse
	c.json(&report, "import", "keycloak", "-f", file)
	if report.Issuer != r.Name || report.IssuerURL != issuerURL || report.Summary.Created == 0 || report.Summary.Updated != 0 {
		t.Fatalf("import report: %+v", report)
	}
	for _, it := range report.Items {
		if it.Kind == "key" && it.Name == r.Keys[0].KID && it.Detail != "active" {
			t.Errorf("Keycloak's active key is %s here", it.Detail)
		}
	}

	// The token Keycloak signed before the cut-over verifies.
	verifyAsKeycloakGateway(t, issuerURL, oldToken, realmtest.Billing)
	provider, err := oidc.NewProvider(ctx, issuerURL)
	if err != nil {
		t.Fatalf("discovery at Keycloak's URL: %v", err)
	}
	if _, err := provider.Verifier(&oidc.Config{SkipClientIDCheck: true}).Verify(ctx, oldToken); err != nil {
		t.Fatalf("go-oidc refuses Keycloak's token after the import: %v", err)
	}

	// Every enabled secret client gets a token with its old secret, the
	// tutorial's way; the disabled one does not.
	var newToken string
	for id, secret := range r.Secrets {
		form := url.Values{"client_id": {id}, "client_secret": {secret}, "grant_type": {"client_credentials"}, "scopes": {"openid"}}
		resp, err := http.PostForm(issuerURL+"/protocol/openid-connect/token", form)
		if err != nil {
			t.Fatal(err)
		}
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		runLog.remember("an access token", tok.AccessToken)
		switch {
		case id == realmtest.Reports && resp.StatusCode != http.StatusUnauthorized:
			t.Errorf("the disabled client got %d", resp.StatusCode)
		case id != realmtest.Reports && resp.StatusCode != http.StatusOK:
			t.Errorf("%s with its Keycloak secret: %d", id, resp.StatusCode)
		case id == realmtest.Billing:
			newToken = tok.AccessToken
		}
	}
	if newToken == "" {
		t.Fatal("billing got no token")
	}
	newClaims := verifyAsKeycloakGateway(t, issuerURL, newToken, realmtest.Billing)
	if newClaims.Subject != r.ServiceAccounts[realmtest.Billing] {
		t.Errorf("sub = %q, want the service account's id", newClaims.Subject)
	}

	// The same claims as Keycloak's, but for jti, iat and exp.
	oldJSON, _ := json.Marshal(oldClaims)
	jws, err := jose.ParseSigned(newToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	want, got := normalizedClaims(t, oldJSON), normalizedClaims(t, jws.UnsafePayloadWithoutVerification())
	wantJSON, _ := json.Marshal(want)
	gotJSON, _ := json.Marshal(got)
	if string(wantJSON) != string(gotJSON) {
		t.Errorf("claims differ from Keycloak's:\nKeycloak %s\nauthz    %s", wantJSON, gotJSON)
	}

	// A gateway that cached Keycloak's JWKS verifies authz's token.
	if kid := jws.Signatures[0].Header.KeyID; kid != r.Keys[0].KID {
		t.Errorf("authz signs with kid %q, not Keycloak's active key %q", kid, r.Keys[0].KID)
	}
	verified := false
	for _, k := range cached.Key(jws.Signatures[0].Header.KeyID) {
		if _, err := jws.Verify(k); err == nil {
			verified = true
		}
	}
	if !verified {
		t.Error("a gateway with Keycloak's cached JWKS cannot verify authz's token")
	}

	// The same file again changes nothing.
	before := dumpDatabase(t, databaseURL)
	if _, err := admin.ImportKeycloak(ctx, r.Export, client.ImportOptions{}); !client.HasStatus(err, http.StatusConflict) {
		t.Errorf("a second import without --update: %v, want 409", err)
	}
	again, err := admin.ImportKeycloak(ctx, r.Export, client.ImportOptions{Update: true})
	if err != nil {
		t.Fatal(err)
	}
	if again.Summary.Created+again.Summary.Updated != 0 {
		t.Errorf("a second import changed %d created, %d updated: %+v", again.Summary.Created, again.Summary.Updated, again.Items)
	}
	if dumpDatabase(t, databaseURL) != before {
		t.Error("a second import changed the database")
	}

	// A corrupted file imports nothing, and says why without quoting it.
	for name, doc := range map[string][]byte{
		"truncated":       r.Export[:len(r.Export)*2/3],
		"a masked secret": []byte(strings.Replace(string(r.Export), r.Secrets[realmtest.Billing], "**********", 1)),
	} {
		_, err := admin.ImportKeycloak(ctx, []byte(strings.Replace(string(doc), `"realm": "orders"`, `"realm": "orders-copy"`, 1)), client.ImportOptions{})
		if !client.HasStatus(err, http.StatusBadRequest) && !client.HasStatus(err, http.StatusUnprocessableEntity) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
		for _, s := range r.Secrets {
			if err != nil && strings.Contains(err.Error(), s) {
				t.Errorf("%s: the refusal quotes a secret", name)
			}
		}
		if dumpDatabase(t, databaseURL) != before {
			t.Errorf("%s: the database changed", name)
		}
	}
}
