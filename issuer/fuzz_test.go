package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// allowedStatuses are the answers the token endpoint may give any input;
// anything else, a 500 above all, is a bug.
var allowedStatuses = map[int]bool{200: true, 400: true, 401: true, 404: true, 405: true, 429: true}

// The seeds of both targets are in testdata/fuzz.
func FuzzTokenRequest(f *testing.F) {
	fx := newFixture(f)
	h := fx.issuer.Handler()
	f.Fuzz(func(t *testing.T, body, contentType, authorization string) {
		req := httptest.NewRequest(http.MethodPost, "/issuers/payments/token", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", authorization)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowedStatuses[rec.Code] {
			t.Fatalf("status %d for body %q: %s", rec.Code, body, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("answer is not JSON: %q", rec.Body)
		}
	})
}

func FuzzClientAssertion(f *testing.F) {
	fx := newJWTFixture(f, mustECKey(), true)
	f.Fuzz(func(t *testing.T, assertion string) {
		body := "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=" +
			strings.ReplaceAll(assertion, "&", "%26")
		resp, err := http.Post(fx.tokenURL(), "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("assertion %q answered %d, want 400 or 401", assertion, resp.StatusCode)
		}
	})
}
