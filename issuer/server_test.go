package issuer_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

// fixture is one issuer with one client, served by a real HTTP server.
type fixture struct {
	*testbed
	clientID string
	secret   string
	// expiredSecret belongs to clientID but expired a minute ago;
	// disabledSecret is the valid secret of the disabled client c-disabled.
	expiredSecret, disabledSecret string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	b := newTestbed(t, withConfig(func(c *issuer.Config) { c.MetadataMaxAge = 2 * time.Minute }))
	f := &fixture{testbed: b, clientID: "c-billing"}
	f.secret = b.addClient(store.Client{ID: "c-billing", Name: "billing", Scopes: []string{"read", "write"}, Enabled: true})
	f.expiredSecret = b.addSecret("c-billing", time.Now().Add(-time.Minute))
	f.disabledSecret = b.addClient(store.Client{ID: "c-disabled", Name: "off", Scopes: []string{"read"}, Enabled: false})
	return f
}

func (f *fixture) post(t *testing.T, path string, form url.Values, user, pass string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func decode[T any](t *testing.T, r io.Reader) T {
	t.Helper()
	var v T
	if err := json.NewDecoder(r).Decode(&v); err != nil {
		t.Fatalf("decode JSON: %v", err)
	}
	return v
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope"`
}

func TestTokenCarriesRFC9068ClaimsAndHeader(t *testing.T) {
	f := newFixture(t)
	before := time.Now().Unix()
	resp := f.post(t, "/issuers/payments/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, f.clientID, f.secret)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(resp))
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	tok := decode[tokenResponse](t, resp.Body)
	if tok.TokenType != "Bearer" || tok.ExpiresIn != 300 || tok.Scope != "read" {
		t.Fatalf("response = %+v; want Bearer, 300, read", tok)
	}
	jws, err := jose.ParseSignedCompact(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	h := jws.Signatures[0].Header
	if h.ExtraHeaders["typ"] != "at+jwt" || h.KeyID == "" {
		t.Fatalf("header typ=%v kid=%q; want at+jwt and a kid", h.ExtraHeaders["typ"], h.KeyID)
	}
	jwks := f.getJWKS(t)
	keys := jwks.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q not published", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	wantIss := f.srv.URL + "/issuers/payments"
	if c["iss"] != wantIss || c["sub"] != f.clientID || c["client_id"] != f.clientID || c["azp"] != f.clientID || c["scope"] != "read" {
		t.Fatalf("claims = %v", c)
	}
	if aud, _ := c["aud"].([]any); len(aud) != 1 || aud[0] != "https://api.example.test" {
		t.Fatalf("aud = %v, want [https://api.example.test]", c["aud"])
	}
	iat, nbf, exp := int64(c["iat"].(float64)), int64(c["nbf"].(float64)), int64(c["exp"].(float64))
	if iat < before || iat > time.Now().Unix() || nbf != iat || exp != iat+300 {
		t.Fatalf("iat=%d nbf=%d exp=%d; want iat now, nbf=iat, exp=iat+300", iat, nbf, exp)
	}
	if jti, _ := c["jti"].(string); jti == "" {
		t.Fatal("jti missing")
	}
	var names []string
	for name := range c {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"aud", "azp", "client_id", "exp", "iat", "iss", "jti", "nbf", "scope", "sub"}; !slices.Equal(names, want) {
		t.Fatalf("claims %v, want exactly %v", names, want)
	}
}

func TestTokenWithoutScopeGrantsEveryAllowedScope(t *testing.T) {
	f := newFixture(t)
	// The portal tutorial sends scopes=openid, a parameter no standard
	// defines; it must be ignored.
	resp := f.post(t, "/issuers/payments/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {f.clientID}, "client_secret": {f.secret}, "scopes": {"openid"},
	}, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(resp))
	}
	if tok := decode[tokenResponse](t, resp.Body); tok.Scope != "read write" {
		t.Fatalf("scope = %q, want %q", tok.Scope, "read write")
	}
}

func TestTokenEndpointRefusesBadRequests(t *testing.T) {
	f := newFixture(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		user, pass  string
		wantStatus  int
		wantError   string
		wantAuthHdr bool
	}{
		{"wrong secret", "POST", "/issuers/payments/token", "", cc.Encode(), f.clientID, "wrong", 401, "invalid_client", true},
		{"missing secret", "POST", "/issuers/payments/token", "", cc.Encode() + "&client_id=" + f.clientID, "", "", 401, "invalid_client", true},
		{"expired secret", "POST", "/issuers/payments/token", "", cc.Encode(), f.clientID, f.expiredSecret, 401, "invalid_client", true},
		{"unknown client", "POST", "/issuers/payments/token", "", cc.Encode(), "c-nobody", f.secret, 401, "invalid_client", true},
		{"disabled client", "POST", "/issuers/payments/token", "", cc.Encode(), "c-disabled", f.disabledSecret, 401, "invalid_client", true},
		{"no credentials", "POST", "/issuers/payments/token", "", cc.Encode(), "", "", 401, "invalid_client", true},
		{"scope outside allow-list", "POST", "/issuers/payments/token", "", cc.Encode() + "&scope=admin", f.clientID, f.secret, 400, "invalid_scope", false},
		{"unknown scope", "POST", "/issuers/payments/token", "", cc.Encode() + "&scope=read+nope", f.clientID, f.secret, 400, "invalid_scope", false},
		{"audience not allowed", "POST", "/issuers/payments/token", "", cc.Encode() + "&audience=https://evil.test", f.clientID, f.secret, 400, "invalid_request", false},
		{"password grant", "POST", "/issuers/payments/token", "", "grant_type=password&username=a&password=b", f.clientID, f.secret, 400, "unsupported_grant_type", false},
		{"missing grant type", "POST", "/issuers/payments/token", "", "scope=read", f.clientID, f.secret, 400, "invalid_request", false},
		{"GET", "GET", "/issuers/payments/token", "", "", f.clientID, f.secret, 405, "invalid_request", false},
		{"unknown issuer", "POST", "/issuers/nowhere/token", "", cc.Encode(), f.clientID, f.secret, 404, "invalid_request", false},
		{"malformed body", "POST", "/issuers/payments/token", "", "grant_type=%zz", f.clientID, f.secret, 400, "invalid_request", false},
		{"JSON body", "POST", "/issuers/payments/token", "application/json", `{"grant_type":"client_credentials"}`, f.clientID, f.secret, 400, "invalid_request", false},
		{"oversized body", "POST", "/issuers/payments/token", "", cc.Encode() + "&pad=" + strings.Repeat("a", 100<<10), f.clientID, f.secret, 400, "invalid_request", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, strings.NewReader(tc.body))
			ct := tc.contentType
			if ct == "" {
				ct = "application/x-www-form-urlencoded"
			}
			req.Header.Set("Content-Type", ct)
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type = %q, want JSON", ct)
			}
			body := decode[map[string]string](t, resp.Body)
			if body["error"] != tc.wantError || body["error_description"] == "" {
				t.Fatalf("body = %v, want error %q with a description", body, tc.wantError)
			}
			if got := resp.Header.Get("WWW-Authenticate") != ""; got != tc.wantAuthHdr {
				t.Fatalf("WWW-Authenticate present = %v, want %v", got, tc.wantAuthHdr)
			}
			if resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("error without Cache-Control: no-store")
			}
		})
	}
}

