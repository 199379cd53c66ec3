package issuer_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

type throttleFixture struct {
	url     string
	now     atomic.Pointer[time.Time]
	secrets map[string]string
}

func newThrottleFixture(t *testing.T, perClient, perAddress int) *throttleFixture {
	t.Helper()
	ctx := context.Background()
	f := &throttleFixture{secrets: map[string]string{}}
	start := time.Now()
	f.now.Store(&start)
	clock := func() time.Time { return *f.now.Load() }
	st := memory.New()
	if _, _, err := st.PutIssuer(ctx, store.Issuer{Name: "payments", Audience: "a", TokenLifetime: 5 * time.Minute,
		SigningAlgorithm: keys.ES256, ClientAuthenticators: []string{issuer.AuthClientSecret}}, 0); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, _ := keys.NewSealer(kek)
	ring := keys.NewKeyring()
	if _, err := keys.NewManager(st, sealer, ring, keys.DefaultSchedule(time.Minute), clock).Reconcile(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"c-victim", "c-bystander"} {
		secret, sec := issuer.NewClientSecret(time.Time{})
		f.secrets[id] = secret
		if _, err := st.CreateClient(ctx, store.Client{IssuerName: "payments", ID: id, Name: id, Audience: "a", Enabled: true,
			Secrets: []store.Secret{sec}}); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(issuer.New(issuer.Config{PublicURL: "http://authz.test", Now: clock,
		AuthFailuresPerClient: perClient, AuthFailuresPerAddress: perAddress}, st, ring).Handler())
	t.Cleanup(srv.Close)
	f.url = srv.URL + "/issuers/payments/token"
	return f
}

func (f *throttleFixture) advance(d time.Duration) {
	t := f.now.Load().Add(d)
	f.now.Store(&t)
}

func (f *throttleFixture) token(t *testing.T, id, secret string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.url, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestFloodOfWrongSecretsIsThrottledWhileOtherClientsSucceed(t *testing.T) {
	f := newThrottleFixture(t, 5, 1000)
	var refused, throttled, bystanderOK, bystanderTries int
	for range 40 {
		switch resp := f.token(t, "c-victim", "wrong"); resp.StatusCode {
		case http.StatusUnauthorized:
			refused++
		case http.StatusTooManyRequests:
			throttled++
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
				t.Fatalf("Retry-After = %q", resp.Header.Get("Retry-After"))
			}
		default:
			t.Fatalf("wrong secret answered %d", resp.StatusCode)
		}
		bystanderTries++
		if f.token(t, "c-bystander", f.secrets["c-bystander"]).StatusCode == http.StatusOK {
			bystanderOK++
		}
	}
	t.Logf("flood: %d refused with 401, %d throttled with 429; bystander %d/%d succeeded", refused, throttled, bystanderOK, bystanderTries)
	if refused != 5 || throttled != 35 || bystanderOK != bystanderTries {
		t.Fatalf("refused %d throttled %d bystander %d/%d; want 5, 35, all", refused, throttled, bystanderOK, bystanderTries)
	}
	// While throttled even the right secret is refused: the check is not
	// reached, so the flood learns nothing.
	if resp := f.token(t, "c-victim", f.secrets["c-victim"]); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right secret while throttled: %d, want 429", resp.StatusCode)
	}
	f.advance(12 * time.Second) // one failure a 12 s at 5 a minute
	if resp := f.token(t, "c-victim", f.secrets["c-victim"]); resp.StatusCode != http.StatusOK {
		t.Fatalf("after the refill: %d, want 200", resp.StatusCode)
	}
}

func TestFailuresFromOneAddressAreThrottledAcrossClientIDs(t *testing.T) {
	f := newThrottleFixture(t, 1000, 10)
	for i := range 10 {
		if resp := f.token(t, fmt.Sprintf("c-guess-%d", i), "x"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d, want 401", i, resp.StatusCode)
		}
	}
	if resp := f.token(t, "c-guess-new", "x"); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a new guess from the same address: %d, want 429", resp.StatusCode)
	}
}
