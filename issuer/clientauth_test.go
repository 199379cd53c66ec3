package issuer_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/store"
)

// jwtFixture is an issuer that accepts every client authenticator, with a
// client registered by public JWK and one by jwks_uri, on a frozen clock
// the test moves.
type jwtFixture struct {
	*testbed
	clientKey crypto.Signer
	jwksKey   crypto.Signer
	jwksSrv   *httptest.Server
	jwksHits  atomic.Int64
	jwksServe atomic.Pointer[func(w http.ResponseWriter)]
}

func publicJWKJSON(t testing.TB, key crypto.Signer, kid string) []byte {
	t.Helper()
	b, err := jose.JSONWebKey{Key: key.Public(), KeyID: kid, Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustECKey() crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

func newJWTFixture(t testing.TB, clientKey crypto.Signer, allowPrivate bool, opts ...bedOption) *jwtFixture {
	t.Helper()
	f := &jwtFixture{clientKey: clientKey}
	f.testbed = newTestbed(t, append([]bedOption{
		withIssuer(func(iss *store.Issuer) {
			iss.AvailableScopes = []string{"read"}
			iss.ClientAuthenticators = credential.Authenticators()
		}),
		withConfig(func(c *issuer.Config) { c.AllowPrivateJWKSURI = allowPrivate })}, opts...)...)
	f.freeze()
	f.jwksKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f.jwksSrv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.jwksHits.Add(1)
		if serve := f.jwksServe.Load(); serve != nil {
			(*serve)(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[` + string(publicJWKJSON(t, f.jwksKey, "remote-1")) + `]}`))
	}))
	t.Cleanup(f.jwksSrv.Close)
	ctx := context.Background()
	for _, c := range []store.Client{
		{IssuerName: "payments", ID: "c-jwk", Name: "jwk", Scopes: []string{"read"}, Audience: "https://api.example.test",
			Enabled: true, PublicJWK: publicJWKJSON(t, clientKey, "static-1")},
		{IssuerName: "payments", ID: "c-uri", Name: "uri", Scopes: []string{"read"}, Audience: "https://api.example.test",
			Enabled: true, JWKSURI: f.jwksSrv.URL + "/jwks.json"},
	} {
		if _, err := f.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// assertion is the claims of a client assertion, with defaults a valid one
// has.
type assertion struct {
	iss, sub, aud, jti string
	exp, nbf, iat      time.Time
	kid                string
	alg                jose.SignatureAlgorithm
	key                any
}

func (f *jwtFixture) valid(clientID string, key crypto.Signer, kid string) assertion {
	now := f.clock()
	var jti [12]byte
	_, _ = rand.Read(jti[:])
	return assertion{iss: clientID, sub: clientID, aud: f.tokenURL(), jti: base64.RawURLEncoding.EncodeToString(jti[:]),
		exp: now.Add(time.Minute), iat: now, nbf: now, kid: kid, alg: algFor(key), key: key}
}

func algFor(key crypto.Signer) jose.SignatureAlgorithm {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return jose.RS256
	case *ecdsa.PrivateKey:
		if k.Curve == elliptic.P384() {
			return jose.ES384
		}
		return jose.ES256
	default:
		return jose.EdDSA
	}
}

func (a assertion) sign(t *testing.T) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if a.kid != "" {
		opts = opts.WithHeader("kid", a.kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: a.alg, Key: a.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.Claims{Issuer: a.iss, Subject: a.sub, Audience: jwt.Audience{a.aud}, ID: a.jti}
	for src, dst := range map[*time.Time]**jwt.NumericDate{&a.exp: &claims.Expiry, &a.nbf: &claims.NotBefore, &a.iat: &claims.IssuedAt} {
		if !src.IsZero() {
			*dst = jwt.NewNumericDate(*src)
		}
	}
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// post sends a token request authenticated by a client assertion.
func (f *jwtFixture) post(t *testing.T, raw string, extra url.Values) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {"urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}, "client_assertion": {raw}}
	for k, v := range extra {
		form[k] = v
	}
	return postForm(t, http.DefaultClient, f.tokenURL(), form.Encode(), "", "")
}

func TestSignedJWTClientAuthWithEveryKeyType(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for name, key := range map[string]crypto.Signer{"RSA": rsaKey, "EC P-384": ecKey, "Ed25519": edKey} {
		t.Run(name, func(t *testing.T) {
			f := newJWTFixture(t, key, true)
			status, body := f.post(t, f.valid("c-jwk", key, "static-1").sign(t), nil)
			if status != http.StatusOK || body["access_token"] == nil {
				t.Fatalf("static JWK: status %d: %v", status, body)
			}
			status, body = f.post(t, f.valid("c-uri", f.jwksKey, "remote-1").sign(t), nil)
			if status != http.StatusOK {
				t.Fatalf("jwks_uri: status %d: %v", status, body)
			}
		})
	}
}

func TestClientAssertionAttacksAreRefused(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	replayed := f.valid("c-jwk", key, "static-1").sign(t)
	if status, body := f.post(t, replayed, nil); status != http.StatusOK {
		t.Fatalf("first use: %d %v", status, body)
	}
	pubJSON := publicJWKJSON(t, key, "static-1")
	hmacSigner, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pubJSON}, nil)
	hmacToken, _ := jwt.Signed(hmacSigner).Claims(jwt.Claims{Issuer: "c-jwk", Subject: "c-jwk", Audience: jwt.Audience{f.tokenURL()},
		ID: "hmac", Expiry: jwt.NewNumericDate(f.clock().Add(time.Minute))}).Serialize()
	payload, _ := json.Marshal(map[string]any{"iss": "c-jwk", "sub": "c-jwk", "aud": f.tokenURL(), "jti": "none-1", "exp": f.clock().Add(time.Minute).Unix()})
	noneToken := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."

	mutate := func(change func(a *assertion)) string {
		a := f.valid("c-jwk", key, "static-1")
		change(&a)
		return a.sign(t)
	}
	tests := []struct {
		name      string
		assertion string
		extra     url.Values
		want      string // in error_description
		logged    string // in the log, when the caller is told less
	}{
		{"replayed jti", replayed, nil, "already used", ""},
		{"expired", mutate(func(a *assertion) { a.exp = f.clock().Add(-time.Minute) }), nil, "expired", ""},
		{"expiring now", mutate(func(a *assertion) { a.exp = f.clock() }), nil, "expired", ""},
		{"no exp", mutate(func(a *assertion) { a.exp = time.Time{} }), nil, "no exp", ""},
		{"too far in the future", mutate(func(a *assertion) { a.exp = f.clock().Add(2 * time.Hour) }), nil, "ahead", ""},
		{"not valid yet", mutate(func(a *assertion) { a.nbf = f.clock().Add(10 * time.Minute) }), nil, "nbf", ""},
		{"issued in the future", mutate(func(a *assertion) { a.iat = f.clock().Add(10 * time.Minute) }), nil, "iat", ""},
		{"no jti", mutate(func(a *assertion) { a.jti = "" }), nil, "jti", ""},
		{"wrong aud", mutate(func(a *assertion) { a.aud = "https://elsewhere.example.test/token" }), nil, "aud", ""},
		{"iss is not sub", mutate(func(a *assertion) { a.iss = "c-uri" }), nil, "iss and sub", ""},
		{"client_id differs", mutate(func(*assertion) {}), url.Values{"client_id": {"c-uri"}}, "client_id", ""},
		{"alg none", noneToken, nil, "accepted algorithm", ""},
		{"HS256 keyed with the public key", hmacToken, nil, "accepted algorithm", ""},
		{"a key that is not the client's", mutate(func(a *assertion) { a.key = stranger }), nil, "could not be verified", "does not verify"},
		{"another kid", mutate(func(a *assertion) { a.kid = "other" }), nil, "could not be verified", "not the client's registered key"},
		{"unknown client", mutate(func(a *assertion) { a.iss, a.sub = "c-ghost", "c-ghost" }), nil, "could not be verified", "unknown client"},
		{"garbage", "not-a-jwt", nil, "accepted algorithm", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := f.post(t, tc.assertion, tc.extra)
			desc, _ := body["error_description"].(string)
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" || !strings.Contains(desc, tc.want) {
				t.Fatalf("status %d body %v; want 401 invalid_client mentioning %q", status, body, tc.want)
			}
			if tc.logged != "" {
				f.logged(t, tc.logged)
			}
		})
	}
	// Two methods at once is a malformed request (RFC 6749 §2.3).
	if status, body := f.post(t, mutate(func(*assertion) {}), url.Values{"client_secret": {"x"}}); status != http.StatusBadRequest ||
		body["error"] != "invalid_request" || !strings.Contains(body["error_description"].(string), "one client authentication") {
		t.Fatalf("assertion and secret: %d %v", status, body)
	}
	// Nothing changed: the client still authenticates.
	if status, body := f.post(t, f.valid("c-jwk", key, "static-1").sign(t), nil); status != http.StatusOK {
		t.Fatalf("after the attacks: %d %v", status, body)
	}
}

func TestJWKSURIFailuresAreInvalidClientNotServerErrors(t *testing.T) {
	tests := []struct {
		name  string
		serve func(w http.ResponseWriter)
		want  string
	}{
		{"times out", func(w http.ResponseWriter) { time.Sleep(4 * time.Second) }, "timed out"},
		{"answers 5 MB", func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"keys":[` + strings.Repeat(" ", 5<<20) + `]}`)) }, "exceeds 64 KiB"},
		{"answers HTML", func(w http.ResponseWriter) { _, _ = w.Write([]byte("<html>hello</html>")) }, "JSON key set"},
		{"answers 500", func(w http.ResponseWriter) { w.WriteHeader(500) }, "500"},
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newJWTFixture(t, key, true)
			f.jwksServe.Store(&tc.serve)
			status, body := f.post(t, f.valid("c-uri", f.jwksKey, "remote-1").sign(t), nil)
			desc, _ := body["error_description"].(string)
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" || !strings.Contains(desc, "could not be verified") {
				t.Fatalf("status %d body %v; want 401 invalid_client", status, body)
			}
			f.logged(t, tc.want)
		})
	}
}