func TestClientLifetimeOverridesIssuerLifetime(t *testing.T) {
	f := newFixture(t)
	secret := f.addClient(store.Client{ID: "c-short", Scopes: []string{"read"}, TokenLifetime: 90 * time.Second, Enabled: true})
	resp := f.post(t, "/issuers/payments/token", url.Values{"grant_type": {"client_credentials"}}, "c-short", secret)
	if tok := decode[tokenResponse](t, resp.Body); tok.ExpiresIn != 90 {
		t.Fatalf("expires_in = %d, want 90", tok.ExpiresIn)
	}
}

func (f *fixture) getJWKS(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	resp, err := http.Get(f.srv.URL + "/issuers/payments/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return decode[jose.JSONWebKeySet](t, resp.Body)
}

func TestJWKSOfRS256IssuerHoldsOnlyPublicRSAKeys(t *testing.T) {
	f := newFixture(t)
	set := f.getJWKS(t)
	if len(set.Keys) == 0 {
		t.Fatal("empty JWKS")
	}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Algorithm != "RS256" || k.Use != "sig" {
			t.Fatalf("key %s: public=%v alg=%s use=%s", k.KeyID, k.IsPublic(), k.Algorithm, k.Use)
		}
		if _, ok := k.Key.(*rsa.PublicKey); !ok {
			t.Fatalf("key %s is %T, want *rsa.PublicKey", k.KeyID, k.Key)
		}
	}
}

func TestPublicDocumentsAreCacheableWithETags(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		path   string
		maxAge string
	}{
		// An 11-minute publication lead makes a 5-minute cache lifetime.
		{"/issuers/payments/jwks.json", "public, max-age=300"},
		{"/issuers/payments/.well-known/openid-configuration", "public, max-age=120"},
		{"/issuers/payments/.well-known/oauth-authorization-server", "public, max-age=120"},
		{"/.well-known/oauth-authorization-server/issuers/payments", "public, max-age=120"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get(f.srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(resp)
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != tc.maxAge || etag == "" ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("status %d Cache-Control %q ETag %q Content-Type %q", resp.StatusCode,
					resp.Header.Get("Cache-Control"), etag, resp.Header.Get("Content-Type"))
			}
			if !json.Valid([]byte(body)) {
				t.Fatalf("body is not JSON: %s", body)
			}
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+tc.path, nil)
			req.Header.Set("If-None-Match", etag)
			again, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			again.Body.Close()
			if again.StatusCode != http.StatusNotModified {
				t.Fatalf("conditional GET status = %d, want 304", again.StatusCode)
			}
		})
	}
}

