package issuer_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// benchIssuer is an issuer of the given algorithm with one client, served
// in process: what the token endpoint costs without a network.
func benchIssuer(b *testing.B, alg string) (http.Handler, string, string) {
	b.Helper()
	bed := newTestbed(b, withoutWatch, withIssuer(func(iss *store.Issuer) { iss.SigningAlgorithm, iss.AvailableScopes = alg, []string{"read"} }))
	secret := bed.addClient(store.Client{ID: "c-bench", Scopes: []string{"read"}, Enabled: true})
	return bed.issuer.Handler(), "c-bench", secret
}

func BenchmarkTokenEndpoint(b *testing.B) {
	for _, alg := range []string{keys.RS256, keys.ES256, keys.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			h, id, secret := benchIssuer(b, alg)
			body := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/issuers/payments/token", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.SetBasicAuth(id, secret)
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("status %d: %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}

func BenchmarkJWKS(b *testing.B) {
	h, _, _ := benchIssuer(b, keys.RS256)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/issuers/payments/jwks.json", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkColdIssuer is the first request for an issuer this node has
// never served, on PostgreSQL: the issuer, its keys (opened from their
// sealed form) and, for a token, the client are all loaded. Each iteration
// meets an issuer of its own, of 20,000 stored.
func BenchmarkColdIssuer(b *testing.B) {
	st := newPostgresStore(b)
	bed := newTestbed(b, withStore(st), withoutWatch)
	const issuers = 20_000
	names := importIssuers(b, bed, st, issuers, "cold")
	h := bed.issuer.Handler()
	next := 0
	cold := func(b *testing.B) string {
		if next == issuers {
			b.Fatalf("more than %d iterations: run with -benchtime 2000x", issuers)
		}
		next++
		return names[next-1]
	}
	b.Run("token", func(b *testing.B) {
		for b.Loop() {
			name := cold(b)
			req := httptest.NewRequest(http.MethodPost, "/issuers/"+name+"/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("c-"+name, "cold")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
		}
	})
	b.Run("jwks", func(b *testing.B) {
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/issuers/"+cold(b)+"/jwks.json", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}

// BenchmarkIssuerBytes reports what a warm issuer costs in heap: its
// protocol state, metadata, key set and opened ES256 signing key, plus one
// cached client, measured after a collection over 2,000 issuers that have
// each served a JWKS and a token. Run with -benchtime 1x.
func BenchmarkIssuerBytes(b *testing.B) {
	const n = 2000
	st := newPostgresStore(b)
	bed := newTestbed(b, withStore(st), withoutWatch)
	names := importIssuers(b, bed, st, n, "bytes")
	h := bed.issuer.Handler()
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, name := range names {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/issuers/"+name+"/jwks.json", nil))
			req := httptest.NewRequest(http.MethodPost, "/issuers/"+name+"/token", strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("c-"+name, "bytes")
			tok := httptest.NewRecorder()
			h.ServeHTTP(tok, req)
			if rec.Code != http.StatusOK || tok.Code != http.StatusOK {
				b.Fatalf("issuer %s: JWKS %d, token %d", name, rec.Code, tok.Code)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/issuer")
		// What the collector marks, object by object, on every cycle.
		b.ReportMetric(float64(after.HeapObjects-before.HeapObjects)/n, "objects/issuer")
	}
}