func TestSSRFGuardRefusesInternalJWKSURIs(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, false)
	// A name, so registration-time checks pass and the dial-time guard must
	// catch the loopback address it resolves to.
	port := f.jwksSrv.URL[strings.LastIndexByte(f.jwksSrv.URL, ':')+1:]
	if _, err := f.store.UpdateClient(context.Background(), "payments", "c-uri", func(c *store.Client) error {
		c.JWKSURI = "https://localhost:" + port + "/jwks.json"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.issuer.Invalidate(store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "c-uri"})
	status, body := f.post(t, f.valid("c-uri", f.jwksKey, "remote-1").sign(t), nil)
	if status != http.StatusUnauthorized || body["error"] != "invalid_client" || f.jwksHits.Load() != 0 {
		t.Fatalf("status %d body %v hits %d; want invalid_client and no fetch", status, body, f.jwksHits.Load())
	}
	f.logged(t, "internal address")
	for _, uri := range []string{"http://keys.example.test/jwks", "https://127.0.0.1/jwks", "https://[::1]/jwks", "https://169.254.169.254/latest",
		"https://10.0.0.8/jwks", "https://u:p@keys.example.test/jwks", "ftp://keys.example.test/jwks"} {
		if err := f.issuer.ValidateJWKSURI(uri); err == nil {
			t.Errorf("ValidateJWKSURI(%q) accepted it", uri)
		}
	}
	if err := f.issuer.ValidateJWKSURI("https://keys.example.test/jwks.json"); err != nil {
		t.Errorf("a public https URL was refused: %v", err)
	}
}

