package issuer_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

type throttleFixture struct {
	*testbed
	secrets map[string]string
}

func newThrottleFixture(t *testing.T, perClient, perAddress int) *throttleFixture {
	t.Helper()
	f := &throttleFixture{secrets: map[string]string{}}
	f.testbed = newTestbed(t,
		withIssuer(func(iss *store.Issuer) { iss.SigningAlgorithm = keys.ES256 }),
		withConfig(func(c *issuer.Config) { c.AuthFailuresPerClient, c.AuthFailuresPerAddress = perClient, perAddress }))
	f.freeze()
	for _, id := range []string{"c-victim", "c-bystander"} {
		f.secrets[id] = f.addClient(store.Client{ID: id, Enabled: true})
	}
	return f
}

func (f *throttleFixture) token(t *testing.T, id, secret string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.tokenURL(), strings.NewReader("grant_type=client_credentials"))
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
