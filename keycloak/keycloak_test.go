package keycloak_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
)

// claimsOf reads a token's claims without verifying it: the token
// endpoint's own tests verify signatures.
func claimsOf(t *testing.T, raw string) credential.AccessClaims {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c credential.AccessClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestThePortalsSequenceOnTheMemoryStore is the portal's sequence (as
// cmd/authz's Node test drives it with Keycloak's admin client on
// PostgreSQL) in Go on the memory store: discovery, a managed-mode
// registration, scopes, roles and scope mappings through the admin subset
// (with the trailing slashes the admin client sends), enabling, the
// tutorial's token request, a new secret, and removal.
func TestThePortalsSequenceOnTheMemoryStore(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("gateway", nil)

	var discovery map[string]any
	resp := b.call(http.MethodGet, r.url+"/.well-known/openid-configuration", "", nil)
	if json.Unmarshal(resp.raw, &discovery) != nil || discovery["issuer"] != r.url ||
		discovery["registration_endpoint"] != r.url+"/clients-registrations/openid-connect" ||
		discovery["token_endpoint"] != r.url+"/protocol/openid-connect/token" {
		t.Fatalf("discovery: %s", resp.raw)
	}

	rep := portalClient("consumer-1", "0b6f4a0e-1d1c-4c5e-9d43-3f0c1f5a7e21")
	rep["protocolMappers"] = []any{map[string]any{"name": "audience-rule-1", "protocol": "openid-connect", "protocolMapper": "oidc-audience-mapper",
		"config": map[string]string{"included.custom.audience": "https://api.gateway.example", "access.token.claim": "true"}}}
	created := b.call(http.MethodPost, r.registrationURL(""), r.saToken, rep)
	reg := created.object()
	if created.status != http.StatusCreated || reg["clientId"] != "consumer-1" || reg["enabled"] != false ||
		reg["registrationAccessToken"] == nil || reg["id"] == nil || reg["id"] == "consumer-1" {
		t.Fatalf("registration: %d %s", created.status, created.raw)
	}
	id := reg["id"].(string)

	found := b.call(http.MethodGet, b.adminURL(r.name, "/clients/?clientId=consumer-1"), r.saToken, nil).list()
	if len(found) != 1 || found[0]["id"] != id {
		t.Fatalf("clients.find: %v", found)
	}
	scopeIDs := map[string]string{}
	for _, sc := range b.call(http.MethodGet, b.adminURL(r.name, "/client-scopes/"), r.saToken, nil).list() {
		scopeIDs[sc["name"].(string)] = sc["id"].(string)
	}
	for _, name := range []string{"read", "roles"} {
		if a := b.call(http.MethodPut, b.adminURL(r.name, "/clients/"+id+"/default-client-scopes/"+scopeIDs[name]), r.saToken, nil); a.status != http.StatusNoContent {
			t.Fatalf("add default scope %s: %d %s", name, a.status, a.raw)
		}
	}
	sa := b.call(http.MethodGet, b.adminURL(r.name, "/clients/?clientId=portal-sa"), r.saToken, nil).list()[0]
	saID := sa["id"].(string)
	role := b.call(http.MethodPost, b.adminURL(r.name, "/clients/"+saID+"/roles"), r.saToken, map[string]string{"name": "reader"})
	if role.status != http.StatusCreated || !strings.HasSuffix(role.header.Get("Location"), "/roles/reader") {
		t.Fatalf("createRole: %d %v", role.status, role.header)
	}
	roles := b.call(http.MethodGet, b.adminURL(r.name, "/clients/"+saID+"/roles"), r.saToken, nil).list()
	user := b.call(http.MethodGet, b.adminURL(r.name, "/clients/"+id+"/service-account-user"), r.saToken, nil).object()
	if user["username"] != "service-account-consumer-1" {
		t.Fatalf("service account: %v", user)
	}
	mappings := b.adminURL(r.name, "/users/"+user["id"].(string)+"/role-mappings/clients/"+saID)
	if a := b.call(http.MethodPost, mappings, r.saToken, []map[string]any{{"id": roles[0]["id"], "name": "reader"}}); a.status != http.StatusNoContent {
		t.Fatalf("addClientRoleMappings: %d %s", a.status, a.raw)
	}
	if got := b.call(http.MethodGet, mappings, r.saToken, nil).list(); len(got) != 1 || got[0]["name"] != "reader" {
		t.Fatalf("listClientRoleMappings: %v", got)
	}
	// The portal's clients do not allow full scope: the roles reach the
	// token once they are scope-mapped.
	if a := b.call(http.MethodPost, b.adminURL(r.name, "/clients/"+id+"/scope-mappings/clients/"+saID), r.saToken, roles); a.status != http.StatusNoContent {
		t.Fatalf("addClientScopeMappings: %d %s", a.status, a.raw)
	}
	enabled := b.call(http.MethodPut, r.registrationURL("/consumer-1"), r.saToken, map[string]any{"clientId": "consumer-1", "enabled": true})
	if enabled.status != http.StatusOK || enabled.object()["enabled"] != true {
		t.Fatalf("enable: %d %s", enabled.status, enabled.raw)
	}

	status, tok := b.form(r.url+"/protocol/openid-connect/token", url.Values{"client_id": {"consumer-1"},
		"client_secret": {"0b6f4a0e-1d1c-4c5e-9d43-3f0c1f5a7e21"}, "grant_type": {"client_credentials"}, "scopes": {"openid"}})
	if status != http.StatusOK {
		t.Fatalf("tutorial token: %d %v", status, tok)
	}
	claims := claimsOf(t, tok["access_token"].(string))
	if claims.Issuer != r.url || claims.AuthorizedParty != "consumer-1" || claims.Scope != "read" || claims.Type != "Bearer" ||
		claims.Subject != user["id"] || !slices.Equal(claims.ResourceAccess["portal-sa"].Roles, []string{"reader"}) ||
		!slices.Contains(claims.Audience, "https://api.gateway.example") || !slices.Contains(claims.Audience, "portal-sa") {
		t.Fatalf("claims: %+v", claims)
	}

	secret := b.call(http.MethodPost, b.adminURL(r.name, "/clients/"+id+"/client-secret"), r.saToken, nil).object()
	if secret["type"] != "secret" || secret["value"] == "" {
		t.Fatalf("generateNewClientSecret: %v", secret)
	}
	if status, _ := b.form(r.url+"/protocol/openid-connect/token", url.Values{"client_id": {"consumer-1"},
		"client_secret": {secret["value"].(string)}, "grant_type": {"client_credentials"}}); status != http.StatusOK {
		t.Fatalf("token with the new secret: %d", status)
	}
	if a := b.call(http.MethodGet, b.adminURL(r.name, "/clients/"+id+"/client-secret"), r.saToken, nil); a.status != http.StatusNotFound ||
		!strings.Contains(string(a.raw), "digest") {
		t.Fatalf("reading a secret: %d %s", a.status, a.raw)
	}
	if a := b.call(http.MethodDelete, r.registrationURL("/consumer-1"), r.saToken, nil); a.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", a.status, a.raw)
	}
	if found := b.call(http.MethodGet, b.adminURL(r.name, "/clients?clientId=consumer-1"), r.saToken, nil).list(); len(found) != 0 {
		t.Fatalf("the deleted client is still found: %v", found)
	}
}

