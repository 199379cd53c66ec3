package keycloak_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
	"github.com/go-jose/go-jose/v4"
)

// The tests below replay the findings of an outside attack review of the
// registration service and the admin subset.

// TestARegistrationTokenCannotWidenItsClient: an admin disabled a client
// and narrowed its roles to what is scope-mapped; the client's own
// registration access token can neither switch it back on nor widen its
// scopes, audience, lifespan or scope, so the admin's word stands.
func TestARegistrationTokenCannotWidenItsClient(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("narrowed", nil)
	made := b.call(http.MethodPost, r.registrationURL(""), r.saToken, portalClient("consumer", "consumer-secret-0123456789"))
	rat := made.object()["registrationAccessToken"].(string)
	id := made.object()["id"].(string)
	if a := b.call(http.MethodPut, b.adminURL(r.name, "/clients/"+id), r.saToken, map[string]any{"enabled": false, "defaultClientScopes": []string{"read"}}); a.status != http.StatusNoContent {
		t.Fatalf("the admin narrowing the client: %d %s", a.status, a.raw)
	}
	before := b.snapshot(r.name)
	for name, change := range map[string]map[string]any{
		"enable":     {"enabled": true},
		"audience":   {"protocolMappers": []any{map[string]any{"protocolMapper": "oidc-audience-mapper", "config": map[string]string{"included.custom.audience": "billing-api"}}}},
		"scopes":     {"defaultClientScopes": []string{"read", "write"}},
		"full scope": {"fullScopeAllowed": true},
		"lifespan":   {"attributes": map[string]string{"access.token.lifespan": "86400"}},
	} {
		got := b.call(http.MethodPut, r.registrationURL("/consumer"), rat, change)
		if got.status != http.StatusBadRequest || !strings.Contains(string(got.raw), "an admin") {
			t.Errorf("%s with the client's own token: %d %s", name, got.status, got.raw)
		}
	}
	if b.snapshot(r.name) != before {
		t.Fatal("a refused change changed the realm")
	}
	// What it may do: narrow itself, rename itself.
	if got := b.call(http.MethodPut, r.registrationURL("/consumer"), rat, map[string]any{"name": "Consumer", "defaultClientScopes": []string{}}); got.status != http.StatusOK {
		t.Fatalf("narrowing itself: %d %s", got.status, got.raw)
	}
}

// TestAnAnonymousRegistrantStartsNarrow: anonymous registration takes the
// realm's audience and lifespan and no full scope, and costs its caller
// part of its failure budget, so one address cannot fill the store.
func TestAnAnonymousRegistrantStartsNarrow(t *testing.T) {
	b := newBed(t, 30)
	r := b.realm("open-door", func(req *api.IssuerRequest) { req.AnonymousRegistration = true })
	aimed := portalClient("aimed", "aimed-secret-0123456789")
	aimed["protocolMappers"] = []any{map[string]any{"protocolMapper": "oidc-audience-mapper", "config": map[string]string{"included.custom.audience": "https://payments.internal"}}}
	long := portalClient("long", "long-secret-0123456789")
	long["attributes"] = map[string]string{"access.token.lifespan": "86400"}
	for name, rep := range map[string]map[string]any{"another audience": aimed, "a longer lifespan": long} {
		if got := b.call(http.MethodPost, r.registrationURL(""), "", rep, "198.51.100.20"); got.status != http.StatusBadRequest {
			t.Errorf("anonymous with %s: %d %s", name, got.status, got.raw)
		}
	}
	plain := portalClient("plain", "plain-secret-0123456789")
	plain["fullScopeAllowed"] = true
	if got := b.call(http.MethodPost, r.registrationURL(""), "", plain, "198.51.100.21"); got.status != http.StatusCreated || got.object()["fullScopeAllowed"] != false {
		t.Fatalf("an anonymous registration: %d %s", got.status, got.raw)
	}
	// A budget of 30 failures a minute is three registrations.
	const flooder = "203.0.113.9"
	statuses := []int{}
	for i := range 5 {
		statuses = append(statuses, b.call(http.MethodPost, r.registrationURL(""), "", portalClient(fmt.Sprintf("flood-%d", i), "flood-secret-0123456789"), flooder).status)
	}
	if !slices.Equal(statuses, []int{201, 201, 201, 429, 429}) {
		t.Fatalf("anonymous registrations from one address: %v", statuses)
	}
	if got := b.call(http.MethodPost, r.registrationURL(""), "", portalClient("neighbour", "neighbour-secret-0123456789"), "198.51.100.22"); got.status != http.StatusCreated {
		t.Fatalf("another address: %d", got.status)
	}
}

// TestNoRegistrationReachesTheSystemIssuer: the system issuer's clients
// are the server's admins. It has no registration service, takes no
// initial access token, and authz:admin is granted by an admin only.
func TestNoRegistrationReachesTheSystemIssuer(t *testing.T) {
	b := newBed(t, 0)
	ctx := context.Background()
	count := 1
	if _, err := b.admin.CreateInitialAccessToken(ctx, api.SystemIssuer, api.CreateInitialAccessTokenRequest{Count: &count}); !errorsHasStatus(err, http.StatusUnprocessableEntity) {
		t.Fatalf("an initial access token of the system issuer: %v", err)
	}
	for _, path := range []string{"/default", "/openid-connect"} {
		got := b.call(http.MethodPost, b.public.URL+"/issuers/system/clients-registrations"+path, "", map[string]any{"clientId": "sneaky", "defaultClientScopes": []string{"authz:admin"}})
		if got.status != http.StatusNotFound {
			t.Errorf("registration at the system issuer%s: %d %s", path, got.status, got.raw)
		}
	}
	// Elsewhere, authz:admin is as reserved as the delegated scopes.
	r := b.realm("plain-realm", func(req *api.IssuerRequest) {
		req.AvailableScopes = append(req.AvailableScopes, credential.SystemAdminScope)
	})
	iat, err := b.admin.CreateInitialAccessToken(ctx, r.name, api.CreateInitialAccessTokenRequest{Count: &count})
	if err != nil {
		t.Fatal(err)
	}
	rep := portalClient("would-be-root", "would-be-root-secret-0123")
	rep["defaultClientScopes"] = []string{credential.SystemAdminScope}
	if got := b.call(http.MethodPost, r.registrationURL(""), iat.Token, rep); got.status != http.StatusBadRequest {
		t.Fatalf("authz:admin through an initial access token: %d %s", got.status, got.raw)
	}
}