func TestMetadataDescribesTheIssuer(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/issuers/payments/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := decode[map[string]any](t, resp.Body)
	base := f.srv.URL + "/issuers/payments"
	if m["issuer"] != base || m["token_endpoint"] != base+"/token" || m["jwks_uri"] != base+"/jwks.json" {
		t.Fatalf("metadata = %v", m)
	}
	methods, _ := json.Marshal(m["token_endpoint_auth_methods_supported"])
	if string(methods) != `["client_secret_basic","client_secret_post"]` {
		t.Fatalf("auth methods = %s", methods)
	}
}

func TestUnknownIssuerDocumentsAre404(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/issuers/nowhere/jwks.json", "/issuers/nowhere/.well-known/openid-configuration", "/nothing"} {
		resp, err := http.Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", p, resp.StatusCode)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want 200", p, resp.StatusCode)
		}
	}
}

func TestReplacedIssuerTakesEffectOnNextRequest(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	iss, _ := f.store.GetIssuer(ctx, "payments")
	// Warm the cache first, so the change must evict it.
	f.post(t, "/issuers/payments/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.secret)
	iss.TokenLifetime = 10 * time.Minute
	if _, _, err := f.store.PutIssuer(ctx, iss, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new lifetime applies", func() bool {
		resp := f.post(t, "/issuers/payments/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.secret)
		return decode[tokenResponse](t, resp.Body).ExpiresIn == 600
	})
}

func TestDisabledClientIsRefusedOnceTheChangeArrives(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	form := url.Values{"grant_type": {"client_credentials"}}
	if resp := f.post(t, "/issuers/payments/token", form, f.clientID, f.secret); resp.StatusCode != http.StatusOK {
		t.Fatalf("warm-up status %d", resp.StatusCode)
	}
	if _, err := f.store.UpdateClient(ctx, "payments", f.clientID, func(c *store.Client) error { c.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disabled client is refused", func() bool {
		return f.post(t, "/issuers/payments/token", form, f.clientID, f.secret).StatusCode == http.StatusUnauthorized
	})
}

func TestClientCreatedAfterAMissIsServed(t *testing.T) {
	f := newFixture(t)
	form := url.Values{"grant_type": {"client_credentials"}}
	if resp := f.post(t, "/issuers/payments/token", form, "c-late", "x"); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unknown client: status %d", resp.StatusCode)
	}
	secret := f.addClient(store.Client{ID: "c-late", Name: "late", Enabled: true})
	eventually(t, "the new client gets a token", func() bool {
		return f.post(t, "/issuers/payments/token", form, "c-late", secret).StatusCode == http.StatusOK
	})
}