// TestATenantAdminReachesOnlyItsOwnRealm: the portal's service account of
// realm A manages A, and gets 403 for every call against realm B, against
// the system issuer, and on every route of our own admin API that is not
// A's. Nothing of B changes.
func TestATenantAdminReachesOnlyItsOwnRealm(t *testing.T) {
	b := newBed(t, 0)
	a := b.realm("realm-a", nil)
	other := b.realm("realm-b", nil)
	victim := b.call(http.MethodPost, other.registrationURL(""), other.saToken, portalClient("victim", "victim-secret-0123456789"))
	if victim.status != http.StatusCreated {
		t.Fatalf("set-up: %d %s", victim.status, victim.raw)
	}
	victimID := victim.object()["id"].(string)
	before := b.snapshot("realm-b")
	saB := b.call(http.MethodGet, b.adminURL("realm-b", "/clients?clientId=portal-sa"), other.saToken, nil).list()[0]["id"].(string)
	for _, target := range []string{"realm-b", "system"} {
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/clients"},
			{http.MethodGet, "/clients/" + victimID},
			{http.MethodPut, "/clients/" + victimID},
			{http.MethodDelete, "/clients/" + victimID},
			{http.MethodGet, "/clients/" + victimID + "/roles"},
			{http.MethodPost, "/clients/" + saB + "/roles"},
			{http.MethodDelete, "/clients/" + saB + "/roles/x"},
			{http.MethodGet, "/clients/" + victimID + "/service-account-user"},
			{http.MethodPost, "/clients/" + victimID + "/client-secret"},
			{http.MethodGet, "/clients/" + victimID + "/default-client-scopes"},
			{http.MethodPut, "/clients/" + victimID + "/default-client-scopes/x"},
			{http.MethodDelete, "/clients/" + victimID + "/optional-client-scopes/x"},
			{http.MethodPost, "/clients/" + victimID + "/scope-mappings/clients/" + saB},
			{http.MethodGet, "/client-scopes"},
			{http.MethodGet, "/users/x/role-mappings/clients/" + saB},
			{http.MethodPost, "/users/x/role-mappings/clients/" + saB},
		} {
			if got := b.call(c.method, b.adminURL(target, c.path), a.saToken, map[string]any{}); got.status != http.StatusForbidden {
				t.Errorf("%s %s of %s with realm-a's admin: %d %s, want 403", c.method, c.path, target, got.status, got.raw)
			}
		}
	}
	for _, c := range []struct{ method, url string }{
		{http.MethodPost, other.registrationURL("")},
		{http.MethodGet, other.registrationURL("/victim")},
		{http.MethodPut, other.registrationURL("/victim")},
		{http.MethodDelete, other.registrationURL("/victim")},
		{http.MethodPost, other.url + "/clients-registrations/openid-connect"},
		{http.MethodDelete, other.url + "/clients-registrations/openid-connect/victim"},
	} {
		if got := b.call(c.method, c.url, a.saToken, portalClient("intruder", "intruder-secret-0123456789")); got.status != http.StatusForbidden {
			t.Errorf("%s %s with realm-a's admin: %d %s, want 403", c.method, c.url, got.status, got.raw)
		}
	}
	if after := b.snapshot("realm-b"); after != before {
		t.Fatal("realm-a's admin changed realm-b")
	}
	// Our own admin API: realm-a's routes answer, every other route is
	// forbidden.
	adminAPI := func(method, path string) int {
		return b.call(method, b.adminAPIURL+api.Prefix+path, a.saToken, map[string]any{}).status
	}
	if got := adminAPI(http.MethodGet, "/issuers/realm-a/clients"); got != http.StatusOK {
		t.Fatalf("realm-a's admin lists its own clients through the admin API: %d", got)
	}
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/issuers"},
		{http.MethodPut, "/issuers/realm-a"},
		{http.MethodDelete, "/issuers/realm-a"},
		{http.MethodGet, "/issuers/realm-a/keys"},
		{http.MethodPost, "/issuers/realm-a/keys/rotate"},
		{http.MethodGet, "/issuers/realm-b"},
		{http.MethodGet, "/issuers/realm-b/clients"},
		{http.MethodPost, "/issuers/realm-b/clients"},
		{http.MethodGet, "/issuers/realm-b/initial-access-tokens"},
		{http.MethodPost, "/issuers/realm-b/roles"},
		{http.MethodGet, "/issuers/system/clients"},
		{http.MethodGet, "/audit"},
	} {
		if got := adminAPI(c.method, c.path); got != http.StatusForbidden {
			t.Errorf("admin API %s %s with realm-a's admin: %d, want 403", c.method, c.path, got)
		}
	}
	if after := b.snapshot("realm-b"); after != before {
		t.Fatal("realm-a's admin changed realm-b through the admin API")
	}
}

