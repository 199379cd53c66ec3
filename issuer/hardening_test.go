package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/store"
)

// from is an HTTP client whose connections leave from the loopback address
// ip, so that one test plays callers at several addresses.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// postForm sends a raw form body with optional Basic credentials and
// returns the status and the decoded answer.
func postForm(t *testing.T, hc *http.Client, u, body, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestMadeUpIssuerNamesAreThrottledPerAddress(t *testing.T) {
	b := newTestbed(t, withConfig(func(c *issuer.Config) { c.AuthFailuresPerAddress = 5 }))
	secret := b.addClient(store.Client{ID: "c-good", Enabled: true})
	prober, bystander := from("127.0.0.2"), from("127.0.0.3")
	for i := range 5 {
		if status, _ := postForm(t, prober, fmt.Sprintf("%s/issuers/made-up-%d/token", b.srv.URL, i), "grant_type=client_credentials", "", ""); status != http.StatusNotFound {
			t.Fatalf("made-up name %d: %d, want 404", i, status)
		}
	}
	// Past the limit the address is refused before any name is looked up,
	// discovery documents included.
	for _, path := range []string{"/issuers/made-up-99/token", "/issuers/payments/token"} {
		if status, _ := postForm(t, prober, b.srv.URL+path, "grant_type=client_credentials", "c-good", secret); status != http.StatusTooManyRequests {
			t.Errorf("%s from the prober: %d, want 429", path, status)
		}
	}
	resp, err := prober.Get(b.srv.URL + "/issuers/made-up-100/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("metadata of a made-up name from the prober: %d", resp.StatusCode)
	}
	if status, _ := postForm(t, bystander, b.tokenURL(), "grant_type=client_credentials", "c-good", secret); status != http.StatusOK {
		t.Errorf("another address: %d, want 200", status)
	}
}

func TestRepeatedParametersAndTwoAuthenticationMethodsAreMalformed(t *testing.T) {
	b := newTestbed(t)
	secret := b.addClient(store.Client{ID: "c-one", Scopes: []string{"read", "write"}, Enabled: true})
	for _, tc := range []struct {
		name, body, user, pass, want string
	}{
		{"two grant types", "grant_type=client_credentials&grant_type=password", "c-one", secret, "grant_type parameter is repeated"},
		{"two scopes", "grant_type=client_credentials&scope=read&scope=write", "c-one", secret, "scope parameter is repeated"},
		{"Basic and a body secret", "grant_type=client_credentials&client_id=c-one&client_secret=wrong", "c-one", secret, "one client authentication method"},
		{"Basic and another client_id", "grant_type=client_credentials&client_id=c-two", "c-one", secret, "names another client"},
		{"a body secret and an assertion", "grant_type=client_credentials&client_id=c-one&client_secret=" + secret +
			"&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=x", "", "", "one client authentication method"},
	} {
		status, body := postForm(t, http.DefaultClient, b.tokenURL(), tc.body, tc.user, tc.pass)
		desc, _ := body["error_description"].(string)
		if status != http.StatusBadRequest || body["error"] != "invalid_request" || !strings.Contains(desc, tc.want) {
			t.Errorf("%s: %d %v", tc.name, status, body)
		}
	}
	// One method, with client_id repeated harmlessly in the body, is fine.
	if status, body := postForm(t, http.DefaultClient, b.tokenURL(), "grant_type=client_credentials&client_id=c-one", "c-one", secret); status != http.StatusOK {
		t.Fatalf("Basic with the same client_id in the body: %d %v", status, body)
	}
}

// TestAnAssertionCannotBeReplayedAfterItExpires replays the review's
// finding on one node: the jti was forgotten at exp while the assertion was
// still taken until exp plus skew, so the clean-up reopened a window.
func TestAnAssertionCannotBeReplayedAfterItExpires(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	a := f.valid("c-jwk", key, "static-1")
	a.exp = f.clock().Add(time.Minute)
	raw := a.sign(t)
	if status, body := f.post(t, raw, nil); status != http.StatusOK {
		t.Fatalf("first use: %d %v", status, body)
	}
	f.advance(time.Minute + 5*time.Second) // past exp, within the old skew
	if _, err := f.store.DeleteExpiredAssertions(context.Background(), f.clock()); err != nil {
		t.Fatal(err)
	}
	if status, body := f.post(t, raw, nil); status != http.StatusUnauthorized || !strings.Contains(body["error_description"].(string), "expired") {
		t.Fatalf("replay after exp and the clean-up: %d %v", status, body)
	}
	// A node whose clock lags by the skew still finds the jti recorded.
	err := f.store.RecordAssertion(context.Background(), "payments", "c-jwk", a.jti, f.clock().Add(time.Minute))
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the jti was forgotten before exp plus skew: %v", err)
	}
}

