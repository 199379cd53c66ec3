package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

// servers are a real public side and admin API over one memory store.
type servers struct {
	store  *memory.Store
	public *httptest.Server
	admin  *httptest.Server
	boot   api.BootstrapResult
}

func newServers(t *testing.T) *servers {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &servers{store: memory.New()}
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, _ := keys.NewSealer(kek)
	km := keys.NewManager(s.store, sealer, keys.NewKeyring(0), keys.DefaultSchedule(time.Minute), nil)
	var publicHandler http.Handler
	s.public = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { publicHandler.ServeHTTP(w, r) }))
	t.Cleanup(s.public.Close)
	pub := issuer.New(issuer.Config{PublicURL: s.public.URL}, s.store, km)
	publicHandler = pub.Handler()
	go pub.Follow(ctx, s.store, km, time.Minute)
	s.admin = httptest.NewServer(api.New(s.store, km, pub, nil).Handler())
	t.Cleanup(s.admin.Close)
	var err error
	if s.boot, err = api.Bootstrap(ctx, s.store, km); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *servers) tokenURL() string { return s.public.URL + "/issuers/system/token" }

func TestProblemsBecomeErrorsWithTheirFields(t *testing.T) {
	s := newServers(t)
	c := client.New(s.admin.URL, &client.ClientCredentials{TokenURL: s.tokenURL(), ClientID: s.boot.ClientID, ClientSecret: s.boot.ClientSecret}, nil)
	ctx := context.Background()
	_, err := c.PutIssuer(ctx, "payments", api.IssuerRequest{Audience: "a", AvailableScopes: []string{"bad scope"}}, 0)
	var problem *client.Error
	if !client.HasStatus(err, http.StatusUnprocessableEntity) || !errors.As(err, &problem) || len(problem.Fields) != 1 ||
		problem.Fields[0].Field != "availableScopes[0]" {
		t.Fatalf("invalid issuer: %v", err)
	}
	if _, err := c.GetIssuer(ctx, "nowhere"); !client.IsNotFound(err) {
		t.Fatalf("unknown issuer: %v", err)
	}
	bad := client.New(s.admin.URL, &client.ClientCredentials{TokenURL: s.tokenURL(), ClientID: s.boot.ClientID, ClientSecret: "wrong"}, nil)
	var oauth *client.OAuthError
	if _, err := bad.ListIssuers(ctx); !errors.As(err, &oauth) || oauth.Status != http.StatusUnauthorized || oauth.Code != "invalid_client" {
		t.Fatalf("wrong admin secret: %v", err)
	}
}

func TestListingsFollowEveryPage(t *testing.T) {
	s := newServers(t)
	ctx := context.Background()
	const issuers = 1203 // three pages of 500
	for i := range issuers - 1 {
		if _, _, err := s.store.PutIssuer(ctx, store.Issuer{Name: fmt.Sprintf("iss-%04d", i), Audience: "a", TokenLifetime: time.Minute,
			SigningAlgorithm: keys.ES256, ClientAuthenticators: []string{"client-secret"}}, 0); err != nil {
			t.Fatal(err)
		}
	}
	c := client.New(s.admin.URL, &client.ClientCredentials{TokenURL: s.tokenURL(), ClientID: s.boot.ClientID, ClientSecret: s.boot.ClientSecret}, nil)
	all, err := c.ListIssuers(ctx)
	if err != nil || len(all) != issuers || all[0].Name != "iss-0000" || all[issuers-1].Name != "system" {
		t.Fatalf("ListIssuers: %d issuers, %v", len(all), err)
	}
}

func TestTheAdminTokenIsRenewedBeforeItExpires(t *testing.T) {
	s := newServers(t)
	var renewals int
	tokens := &client.ClientCredentials{TokenURL: s.tokenURL(), ClientID: s.boot.ClientID, ClientSecret: s.boot.ClientSecret,
		OnRenew: func(string, time.Time) error { renewals++; return nil }}
	c := client.New(s.admin.URL, tokens, nil)
	ctx := context.Background()
	for range 3 {
		if _, err := c.ListIssuers(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if renewals != 1 {
		t.Fatalf("%d renewals for three calls with a fresh token, want 1", renewals)
	}
	// A token 10 s from expiry is renewed before it is used.
	tokens.Reuse("stale-token", time.Now().Add(10*time.Second))
	if _, err := c.ListIssuers(ctx); err != nil || renewals != 2 {
		t.Fatalf("near expiry: %v, %d renewals", err, renewals)
	}
}

// TestARefusedTokenIsRenewedOnce: a token kept from an earlier run that the
// server no longer accepts (a server upgrade, the admin client re-created)
// costs one retry with a new token, not an error; a refusal of the new
// token is reported.
func TestARefusedTokenIsRenewedOnce(t *testing.T) {
	s := newServers(t)
	var renewals int
	tokens := &client.ClientCredentials{TokenURL: s.tokenURL(), ClientID: s.boot.ClientID, ClientSecret: s.boot.ClientSecret,
		OnRenew: func(string, time.Time) error { renewals++; return nil }}
	tokens.Reuse("kept-but-no-longer-valid", time.Now().Add(time.Hour))
	c := client.New(s.admin.URL, tokens, nil)
	ctx := context.Background()
	if _, err := c.ListIssuers(ctx); err != nil || renewals != 1 {
		t.Fatalf("with a refused token: %v, %d renewals", err, renewals)
	}
	fixed := client.New(s.admin.URL, staticToken("never-valid"), nil)
	if _, err := fixed.ListIssuers(ctx); !client.HasStatus(err, http.StatusUnauthorized) {
		t.Fatalf("a source that cannot renew: %v", err)
	}
}

type staticToken string

func (s staticToken) Token(context.Context) (string, error) { return string(s), nil }