// TestAViewerOnlyReads: a client with authz:view-clients reads a realm's
// clients and is refused every change.
func TestAViewerOnlyReads(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("viewed", nil)
	sa := b.call(http.MethodGet, b.adminURL(r.name, "/clients?clientId=portal-sa"), r.viewToken, nil)
	if sa.status != http.StatusOK || len(sa.list()) != 1 {
		t.Fatalf("a viewer lists clients: %d %s", sa.status, sa.raw)
	}
	if access := sa.list()[0]["access"].(map[string]any); access["manage"] != false || access["view"] != true {
		t.Fatalf("access shown to a viewer: %v", access)
	}
	before := b.snapshot(r.name)
	saID := sa.list()[0]["id"].(string)
	for _, c := range []struct{ method, url string }{
		{http.MethodPut, b.adminURL(r.name, "/clients/"+saID)},
		{http.MethodPost, b.adminURL(r.name, "/clients/"+saID+"/roles")},
		{http.MethodPost, b.adminURL(r.name, "/clients/"+saID+"/client-secret")},
		{http.MethodDelete, b.adminURL(r.name, "/clients/"+saID)},
		{http.MethodPost, r.registrationURL("")},
		{http.MethodDelete, r.registrationURL("/portal-sa")},
	} {
		if got := b.call(c.method, c.url, r.viewToken, map[string]any{"name": "x"}); got.status != http.StatusForbidden {
			t.Errorf("%s %s by a viewer: %d %s", c.method, c.url, got.status, got.raw)
		}
	}
	if b.snapshot(r.name) != before {
		t.Fatal("a viewer changed the realm")
	}
}

