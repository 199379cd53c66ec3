package metrics

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

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

// scrape returns the metrics text.
func scrape(m *Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

// TestTokenSeriesAreBoundedAndForgotten: past the bound, issuers count
// under "other", so 100,000 issuers cannot mint 100,000 series; a deleted
// issuer's series go, and free its place.
func TestTokenSeriesAreBoundedAndForgotten(t *testing.T) {
	m := New(Build{Version: "test"}, nil)
	m.maxIssuerSeries = 2
	for _, issuer := range []string{"a", "b", "c", "d", "a"} {
		m.TokenRequest(issuer, http.StatusOK, time.Millisecond)
	}
	m.TokenRequest("a", http.StatusUnauthorized, time.Millisecond)
	out := scrape(m)
	for _, want := range []string{
		`authz_token_requests_total{code="200",issuer="a"} 2`,
		`authz_token_requests_total{code="401",issuer="a"} 1`,
		`authz_token_requests_total{code="200",issuer="b"} 1`,
		`authz_token_requests_total{code="200",issuer="other"} 2`,
		`authz_token_request_duration_seconds_count 6`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, `issuer="c"`) {
		t.Error("an issuer past the bound got a series")
	}
	m.IssuerGone("a")
	m.TokenRequest("c", http.StatusOK, time.Millisecond)
	out = scrape(m)
	if strings.Contains(out, `issuer="a"`) || !strings.Contains(out, `authz_token_requests_total{code="200",issuer="c"} 1`) {
		t.Errorf("after forgetting a, want its series gone and c in its place:\n%s", out)
	}
}

func TestCacheMetricsReadTheirSources(t *testing.T) {
	m := New(Build{Version: "test"}, nil)
	m.KeyCache(func() (uint64, uint64) { return 7, 3 })
	m.CacheEntries(map[string]func() int{"keys": func() int { return 5 }, "issuers": func() int { return 4 }})
	m.IssuerLookup("hit")
	out := scrape(m)
	for _, want := range []string{
		`authz_key_cache_lookups_total{result="hit"} 7`,
		`authz_key_cache_lookups_total{result="miss"} 3`,
		`authz_cache_entries{cache="keys"} 5`,
		`authz_cache_entries{cache="issuers"} 4`,
		`authz_issuer_cache_lookups_total{result="hit"} 1`,
		`authz_issuer_cache_lookups_total{result="miss"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
