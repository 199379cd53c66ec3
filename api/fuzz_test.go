package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzAdminJSON sends arbitrary bodies to the admin API's writes: every
// answer must be a success or a 4xx problem+json, never a server error.
// The spec checker wrapped around the API also holds each answer to
// openapi.yaml.
func FuzzAdminJSON(f *testing.F) {
	// More seeds in testdata/fuzz; this one is shared with the API tests.
	f.Add(byte(0), []byte(validIssuer))
	fx := newFixture(f)
	fx.must(f, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	fx.must(f, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"clientId":"c-fuzz","name":"fuzz","scopes":["read"]}`})
	targets := []struct{ method, path string }{
		{http.MethodPut, "/admin/v1/issuers/fuzzed"},
		{http.MethodPost, "/admin/v1/issuers/payments/clients"},
		{http.MethodPatch, "/admin/v1/issuers/payments/clients/c-fuzz"},
		{http.MethodPost, "/admin/v1/issuers/payments/clients/c-fuzz/secrets"},
	}
	f.Fuzz(func(t *testing.T, which byte, body []byte) {
		target := targets[int(which)%len(targets)]
		req := httptest.NewRequest(target.method, target.path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+fx.token)
		rec := httptest.NewRecorder()
		fx.apiHandler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s with %q: %d %s", target.method, target.path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && (rec.Header().Get("Content-Type") != "application/problem+json" || !json.Valid(rec.Body.Bytes())) {
			t.Fatalf("error answer is not problem+json: %d %q", rec.Code, rec.Body)
		}
	})
}