// TestBadInputIsRefusedAndChangesNothing: malformed representations,
// unknown client ids, role names that do not exist, scope ids of another
// realm, each get Keycloak's status and a message that says what is
// wrong; the realm is as it was.
func TestBadInputIsRefusedAndChangesNothing(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("strict", nil)
	other := b.realm("elsewhere", nil)
	made := b.call(http.MethodPost, r.registrationURL(""), r.saToken, portalClient("consumer", "consumer-secret-0123456789"))
	if made.status != http.StatusCreated {
		t.Fatalf("set-up: %d %s", made.status, made.raw)
	}
	id := made.object()["id"].(string)
	sa := b.call(http.MethodGet, b.adminURL(r.name, "/clients?clientId=portal-sa"), r.saToken, nil).list()[0]["id"].(string)
	if a := b.call(http.MethodPost, b.adminURL(r.name, "/clients/"+sa+"/roles"), r.saToken, map[string]string{"name": "reader"}); a.status != http.StatusCreated {
		t.Fatalf("set-up role: %d %s", a.status, a.raw)
	}
	user := b.call(http.MethodGet, b.adminURL(r.name, "/clients/"+id+"/service-account-user"), r.saToken, nil).object()["id"].(string)
	foreignScope := b.call(http.MethodGet, b.adminURL(other.name, "/client-scopes"), other.saToken, nil).list()[0]["id"].(string)
	before := b.snapshot(r.name)

	withRep := func(change func(map[string]any)) map[string]any {
		rep := portalClient("another", "another-secret-0123456789")
		change(rep)
		return rep
	}
	for _, tc := range []struct {
		name, method, url string
		body              any
		status            int
		says              string
	}{
		{"malformed JSON", http.MethodPost, r.registrationURL(""), `{"clientId": "x",`, 400, "malformed JSON"},
		{"a field of the wrong type", http.MethodPost, r.registrationURL(""), `{"clientId": "x", "enabled": "yes"}`, 400, "enabled"},
		{"no body", http.MethodPost, r.registrationURL(""), nil, 400, "body is required"},
		{"an authorization-code client", http.MethodPost, r.registrationURL(""), withRep(func(m map[string]any) { m["standardFlowEnabled"] = true }), 400, "client_credentials"},
		{"a public client", http.MethodPost, r.registrationURL(""), withRep(func(m map[string]any) { m["publicClient"] = true }), 400, "publicClient"},
		{"a SAML client", http.MethodPost, r.registrationURL(""), withRep(func(m map[string]any) { m["protocol"] = "saml" }), 400, "protocol"},
		{"a mapper this server does not have", http.MethodPost, r.registrationURL(""), withRep(func(m map[string]any) {
			m["protocolMappers"] = []any{map[string]any{"name": "hardcoded", "protocolMapper": "oidc-hardcoded-claim-mapper", "config": map[string]string{}}}
		}), 400, "not supported"},
		{"a key that is not a key", http.MethodPost, r.registrationURL(""), withRep(func(m map[string]any) {
			m["clientAuthenticatorType"] = "client-jwt"
			m["attributes"] = map[string]string{"jwt.credential.public.key": "bm90IGEga2V5"}
		}), 400, "neither a public key nor a certificate"},
		{"a short secret", http.MethodPost, r.registrationURL(""), withRep(func(m map[string]any) { m["secret"] = "short" }), 400, "secret"},
		{"a taken client id", http.MethodPost, r.registrationURL(""), portalClient("consumer", "consumer-secret-0123456789"), 409, "in use"},
		{"an invalid client id", http.MethodPost, r.registrationURL(""), withRep(func(m map[string]any) { m["clientId"] = "has space" }), 400, "clientId"},
		{"renaming through update", http.MethodPut, r.registrationURL("/consumer"), map[string]any{"clientId": "renamed"}, 400, "cannot change"},
		{"an unknown client (registration)", http.MethodPut, r.registrationURL("/nobody"), map[string]any{"enabled": true}, 404, "nobody"},
		{"an unknown client (admin)", http.MethodGet, b.adminURL(r.name, "/clients/00000000-0000-0000-0000-000000000000"), nil, 404, "client"},
		{"an unknown client's roles", http.MethodPost, b.adminURL(r.name, "/clients/nobody/roles"), map[string]string{"name": "x"}, 404, "client"},
		{"a role that does not exist", http.MethodPost, b.adminURL(r.name, "/users/"+user+"/role-mappings/clients/"+sa), []map[string]string{{"name": "writer"}}, 404, "writer"},
		{"a role id of no role", http.MethodPost, b.adminURL(r.name, "/clients/"+id+"/scope-mappings/clients/"+sa), []map[string]string{{"id": "f00", "name": "reader"}}, 404, "reader"},
		{"an unknown user", http.MethodGet, b.adminURL(r.name, "/users/nobody/role-mappings/clients/"+sa), nil, 404, "user"},
		{"a scope id of another realm", http.MethodPut, b.adminURL(r.name, "/clients/"+id+"/default-client-scopes/"+foreignScope), nil, 404, "client scope"},
		{"a duplicate role", http.MethodPost, b.adminURL(r.name, "/clients/"+sa+"/roles"), map[string]string{"name": "reader"}, 409, "already exists"},
		{"a role name with spaces", http.MethodPost, b.adminURL(r.name, "/clients/"+sa+"/roles"), map[string]string{"name": "two words"}, 400, "name"},
		{"an admin update setting a secret", http.MethodPut, b.adminURL(r.name, "/clients/"+id), map[string]any{"secret": "chosen-by-caller-0123"}, 400, "client-secret"},
		{"a page size out of range", http.MethodGet, b.adminURL(r.name, "/clients?max=100000"), nil, 400, "max"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.call(tc.method, tc.url, r.saToken, tc.body)
			if got.status != tc.status || !strings.Contains(string(got.raw), tc.says) {
				t.Fatalf("%d %s, want %d saying %q", got.status, got.raw, tc.status, tc.says)
			}
			if after := b.snapshot(r.name); after != before {
				t.Fatal("a refused call changed the realm")
			}
		})
	}
}

