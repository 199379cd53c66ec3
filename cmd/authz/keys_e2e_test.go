package main

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/authz-dev/authz/api"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

func TestKeysCLIListsRotatesAndRevokes(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, env)
	c := newCLI(t)
	c.login(p)
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: "a"})

	var listed []api.KeyResponse
	c.json(&listed, "keys", "list", "--issuer", "payments")
	if len(listed) != 1 || listed[0].State != "active" || listed[0].Algorithm != "RS256" {
		t.Fatalf("keys = %+v", listed)
	}
	var rotated []api.KeyResponse
	c.json(&rotated, "keys", "rotate", "--issuer", "payments")
	if len(rotated) != 2 || rotated[1].State != "pending" || rotated[1].ActivateAt == "" {
		t.Fatalf("after rotate = %+v", rotated)
	}
	// A kid is a base64url thumbprint and may start with '-'.
	out := c.run("keys", "revoke", "--issuer", "payments", "--", listed[0].KID)
	if !strings.Contains(out, "revoked") || !strings.Contains(out, "KID") {
		t.Fatalf("revoke printed:\n%s", out)
	}
	if out := c.fail("keys", "revoke", "--issuer", "payments", "--", "-no-such-kid"); !strings.Contains(out, "404") {
		t.Fatalf("revoking an unknown kid printed:\n%s", out)
	}
}

func TestRekeyMovesKeysToANewKEK(t *testing.T) {
	t.Parallel()
	databaseURL, oldKEK, env := postgresEnv(t)
	addr := freeLoopbackAddr(t)
	first := startPostgresServer(t, env, "--public-addr", addr)
	tut := runTutorial(t, first)
	first.stop(t)

	newKEK := newKEKBase64(t)
	code, out := runAuthz(t, nil, "keys", "rekey", "--database-url", databaseURL, "--kek", newKEK+","+oldKEK)
	if code != 0 || !strings.Contains(out, "Re-sealed 2 signing keys") {
		t.Fatalf("rekey: exit %d\n%s", code, out)
	}
	if code, out := runAuthz(t, nil, "keys", "rekey", "--database-url", databaseURL, "--kek", newKEK+","+oldKEK); code != 0 || !strings.Contains(out, "Re-sealed 0") {
		t.Fatalf("second rekey: exit %d\n%s", code, out)
	}
	// The old KEK alone no longer opens anything: a clear start-up error.
	code, out = runAuthz(t, []string{"AUTHZ_DATABASE_URL=" + databaseURL, "AUTHZ_KEK=" + oldKEK},
		"serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--public-url", "https://auth.example.test")
	if code != 1 || !strings.Contains(out, "key-encryption key that is not configured") {
		t.Fatalf("serve with only the retired KEK: exit %d\n%s", code, out)
	}
	// The new KEK alone serves, and old tokens still verify.
	second := startServer(t, []string{"AUTHZ_DATABASE_URL=" + databaseURL, "AUTHZ_KEK=" + newKEK}, "--public-addr", addr)
	second.admin = first.admin
	verifyAsGateway(t, second.publicURL+"/issuers/"+tutorialIssuer, tut.tokens[0], tut.clientID, "read")
}

func TestEveryAlgorithmIssuesVerifiableTokens(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="})
	for _, alg := range []string{"RS256", "PS256", "ES256", "EdDSA"} {
		name := "alg-" + strings.ToLower(alg)
		p.putIssuer(t, name, api.IssuerRequest{Audience: tutorialAudience, SigningAlgorithm: alg})
		client := p.createClient(t, name, api.CreateClientRequest{Name: "c"})
		issuerURL := p.publicURL + "/issuers/" + name
		raw := clientToken(t, issuerURL+"/token", client.ClientID, client.ClientSecret, "")
		jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil || jws.Signatures[0].Header.Algorithm != alg {
			t.Fatalf("%s: token header alg: %v", alg, err)
		}
		provider, err := oidc.NewProvider(context.Background(), issuerURL)
		if err != nil {
			t.Fatal(err)
		}
		verifier := provider.Verifier(&oidc.Config{ClientID: tutorialAudience, SupportedSigningAlgs: []string{alg}})
		if _, err := verifier.Verify(context.Background(), raw); err != nil {
			t.Fatalf("%s: token does not verify against the JWKS: %v", alg, err)
		}
	}
}

func TestClientKeyCLI(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, env)
	c := newCLI(t)
	c.login(p)
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: "a", ClientAuthenticator: api.AuthenticatorList{"client-jwt", "client-jwt-jwks-url"}})
	var created api.CreatedClientResponse
	c.json(&created, "clients", "create", "--issuer", "payments", "--name", "signer")

	var generated struct {
		KID        string         `json:"kid"`
		PrivateJWK map[string]any `json:"privateJwk"`
	}
	c.json(&generated, "clients", "generate-key", "--issuer", "payments", created.ClientID, "--algorithm", "EdDSA")
	if generated.KID == "" || generated.PrivateJWK["d"] == nil || generated.PrivateJWK["crv"] != "Ed25519" {
		t.Fatalf("generate-key = %+v", generated)
	}
	if out := c.run("clients", "set-jwks-uri", "--issuer", "payments", created.ClientID, "--jwks-uri", "https://keys.example.test/jwks.json"); !strings.Contains(out, created.ClientID) {
		t.Fatalf("set-jwks-uri printed:\n%s", out)
	}
	if out := c.fail("clients", "set-jwks-uri", "--issuer", "payments", created.ClientID, "--jwks-uri", "https://10.1.2.3/jwks.json"); !strings.Contains(out, "jwksUri") {
		t.Fatalf("an internal jwks_uri printed:\n%s", out)
	}
	file := t.TempDir() + "/key.json"
	if err := os.WriteFile(file, []byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c.run("clients", "set-jwk", "--issuer", "payments", created.ClientID, "--jwk-file", file)
	got, err := p.api(t).GetClient(context.Background(), "payments", created.ClientID)
	var jwk map[string]any
	if err != nil || json.Unmarshal(got.JWK, &jwk) != nil || got.JWKSURI != "" || jwk["x"] != "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo" {
		t.Fatalf("client after set-jwk = %+v, %v", got, err)
	}
}
