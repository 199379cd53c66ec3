package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// signAssertion builds an RFC 7523 client assertion by hand: x/oauth2 has
// no private_key_jwt client authentication.
func signAssertion(t *testing.T, key crypto.Signer, kid, clientID, audience string) string {
	t.Helper()
	alg := jose.EdDSA
	switch k := key.(type) {
	case *rsa.PrivateKey:
		alg = jose.RS256
	case *ecdsa.PrivateKey:
		alg = map[bool]jose.SignatureAlgorithm{true: jose.ES384, false: jose.ES256}[k.Curve == elliptic.P384()]
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	now := time.Now()
	raw, err := jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{audience}, ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)),
	}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	runLog.remember("a client assertion", raw)
	return raw
}

// assertionToken runs the client-credentials grant with private_key_jwt.
func assertionToken(t *testing.T, tokenURL, assertion string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion": {assertion},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
	for k, v := range extra {
		form[k] = v
	}
	resp, err := http.Post(tokenURL, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if tok, ok := body["access_token"].(string); ok {
		runLog.remember("an access token", tok)
	}
	return resp.StatusCode, body
}

func TestSignedJWTClientsOnPostgres(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, env, "--allow-private-jwks-uri")
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: tutorialAudience, AvailableScopes: []string{"read"},
		ClientAuthenticator: api.AuthenticatorList{"client-jwt", "client-jwt-jwks-url"}})
	issuerURL := p.publicURL + "/issuers/payments"

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]crypto.Signer{"RSA": rsaKey, "EC": ecKey, "Ed25519": edKey}

	// One loopback key-set server for the jwks_uri clients.
	set := jose.JSONWebKeySet{}
	for name, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: "remote-" + name, Use: "sig"})
	}
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=300")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(jwksSrv.Close)

	for name, key := range keys {
		t.Run(name+" static JWK", func(t *testing.T) {
			pub, _ := jose.JSONWebKey{Key: key.Public(), KeyID: "static-" + name}.MarshalJSON()
			id := p.createClient(t, "payments", api.CreateClientRequest{Name: name + " static", Scopes: []string{"read"}, JWK: pub}).ClientID
			status, body := assertionToken(t, issuerURL+"/token", signAssertion(t, key, "static-"+name, id, issuerURL+"/token"), nil)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, body)
			}
			verifyAsGateway(t, issuerURL, body["access_token"].(string), id, "read")
		})
		t.Run(name+" jwks_uri", func(t *testing.T) {
			uri := jwksSrv.URL + "/jwks.json"
			id := p.createClient(t, "payments", api.CreateClientRequest{Name: name + " remote", Scopes: []string{"read"}, JWKSURI: &uri}).ClientID
			// The assertion's aud may also be the issuer URL.
			status, body := assertionToken(t, issuerURL+"/token", signAssertion(t, key, "remote-"+name, id, issuerURL), nil)
			if status != http.StatusOK {
				t.Fatalf("status %d: %v", status, body)
			}
			verifyAsGateway(t, issuerURL, body["access_token"].(string), id, "read")
		})
	}

	t.Run("server-generated key, as the portal hands out", func(t *testing.T) {
		id := p.createClient(t, "payments", api.CreateClientRequest{Name: "portal consumer", Scopes: []string{"read"}}).ClientID
		generated, err := p.api(t).GenerateClientKey(context.Background(), "payments", id, api.GenerateKeyRequest{Algorithm: "ES256"})
		if err != nil {
			t.Fatal(err)
		}
		runLog.remember("a generated private key", generated.PrivateKeyPEM)
		block, _ := pem.Decode([]byte(generated.PrivateKeyPEM))
		priv, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		assertion := signAssertion(t, priv.(crypto.Signer), generated.KID, id, issuerURL+"/token")
		status, body := assertionToken(t, issuerURL+"/token", assertion, nil)
		if status != http.StatusOK {
			t.Fatalf("status %d: %v", status, body)
		}
		token := body["access_token"].(string)
		verifyAsGateway(t, issuerURL, token, id, "read")
		// A replay of the same assertion is refused.
		if status, body := assertionToken(t, issuerURL+"/token", assertion, nil); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("replay: %d %v", status, body)
		}
		// The same client introspects its own token, authenticated by a
		// fresh assertion.
		form := url.Values{"token": {token}, "client_assertion": {signAssertion(t, priv.(crypto.Signer), generated.KID, id, issuerURL+"/token")},
			"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}}
		resp, err := http.Post(issuerURL+"/introspect", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var info map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&info)
		if resp.StatusCode != 200 || info["active"] != true || info["client_id"] != id || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("introspection: %d %v", resp.StatusCode, info)
		}
	})
}