// TestOnlyAnAdminMakesAnAdmin: a registration authorized by an initial
// access token, by a client's own registration access token, or by no
// token at all cannot give itself the delegated-admin scopes; an admin
// can, and a client it made an admin may still update itself.
func TestOnlyAnAdminMakesAnAdmin(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("guarded", func(req *api.IssuerRequest) { req.AnonymousRegistration = true })
	count := 5
	iat, err := b.admin.CreateInitialAccessToken(context.Background(), r.name, api.CreateInitialAccessTokenRequest{Count: &count})
	if err != nil {
		t.Fatal(err)
	}
	escalate := func(id string) map[string]any {
		rep := portalClient(id, id+"-secret-0123456789")
		rep["defaultClientScopes"] = []string{"read", credential.ManageClientsScope}
		return rep
	}
	for name, token := range map[string]string{"initial access token": iat.Token, "anonymous": ""} {
		if got := b.call(http.MethodPost, r.registrationURL(""), token, escalate("by-"+strings.ReplaceAll(name, " ", "-"))); got.status != http.StatusBadRequest ||
			!strings.Contains(string(got.raw), "only an admin") {
			t.Errorf("%s registering an admin: %d %s", name, got.status, got.raw)
		}
	}
	plain := b.call(http.MethodPost, r.registrationURL(""), iat.Token, portalClient("plain", "plain-secret-0123456789")).object()
	rat := plain["registrationAccessToken"].(string)
	up := b.call(http.MethodPut, r.registrationURL("/plain"), rat, map[string]any{"defaultClientScopes": []string{credential.ViewClientsScope}})
	if up.status != http.StatusBadRequest {
		t.Fatalf("a client making itself a viewer: %d %s", up.status, up.raw)
	}
	made := b.call(http.MethodPost, r.registrationURL(""), r.saToken, escalate("deputy"))
	if made.status != http.StatusCreated {
		t.Fatalf("an admin making a deputy: %d %s", made.status, made.raw)
	}
	again := b.call(http.MethodPut, r.registrationURL("/deputy"), made.object()["registrationAccessToken"].(string), map[string]any{"name": "Deputy"})
	if again.status != http.StatusOK {
		t.Fatalf("the deputy updating itself: %d %s", again.status, again.raw)
	}
}