// TestAssertionsMayLiveAnHourByDefault: python3-authlib mints assertions
// that expire an hour ahead, as its documentation shows.
func TestAssertionsMayLiveAnHourByDefault(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	hour := f.valid("c-jwk", key, "static-1")
	hour.exp = f.clock().Add(time.Hour)
	if status, body := f.post(t, hour.sign(t), nil); status != http.StatusOK {
		t.Fatalf("an hour-long assertion: %d %v", status, body)
	}
	short := newJWTFixture(t, key, true, withConfig(func(c *issuer.Config) { c.MaxAssertionLifetime = 5 * time.Minute }))
	hour = short.valid("c-jwk", key, "static-1")
	hour.exp = short.clock().Add(time.Hour)
	if status, body := short.post(t, hour.sign(t), nil); status != http.StatusUnauthorized || !strings.Contains(body["error_description"].(string), "5m0s ahead") {
		t.Fatalf("an hour-long assertion where five minutes are allowed: %d %v", status, body)
	}
}

// TestAssertionsDoNotTellWhichClientsExist: on an issuer that takes only
// secrets, every assertion gets the same answer; where assertions are
// taken, unknown and known clients get the same answer to a bad one.
func TestAssertionsDoNotTellWhichClientsExist(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	known := f.valid("c-jwk", stranger, "static-1")
	unknown := f.valid("c-nobody", stranger, "static-1")
	_, knownBody := f.post(t, known.sign(t), nil)
	_, unknownBody := f.post(t, unknown.sign(t), nil)
	if knownBody["error_description"] != unknownBody["error_description"] {
		t.Fatalf("known and unknown clients are told apart: %v / %v", knownBody, unknownBody)
	}
	secretsOnly := newJWTFixture(t, key, true, withIssuer(func(iss *store.Issuer) { iss.ClientAuthenticators = []string{credential.ClientSecret} }))
	_, knownBody = secretsOnly.post(t, secretsOnly.valid("c-jwk", key, "static-1").sign(t), nil)
	_, unknownBody = secretsOnly.post(t, secretsOnly.valid("c-nobody", key, "static-1").sign(t), nil)
	if knownBody["error_description"] != unknownBody["error_description"] ||
		!strings.Contains(knownBody["error_description"].(string), "does not accept client assertions") {
		t.Fatalf("a secrets-only issuer: %v / %v", knownBody, unknownBody)
	}
	// The secret path answers alike too.
	b := newTestbed(t)
	b.addClient(store.Client{ID: "c-real", Enabled: true})
	_, knownBody = postForm(t, http.DefaultClient, b.tokenURL(), "grant_type=client_credentials", "c-real", "wrong")
	_, unknownBody = postForm(t, http.DefaultClient, b.tokenURL(), "grant_type=client_credentials", "c-fake", "wrong")
	if knownBody["error_description"] != unknownBody["error_description"] {
		t.Fatalf("secrets: %v / %v", knownBody, unknownBody)
	}
}

func TestADisabledSignedJWTClientIsRefused(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	if _, err := f.store.UpdateClient(context.Background(), "payments", "c-jwk", func(c *store.Client) error { c.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the disabled client-jwt client is refused", func() bool {
		status, body := f.post(t, f.valid("c-jwk", key, "static-1").sign(t), nil)
		return status == http.StatusUnauthorized && body["error"] == "invalid_client"
	})
	f.logged(t, "client is disabled")
}

