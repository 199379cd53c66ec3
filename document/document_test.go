package document_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authz-dev/authz/document"
)

func TestDocumentIsServedWithValidatorsAndConditionally(t *testing.T) {
	d, err := document.New(map[string]string{"issuer": "https://a.test"}, 90*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := document.New(map[string]string{"issuer": "https://a.test"}, time.Minute); again.ETag != d.ETag {
		t.Fatal("the same body rendered twice has two ETags")
	}
	for _, tc := range []struct {
		method, ifNoneMatch string
		status              int
		body                string
	}{
		{http.MethodGet, "", 200, `{"issuer":"https://a.test"}`},
		{http.MethodHead, "", 200, ""},
		{http.MethodGet, d.ETag, 304, ""},
		{http.MethodGet, `"other"`, 200, `{"issuer":"https://a.test"}`},
		{http.MethodPost, "", 405, `{"error":"invalid_request","error_description":"Use GET."}` + "\n"},
	} {
		req := httptest.NewRequest(tc.method, "/", nil)
		if tc.ifNoneMatch != "" {
			req.Header.Set("If-None-Match", tc.ifNoneMatch)
		}
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code != tc.status || rec.Body.String() != tc.body {
			t.Errorf("%s If-None-Match %q: %d %q, want %d %q", tc.method, tc.ifNoneMatch, rec.Code, rec.Body, tc.status, tc.body)
		}
		if tc.status != 405 && (rec.Header().Get("ETag") != d.ETag || rec.Header().Get("Cache-Control") != "public, max-age=90") {
			t.Errorf("%s: headers %v", tc.method, rec.Header())
		}
	}
}
