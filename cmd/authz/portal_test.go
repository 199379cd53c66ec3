package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
	"github.com/authz-dev/authz/credential"
)

// portalDir holds the Node clients of the portal tests, installed by
// .ci/ensure-test-tools from its package-lock.json.
const portalDir = "testdata/portal"

// needNode makes sure Node and the pinned npm packages are installed.
func needNode(t *testing.T) {
	t.Helper()
	_, err := exec.LookPath("node")
	_, modErr := os.Stat(filepath.Join(portalDir, "node_modules", "@keycloak", "keycloak-admin-client", "package.json"))
	needTool(t, err == nil && modErr == nil, "node with testdata/portal's npm packages")
}

// runNode runs one of the portal scripts and returns its last line of
// output, which is JSON.
func runNode(t *testing.T, script string, env map[string]string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script)
	cmd.Dir = portalDir
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s%s", script, err, stderr.String(), stdout.String())
	}
	t.Logf("node %s:\n%s", script, stderr.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var out map[string]string
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("node %s printed %q\n%s", script, stdout.String(), stderr.String())
	}
	for k, v := range out {
		if k == "token" || k == "secret" || strings.HasSuffix(k, "Token") {
			runLog.remember("a credential of a portal script: "+k, v)
		}
	}
	return out
}

// keycloakRealm sets up what an operator sets up for the portal: a
// Keycloak-style issuer, the portal's service account of it with the
// right to manage its clients, and an initial access token.
type keycloakRealm struct {
	name, issuerURL string
	sa              api.CreatedClientResponse
	iat             string
}

func newKeycloakRealm(t *testing.T, p *process, name string) keycloakRealm {
	t.Helper()
	p.putIssuer(t, name, api.IssuerRequest{
		URLStyle: "keycloak", Audience: "https://" + name + ".example", AvailableScopes: []string{"read", "write"},
		SigningAlgorithm: "RS256", ClientAuthenticator: api.AuthenticatorList{"client-secret", "client-jwt", "client-jwt-jwks-url"},
	})
	sa := p.createClient(t, name, api.CreateClientRequest{ClientID: "portal-sa", Name: "portal service account",
		Scopes: []string{credential.ManageClientsScope}})
	count := 10
	iat, err := p.api(t).CreateInitialAccessToken(context.Background(), name, api.CreateInitialAccessTokenRequest{ExpiresIn: 3600, Count: &count})
	if err != nil {
		t.Fatal(err)
	}
	runLog.remember("an initial access token", iat.Token)
	return keycloakRealm{name: name, issuerURL: p.publicURL + "/realms/" + name, sa: sa, iat: iat.Token}
}

// consumerKey is a consumer's key pair for client-jwt, with its JWKS.
type consumerKey struct {
	publicPEM, privatePEM string
	jwks                  []byte
}

func newConsumerKey(t *testing.T) consumerKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "consumer-1", Use: "sig", Algorithm: "RS256"}}})
	private := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	runLog.remember("a consumer's private key", private)
	return consumerKey{
		publicPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})),
		privatePEM: private,
		jwks:       jwks,
	}
}

// TestThePortalsSequenceWithKeycloaksAdminClient drives a real authz on
// PostgreSQL through the portal's whole identity-provider sequence with
// Keycloak's own admin client (@keycloak/keycloak-admin-client 26): in
// managed mode for each client authentication the portal offers, and in
// iat mode. Each consumer then gets a token as the portal's tutorial
// shows, and a gateway with Kong's jwt-keycloak rules accepts it.
func TestThePortalsSequenceWithKeycloaksAdminClient(t *testing.T) {
	t.Parallel()
	needNode(t)
	key := newConsumerKey(t)
	jwksServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(key.jwks)
	}))
	defer jwksServer.Close()
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, env, "--allow-private-jwks-uri")
	realm := newKeycloakRealm(t, p, "gateway")
	for _, tc := range []struct {
		name, mode, authenticator string
		roles                     []string
		removeWith                string
	}{
		{"managed, client-secret", "managed", "client-secret", []string{"read-role", "write-role"}, "registration"},
		{"managed, client-jwt with a public key", "managed", "client-jwt", []string{"read-role"}, "admin"},
		{"managed, client-jwt with a JWKS URL", "managed", "client-jwt-jwks-url", nil, ""},
		{"iat, client-secret", "iat", "client-secret", []string{"write-role"}, "registration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			consumer := "consumer-" + strings.NewReplacer(", ", "-", " ", "-").Replace(tc.name)
			out := runNode(t, "portal.mjs", map[string]string{
				"ISSUER_URL": realm.issuerURL, "MODE": tc.mode, "AUTHENTICATOR": tc.authenticator,
				"SA_CLIENT_ID": realm.sa.ClientID, "SA_CLIENT_SECRET": realm.sa.ClientSecret, "IAT": realm.iat,
				"PUBLIC_KEY_PEM": key.publicPEM, "PRIVATE_KEY_PEM": key.privatePEM, "JWKS_URL": jwksServer.URL,
				"CONSUMER_ID": consumer, "AUDIENCE": "https://api.gateway.example",
				"DEFAULT_SCOPES": "read", "ROLES": strings.Join(tc.roles, " "), "REMOVE_WITH": tc.removeWith,
			})
			claims := verifyAsKeycloakGateway(t, realm.issuerURL, out["token"], consumer)
			if claims.Scope != "read" {
				t.Errorf("scope = %q, want the default scope read", claims.Scope)
			}
			got := claims.ResourceAccess[realm.sa.ClientID].Roles
			slices.Sort(got)
			if want := slices.Sorted(slices.Values(tc.roles)); !slices.Equal(got, want) {
				t.Errorf("resource_access.%s.roles = %v, want %v", realm.sa.ClientID, got, want)
			}
			if !slices.Contains(claims.Audience, "https://api.gateway.example") {
				t.Errorf("aud = %v lacks the audience mapper's value", claims.Audience)
			}
		})
	}
}

