package issuer_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

// benchIssuer is an issuer of the given algorithm with one client, served
// in process: what the token endpoint costs without a network.
func benchIssuer(b *testing.B, alg string) (http.Handler, string, string) {
	b.Helper()
	ctx := context.Background()
	st := memory.New()
	if _, _, err := st.PutIssuer(ctx, store.Issuer{Name: "bench", AvailableScopes: []string{"read"}, Audience: "https://api.example.test",
		TokenLifetime: 5 * time.Minute, SigningAlgorithm: alg, ClientAuthenticators: []string{issuer.AuthClientSecret}}, 0); err != nil {
		b.Fatal(err)
	}
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, _ := keys.NewSealer(kek)
	ring := keys.NewKeyring()
	if _, err := keys.NewManager(st, sealer, ring, keys.DefaultSchedule(5*time.Minute), nil).Reconcile(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	secret, sec := issuer.NewClientSecret(time.Time{})
	if _, err := st.CreateClient(ctx, store.Client{IssuerName: "bench", ID: "c-bench", Name: "bench", Scopes: []string{"read"},
		Audience: "https://api.example.test", Enabled: true, Secrets: []store.Secret{sec}}); err != nil {
		b.Fatal(err)
	}
	srv := issuer.New(issuer.Config{PublicURL: "http://bench.test"}, st, ring)
	return srv.Handler(), "c-bench", secret
}

func BenchmarkTokenEndpoint(b *testing.B) {
	for _, alg := range []string{keys.RS256, keys.ES256, keys.EdDSA} {
		b.Run(alg, func(b *testing.B) {
			h, id, secret := benchIssuer(b, alg)
			body := url.Values{"grant_type": {"client_credentials"}, "scope": {"read"}}.Encode()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest(http.MethodPost, "/issuers/bench/token", strings.NewReader(body))
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
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/issuers/bench/jwks.json", nil))
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