// TestRegistrationCredentials: each credential reaches what it should and
// no more. Anonymous registration only where the realm allows it; an
// initial access token registers, and manages only the clients it
// registered; a registration access token manages its own client, is
// replaced on every update it makes (the old one dies) and not on a read.
func TestRegistrationCredentials(t *testing.T) {
	b := newBed(t, 0)
	closed := b.realm("closed", nil)
	open := b.realm("open", func(req *api.IssuerRequest) { req.AnonymousRegistration = true })
	if got := b.call(http.MethodPost, closed.registrationURL(""), "", portalClient("anon", "anon-secret-0123456789")); got.status != http.StatusUnauthorized {
		t.Fatalf("anonymous on a closed realm: %d %s", got.status, got.raw)
	}
	anon := b.call(http.MethodPost, open.registrationURL(""), "", portalClient("anon", "anon-secret-0123456789"))
	if anon.status != http.StatusCreated {
		t.Fatalf("anonymous on an open realm: %d %s", anon.status, anon.raw)
	}
	if got := b.call(http.MethodGet, open.registrationURL("/anon"), "", nil); got.status != http.StatusUnauthorized {
		t.Fatalf("an anonymous read: %d", got.status)
	}

	ctx := context.Background()
	count := 3
	iat, err := b.admin.CreateInitialAccessToken(ctx, closed.name, api.CreateInitialAccessTokenRequest{Count: &count})
	if err != nil {
		t.Fatal(err)
	}
	mine := b.call(http.MethodPost, closed.registrationURL(""), iat.Token, portalClient("mine", "mine-secret-0123456789"))
	theirs := b.call(http.MethodPost, closed.registrationURL(""), closed.saToken, portalClient("theirs", "theirs-secret-0123456789"))
	if mine.status != http.StatusCreated || theirs.status != http.StatusCreated {
		t.Fatalf("set-up: %d %d", mine.status, theirs.status)
	}
	if got := b.call(http.MethodPut, closed.registrationURL("/mine"), iat.Token, map[string]any{"enabled": true}); got.status != http.StatusOK {
		t.Fatalf("an initial access token enabling the client it registered (the portal's iat mode): %d %s", got.status, got.raw)
	}
	for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
		if got := b.call(method, closed.registrationURL("/theirs"), iat.Token, map[string]any{"enabled": true}); got.status != http.StatusUnauthorized {
			t.Fatalf("%s of another's client with an initial access token: %d %s", method, got.status, got.raw)
		}
	}
	if _, err := b.store.GetClient(ctx, closed.name, "theirs"); err != nil {
		t.Fatal("theirs was deleted")
	}

	rat := mine.object()["registrationAccessToken"].(string)
	if got := b.call(http.MethodGet, closed.registrationURL("/theirs"), rat, nil); got.status != http.StatusUnauthorized {
		t.Fatalf("a registration access token reading another client: %d", got.status)
	}
	if got := b.call(http.MethodGet, closed.registrationURL("/mine"), rat, nil); got.status != http.StatusOK || got.object()["registrationAccessToken"] != nil {
		t.Fatalf("a read with the token: %d %s", got.status, got.raw)
	}
	updated := b.call(http.MethodPut, closed.registrationURL("/mine"), rat, map[string]any{"name": "renamed"})
	next, _ := updated.object()["registrationAccessToken"].(string)
	if updated.status != http.StatusOK || next == "" || next == rat {
		t.Fatalf("an update with the token: %d %s", updated.status, updated.raw)
	}
	if got := b.call(http.MethodGet, closed.registrationURL("/mine"), rat, nil); got.status != http.StatusUnauthorized {
		t.Fatalf("the replaced token still reads: %d", got.status)
	}
	if got := b.call(http.MethodGet, closed.registrationURL("/mine"), next, nil); got.status != http.StatusOK || got.object()["name"] != "renamed" {
		t.Fatalf("the new token: %d %s", got.status, got.raw)
	}
	// A token of one realm means nothing in another.
	if got := b.call(http.MethodGet, open.registrationURL("/mine"), next, nil); got.status != http.StatusUnauthorized {
		t.Fatalf("a registration access token in another realm: %d", got.status)
	}
}

