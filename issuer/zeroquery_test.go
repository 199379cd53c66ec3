package issuer_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
	"github.com/authz-dev/authz/store/postgres/pgtest"
)

// TestWarmTokenRequestsSendNoQueries proves the hot path's promise: once a
// client is cached, issuing its tokens touches PostgreSQL not at all.
func TestWarmTokenRequestsSendNoQueries(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	url := pgtest.NewDatabase(t)
	if err := postgres.Migrate(ctx, url); err != nil {
		t.Fatal(err)
	}
	st, err := postgres.Open(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, _, err := st.PutIssuer(ctx, store.Issuer{Name: "payments", AvailableScopes: []string{"read"}, Audience: "a",
		TokenLifetime: 5 * time.Minute, SigningAlgorithm: keys.ES256, ClientAuthenticators: []string{issuer.AuthClientSecret}}, 0); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, _ := keys.NewSealer(kek)
	ring := keys.NewKeyring()
	if _, err := keys.NewManager(st, sealer, ring, keys.DefaultSchedule(time.Minute), nil).Reconcile(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	const clients = 10
	secrets := map[string]string{}
	for i := range clients {
		secret, sec := issuer.NewClientSecret(time.Time{})
		id := fmt.Sprintf("c-%d", i)
		secrets[id] = secret
		if _, err := st.CreateClient(ctx, store.Client{IssuerName: "payments", ID: id, Name: id, Scopes: []string{"read"},
			Audience: "a", Enabled: true, Secrets: []store.Secret{sec}}); err != nil {
			t.Fatal(err)
		}
	}
	srv := issuer.New(issuer.Config{PublicURL: "http://authz.test"}, st, ring)
	watching := make(chan struct{})
	go func() {
		_ = st.Watch(ctx, func(c store.Change) {
			if c.Kind == store.ChangeAll {
				close(watching)
			}
			srv.Invalidate(c)
		})
	}()
	<-watching
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	token := func(id string) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/issuers/payments/token", strings.NewReader("grant_type=client_credentials&scope=read"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secrets[id])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("token for %s: status %d", id, resp.StatusCode)
		}
	}
	for id := range secrets { // warm the cache
		token(id)
	}
	before := st.Queries()
	for i := range 1000 {
		token(fmt.Sprintf("c-%d", i%clients))
	}
	if n := st.Queries() - before; n != 0 {
		t.Fatalf("1000 warm token requests sent %d queries to PostgreSQL, want 0", n)
	}
	t.Logf("1000 warm token requests: 0 queries (warm-up sent %d)", before)
}
