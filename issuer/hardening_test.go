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
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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

// TestASlowKeyHostCostsOneFetchNotEveryRequest replays the review's finding:
// a client's jwks_uri that accepts connections and never answers made
// every assertion naming that client wait its turn for a 3 s fetch, so a
// handful of callers held every request slot. Now one fetch runs at a time
// and its failure is remembered for 10 s.
func TestASlowKeyHostCostsOneFetchNotEveryRequest(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	var connections atomic.Int64
	hang := make(chan struct{})
	blackhole := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
	blackhole.Config.ConnState = func(_ net.Conn, state http.ConnState) {
		if state == http.StateNew {
			connections.Add(1)
		}
	}
	blackhole.Start()
	// Cleanups run last first: the hung handlers are released before
	// Close waits for them.
	t.Cleanup(blackhole.Close)
	t.Cleanup(func() { close(hang) })
	if _, err := f.store.UpdateClient(context.Background(), "payments", "c-uri", func(c *store.Client) error {
		c.JWKSURI = blackhole.URL + "/jwks.json"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the change reaches the cache", func() bool {
		c, err := f.store.GetClient(context.Background(), "payments", "c-uri")
		return err == nil && strings.HasPrefix(c.JWKSURI, blackhole.URL)
	})
	time.Sleep(50 * time.Millisecond)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var wg sync.WaitGroup
	var statuses statusTally
	for range 20 {
		wg.Go(func() {
			status, _ := f.post(t, f.valid("c-uri", stranger, "x").sign(t), nil)
			statuses.add(status)
		})
	}
	wg.Wait()
	if statuses.only() != http.StatusUnauthorized || connections.Load() != 1 {
		t.Fatalf("20 assertions at once: statuses %v, %d connections to the key host; want 401s and 1", statuses.n, connections.Load())
	}
	// Within 10 s the failure is answered from memory: no new fetch.
	for range 20 {
		if status, _ := f.post(t, f.valid("c-uri", stranger, "x").sign(t), nil); status != http.StatusUnauthorized {
			t.Fatalf("status %d", status)
		}
	}
	if connections.Load() != 1 {
		t.Fatalf("%d connections to the key host within 10 s of a failed fetch, want 1", connections.Load())
	}
}

type statusTally struct {
	mu sync.Mutex
	n  map[int]int
}

func (s *statusTally) add(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n == nil {
		s.n = map[int]int{}
	}
	s.n[status]++
}

// only is the one status seen, or 0.
func (s *statusTally) only() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for status := range s.n {
		if len(s.n) == 1 {
			return status
		}
	}
	return 0
}

// TestTheClientLimitAppliesToAssertionsWithoutClientID: an assertion names
// its client only in its sub, after admission; its limit is checked then.
func TestTheClientLimitAppliesToAssertionsWithoutClientID(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	stranger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true, withConfig(func(c *issuer.Config) { c.AuthFailuresPerClient = 3 }))
	for range 3 {
		if status, _ := f.post(t, f.valid("c-jwk", stranger, "static-1").sign(t), nil); status != http.StatusUnauthorized {
			t.Fatalf("a bad assertion: %d", status)
		}
	}
	if status, body := f.post(t, f.valid("c-jwk", key, "static-1").sign(t), nil); status != http.StatusTooManyRequests {
		t.Fatalf("past the limit, without client_id: %d %v", status, body)
	}
}

