package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
	"github.com/authz-dev/authz/credential"
)

// inProcess runs CLI commands in the test process, with an environment of
// its own: quick enough to try every verb.
type inProcess struct {
	t   *testing.T
	env map[string]string
	in  string
}

func newInProcess(t *testing.T) *inProcess {
	return &inProcess{t: t, env: map[string]string{"AUTHZ_CONFIG": filepath.Join(t.TempDir(), "config.json")}}
}

func (c *inProcess) exec(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, func(k string) string { return c.env[k] }, strings.NewReader(c.in), &out, &errOut)
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed and returns what it printed.
func (c *inProcess) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.exec(args...)
	if code != 0 {
		c.t.Fatalf("authz %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// json runs a command with -o json and decodes what it printed.
func (c *inProcess) json(into any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), into); err != nil {
		c.t.Fatalf("authz %s -o json printed no JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestEveryAdminVerbDoesWhatTheTypedClientSees(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="})
	p.knowAdmin(t)
	ctx := context.Background()
	admin := p.api(t)
	c := newInProcess(t)
	if out := c.ok("login", "--admin-url", p.adminURL, "--public-url", p.publicURL,
		"--client-id", p.admin.clientID, "--client-secret", p.admin.clientSecret); !strings.Contains(out, "Logged in") {
		t.Fatalf("login printed %q", out)
	}

	// apply --dry-run writes nothing; apply writes; the same file again
	// changes nothing.
	file := filepath.Join(t.TempDir(), "payments.yaml")
	if err := os.WriteFile(file, []byte(lifecycleYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("apply", "-f", file, "--dry-run"); !strings.Contains(out, "CredentialIssuer/payments would be created") {
		t.Fatalf("dry run printed:\n%s", out)
	}
	if _, err := admin.GetIssuer(ctx, "payments"); !client.IsNotFound(err) {
		t.Fatalf("the dry run created the issuer: %v", err)
	}
	var applied []applyResult
	c.json(&applied, "apply", "-f", file)
	runLog.remember("client_secret", applied[1].ClientSecret)
	if iss, err := admin.GetIssuer(ctx, "payments"); err != nil || !slices.Equal(iss.AvailableScopes, []string{"read", "write"}) {
		t.Fatalf("after apply: %+v, %v", iss, err)
	}

	// -o yaml prints documents that apply takes back unchanged.
	for _, args := range [][]string{{"issuers", "get", "payments"}, {"issuers", "list"}, {"clients", "list", "--issuer", "payments"}} {
		c.in = c.ok(append(args, "-o", "yaml")...)
		var results []applyResult
		c.json(&results, "apply", "-f", "-")
		for _, r := range results {
			if r.Result != api.ResultUnchanged {
				t.Fatalf("%v -o yaml applied back: %+v\n%s", args, results, c.in)
			}
		}
	}
	c.in = ""

	// clients create, get, list, disable, enable.
	var created api.CreatedClientResponse
	c.json(&created, "clients", "create", "--issuer", "payments", "--name", "Reports", "--scopes", "read", "--roles", "viewer", "--token-lifetime", "2m")
	runLog.remember("client_secret", created.ClientSecret)
	got, err := admin.GetClient(ctx, "payments", created.ClientID)
	if err != nil || got.Name != "Reports" || got.TokenLifetime != 120 || !slices.Equal(got.Roles, []string{"viewer"}) {
		t.Fatalf("created client: %+v, %v", got, err)
	}
	var shown api.ClientResponse
	c.json(&shown, "clients", "get", "--issuer", "payments", created.ClientID)
	if shown.ClientID != created.ClientID {
		t.Fatalf("get = %+v", shown)
	}
	c.ok("clients", "disable", "--issuer", "payments", created.ClientID)
	if got, _ := admin.GetClient(ctx, "payments", created.ClientID); got.Enabled {
		t.Fatal("disable left the client enabled")
	}
	var disabled []api.ClientResponse
	c.json(&disabled, "clients", "list", "--issuer", "payments", "--enabled", "false")
	if len(disabled) != 1 || disabled[0].ClientID != created.ClientID {
		t.Fatalf("disabled clients = %+v", disabled)
	}
	c.ok("clients", "enable", "--issuer", "payments", created.ClientID)
	if got, _ := admin.GetClient(ctx, "payments", created.ClientID); !got.Enabled {
		t.Fatal("enable left the client disabled")
	}

	// token reuses the public URL login saved.
	var tok credential.TokenResponse
	c.json(&tok, "token", "--issuer", "payments", "--client-id", created.ClientID, "--client-secret", created.ClientSecret, "--scope", "read")
	runLog.remember("an access token", tok.AccessToken)
	if tok.Scope != "read" || tok.ExpiresIn != 120 {
		t.Fatalf("token = %+v", tok)
	}

	// Secrets: rotate, list, revoke.
	var rotated map[string]string
	c.json(&rotated, "clients", "rotate-secret", "--issuer", "payments", created.ClientID, "--grace", "0s")
	runLog.remember("client_secret", rotated["clientSecret"])
	secrets, err := admin.ListSecrets(ctx, "payments", created.ClientID)
	if err != nil || len(secrets) != 2 {
		t.Fatalf("secrets after rotation: %+v, %v", secrets, err)
	}
	var listedSecrets []api.SecretResponse
	c.json(&listedSecrets, "clients", "secrets", "--issuer", "payments", created.ClientID)
	if len(listedSecrets) != 2 || strings.Contains(c.ok("clients", "secrets", "--issuer", "payments", created.ClientID), rotated["clientSecret"]) {
		t.Fatalf("secrets listing: %+v", listedSecrets)
	}
	c.ok("clients", "revoke-secret", "--issuer", "payments", created.ClientID, rotated["secretId"])
	if secrets, _ := admin.ListSecrets(ctx, "payments", created.ClientID); len(secrets) != 1 {
		t.Fatalf("after revoke-secret: %+v", secrets)
	}

	// Signed-JWT registration: generate-key, then set-jwks-uri replaces it.
	var key api.GeneratedKey
	c.json(&key, "clients", "generate-key", "--issuer", "payments", created.ClientID, "--algorithm", "ES256")
	runLog.remember("a generated private key", key.PrivateKeyPEM)
	if got, _ := admin.GetClient(ctx, "payments", created.ClientID); !bytes.Contains(got.JWK, []byte(key.KID)) {
		t.Fatalf("generate-key registered %s", got.JWK)
	}
	c.ok("clients", "set-jwks-uri", "--issuer", "payments", created.ClientID, "--jwks-uri", "https://consumer.example.test/jwks.json")
	if got, _ := admin.GetClient(ctx, "payments", created.ClientID); got.JWKSURI != "https://consumer.example.test/jwks.json" || len(got.JWK) != 0 {
		t.Fatalf("set-jwks-uri: %+v", got)
	}

	// audit names every write above, newest first.
	var entries []api.AuditEntryResponse
	c.json(&entries, "audit", "--limit", "3")
	if len(entries) != 3 || entries[0].Action != "client.update" || entries[0].Actor != p.admin.clientID {
		t.Fatalf("audit = %+v", entries)
	}

	// Deletions.
	c.ok("clients", "delete", "--issuer", "payments", created.ClientID)
	if _, err := admin.GetClient(ctx, "payments", created.ClientID); !client.IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
	c.ok("issuers", "delete", "payments", "--cascade")
	if _, err := admin.GetIssuer(ctx, "payments"); !client.IsNotFound(err) {
		t.Fatalf("after issuers delete: %v", err)
	}
}

// TestHelpNeverFails asks every command and verb for help: it is printed,
// and nothing is required first (not a login, not --issuer).
func TestHelpNeverFails(t *testing.T) {
	t.Parallel()
	c := newInProcess(t)
	var walk func(cmd *cobra.Command)
	var paths [][]string
	walk = func(cmd *cobra.Command) {
		paths = append(paths, strings.Fields(cmd.CommandPath())[1:])
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk((&cli{getenv: func(string) string { return "" }}).rootCommand())
	for _, path := range paths {
		for _, flag := range []string{"-h", "--help"} {
			code, out, errOut := c.exec(append(slices.Clone(path), flag)...)
			if code != 0 || !strings.Contains(out, "Usage:") || errOut != "" {
				t.Errorf("authz %s %s: exit %d\n%s%s", strings.Join(path, " "), flag, code, out, errOut)
			}
		}
	}
	// A group without a verb shows its help too.
	for _, group := range []string{"clients", "keys", "issuers"} {
		if code, out, _ := c.exec(group); code != 0 || !strings.Contains(out, "Available Commands:") {
			t.Errorf("authz %s: exit %d\n%s", group, code, out)
		}
	}
	// Each verb's help lists its own flags, not every verb's.
	if out := c.ok("clients", "create", "-h"); !strings.Contains(out, "--scopes") || strings.Contains(out, "--jwk-file") {
		t.Errorf("clients create -h:\n%s", out)
	}
}

func TestUsageMistakesExitTwoAndSuggest(t *testing.T) {
	t.Parallel()
	c := newInProcess(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"isuers", "list"}, "Did you mean this?"},
		{[]string{"clients", "craete"}, "Did you mean this?"},
		{[]string{"clients", "list"}, "--issuer (or $AUTHZ_ISSUER) is required"},
		{[]string{"issuers", "get"}, "want NAME"},
		{[]string{"issuers", "list", "-o", "xml"}, "--output must be table, json or yaml"},
		{[]string{"serve", "--publc-addr", ":1"}, "unknown flag: --publc-addr"},
	} {
		code, _, errOut := c.exec(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("authz %s: exit %d, stderr:\n%s", strings.Join(tc.args, " "), code, errOut)
		}
	}
	if code, _, errOut := c.exec("issuers", "list"); code != 1 || !strings.Contains(errOut, "not logged in") {
		t.Errorf("issuers list before login: exit %d\n%s", code, errOut)
	}
}

func TestCompletionScriptsForEveryShell(t *testing.T) {
	t.Parallel()
	c := newInProcess(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := c.ok("completion", shell); !strings.Contains(out, "authz") || len(out) < 500 {
			t.Errorf("completion %s printed %d bytes", shell, len(out))
		}
	}
	// Completing a verb name works without a server.
	if out := c.ok("__complete", "clients", "rot"); !strings.Contains(out, "rotate-secret") {
		t.Errorf("completion of 'clients rot' printed:\n%s", out)
	}
}

// keycloakModelYAML is a realm as apply describes it: a Keycloak-style
// issuer, an API's client that defines roles, a consumer given one of them
// (scope-mapped, as the portal does), and the portal's delegated admin.
const keycloakModelYAML = `kind: CredentialIssuer
name: gateway
urlStyle: keycloak
audience: https://gateway.example
availableScopes: [read, write]
signingAlgorithm: RS256
---
kind: Client
issuer: gateway
clientId: orders-api
name: Orders API
definedRoles: [reader, writer]
---
kind: Client
issuer: gateway
clientId: billing
name: Billing
scopes: [read]
optionalScopes: [write]
fullScopeAllowed: false
roleMappings:
- {client: orders-api, role: reader}
- {client: orders-api, role: writer}
scopeMappings:
- {client: orders-api, role: reader}
---
kind: Client
issuer: gateway
clientId: portal
name: Portal
scopes: [authz:manage-clients]
`

// TestTheKeycloakModelThroughTheCLI: what the Keycloak surface manages is
// also ours to manage with apply, roles, initial-access-tokens and token:
// an issuer served as a realm, roles a client defines, role and scope
// mappings, optional scopes, a delegated admin. The file applies back
// unchanged, and the consumer's token carries what it says.
func TestTheKeycloakModelThroughTheCLI(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="})
	p.knowAdmin(t)
	ctx := context.Background()
	c := newInProcess(t)
	c.ok("login", "--admin-url", p.adminURL, "--public-url", p.publicURL, "--client-id", p.admin.clientID, "--client-secret", p.admin.clientSecret)
	file := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(file, []byte(keycloakModelYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("apply", "-f", file, "--dry-run"); !strings.Contains(out, "Client/gateway/Billing would be created") {
		t.Fatalf("dry run:\n%s", out)
	}
	var applied []applyResult
	c.json(&applied, "apply", "-f", file)
	secrets := map[string]string{}
	for _, r := range applied {
		runLog.remember("client_secret", r.ClientSecret)
		secrets[r.ClientID] = r.ClientSecret
	}
	var again []applyResult
	c.json(&again, "apply", "-f", file)
	for _, r := range again {
		if r.Result != api.ResultUnchanged {
			t.Fatalf("applying the file again: %+v", again)
		}
	}
	// What -o yaml prints applies back unchanged (it leaves the defined
	// roles out, so apply leaves them as they are).
	c.in = c.ok("clients", "list", "--issuer", "gateway", "-o", "yaml")
	c.json(&again, "apply", "-f", "-")
	c.in = ""
	for _, r := range again {
		if r.Result != api.ResultUnchanged {
			t.Fatalf("clients list -o yaml applied back: %+v", again)
		}
	}

	var roles []api.RoleResponse
	c.json(&roles, "roles", "list", "--issuer", "gateway", "--client", "orders-api")
	if len(roles) != 2 || roles[0].Name != "reader" || roles[1].Name != "writer" {
		t.Fatalf("roles of orders-api: %+v", roles)
	}
	c.ok("roles", "create", "--issuer", "gateway", "--client", "orders-api", "auditor", "--description", "reads the audit trail")
	c.ok("roles", "create", "--issuer", "gateway", "ops")
	var realmRoles []api.RoleResponse
	c.json(&realmRoles, "roles", "list", "--issuer", "gateway")
	if len(realmRoles) != 1 || realmRoles[0].Name != "ops" || realmRoles[0].Client != "" {
		t.Fatalf("the issuer's own roles: %+v", realmRoles)
	}
	c.ok("roles", "delete", "--issuer", "gateway", "--client", "orders-api", "auditor")

	// The consumer's token, through the realm's discovery: only the
	// scope-mapped role, the default scope, the optional one on request.
	var tok credential.TokenResponse
	c.json(&tok, "token", "--issuer", "gateway", "--client-id", "billing", "--client-secret", secrets["billing"], "--scope", "write")
	runLog.remember("an access token", tok.AccessToken)
	claims := decodeClaims(t, tok.AccessToken)
	if claims.Issuer != p.publicURL+"/realms/gateway" || claims.Scope != "read write" ||
		!slices.Equal(claims.ResourceAccess["orders-api"].Roles, []string{"reader"}) {
		t.Fatalf("billing's token: %+v", claims)
	}

	// Initial access tokens: printed once, listed without the token.
	var iat api.CreatedInitialAccessToken
	c.json(&iat, "initial-access-tokens", "create", "--issuer", "gateway", "--count", "3", "--expires-in", "24h")
	runLog.remember("an initial access token", iat.Token)
	if iat.RemainingCount != 3 || !strings.HasPrefix(iat.Token, credential.InitialAccessPrefix) || iat.ExpiresAt == "" {
		t.Fatalf("created: %+v", iat)
	}
	if out := c.ok("initial-access-tokens", "list", "--issuer", "gateway"); !strings.Contains(out, iat.ID) || strings.Contains(out, iat.Token) {
		t.Fatalf("list:\n%s", out)
	}
	c.ok("iat", "delete", "--issuer", "gateway", iat.ID)
	if left, err := p.api(t).ListInitialAccessTokens(ctx, "gateway"); err != nil || len(left) != 0 {
		t.Fatalf("after delete: %+v, %v", left, err)
	}

	// clients create takes the same model in flags.
	var created api.CreatedClientResponse
	c.json(&created, "clients", "create", "--issuer", "gateway", "--name", "Shipping", "--scopes", "read",
		"--role-mapping", "orders-api/writer", "--role-mapping", "ops", "--full-scope-allowed=false", "--scope-mapping", "ops")
	runLog.remember("client_secret", created.ClientSecret)
	if len(created.RoleMappings) != 2 || created.FullScopeAllowed || len(created.ScopeMappings) != 1 || created.ScopeMappings[0].Role != "ops" {
		t.Fatalf("clients create with mappings: %+v", created.ClientResponse)
	}
	if code, _, errOut := c.exec("clients", "create", "--issuer", "gateway", "--name", "x", "--role-mapping", "a/b/c"); code != 2 || !strings.Contains(errOut, "CLIENT/ROLE") {
		t.Fatalf("a malformed --role-mapping: %d %s", code, errOut)
	}
}

// decodeClaims reads a token's claims unverified; other tests verify.
func decodeClaims(t *testing.T, raw string) credential.AccessClaims {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims credential.AccessClaims
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