func TestUnknownKidRefetchesAtMostEveryTenSeconds(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	if status, _ := f.post(t, f.valid("c-uri", f.jwksKey, "remote-1").sign(t), nil); status != http.StatusOK {
		t.Fatal("first request failed")
	}
	// The client rotates its key: the cached set lacks the new kid.
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serve := func(w http.ResponseWriter) {
		_, _ = w.Write([]byte(`{"keys":[` + string(publicJWKJSON(t, newKey, "remote-2")) + `]}`))
	}
	f.jwksServe.Store(&serve)
	if status, body := f.post(t, f.valid("c-uri", newKey, "remote-2").sign(t), nil); status != http.StatusUnauthorized {
		t.Fatalf("a new kid within 10 s of the last fetch: %d %v; want a refusal without a fetch", status, body)
	}
	if hits := f.jwksHits.Load(); hits != 1 {
		t.Fatalf("%d fetches, want 1: the refetch was not rate-limited", hits)
	}
	f.advance(10 * time.Second)
	if status, body := f.post(t, f.valid("c-uri", newKey, "remote-2").sign(t), nil); status != http.StatusOK {
		t.Fatalf("after 10 s the new kid must be fetched: %d %v", status, body)
	}
	if hits := f.jwksHits.Load(); hits != 2 {
		t.Fatalf("%d fetches, want 2", hits)
	}
}

func TestIssuerAuthenticatorListDecidesMethods(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	iss, _ := f.store.GetIssuer(context.Background(), "payments")
	iss.ClientAuthenticators = []string{credential.ClientSecret}
	if _, _, err := f.store.PutIssuer(context.Background(), iss, 0); err != nil {
		t.Fatal(err)
	}
	f.issuer.Invalidate(store.Change{Kind: store.ChangeIssuer, Issuer: "payments"})
	status, body := f.post(t, f.valid("c-jwk", key, "static-1").sign(t), nil)
	if status != http.StatusUnauthorized || !strings.Contains(body["error_description"].(string), "does not accept client assertions") {
		t.Fatalf("client-jwt on a client-secret issuer: %d %v", status, body)
	}
	resp, err := http.Get(f.srv.URL + "/issuers/payments/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	if methods, _ := json.Marshal(meta["token_endpoint_auth_methods_supported"]); string(methods) != `["client_secret_basic","client_secret_post"]` ||
		meta["token_endpoint_auth_signing_alg_values_supported"] != nil {
		t.Fatalf("metadata = %v", meta)
	}
}
