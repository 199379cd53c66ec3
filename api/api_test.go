package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

type fixture struct {
	srv   *httptest.Server
	store *memory.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := memory.New()
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, _ := keys.NewSealer(kek)
	ring := keys.NewKeyring()
	public := issuer.New(issuer.Config{PublicURL: "https://auth.example.test"}, st, ring)
	srv := httptest.NewServer(api.New(st, keys.NewManager(st, sealer, ring), public, nil).Handler())
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, store: st}
}

func (f *fixture) do(t *testing.T, method, path, contentType, body string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
	}
	return resp, out
}

const validIssuer = `{"description":"Payments","availableScopes":["read","write"],"audience":"https://api.example.test","tokenLifetime":600}`

func TestPutIssuerCreatesThenReplaces(t *testing.T) {
	f := newFixture(t)
	resp, body := f.do(t, http.MethodPut, "/admin/v1/issuers/payments", "application/json", validIssuer)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("ETag") != `"1"` || resp.Header.Get("Location") == "" {
		t.Fatalf("create: status %d ETag %q Location %q", resp.StatusCode, resp.Header.Get("ETag"), resp.Header.Get("Location"))
	}
	want := map[string]any{
		"name": "payments", "description": "Payments", "flow": "client-credentials",
		"availableScopes": []any{"read", "write"}, "audience": "https://api.example.test",
		"tokenLifetime": float64(600), "signingAlgorithm": "RS256", "clientAuthenticator": []any{"client-secret"},
		"issuer":         "https://auth.example.test/issuers/payments",
		"token_endpoint": "https://auth.example.test/issuers/payments/token",
		"jwks_uri":       "https://auth.example.test/issuers/payments/jwks.json",
	}
	for k, v := range want {
		if !reflect.DeepEqual(body[k], v) {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	resp, _ = f.do(t, http.MethodPut, "/admin/v1/issuers/payments", "application/json", validIssuer)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("replace: status %d ETag %q, want 200 and \"2\"", resp.StatusCode, resp.Header.Get("ETag"))
	}
	keys, _ := f.store.ListSigningKeys(context.Background(), "payments")
	if len(keys) != 1 || keys[0].State != store.KeyActive {
		t.Fatalf("issuer has %d keys, want exactly one active key", len(keys))
	}
}

func TestCreateClientReturnsSecretOnceAndStoresDigest(t *testing.T) {
	f := newFixture(t)
	f.do(t, http.MethodPut, "/admin/v1/issuers/payments", "application/json", validIssuer)
	resp, body := f.do(t, http.MethodPost, "/admin/v1/issuers/payments/clients", "application/json", `{"name":"billing","scopes":["read"]}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %v", resp.StatusCode, body)
	}
	id, _ := body["client_id"].(string)
	secret, _ := body["client_secret"].(string)
	if id == "" || len(secret) != 43 || body["token_endpoint"] != "https://auth.example.test/issuers/payments/token" ||
		body["audience"] != "https://api.example.test" {
		t.Fatalf("answer = %v", body)
	}
	c, err := f.store.GetClient(context.Background(), "payments", id)
	if err != nil || len(c.Secrets) != 1 {
		t.Fatalf("stored client: %+v, %v", c, err)
	}
	if strings.Contains(string(c.Secrets[0].Digest), secret) || len(c.Secrets[0].Digest) != 32 || c.Secrets[0].Hint != secret[len(secret)-4:] {
		t.Fatalf("stored secret = %+v; want a 32-byte digest and the 4-character hint", c.Secrets[0])
	}
}

func TestMalformedInputIsRefusedAndChangesNothing(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        string
		wantStatus  int
		wantField   string
	}{
		{"issuer name too short", "PUT", "/admin/v1/issuers/ab", "application/json", validIssuer, 422, "name"},
		{"issuer name uppercase", "PUT", "/admin/v1/issuers/Payments2", "application/json", validIssuer, 422, "name"},
		{"issuer name starts with digit", "PUT", "/admin/v1/issuers/1payments", "application/json", validIssuer, 422, "name"},
		{"unknown field", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","colour":"red"}`, 400, ""},
		{"wrong type", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","tokenLifetime":"long"}`, 400, ""},
		{"trailing data", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a"} {}`, 400, ""},
		{"not JSON", "PUT", "/admin/v1/issuers/billing", "application/json", `audience=a`, 400, ""},
		{"wrong content type", "PUT", "/admin/v1/issuers/billing", "text/plain", `{"audience":"a"}`, 415, ""},
		{"oversized body", "PUT", "/admin/v1/issuers/billing", "application/json", `{"description":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
		{"missing audience", "PUT", "/admin/v1/issuers/billing", "application/json", `{}`, 422, "audience"},
		{"lifetime too short", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","tokenLifetime":5}`, 422, "tokenLifetime"},
		{"lifetime too long", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","tokenLifetime":90000}`, 422, "tokenLifetime"},
		{"bad scope token", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","availableScopes":["has space"]}`, 422, "availableScopes[0]"},
		{"duplicate scope", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","availableScopes":["r","r"]}`, 422, "availableScopes[1]"},
		{"unsupported algorithm", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","signingAlgorithm":"HS256"}`, 422, "signingAlgorithm"},
		{"unsupported authenticator", "PUT", "/admin/v1/issuers/billing", "application/json", `{"audience":"a","clientAuthenticator":"magic"}`, 422, "clientAuthenticator[0]"},
		{"replace with bad input", "PUT", "/admin/v1/issuers/payments", "application/json", `{"audience":""}`, 422, "audience"},
		{"client scope outside issuer", "POST", "/admin/v1/issuers/payments/clients", "application/json", `{"name":"x","scopes":["read","delete"]}`, 422, "scopes"},
		{"client without name", "POST", "/admin/v1/issuers/payments/clients", "application/json", `{"scopes":["read"]}`, 422, "name"},
		{"client unknown field", "POST", "/admin/v1/issuers/payments/clients", "application/json", `{"name":"x","secret":"mine"}`, 400, ""},
		{"client under unknown issuer", "POST", "/admin/v1/issuers/nowhere/clients", "application/json", `{"name":"x"}`, 404, ""},
		{"unknown route", "GET", "/admin/v1/nothing", "", "", 404, ""},
		{"wrong method", "DELETE", "/admin/v1/issuers/payments/clients", "", "", 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.do(t, http.MethodPut, "/admin/v1/issuers/payments", "application/json", validIssuer)
			before := snapshot(t, f.store)

			resp, body := f.do(t, tc.method, tc.path, tc.contentType, tc.body)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q, want application/problem+json", ct)
			}
			if body["status"] != float64(tc.wantStatus) || body["title"] == "" || body["type"] == "" {
				t.Fatalf("problem = %v", body)
			}
			if tc.wantField != "" && !hasFieldError(body, tc.wantField) {
				t.Fatalf("problem names no error for field %q: %v", tc.wantField, body)
			}
			if after := snapshot(t, f.store); !reflect.DeepEqual(before, after) {
				t.Fatalf("the refused request changed the store:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

func hasFieldError(problem map[string]any, field string) bool {
	errs, _ := problem["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["field"] == field && m["reason"] != "" {
			return true
		}
	}
	return false
}

type storeSnapshot struct {
	Issuers []store.Issuer
	Keys    map[string][]store.SigningKey
}

func snapshot(t *testing.T, st *memory.Store) storeSnapshot {
	t.Helper()
	ctx := context.Background()
	issuers, err := st.ListIssuers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snap := storeSnapshot{Issuers: issuers, Keys: map[string][]store.SigningKey{}}
	for _, iss := range issuers {
		snap.Keys[iss.Name], _ = st.ListSigningKeys(ctx, iss.Name)
	}
	return snap
}