func TestRolesTravelAsResourceAccess(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.store.UpdateClient(ctx, "payments", f.clientID, func(c *store.Client) error {
		c.Roles = []string{"viewer", "editor"}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	eventually(t, "roles appear", func() bool {
		resp := f.post(t, "/issuers/payments/token", url.Values{"grant_type": {"client_credentials"}}, f.clientID, f.secret)
		claims = f.verifiedClaims(t, decode[tokenResponse](t, resp.Body).AccessToken)
		return claims["resource_access"] != nil
	})
	got, _ := json.Marshal(claims["resource_access"])
	if string(got) != `{"https://api.example.test":{"roles":["viewer","editor"]}}` {
		t.Fatalf("resource_access = %s", got)
	}
}

func TestVerifyAccessTokenAcceptsOnlyLiveTokensOfLiveClients(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	resp := f.post(t, "/issuers/payments/token", url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}, f.clientID, f.secret)
	raw := decode[tokenResponse](t, resp.Body).AccessToken
	claims, err := f.issuer.VerifyAccessToken(ctx, "payments", raw)
	if err != nil || claims.ClientID != f.clientID || !claims.HasScope("read") || claims.HasScope("write") {
		t.Fatalf("VerifyAccessToken = %+v, %v", claims, err)
	}
	parts := strings.Split(raw, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	for name, tc := range map[string]struct{ issuer, token string }{
		"garbage":         {"payments", "not-a-token"},
		"bad signature":   {"payments", tampered},
		"another issuer":  {"nowhere", raw},
		"unsigned header": {"payments", "eyJhbGciOiJub25lIn0." + parts[1] + "."},
	} {
		if _, err := f.issuer.VerifyAccessToken(ctx, tc.issuer, tc.token); !errors.Is(err, credential.ErrInvalidToken) {
			t.Errorf("%s: error %v, want ErrInvalidToken", name, err)
		}
	}
	if _, err := f.store.UpdateClient(ctx, "payments", f.clientID, func(c *store.Client) error { c.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disabled client's token is refused", func() bool {
		_, err := f.issuer.VerifyAccessToken(ctx, "payments", raw)
		return errors.Is(err, credential.ErrInvalidToken)
	})
}

func (f *fixture) verifiedClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	set := f.getJWKS(t)
	payload, err := jws.Verify(set.Key(jws.Signatures[0].Header.KeyID)[0])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(payload, &c)
	return c
}

// eventually polls cond for up to five seconds: changes reach the caches
// asynchronously, as they do across nodes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readAll(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// pingCounter is the memory store, counting pings.
type pingCounter struct {
	store.Store
	pings atomic.Int64
}

func (p *pingCounter) Ping(ctx context.Context) error {
	p.pings.Add(1)
	return p.Store.Ping(ctx)
}

// TestReadinessPingsTheDatabaseAtMostOnceASecond: /readyz is public, and a
// stranger's flood of it must not become a flood of database queries.
func TestReadinessPingsTheDatabaseAtMostOnceASecond(t *testing.T) {
	counted := &pingCounter{Store: memory.New()}
	b := newTestbed(t, withStore(counted))
	b.freeze()
	get := func() int {
		resp, err := http.Get(b.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 50 {
		if status := get(); status != http.StatusOK {
			t.Fatalf("/readyz = %d", status)
		}
	}
	if n := counted.pings.Load(); n != 1 {
		t.Errorf("50 readiness checks within a second pinged the database %d times, want 1", n)
	}
	b.advance(1100 * time.Millisecond)
	get()
	if n := counted.pings.Load(); n != 2 {
		t.Errorf("a check a second later pinged %d times in all, want 2", n)
	}
}

// TestIssuersSharingTheProviderNeverMixTheirTokens: one fosite provider
// serves every issuer, each request's session naming its own. Tokens asked
// of two issuers at once, one native RS256 and one Keycloak-style ES256,
// with a client id in common, each carry only their own issuer's URL,
// header, lifetime and scopes, and verify only there.
func TestIssuersSharingTheProviderNeverMixTheirTokens(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	orders := store.Issuer{Name: "orders", URLStyle: store.URLStyleKeycloak, AvailableScopes: []string{"ship"}, Audience: "a",
		TokenLifetime: time.Minute, SigningAlgorithm: keys.ES256, ClientAuthenticators: []string{credential.ClientSecret}}
	if _, _, err := f.store.PutIssuer(ctx, orders, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.keys.Reconcile(ctx, "orders"); err != nil {
		t.Fatal(err)
	}
	ordersSecret := f.addClient(store.Client{IssuerName: "orders", ID: f.clientID, Scopes: []string{"ship"}, Enabled: true})
	type side struct {
		path, secret, other, iss, typ, scope string
		lifetime                             int64
	}
	sides := []side{
		{"/issuers/payments/token", f.secret, "orders", f.srv.URL + "/issuers/payments", credential.AccessTokenType, "read write", 300},
		{"/realms/orders/protocol/openid-connect/token", ordersSecret, "payments", f.srv.URL + "/realms/orders", credential.KeycloakTokenType, "ship", 60},
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 40 {
				sd := sides[(w+i)%2]
				name := sd.iss[strings.LastIndexByte(sd.iss, '/')+1:]
				req, _ := http.NewRequest(http.MethodPost, f.srv.URL+sd.path, strings.NewReader("grant_type=client_credentials"))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(f.clientID, sd.secret)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var tok tokenResponse
				err = json.NewDecoder(resp.Body).Decode(&tok)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK || tok.ExpiresIn != sd.lifetime || tok.Scope != sd.scope {
					t.Errorf("%s: %d, expires_in %d, scope %q", name, resp.StatusCode, tok.ExpiresIn, tok.Scope)
					return
				}
				parsed, err := jose.ParseSigned(tok.AccessToken, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
				if err != nil {
					t.Error(err)
					return
				}
				if typ := parsed.Signatures[0].Protected.ExtraHeaders["typ"]; typ != sd.typ {
					t.Errorf("%s: typ %v, want %s", name, typ, sd.typ)
					return
				}
				claims, err := f.issuer.VerifyAccessToken(ctx, name, tok.AccessToken)
				if err != nil || claims.Issuer != sd.iss || claims.Expiry-claims.IssuedAt != sd.lifetime {
					t.Errorf("%s: %+v, %v", name, claims, err)
					return
				}
				if _, err := f.issuer.VerifyAccessToken(ctx, sd.other, tok.AccessToken); err == nil {
					t.Errorf("a token of %s verified as %s's", name, sd.other)
					return
				}
			}
		})
	}
	wg.Wait()
}