// TestGuessingCredentialsIsThrottledPerCaller replays an attack on the
// registration service and the admin subset: a stranger trying
// registration access tokens, initial access tokens and admin tokens is
// refused with 429 once its failures are spent, while the realm's own
// callers, from their own addresses, are served throughout.
func TestGuessingCredentialsIsThrottledPerCaller(t *testing.T) {
	b := newBed(t, 20)
	r := b.realm("targeted", nil)
	made := b.call(http.MethodPost, r.registrationURL(""), r.saToken, portalClient("target", "target-secret-0123456789"), "198.51.100.7")
	rat := made.object()["registrationAccessToken"].(string)
	const attacker = "203.0.113.66"
	guesses := []func() answer{
		func() answer {
			return b.call(http.MethodGet, r.registrationURL("/target"), credential.RegistrationAccessPrefix+"guess", nil, attacker)
		},
		func() answer {
			return b.call(http.MethodPost, r.registrationURL(""), credential.InitialAccessPrefix+"guess", portalClient("x", "x-secret-0123456789abc"), attacker)
		},
		func() answer {
			return b.call(http.MethodGet, b.adminURL(r.name, "/clients"), "not.a.jwt", nil, attacker)
		},
	}
	throttled := false
	for i := 0; i < 60 && !throttled; i++ {
		got := guesses[i%len(guesses)]()
		switch got.status {
		case http.StatusTooManyRequests:
			throttled = got.header.Get("Retry-After") != ""
		case http.StatusUnauthorized:
		default:
			t.Fatalf("guess %d: %d %s", i, got.status, got.raw)
		}
	}
	if !throttled {
		t.Fatal("60 wrong credentials from one address were never throttled")
	}
	if got := b.call(http.MethodGet, r.registrationURL("/target"), rat, nil, attacker); got.status != http.StatusTooManyRequests {
		t.Fatalf("the attacker, even with a good token, is held off: %d", got.status)
	}
	if got := b.call(http.MethodGet, r.registrationURL("/target"), rat, nil, "198.51.100.7"); got.status != http.StatusOK {
		t.Fatalf("the client's own caller, elsewhere: %d %s", got.status, got.raw)
	}
	if got := b.call(http.MethodGet, b.adminURL(r.name, "/clients?clientId=target"), r.saToken, nil, "198.51.100.8"); got.status != http.StatusOK {
		t.Fatalf("the portal, elsewhere: %d %s", got.status, got.raw)
	}
}