func TestJWKSURIKeysMeetTheRulesOfRegisteredKeys(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	weak, _ := rsa.GenerateKey(rand.Reader, 1024)
	f := newJWTFixture(t, key, true)
	weakJWK, _ := jose.JSONWebKey{Key: &weak.PublicKey, KeyID: "weak", Use: "sig"}.MarshalJSON()
	serveWeak := func(w http.ResponseWriter) { _, _ = w.Write([]byte(`{"keys":[` + string(weakJWK) + `]}`)) }
	f.jwksServe.Store(&serveWeak)
	weakAssertion := f.valid("c-uri", weak, "weak")
	weakAssertion.alg = jose.RS256
	if status, _ := f.post(t, weakAssertion.sign(t), nil); status != http.StatusUnauthorized {
		t.Fatalf("a 1024-bit RSA key from the jwks_uri: %d, want 401", status)
	}
	f.logged(t, "at least 2048 bits")

	// An encryption key under the same kid is passed over; the signing key
	// next to it works.
	enc, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	encJWK, _ := jose.JSONWebKey{Key: &enc.PublicKey, KeyID: "remote-1", Use: "enc"}.MarshalJSON()
	serveBoth := func(w http.ResponseWriter) {
		_, _ = w.Write([]byte(`{"keys":[` + string(encJWK) + `,` + string(publicJWKJSON(t, f.jwksKey, "remote-1")) + `]}`))
	}
	f.jwksServe.Store(&serveBoth)
	f.advance(10 * time.Second) // past the refetch limit
	if status, body := f.post(t, f.valid("c-uri", f.jwksKey, "remote-1").sign(t), nil); status != http.StatusOK {
		t.Fatalf("a signing key beside an encryption key: %d %v", status, body)
	}
	if status, _ := f.post(t, f.valid("c-uri", enc, "remote-1").sign(t), nil); status != http.StatusUnauthorized {
		t.Fatalf("an assertion signed with the encryption key: %d, want 401", status)
	}
}

func TestTokensOfReplacedOrNarrowedClientsStopVerifying(t *testing.T) {
	b := newTestbed(t)
	ctx := context.Background()
	secret := b.addClient(store.Client{ID: "c-admin", Scopes: []string{"read", "admin"}, Enabled: true})
	token := func(secret, scope string) string {
		t.Helper()
		status, body := postForm(t, http.DefaultClient, b.tokenURL(), "grant_type=client_credentials&scope="+url.QueryEscape(scope), "c-admin", secret)
		if status != http.StatusOK {
			t.Fatalf("token: %d %v", status, body)
		}
		return body["access_token"].(string)
	}
	broad, narrow := token(secret, "read admin"), token(secret, "read")
	// The client loses a scope: tokens granting it stop verifying, others
	// do not.
	if _, err := b.store.UpdateClient(ctx, "payments", "c-admin", func(c *store.Client) error { c.Scopes = []string{"read"}; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the token granting the removed scope is refused", func() bool {
		_, err := b.issuer.VerifyAccessToken(ctx, "payments", broad)
		return errors.Is(err, credential.ErrInvalidToken)
	})
	if _, err := b.issuer.VerifyAccessToken(ctx, "payments", narrow); err != nil {
		t.Fatalf("a token within the remaining scopes: %v", err)
	}
	// The client is deleted and another created under its id: the old
	// tokens do not come back to life.
	if err := b.store.DeleteClient(ctx, "payments", "c-admin"); err != nil {
		t.Fatal(err)
	}
	// Issuance is known to the second: the new client is created in a
	// later second than the token, as any re-creation by a person is.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	b.addClient(store.Client{ID: "c-admin", Scopes: []string{"read"}, Enabled: true})
	eventually(t, "the new client is seen", func() bool {
		_, err := b.issuer.VerifyAccessToken(ctx, "payments", narrow)
		return err != nil && strings.Contains(err.Error(), "earlier client")
	})
}
