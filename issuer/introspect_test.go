package issuer_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

func TestIntrospection(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	ctx := context.Background()
	secret := f.addClient(store.Client{ID: "c-rs", Name: "resource server", Enabled: true})
	// introspect asks about token; auth adds the caller's credentials to
	// the request or its form.
	introspect := func(t *testing.T, token string, auth func(*http.Request, url.Values)) (int, http.Header, map[string]any) {
		t.Helper()
		form := url.Values{"token": {token}}
		probe, _ := http.NewRequest(http.MethodPost, "/", nil)
		auth(probe, form)
		req := mustRequest(t, f.srv.URL+"/issuers/payments/introspect", form)
		req.Header = probe.Header.Clone()
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, resp.Header, body
	}
	asResourceServer := func(r *http.Request, _ url.Values) { r.SetBasicAuth("c-rs", secret) }
	newToken := func(t *testing.T) string {
		t.Helper()
		status, body := f.post(t, f.valid("c-jwk", key, "static-1").sign(t), url.Values{"scope": {"read"}})
		if status != http.StatusOK {
			t.Fatalf("token: %d %v", status, body)
		}
		return body["access_token"].(string)
	}

	t.Run("active", func(t *testing.T) {
		status, hdr, body := introspect(t, newToken(t), asResourceServer)
		if status != 200 || hdr.Get("Cache-Control") != "no-store" || body["active"] != true || body["client_id"] != "c-jwk" ||
			body["sub"] != "c-jwk" || body["scope"] != "read" || body["iss"] != f.srv.URL+"/issuers/payments" ||
			body["token_type"] != "Bearer" || body["exp"] == nil || body["iat"] == nil || body["aud"] == nil {
			t.Fatalf("%d %v %v", status, hdr, body)
		}
	})
	t.Run("the caller may authenticate with an assertion", func(t *testing.T) {
		status, _, body := introspect(t, newToken(t), func(_ *http.Request, form url.Values) {
			form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
			form.Set("client_assertion", f.valid("c-jwk", key, "static-1").sign(t))
		})
		if status != 200 || body["active"] != true {
			t.Fatalf("%d %v", status, body)
		}
	})
	inactive := func(t *testing.T, token string) {
		t.Helper()
		status, hdr, body := introspect(t, token, asResourceServer)
		if status != 200 || hdr.Get("Cache-Control") != "no-store" || len(body) != 1 || body["active"] != false {
			t.Fatalf("%d %v; want exactly {\"active\":false}", status, body)
		}
	}
	t.Run("garbage", func(t *testing.T) { inactive(t, "garbage") })
	t.Run("another issuer's token", func(t *testing.T) {
		if _, _, err := f.store.PutIssuer(ctx, store.Issuer{Name: "billing", Audience: "a", TokenLifetime: time.Minute,
			SigningAlgorithm: keys.RS256, ClientAuthenticators: []string{credential.ClientSecret}}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.keys.Reconcile(ctx, "billing"); err != nil {
			t.Fatal(err)
		}
		billingSecret := f.addClient(store.Client{IssuerName: "billing", ID: "c-b", Audience: "a", Enabled: true})
		req := mustRequest(t, f.srv.URL+"/issuers/billing/token", url.Values{"grant_type": {"client_credentials"}})
		req.SetBasicAuth("c-b", billingSecret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tok map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		inactive(t, tok["access_token"].(string))
	})
	t.Run("revoked signing key", func(t *testing.T) {
		raw := newToken(t)
		keyList, _ := f.store.ListSigningKeys(ctx, "payments")
		for _, k := range keyList {
			if k.State == store.KeyActive {
				if err := f.keys.Revoke(ctx, "payments", k.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		inactive(t, raw)
	})
	t.Run("disabled client", func(t *testing.T) {
		raw := newToken(t)
		if _, err := f.store.UpdateClient(ctx, "payments", "c-jwk", func(c *store.Client) error { c.Enabled = false; return nil }); err != nil {
			t.Fatal(err)
		}
		f.issuer.Invalidate(store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "c-jwk"})
		inactive(t, raw)
		if _, err := f.store.UpdateClient(ctx, "payments", "c-jwk", func(c *store.Client) error { c.Enabled = true; return nil }); err != nil {
			t.Fatal(err)
		}
		f.issuer.Invalidate(store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "c-jwk"})
	})
	t.Run("expired", func(t *testing.T) {
		raw := newToken(t)
		f.advance(5*time.Minute + time.Second)
		inactive(t, raw)
	})
	t.Run("unauthenticated caller", func(t *testing.T) {
		for name, auth := range map[string]func(*http.Request, url.Values){
			"no credentials": func(*http.Request, url.Values) {},
			"wrong secret":   func(r *http.Request, _ url.Values) { r.SetBasicAuth("c-rs", "wrong") },
		} {
			status, hdr, body := introspect(t, newToken(t), auth)
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" || hdr.Get("WWW-Authenticate") == "" {
				t.Fatalf("%s: %d %v %v", name, status, hdr, body)
			}
		}
	})
	t.Run("missing token", func(t *testing.T) {
		status, _, body := introspect(t, "", asResourceServer)
		if status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Fatalf("%d %v", status, body)
		}
	})
}

func mustRequest(t *testing.T, u string, form url.Values) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req
}

func TestMetadataListsSignedJWTAuthTruthfully(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newJWTFixture(t, key, true)
	resp, err := http.Get(f.srv.URL + "/.well-known/oauth-authorization-server/issuers/payments")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&meta)
	methods, _ := json.Marshal(meta["token_endpoint_auth_methods_supported"])
	algs, _ := json.Marshal(meta["token_endpoint_auth_signing_alg_values_supported"])
	if string(methods) != `["client_secret_basic","client_secret_post","private_key_jwt"]` ||
		!strings.Contains(string(algs), `"ES256"`) || strings.Contains(string(algs), "HS256") || strings.Contains(string(algs), "none") ||
		meta["introspection_endpoint"] != f.srv.URL+"/issuers/payments/introspect" {
		t.Fatalf("metadata = %v", meta)
	}
}