// TestMadeUpIdsAndNamesCostNoLookup replays the review's findings: a 64 KB
// client id made every failure keep 130 KB in the client cache and the
// limiter, and bytes PostgreSQL refuses (NUL, invalid UTF-8) in an id or an
// issuer name made every request a failing query answered 500. Ids and
// names no record can have are refused before any lookup.
func TestMadeUpIdsAndNamesCostNoLookup(t *testing.T) {
	b := newTestbed(t, withConfig(func(c *issuer.Config) { c.AuthFailuresPerAddress = 1000 }))
	before, err := b.store.ListClients(context.Background(), "payments", store.ClientQuery{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("A", 60<<10) // just under the form limit
	for i, id := range []string{long + "1", long + "2", "nul\x00id", "\xffbad", "sp ace"} {
		form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {"x"}}
		status, body := postForm(t, http.DefaultClient, b.tokenURL(), form.Encode(), "", "")
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("id %d: %d %v", i, status, body)
		}
	}
	if strings.Contains(b.log.String(), long) || strings.Contains(b.log.String(), "nul\\u0000id") {
		t.Fatal("the log holds a made-up id")
	}
	for _, name := range []string{"nul%00x", "%FFbad", strings.Repeat("a", 100)} {
		status, _ := postForm(t, http.DefaultClient, b.srv.URL+"/issuers/"+name+"/token", "grant_type=client_credentials", "c", "s")
		if status != http.StatusNotFound {
			t.Fatalf("issuer name %q: %d, want 404", name, status)
		}
	}
	after, _ := b.store.ListClients(context.Background(), "payments", store.ClientQuery{})
	if len(after) != len(before) {
		t.Fatal("made-up ids changed the store")
	}
}

// TestATokenOfADeletedClientDiesEvenInTheSameSecond: a client deleted and
// created again under its id within one second does not inherit the old
// client's tokens, nor does a client that lost a role keep it in its tokens.
func TestATokenOfADeletedClientDiesEvenInTheSameSecond(t *testing.T) {
	b := newTestbed(t)
	ctx := context.Background()
	secret := b.addClient(store.Client{ID: "c-same", Roles: []string{"viewer"}, Enabled: true})
	_, body := postForm(t, http.DefaultClient, b.tokenURL(), "grant_type=client_credentials", "c-same", secret)
	raw := body["access_token"].(string)
	if _, err := b.issuer.VerifyAccessToken(ctx, "payments", raw); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.UpdateClient(ctx, "payments", "c-same", func(c *store.Client) error { c.Roles = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the token carrying a removed role is refused", func() bool {
		_, err := b.issuer.VerifyAccessToken(ctx, "payments", raw)
		return err != nil && strings.Contains(err.Error(), "role")
	})
	_, body = postForm(t, http.DefaultClient, b.tokenURL(), "grant_type=client_credentials", "c-same", secret)
	raw = body["access_token"].(string)
	if err := b.store.DeleteClient(ctx, "payments", "c-same"); err != nil {
		t.Fatal(err)
	}
	b.addClient(store.Client{ID: "c-same", Enabled: true})
	eventually(t, "the old client's token is refused at once", func() bool {
		_, err := b.issuer.VerifyAccessToken(ctx, "payments", raw)
		return err != nil && strings.Contains(err.Error(), "earlier client")
	})
}

// TestATokensUnverifiedIssuerMustBeAPossibleName: the admin API reads the
// issuer from a bearer token before verifying it, so that name is a
// stranger's; one no issuer could have never reaches the issuer cache or
// the store.
func TestATokensUnverifiedIssuerMustBeAPossibleName(t *testing.T) {
	b := newTestbed(t)
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, issuerPath string
		want             bool
	}{
		{"an issuer's name", "/issuers/payments", true},
		{"a realm's name", "/realms/payments", true},
		{"too long", "/issuers/" + strings.Repeat("a", 2000), false},
		{"upper case", "/issuers/Payments", false},
		{"a control character", "/realms/pay\x00ments", false},
		{"empty", "/issuers/", false},
		{"a path", "/issuers/payments/token", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := assertion{iss: b.srv.URL + tt.issuerPath, alg: jose.ES256, key: priv}.sign(t)
			name, ok := b.issuer.IssuerOf(raw)
			if ok != tt.want {
				t.Fatalf("IssuerOf = %q, %v; want %v", name, ok, tt.want)
			}
		})
	}
}
