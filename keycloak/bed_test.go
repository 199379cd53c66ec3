package keycloak_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keycloak"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

// bed is a whole server on the memory store: the public listener with
// the Keycloak surface around the issuers' endpoints, and the admin API.
type bed struct {
	t      *testing.T
	store  *memory.Store
	public *httptest.Server
	admin  *client.Client
	// adminAPIURL is the admin API's listener, for calls with other
	// tokens than the system admin's.
	adminAPIURL string
}

// sourceHeader lets a test speak from several addresses over loopback.
const sourceHeader = "X-Test-Source"

func newBed(t *testing.T, failuresPerAddress int) *bed {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := memory.New()
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	km := keys.NewManager(st, sealer, keys.NewKeyring(0), keys.DefaultSchedule(time.Minute), nil)
	var handler http.Handler
	public := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(public.Close)
	pub := issuer.New(issuer.Config{
		PublicURL: public.URL, AllowPrivateJWKSURI: true,
		AuthFailuresPerAddress: failuresPerAddress, AuthFailuresPerClient: failuresPerAddress,
		Identify: func(r *http.Request) (string, string) {
			if v := r.Header.Get(sourceHeader); v != "" {
				return v, v
			}
			return "192.0.2.1", "192.0.2.1"
		},
	}, st, km)
	go pub.Follow(ctx, st, km, time.Minute)
	adm := api.New(st, km, pub, nil)
	handler = keycloak.New(adm, pub, nil).Around(pub.Handler())
	adminSrv := httptest.NewServer(adm.Handler())
	t.Cleanup(adminSrv.Close)
	boot, err := api.Bootstrap(ctx, st, km)
	if err != nil {
		t.Fatal(err)
	}
	return &bed{t: t, store: st, public: public, adminAPIURL: adminSrv.URL, admin: client.New(adminSrv.URL, &client.ClientCredentials{
		TokenURL: public.URL + "/issuers/system/token", ClientID: boot.ClientID, ClientSecret: boot.ClientSecret}, nil)}
}

// realm is a Keycloak-style issuer with the portal's service account
// (which manages its clients) and a client that may only view them.
type realm struct {
	name, url          string
	saID, saSecret     string
	saToken, viewToken string
}

func (b *bed) realm(name string, change func(*api.IssuerRequest)) realm {
	b.t.Helper()
	ctx := context.Background()
	req := api.IssuerRequest{URLStyle: "keycloak", Audience: "https://" + name + ".example", AvailableScopes: []string{"read", "write"},
		ClientAuthenticator: api.AuthenticatorList{credential.ClientSecret, credential.ClientJWT, credential.ClientJWKSURL}}
	if change != nil {
		change(&req)
	}
	if _, err := b.admin.PutIssuer(ctx, name, req, 0); err != nil {
		b.t.Fatal(err)
	}
	sa, err := b.admin.CreateClient(ctx, name, api.CreateClientRequest{ClientID: "portal-sa", Name: "portal", Scopes: []string{credential.ManageClientsScope}})
	if err != nil {
		b.t.Fatal(err)
	}
	viewer, err := b.admin.CreateClient(ctx, name, api.CreateClientRequest{ClientID: "auditor", Name: "auditor", Scopes: []string{credential.ViewClientsScope}})
	if err != nil {
		b.t.Fatal(err)
	}
	r := realm{name: name, url: b.public.URL + "/realms/" + name, saID: sa.ClientID, saSecret: sa.ClientSecret}
	r.saToken = b.token(r, sa.ClientID, sa.ClientSecret)
	r.viewToken = b.token(r, viewer.ClientID, viewer.ClientSecret)
	return r
}

// token gets a client's token from a realm, as the portal does.
func (b *bed) token(r realm, id, secret string) string {
	b.t.Helper()
	status, body := b.form(r.url+"/protocol/openid-connect/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if status != http.StatusOK {
		b.t.Fatalf("token for %s: %d %v", id, status, body)
	}
	return body["access_token"].(string)
}

func (b *bed) form(target string, form url.Values) (int, map[string]any) {
	b.t.Helper()
	resp, err := http.PostForm(target, form)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// answer is a response, decoded as far as it is JSON.
type answer struct {
	status int
	header http.Header
	raw    []byte
}

func (a answer) object() map[string]any {
	var m map[string]any
	_ = json.Unmarshal(a.raw, &m)
	return m
}

func (a answer) list() []map[string]any {
	var l []map[string]any
	_ = json.Unmarshal(a.raw, &l)
	return l
}

// call sends a JSON request with a bearer token (none when token is
// empty), from source when it is set.
func (b *bed) call(method, target, token string, body any, source ...string) answer {
	b.t.Helper()
	var reader io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		reader = strings.NewReader(v)
	default:
		raw, err := json.Marshal(v)
		if err != nil {
			b.t.Fatal(err)
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, target, reader)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "bearer "+token)
	}
	if len(source) > 0 {
		req.Header.Set(sourceHeader, source[0])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, raw: raw}
}

// adminURL is a path of the Keycloak admin subset of a realm.
func (b *bed) adminURL(realmName, path string) string {
	return b.public.URL + "/admin/realms/" + realmName + path
}

// registrationURL is a realm's Keycloak registration endpoint.
func (r realm) registrationURL(path string) string {
	return r.url + "/clients-registrations/default" + path
}

// portalClient is a client representation as the portal's client-secret
// template makes it.
func portalClient(clientID, secret string) map[string]any {
	return map[string]any{
		"clientId": clientID, "name": "", "enabled": false, "clientAuthenticatorType": "client-secret", "secret": secret,
		"redirectUris": []string{"https://*"}, "webOrigins": []string{"*"}, "bearerOnly": false, "standardFlowEnabled": false,
		"implicitFlowEnabled": false, "directAccessGrantsEnabled": false, "serviceAccountsEnabled": true, "publicClient": false,
		"protocol": "openid-connect", "attributes": map[string]string{"client_credentials.use_refresh_token": "false"},
		"fullScopeAllowed": false, "protocolMappers": []any{}, "defaultClientScopes": []string{}, "optionalClientScopes": []string{},
	}
}

// snapshot is everything a realm's clients are, to show that a refused
// call changed nothing.
func (b *bed) snapshot(realmName string) string {
	b.t.Helper()
	ctx := context.Background()
	clients, err := b.store.ListClients(ctx, realmName, store.ClientQuery{})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []any
	for _, c := range clients {
		full, err := b.store.GetClient(ctx, realmName, c.ID)
		if err != nil {
			b.t.Fatal(err)
		}
		roles, _ := b.store.ListRoles(ctx, realmName, c.ID)
		out = append(out, full, roles)
	}
	tokens, _ := b.store.ListInitialAccessTokens(ctx, realmName)
	out = append(out, tokens)
	raw, _ := json.Marshal(out)
	return string(raw)
}
