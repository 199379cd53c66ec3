package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authz-dev/authz/route"
)

// BenchmarkInstrument is what counting and timing adds to each request:
// compare its two cases' ns/op.
func BenchmarkInstrument(b *testing.B) {
	handler := route.Named("/issuers/{name}/token", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	m := New(Build{Version: "bench"}, nil)
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", handler},
		{"instrumented", m.Instrument("public", []route.Known{{Method: http.MethodPost, Template: "/issuers/{name}/token"}}, handler)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodPost, "/issuers/x/token", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
		})
	}
}

// TestInstrumentLabelsByTemplateAndCode: the series carry the route
// template, the bounded method and the status, never the raw path.
func TestInstrumentLabelsByTemplateAndCode(t *testing.T) {
	m := New(Build{Version: "test"}, nil)
	h := m.Instrument("public", []route.Known{{Method: http.MethodGet, Template: "/known"}}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/issuers/secret-name/jwks.json" {
			route.Name(w, "/issuers/{name}/jwks.json")
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/issuers/secret-name/jwks.json", nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("BREW", "/nowhere", nil))
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := rec.Body.String()
	for _, want := range []string{
		`authz_http_requests_total{code="404",listener="public",method="GET",route="/issuers/{name}/jwks.json"} 2`,
		`authz_http_requests_total{code="200",listener="public",method="OTHER",route="unmatched"} 1`,
		`authz_http_requests_total{code="200",listener="public",method="GET",route="/known"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, "secret-name") || strings.Contains(out, "BREW") {
		t.Error("a raw path or method became a label")
	}
}