func errorsHasStatus(err error, status int) bool {
	return err != nil && strings.Contains(err.Error(), fmt.Sprint(status))
}

// TestNoClientFilesItsRolesUnderRealmManagement: a client's own roles are
// filed under its audience, so an audience of realm-management would have
// made its holder a delegated admin. No client may take that audience,
// through the admin API or a registration.
func TestNoClientFilesItsRolesUnderRealmManagement(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("guarded-roles", func(req *api.IssuerRequest) { req.ClientRoles = []string{"manage-clients"} })
	ctx := context.Background()
	if _, err := b.admin.CreateClient(ctx, r.name, api.CreateClientRequest{ClientID: "ops", Name: "ops", Roles: []string{"manage-clients"},
		Audience: api.RealmManagement}); !errorsHasStatus(err, http.StatusUnprocessableEntity) {
		t.Fatalf("audience realm-management through the admin API: %v", err)
	}
	rep := portalClient("ops2", "ops2-secret-0123456789")
	rep["protocolMappers"] = []any{map[string]any{"protocolMapper": "oidc-audience-mapper", "config": map[string]string{"included.custom.audience": api.RealmManagement}}}
	if got := b.call(http.MethodPost, r.registrationURL(""), r.saToken, rep); got.status != http.StatusBadRequest || !strings.Contains(string(got.raw), "reserved") {
		t.Fatalf("audience realm-management through a registration: %d %s", got.status, got.raw)
	}
}

// TestRepresentationsAreStoredClean: a registered JWK is stored
// normalized (members the key does not need are dropped, a kid is given);
// names with control characters are refused; a key-set URL is bounded;
// a listing cannot be made to read a million rows.
func TestRepresentationsAreStoredClean(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("clean", nil)
	key := newRSAJWK(t)
	key["junk"] = strings.Repeat("x", 40_000)
	got := b.call(http.MethodPost, r.url+"/clients-registrations/openid-connect", r.saToken, map[string]any{
		"client_id": "jwk-client", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
		"jwks": map[string]any{"keys": []any{key}}})
	if got.status != http.StatusCreated {
		t.Fatalf("registration: %d %s", got.status, got.raw)
	}
	stored, err := b.store.GetClient(context.Background(), r.name, "jwk-client")
	if err != nil || strings.Contains(string(stored.PublicJWK), "junk") || !strings.Contains(string(stored.PublicJWK), `"kid"`) {
		t.Fatalf("stored JWK: %s (%v)", stored.PublicJWK, err)
	}
	for name, rep := range map[string]map[string]any{
		"a name with control characters": func() map[string]any {
			m := portalClient("ctl", "ctl-secret-0123456789")
			m["name"] = "a\x1b[31mred\nline2"
			return m
		}(),
		"a 60 KB key-set URL": func() map[string]any {
			m := portalClient("big-url", "big-url-secret-0123456789")
			m["clientAuthenticatorType"] = "client-jwt"
			m["attributes"] = map[string]string{"use.jwks.url": "true", "jwks.url": "https://keys.example/" + strings.Repeat("a", 60_000)}
			return m
		}(),
	} {
		if got := b.call(http.MethodPost, r.registrationURL(""), r.saToken, rep); got.status != http.StatusBadRequest {
			t.Errorf("%s: %d %s", name, got.status, got.raw)
		}
	}
	if got := b.call(http.MethodGet, b.adminURL(r.name, "/clients?first=1000000"), r.saToken, nil); got.status != http.StatusBadRequest {
		t.Errorf("first=1000000: %d", got.status)
	}
}

// TestRegistrationWithoutAnID gets an id made for it, as RFC 7591 clients
// and Keycloak's minimal representations expect.
func TestRegistrationWithoutAnID(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("minimal", nil)
	oidc := b.call(http.MethodPost, r.url+"/clients-registrations/openid-connect", r.saToken, map[string]any{"grant_types": []string{"client_credentials"}})
	def := b.call(http.MethodPost, r.registrationURL(""), r.saToken, map[string]any{})
	if oidc.status != http.StatusCreated || oidc.object()["client_id"] == "" || def.status != http.StatusCreated || def.object()["clientId"] == "" {
		t.Fatalf("RFC 7591: %d %s; default: %d %s", oidc.status, oidc.raw, def.status, def.raw)
	}
	status, _ := b.form(r.url+"/protocol/openid-connect/token", url.Values{"grant_type": {"client_credentials"},
		"client_id": {oidc.object()["client_id"].(string)}, "client_secret": {oidc.object()["client_secret"].(string)}})
	if status != http.StatusOK {
		t.Fatalf("a token for the made-up id: %d", status)
	}
}

// newRSAJWK is a fresh RSA public key as a JWK object.
func newRSAJWK(t *testing.T) map[string]any {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jose.JSONWebKey{Key: &key.PublicKey, Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