// keycloakClaims are what a gateway reads from a Keycloak token.
type keycloakClaims struct {
	credential.AccessClaims
}

// verifyAsKeycloakGateway checks a token as Kong's jwt-keycloak plugin
// does: the issuer's discovery document, found from the token's iss, names
// a JWKS of RSA keys only (the plugin converts each key's n and e); the
// token is RS256, signed by one of them, unexpired, from the allowed
// issuer, and names the consumer in azp.
func verifyAsKeycloakGateway(t *testing.T, allowedIssuer, raw, consumer string) keycloakClaims {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("the token is not an RS256 JWS: %v", err)
	}
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil || unverified.Issuer != allowedIssuer {
		t.Fatalf("iss = %q, want the allowed issuer %q (%v)", unverified.Issuer, allowedIssuer, err)
	}
	var discovery struct {
		JWKSURI string `json:"jwks_uri"`
	}
	getJSON(t, unverified.Issuer+"/.well-known/openid-configuration", &discovery)
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	getJSON(t, discovery.JWKSURI, &set)
	var keys jose.JSONWebKeySet
	getJSON(t, discovery.JWKSURI, &keys)
	if len(set.Keys) == 0 {
		t.Fatal("the JWKS is empty")
	}
	for _, k := range set.Keys {
		if k["kty"] != "RSA" || k["n"] == nil || k["e"] == nil {
			t.Fatalf("the JWKS holds a key the plugin cannot convert: %v", k)
		}
	}
	var payload []byte
	for _, k := range keys.Keys {
		if payload, err = jws.Verify(k); err == nil {
			break
		}
	}
	if payload == nil {
		t.Fatal("no key of the JWKS verifies the token")
	}
	var claims keycloakClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if time.Unix(claims.Expiry, 0).Before(time.Now()) {
		t.Fatal("the token has expired")
	}
	if claims.AuthorizedParty != consumer {
		t.Fatalf("azp = %q, want %q", claims.AuthorizedParty, consumer)
	}
	if claims.Type != "Bearer" || claims.PreferredUsername != credential.ServiceAccountUsername(consumer) {
		t.Fatalf("typ %q, preferred_username %q: not a Keycloak service account's token", claims.Type, claims.PreferredUsername)
	}
	return claims
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// TestDynamicRegistrationWithOpenIDClient registers clients with
// openid-client's RFC 7591 support and manages them by RFC 7592, by hand;
// every refusal the RFCs name (a used-up or expired initial access token,
// a wrong or rotated-out registration access token, a grant other than
// client_credentials) answers with the RFC's error and changes nothing.
func TestDynamicRegistrationWithOpenIDClient(t *testing.T) {
	t.Parallel()
	needNode(t)
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, env)
	realm := newKeycloakRealm(t, p, "registry")
	ctx := context.Background()
	one, expiring := 1, 1
	oneUse, err := p.api(t).CreateInitialAccessToken(ctx, realm.name, api.CreateInitialAccessTokenRequest{Count: &one})
	if err != nil {
		t.Fatal(err)
	}
	expired, err := p.api(t).CreateInitialAccessToken(ctx, realm.name, api.CreateInitialAccessTokenRequest{ExpiresIn: 1, Count: &expiring})
	if err != nil {
		t.Fatal(err)
	}
	runLog.remember("an initial access token", oneUse.Token)
	runLog.remember("an initial access token", expired.Token)
	expiresAt, _ := time.Parse(time.RFC3339, expired.ExpiresAt)
	time.Sleep(time.Until(expiresAt) + 100*time.Millisecond)

	out := runNode(t, "rfc7591.mjs", map[string]string{
		"ISSUER_URL": realm.issuerURL, "IAT": realm.iat, "IAT_ONE_USE": oneUse.Token, "IAT_EXPIRED": expired.Token,
	})
	if n := len(strings.Split(out["refusals"], ",")); n != 12 {
		t.Fatalf("%d refusals checked: %s", n, out["refusals"])
	}
	// Only successful registrations spent uses: two of the ten, the one
	// of the one-use token, none of the expired one.
	remaining := map[string]int{}
	tokens, err := p.api(t).ListInitialAccessTokens(ctx, realm.name)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		remaining[tok.ID] = tok.RemainingCount
	}
	if remaining[oneUse.ID] != 0 || remaining[expired.ID] != 1 || len(tokens) != 3 {
		t.Fatalf("remaining uses: %v", remaining)
	}
	for id, n := range remaining {
		if id != oneUse.ID && id != expired.ID && n != 8 {
			t.Fatalf("the many-use token has %d uses left, want 8", n)
		}
	}
	clients, err := p.api(t).ListClients(ctx, realm.name, client.ClientFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range clients {
		names = append(names, c.Name)
	}
	slices.Sort(names)
	if want := []string{"first", "portal service account", "rfc7591 jwt client"}; !slices.Equal(names, want) {
		t.Fatalf("clients after the run: %v, want %v", names, want)
	}
}