// TestRealmManagementRolesMakeADelegatedAdmin: a Keycloak realm's portal
// account holds realm-management's manage-clients role rather than a
// scope; mapped to it here, it manages the realm the same way.
func TestRealmManagementRolesMakeADelegatedAdmin(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("moved", nil)
	ctx := context.Background()
	if _, err := b.admin.CreateClient(ctx, r.name, api.CreateClientRequest{ClientID: "realm-management", Name: "realm-management"}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"manage-clients", "view-clients"} {
		if _, err := b.admin.CreateRole(ctx, r.name, "realm-management", api.CreateRoleRequest{Name: role}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(id, role string) string {
		c, err := b.admin.CreateClient(ctx, r.name, api.CreateClientRequest{ClientID: id, Name: id,
			RoleMappings: []api.RoleName{{Client: "realm-management", Role: role}}})
		if err != nil {
			t.Fatal(err)
		}
		return b.token(r, c.ClientID, c.ClientSecret)
	}
	manager, viewer := mk("kc-portal", "manage-clients"), mk("kc-auditor", "view-clients")
	if got := b.call(http.MethodPost, r.registrationURL(""), manager, portalClient("by-role", "by-role-secret-0123456789")); got.status != http.StatusCreated {
		t.Fatalf("a manage-clients role registering: %d %s", got.status, got.raw)
	}
	if got := b.call(http.MethodGet, b.adminURL(r.name, "/clients?clientId=by-role"), viewer, nil); got.status != http.StatusOK || len(got.list()) != 1 {
		t.Fatalf("a view-clients role reading: %d %s", got.status, got.raw)
	}
	if got := b.call(http.MethodDelete, r.registrationURL("/by-role"), viewer, nil); got.status != http.StatusForbidden {
		t.Fatalf("a view-clients role deleting: %d %s", got.status, got.raw)
	}
}

// TestCallsOutsideTheSubsetSayWhatIsMissing: a Keycloak admin call this
// server does not answer is 501 with a problem naming it, never a silent
// 404 that a portal would read as "no such client".
func TestCallsOutsideTheSubsetSayWhatIsMissing(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("partial", nil)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/clients/x/roles/reader/users"},
		{http.MethodPut, "/clients/x/roles/reader"},
		{http.MethodGet, "/groups"},
		{http.MethodPost, "/clients"},
		{http.MethodGet, ""},
	} {
		got := b.call(c.method, b.adminURL(r.name, c.path), r.saToken, nil)
		var problem struct {
			Status int    `json:"status"`
			Detail string `json:"detail"`
		}
		if got.status != http.StatusNotImplemented || got.header.Get("Content-Type") != "application/problem+json" ||
			json.Unmarshal(got.raw, &problem) != nil || !strings.Contains(problem.Detail, c.method+" /admin/realms/partial"+c.path) {
			t.Errorf("%s %s: %d %s", c.method, c.path, got.status, got.raw)
		}
	}
}

// TestKeycloakWritesAreAudited: registrations and admin calls are in the
// audit log with the acting client and its realm.
func TestKeycloakWritesAreAudited(t *testing.T) {
	b := newBed(t, 0)
	r := b.realm("audited", nil)
	if got := b.call(http.MethodPost, r.registrationURL(""), r.saToken, portalClient("logged", "logged-secret-0123456789")); got.status != http.StatusCreated {
		t.Fatalf("%d %s", got.status, got.raw)
	}
	entries, err := b.admin.ListAudit(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(entries, func(e api.AuditEntryResponse) bool { return e.Action == "registration.create" })
	if i < 0 || entries[i].Actor != r.saID || entries[i].ActorIssuer != r.name || entries[i].Outcome != "success" ||
		!strings.Contains(entries[i].Resource, "realms/audited/clients-registrations/default") {
		t.Fatalf("audit: %+v", entries)
	}
}
