package api_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

// fixture is the admin API and the public side over one memory store, with
// a real admin token from the system issuer.
type fixture struct {
	admin      *httptest.Server
	public     *httptest.Server
	apiHandler http.Handler
	store      store.Store
	token      string // carries authz:admin
	weakToken  string // a system-issuer token without authz:admin
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureOn(t, memory.New())
}

// newFixtureOn is the fixture over an empty store of any backend.
func newFixtureOn(t testing.TB, st store.Store) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	sealer, _ := keys.NewSealer(kek)
	km := keys.NewManager(st, sealer, keys.NewKeyring(0), keys.DefaultSchedule(5*time.Minute), nil)

	f := &fixture{store: st}
	var publicHandler http.Handler
	f.public = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { publicHandler.ServeHTTP(w, r) }))
	t.Cleanup(f.public.Close)
	pub := issuer.New(issuer.Config{PublicURL: f.public.URL}, st, km)
	publicHandler = pub.Handler()
	watching := make(chan struct{})
	go func() {
		_ = st.Watch(ctx, func(c store.Change) {
			if c.Kind == store.ChangeAll {
				close(watching)
			}
			pub.Invalidate(c)
			if c.Kind == store.ChangeKey || c.Kind == store.ChangeIssuer {
				km.Invalidate(c.Issuer)
			}
		})
	}()
	<-watching

	f.apiHandler = api.New(st, km, pub, nil).Handler()
	f.admin = httptest.NewServer(loadSpec(t).wrap(t, f.apiHandler))
	t.Cleanup(f.admin.Close)

	boot, err := api.Bootstrap(ctx, st, km)
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	if _, err := api.Bootstrap(ctx, st, km); err != api.ErrAlreadyBootstrapped {
		t.Fatalf("second Bootstrap: %v, want ErrAlreadyBootstrapped", err)
	}
	f.token = f.clientToken(t, api.SystemIssuer, boot.ClientID, boot.ClientSecret)

	weak := credential.NewSecret()
	if _, err := st.CreateClient(ctx, store.Client{IssuerName: api.SystemIssuer, ID: "c-weak", Name: "no admin scope",
		Scopes: []string{}, Audience: "authz-admin", Enabled: true,
		Secrets: []store.Secret{{ID: weak.ID, Digest: weak.Digest, Hint: weak.Hint}}}); err != nil {
		t.Fatal(err)
	}
	f.weakToken = f.clientToken(t, api.SystemIssuer, "c-weak", weak.Value)
	return f
}

// clientToken runs the client-credentials grant against the public side.
func (f *fixture) clientToken(t testing.TB, issuerName, id, secret string) string {
	t.Helper()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	for range 100 {
		req, _ := http.NewRequest(http.MethodPost, f.public.URL+"/issuers/"+issuerName+"/token",
			strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return tok.AccessToken
		}
		time.Sleep(20 * time.Millisecond) // a client created a moment ago reaches the cache through the change feed
	}
	t.Fatalf("no token for %s/%s", issuerName, id)
	return ""
}

type call struct {
	method, path, contentType, body string
	header                          map[string]string
	token                           string
}

func (f *fixture) do(t testing.TB, c call) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(c.method, f.admin.URL+api.Prefix+c.path, strings.NewReader(c.body))
	if c.contentType == "" && c.body != "" {
		c.contentType = "application/json"
	}
	if c.contentType != "" {
		req.Header.Set("Content-Type", c.contentType)
	}
	switch c.token {
	case "":
		req.Header.Set("Authorization", "Bearer "+f.token)
	case "none":
	default:
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %s", c.method, c.path, raw)
		}
	}
	return resp, out
}

// must makes a call that has to succeed with status want.
func (f *fixture) must(t testing.TB, want int, c call) (*http.Response, map[string]any) {
	t.Helper()
	resp, body := f.do(t, c)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %v", c.method, c.path, resp.StatusCode, want, body)
	}
	return resp, body
}

const validIssuer = `{"description":"Payments","availableScopes":["read","write"],"clientRoles":["viewer","editor"],"audience":"https://api.example.test","tokenLifetime":600}`

func TestPutIssuerCreatesReplacesAndReportsUnchanged(t *testing.T) {
	f := newFixture(t)
	resp, body := f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	if resp.Header.Get("ETag") != `"1"` || resp.Header.Get("Location") == "" {
		t.Fatalf("create: ETag %q Location %q", resp.Header.Get("ETag"), resp.Header.Get("Location"))
	}
	want := map[string]any{
		"name": "payments", "description": "Payments", "flow": "client-credentials",
		"availableScopes": []any{"read", "write"}, "clientRoles": []any{"viewer", "editor"},
		"audience": "https://api.example.test", "tokenLifetime": float64(600), "signingAlgorithm": "RS256",
		"clientAuthenticator": []any{"client-secret"}, "revision": float64(1),
		"issuer":        f.public.URL + "/issuers/payments",
		"tokenEndpoint": f.public.URL + "/issuers/payments/token",
		"jwksUri":       f.public.URL + "/issuers/payments/jwks.json",
	}
	for k, v := range want {
		if !reflect.DeepEqual(body[k], v) {
			t.Errorf("%s = %v, want %v", k, body[k], v)
		}
	}
	resp, _ = f.must(t, http.StatusOK, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	if resp.Header.Get("ETag") != `"1"` {
		t.Fatalf("identical PUT moved the ETag to %s", resp.Header.Get("ETag"))
	}
	resp, body = f.must(t, http.StatusOK, call{method: "PUT", path: "/issuers/payments",
		body: strings.Replace(validIssuer, `"Payments"`, `"Payments v2"`, 1)})
	if resp.Header.Get("ETag") != `"2"` || body["description"] != "Payments v2" {
		t.Fatalf("replace: ETag %q description %v", resp.Header.Get("ETag"), body["description"])
	}
	resp, _ = f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments"})
	if resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("GET ETag %q, want \"2\"", resp.Header.Get("ETag"))
	}
	keys, _ := f.store.ListSigningKeys(context.Background(), "payments")
	if len(keys) != 1 || keys[0].State != store.KeyActive {
		t.Fatalf("issuer has %d keys, want exactly one active key", len(keys))
	}
}

func TestConcurrentPutsWithStaleIfMatchGet412AndLoseNothing(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	const writers = 8
	statuses := make([]int, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.Replace(validIssuer, `"Payments"`, fmt.Sprintf(`"writer %d"`, i), 1)
			resp, _ := f.do(t, call{method: "PUT", path: "/issuers/payments", body: body, header: map[string]string{"If-Match": `"1"`}})
			statuses[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	winner := -1
	for i, s := range statuses {
		switch s {
		case http.StatusOK:
			if winner >= 0 {
				t.Fatalf("two writers won with the same If-Match: %v", statuses)
			}
			winner = i
		case http.StatusPreconditionFailed:
		default:
			t.Fatalf("writer %d got %d", i, s)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer won: %v", statuses)
	}
	_, got := f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments"})
	if got["description"] != fmt.Sprintf("writer %d", winner) || got["revision"] != float64(2) {
		t.Fatalf("stored %v at revision %v; want the winner's write at revision 2", got["description"], got["revision"])
	}
	// A delete with a stale ETag is refused too.
	f.must(t, http.StatusPreconditionFailed, call{method: "DELETE", path: "/issuers/payments", header: map[string]string{"If-Match": `"1"`}})
	f.must(t, http.StatusPreconditionFailed, call{method: "PUT", path: "/issuers/newcomer", body: validIssuer, header: map[string]string{"If-Match": `"1"`}})
}

func TestIssuerListPaginatesWithOpaqueCursor(t *testing.T) {
	f := newFixture(t)
	for _, n := range []string{"alpha", "bravo", "charlie", "delta"} {
		f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/" + n, body: validIssuer})
	}
	var names []string
	path := "/issuers?limit=2"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		_, body := f.must(t, http.StatusOK, call{method: "GET", path: path})
		for _, it := range body["items"].([]any) {
			names = append(names, it.(map[string]any)["name"].(string))
		}
		path = ""
		if next, _ := body["nextCursor"].(string); next != "" {
			if strings.Contains(next, "bravo") || strings.Contains(next, "delta") {
				t.Fatalf("cursor %q is not opaque", next)
			}
			path = "/issuers?limit=2&cursor=" + url.QueryEscape(next)
		}
	}
	if want := []string{"alpha", "bravo", "charlie", "delta", "system"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
}

func TestDeleteIssuerRefusesWhileClientsExistUnlessCascade(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"billing"}`})
	f.must(t, http.StatusConflict, call{method: "DELETE", path: "/issuers/payments"})
	f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments"})
	f.must(t, http.StatusNoContent, call{method: "DELETE", path: "/issuers/payments?cascade=true"})
	f.must(t, http.StatusNotFound, call{method: "GET", path: "/issuers/payments"})
	f.must(t, http.StatusNotFound, call{method: "DELETE", path: "/issuers/payments"})
	resp, err := http.Get(f.public.URL + "/issuers/payments/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("a deleted issuer's JWKS answers %d", resp.StatusCode)
	}
}

func TestClientLifecycle(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	_, created := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients",
		body: `{"clientId":"billing-batch","name":"Billing batch","scopes":["read"],"roles":["viewer"],"tokenLifetime":120}`})
	secret, _ := created["clientSecret"].(string)
	if created["clientId"] != "billing-batch" || len(secret) != 43 || created["audience"] != "https://api.example.test" ||
		created["tokenLifetime"] != float64(120) || created["enabled"] != true {
		t.Fatalf("created = %v", created)
	}
	f.must(t, http.StatusConflict, call{method: "POST", path: "/issuers/payments/clients", body: `{"clientId":"billing-batch","name":"again"}`})
	f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"Reports"}`})

	_, got := f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments/clients/billing-batch"})
	if _, leaked := got["clientSecret"]; leaked || got["name"] != "Billing batch" {
		t.Fatalf("GET client = %v", got)
	}
	token := f.clientToken(t, "payments", "billing-batch", secret)
	if token == "" {
		t.Fatal("no token")
	}

	_, patched := f.must(t, http.StatusOK, call{method: "PATCH", path: "/issuers/payments/clients/billing-batch",
		contentType: "application/merge-patch+json", body: `{"scopes":["read","write"],"roles":["viewer","editor"],"tokenLifetime":0,"enabled":false}`})
	if !reflect.DeepEqual(patched["scopes"], []any{"read", "write"}) || patched["tokenLifetime"] != float64(0) || patched["enabled"] != false ||
		patched["name"] != "Billing batch" {
		t.Fatalf("patched = %v", patched)
	}
	for _, tc := range []struct{ query, want string }{
		{"?enabled=false", "billing-batch"},
		{"?enabled=true", "Reports"},
		{"?name=BILL", "billing-batch"},
	} {
		_, list := f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments/clients" + tc.query})
		items := list["items"].([]any)
		if len(items) != 1 {
			t.Fatalf("list%s = %v", tc.query, items)
		}
		item := items[0].(map[string]any)
		if item["clientId"] != tc.want && item["name"] != tc.want {
			t.Fatalf("list%s = %v, want %s", tc.query, item, tc.want)
		}
	}
	f.must(t, http.StatusNoContent, call{method: "DELETE", path: "/issuers/payments/clients/billing-batch"})
	f.must(t, http.StatusNotFound, call{method: "GET", path: "/issuers/payments/clients/billing-batch"})
	f.must(t, http.StatusNotFound, call{method: "PATCH", path: "/issuers/payments/clients/billing-batch", body: `{"enabled":true}`})
}

func TestSecretRotationShowsSecretsOnceAndHintsAfter(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	_, created := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"clientId":"c-rot","name":"rotating"}`})
	first := created["clientSecret"].(string)

	_, rotated := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients/c-rot/secrets", body: `{"graceSeconds":3600}`})
	second := rotated["clientSecret"].(string)
	if second == first || rotated["hint"] != second[len(second)-4:] {
		t.Fatalf("rotated = %v", rotated)
	}
	_, list := f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments/clients/c-rot/secrets"})
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), first) || strings.Contains(string(raw), second) {
		t.Fatal("the secret list shows a secret")
	}
	items := list["items"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["expiresAt"] == nil || items[1].(map[string]any)["expiresAt"] != nil {
		t.Fatalf("secrets = %v; want the old one expiring and the new one not", items)
	}
	// graceSeconds 0 revokes every older secret now.
	_, third := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients/c-rot/secrets", body: `{"graceSeconds":0}`})
	_, list = f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments/clients/c-rot/secrets"})
	expired := 0
	for _, it := range list["items"].([]any) {
		if it.(map[string]any)["expired"] == true {
			expired++
		}
	}
	if expired != 2 {
		t.Fatalf("after graceSeconds 0: %d expired secrets, want 2", expired)
	}
	f.must(t, http.StatusNoContent, call{method: "DELETE", path: "/issuers/payments/clients/c-rot/secrets/" + third["id"].(string)})
	f.must(t, http.StatusNotFound, call{method: "DELETE", path: "/issuers/payments/clients/c-rot/secrets/" + third["id"].(string)})
	f.must(t, http.StatusUnprocessableEntity, call{method: "POST", path: "/issuers/payments/clients/c-rot/secrets", body: `{"graceSeconds":-1}`})
}

func TestEveryAdminRouteRequiresAnAdminToken(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	routes := []call{
		{method: "GET", path: "/issuers"},
		{method: "PUT", path: "/issuers/payments", body: validIssuer},
		{method: "GET", path: "/issuers/payments"},
		{method: "DELETE", path: "/issuers/payments"},
		{method: "GET", path: "/issuers/payments/clients"},
		{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x"}`},
		{method: "GET", path: "/issuers/payments/clients/c-1"},
		{method: "PATCH", path: "/issuers/payments/clients/c-1", body: `{"enabled":false}`},
		{method: "DELETE", path: "/issuers/payments/clients/c-1"},
		{method: "GET", path: "/issuers/payments/clients/c-1/secrets"},
		{method: "POST", path: "/issuers/payments/clients/c-1/secrets", body: `{}`},
		{method: "DELETE", path: "/issuers/payments/clients/c-1/secrets/s-1"},
		{method: "GET", path: "/audit"},
		{method: "GET", path: "/issuers/payments/keys"},
		{method: "POST", path: "/issuers/payments/clients/c-1/keys"},
		{method: "POST", path: "/issuers/payments/keys/rotate"},
		{method: "POST", path: "/issuers/payments/keys/k-1/revoke"},
	}
	before := snapshot(t, f.store)
	for _, rt := range routes {
		for _, tc := range []struct {
			name   string
			token  string
			status int
			auth   string
		}{
			{"no token", "none", 401, `Bearer realm="authz-admin"`},
			{"garbage token", "not.a.token", 401, `error="invalid_token"`},
			{"token without authz:admin", f.weakToken, 403, `error="insufficient_scope"`},
		} {
			rt.token = tc.token
			resp, body := f.do(t, rt)
			if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Errorf("%s %s with %s: status %d %q, want %d problem+json", rt.method, rt.path, tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), tc.status)
			}
			if !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.auth) {
				t.Errorf("%s %s with %s: WWW-Authenticate %q", rt.method, rt.path, tc.name, resp.Header.Get("WWW-Authenticate"))
			}
			_ = body
		}
	}
	if after := snapshot(t, f.store); !reflect.DeepEqual(before, after) {
		t.Fatal("unauthenticated requests changed the store")
	}
}

func TestDisabledAdminClientLosesAccess(t *testing.T) {
	f := newFixture(t)
	_, created := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/system/clients", body: `{"name":"portal","scopes":["authz:admin"]}`})
	portal := f.clientToken(t, api.SystemIssuer, created["clientId"].(string), created["clientSecret"].(string))
	f.must(t, http.StatusOK, call{method: "GET", path: "/issuers", token: portal})
	f.must(t, http.StatusOK, call{method: "PATCH", path: "/issuers/system/clients/" + created["clientId"].(string), body: `{"enabled":false}`})
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, _ := f.do(t, call{method: "GET", path: "/issuers", token: portal})
		if resp.StatusCode == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a disabled admin client's token still answers %d", resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSystemIssuerIsReserved(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusForbidden, call{method: "PUT", path: "/issuers/system", body: validIssuer})
	f.must(t, http.StatusForbidden, call{method: "DELETE", path: "/issuers/system?cascade=true"})
	f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/system"})
}

func TestAuditRecordsWhoWhatAndOutcomeButNoSecrets(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	_, created := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"billing"}`})
	f.must(t, http.StatusUnprocessableEntity, call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","scopes":["nope"]}`})
	f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments"}) // reads are not audited
	_, page := f.must(t, http.StatusOK, call{method: "GET", path: "/audit?limit=2"})
	items := page["items"].([]any)
	if len(items) != 2 || page["nextCursor"] == nil {
		t.Fatalf("audit page = %v", page)
	}
	latest, previous := items[0].(map[string]any), items[1].(map[string]any)
	if latest["action"] != "client.create" || latest["outcome"] != "failure" || latest["status"] != float64(422) ||
		latest["resource"] != "issuers/payments/clients" || !strings.HasPrefix(latest["actor"].(string), "c-") {
		t.Fatalf("latest entry = %v", latest)
	}
	if previous["outcome"] != "success" || previous["status"] != float64(201) {
		t.Fatalf("previous entry = %v", previous)
	}
	_, rest := f.must(t, http.StatusOK, call{method: "GET", path: "/audit?limit=2&cursor=" + url.QueryEscape(page["nextCursor"].(string))})
	if first := rest["items"].([]any)[0].(map[string]any); first["action"] != "issuer.put" {
		t.Fatalf("second page starts with %v", first)
	}
	raw, _ := json.Marshal(rest)
	raw2, _ := json.Marshal(page)
	if strings.Contains(string(raw)+string(raw2), created["clientSecret"].(string)) {
		t.Fatal("the audit log holds a secret")
	}
}

func TestMalformedInputIsRefusedAndChangesNothing(t *testing.T) {
	tests := []struct {
		name       string
		call       call
		wantStatus int
		wantField  string
	}{
		{"issuer name too short", call{method: "PUT", path: "/issuers/ab", body: validIssuer}, 422, "name"},
		{"issuer name uppercase", call{method: "PUT", path: "/issuers/Payments2", body: validIssuer}, 422, "name"},
		{"issuer name starts with digit", call{method: "PUT", path: "/issuers/1payments", body: validIssuer}, 422, "name"},
		{"unknown field", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","colour":"red"}`}, 400, ""},
		{"wrong type", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","tokenLifetime":"long"}`}, 400, ""},
		{"trailing data", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a"} {}`}, 400, ""},
		{"not JSON", call{method: "PUT", path: "/issuers/billing", body: `audience=a`}, 400, ""},
		{"wrong content type", call{method: "PUT", path: "/issuers/billing", contentType: "text/plain", body: `{"audience":"a"}`}, 415, ""},
		{"oversized body", call{method: "PUT", path: "/issuers/billing", body: `{"description":"` + strings.Repeat("x", 2<<20) + `"}`}, 413, ""},
		{"missing audience", call{method: "PUT", path: "/issuers/billing", body: `{}`}, 422, "audience"},
		{"lifetime too short", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","tokenLifetime":5}`}, 422, "tokenLifetime"},
		{"lifetime too long", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","tokenLifetime":90000}`}, 422, "tokenLifetime"},
		{"bad scope token", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","availableScopes":["has space"]}`}, 422, "availableScopes[0]"},
		{"duplicate scope", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","availableScopes":["r","r"]}`}, 422, "availableScopes[1]"},
		{"bad role", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","clientRoles":["a\"b"]}`}, 422, "clientRoles[0]"},
		{"unsupported algorithm", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","signingAlgorithm":"HS256"}`}, 422, "signingAlgorithm"},
		{"algorithm none", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","signingAlgorithm":"none"}`}, 422, "signingAlgorithm"},
		{"negative rotation period", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","keyRotationPeriod":-1}`}, 422, "keyRotationPeriod"},
		{"retire shorter than tokens", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","tokenLifetime":600,"keyRetirePeriod":60}`}, 422, "keyRetirePeriod"},
		{"revoke unknown key", call{method: "POST", path: "/issuers/payments/keys/nope/revoke"}, 404, ""},
		{"rotate unknown issuer", call{method: "POST", path: "/issuers/nowhere/keys/rotate"}, 404, ""},
		{"unsupported authenticator", call{method: "PUT", path: "/issuers/billing", body: `{"audience":"a","clientAuthenticator":"magic"}`}, 422, "clientAuthenticator[0]"},
		{"private JWK", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","jwk":` + privateTestJWK + `}`}, 422, "jwk"},
		{"weak RSA JWK", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","jwk":` + weakRSAJWK + `}`}, 422, "jwk"},
		{"JWK and JWKS URI", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","jwk":` + edPublicJWK + `,"jwksUri":"https://k.example.test/jwks"}`}, 422, "jwk"},
		{"JWKS URI over http", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","jwksUri":"http://k.example.test/jwks"}`}, 422, "jwksUri"},
		{"JWKS URI at loopback", call{method: "PATCH", path: "/issuers/payments/clients/c-existing", body: `{"jwksUri":"https://127.0.0.1/jwks"}`}, 422, "jwksUri"},
		{"JWKS URI with credentials", call{method: "PATCH", path: "/issuers/payments/clients/c-existing", body: `{"jwksUri":"https://u:p@k.example.test/jwks"}`}, 422, "jwksUri"},
		{"generate with bad algorithm", call{method: "POST", path: "/issuers/payments/clients/c-existing/keys", body: `{"algorithm":"HS256"}`}, 422, "algorithm"},
		{"replace with bad input", call{method: "PUT", path: "/issuers/payments", body: `{"audience":""}`}, 422, "audience"},
		{"bad If-Match", call{method: "PUT", path: "/issuers/payments", body: validIssuer, header: map[string]string{"If-Match": "yesterday"}}, 412, ""},
		{"client scope outside issuer", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","scopes":["read","delete"]}`}, 422, "scopes"},
		{"client role outside issuer", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","roles":["root"]}`}, 422, "roles"},
		{"client without name", call{method: "POST", path: "/issuers/payments/clients", body: `{"scopes":["read"]}`}, 422, "name"},
		{"client bad id", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","clientId":"a b"}`}, 422, "clientId"},
		{"client unknown field", call{method: "POST", path: "/issuers/payments/clients", body: `{"name":"x","secret":"mine"}`}, 400, ""},
		{"client under unknown issuer", call{method: "POST", path: "/issuers/nowhere/clients", body: `{"name":"x"}`}, 404, ""},
		{"patch scope outside issuer", call{method: "PATCH", path: "/issuers/payments/clients/c-existing", body: `{"scopes":["admin"]}`}, 422, "scopes"},
		{"patch bad lifetime", call{method: "PATCH", path: "/issuers/payments/clients/c-existing", body: `{"tokenLifetime":3}`}, 422, "tokenLifetime"},
		{"patch empty name", call{method: "PATCH", path: "/issuers/payments/clients/c-existing", body: `{"name":""}`}, 422, "name"},
		{"bad limit", call{method: "GET", path: "/issuers?limit=0"}, 400, "limit"},
		{"forged cursor", call{method: "GET", path: "/issuers?cursor=bm9wZQ"}, 400, "cursor"},
		{"bad enabled filter", call{method: "GET", path: "/issuers/payments/clients?enabled=maybe"}, 400, "enabled"},
		{"bad cascade", call{method: "DELETE", path: "/issuers/payments?cascade=yes"}, 400, "cascade"},
		{"unknown route", call{method: "GET", path: "/nothing"}, 404, ""},
		{"wrong method", call{method: "POST", path: "/issuers/payments"}, 405, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
			f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"clientId":"c-existing","name":"existing","scopes":["read"]}`})
			before := snapshot(t, f.store)

			resp, body := f.do(t, tc.call)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.wantStatus, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("Content-Type = %q, want application/problem+json", ct)
			}
			if body["status"] != float64(tc.wantStatus) || body["title"] == "" || body["type"] == "" {
				t.Fatalf("problem = %v", body)
			}
			if tc.wantField != "" && !hasFieldError(body, tc.wantField) {
				t.Fatalf("problem names no error for field %q: %v", tc.wantField, body)
			}
			if after := snapshot(t, f.store); !reflect.DeepEqual(before, after) {
				t.Fatalf("the refused request changed the store:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

func hasFieldError(problem map[string]any, field string) bool {
	errs, _ := problem["errors"].([]any)
	for _, e := range errs {
		if m, _ := e.(map[string]any); m["field"] == field && m["reason"] != "" {
			return true
		}
	}
	return false
}

// storeSnapshot is everything an admin request could change, audit aside.
type storeSnapshot struct {
	Issuers []store.Issuer
	Keys    map[string][]store.SigningKey
	Clients map[string][]store.Client
}

func snapshot(t *testing.T, st store.Store) storeSnapshot {
	t.Helper()
	ctx := context.Background()
	issuers, err := st.ListIssuers(ctx, store.Page{})
	if err != nil {
		t.Fatal(err)
	}
	snap := storeSnapshot{Issuers: issuers, Keys: map[string][]store.SigningKey{}, Clients: map[string][]store.Client{}}
	for _, iss := range issuers {
		snap.Keys[iss.Name], _ = st.ListSigningKeys(ctx, iss.Name)
		listed, _ := st.ListClients(ctx, iss.Name, store.ClientQuery{})
		for _, c := range listed {
			full, _ := st.GetClient(ctx, iss.Name, c.ID)
			snap.Clients[iss.Name] = append(snap.Clients[iss.Name], full)
		}
	}
	return snap
}

func TestKeysRotateAndRevokeThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	_, list := f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments/keys"})
	items := list["items"].([]any)
	if len(items) != 1 || items[0].(map[string]any)["state"] != "active" {
		t.Fatalf("keys = %v", items)
	}
	raw, _ := json.Marshal(list)
	if strings.Contains(string(raw), `"d"`) || strings.Contains(string(raw), "sealed") {
		t.Fatal("the key list shows private material")
	}
	first := items[0].(map[string]any)["kid"].(string)
	_, rotated := f.must(t, http.StatusOK, call{method: "POST", path: "/issuers/payments/keys/rotate"})
	if items := rotated["items"].([]any); len(items) != 2 || items[1].(map[string]any)["state"] != "pending" ||
		items[1].(map[string]any)["activateAt"] == nil {
		t.Fatalf("after rotate: %v", rotated)
	}
	_, revoked := f.must(t, http.StatusOK, call{method: "POST", path: "/issuers/payments/keys/" + first + "/revoke"})
	states := map[string]string{}
	for _, it := range revoked["items"].([]any) {
		k := it.(map[string]any)
		states[k["kid"].(string)] = k["state"].(string)
	}
	if states[first] != "revoked" || len(states) != 2 {
		t.Fatalf("after revoke: %v", states)
	}
	for kid, st := range states {
		if kid != first && st != "active" {
			t.Fatalf("the pending key did not take over: %v", states)
		}
	}
}

func TestSwitchingAwayFromRS256Warns(t *testing.T) {
	f := newFixture(t)
	_, created := f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	if created["warnings"] != nil {
		t.Fatalf("an RS256 issuer got warnings: %v", created["warnings"])
	}
	_, switched := f.must(t, http.StatusOK, call{method: "PUT", path: "/issuers/payments",
		body: strings.Replace(validIssuer, `"audience"`, `"signingAlgorithm":"ES256","audience"`, 1)})
	warnings, _ := switched["warnings"].([]any)
	if len(warnings) != 2 || !strings.Contains(warnings[0].(string), "jwt-keycloak") {
		t.Fatalf("warnings = %v", switched["warnings"])
	}
	_, list := f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments/keys"})
	items := list["items"].([]any)
	if len(items) != 2 || items[1].(map[string]any)["algorithm"] != "ES256" || items[1].(map[string]any)["state"] != "pending" {
		t.Fatalf("keys after the switch = %v", items)
	}
}

// Test keys: an Ed25519 public key (RFC 8037's example), its private form,
// and a 1024-bit RSA key, too short to accept.
const (
	edPublicJWK    = `{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	privateTestJWK = `{"kty":"OKP","crv":"Ed25519","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`
	weakRSAJWK     = `{"kty":"RSA","e":"AQAB","n":"tl-xzAru_wyjMWKjN_jr_OOogF31U2yA0uChaDPTgFg8UdEkazk2UQYuZjp7aWBx4GEalz_HUXbQXOi_yxb6pWjxteMre0C8jEHQ-Md7zr_nyNJYJCJhi4CO1PpvyPUy_ia8L3PvrPwnwqiJOK5LyZwp1CRovOF6CY6-HcAnSnk"}`
)

func TestClientJWKRegistrationAndGeneratedKeys(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments",
		body: strings.Replace(validIssuer, `"audience"`, `"clientAuthenticator":["client-secret","client-jwt","client-jwt-jwks-url"],"audience"`, 1)})
	_, created := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"clientId":"c-jwt","name":"jwt","jwk":` + edPublicJWK + `}`})
	jwk, _ := created["jwk"].(map[string]any)
	if jwk["kty"] != "OKP" || jwk["kid"] == "" || jwk["d"] != nil {
		t.Fatalf("registered jwk = %v", created["jwk"])
	}
	_, patched := f.must(t, http.StatusOK, call{method: "PATCH", path: "/issuers/payments/clients/c-jwt", body: `{"jwksUri":"https://keys.example.test/jwks.json"}`})
	if patched["jwk"] != nil || patched["jwksUri"] != "https://keys.example.test/jwks.json" {
		t.Fatalf("after setting a jwksUri: %v", patched)
	}
	_, generated := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients/c-jwt/keys", body: `{"algorithm":"ES256"}`})
	if !strings.HasPrefix(generated["privateKeyPem"].(string), "-----BEGIN PRIVATE KEY-----") ||
		generated["privateJwk"].(map[string]any)["d"] == nil || generated["publicJwk"].(map[string]any)["d"] != nil {
		t.Fatalf("generated = %v", generated)
	}
	_, got := f.must(t, http.StatusOK, call{method: "GET", path: "/issuers/payments/clients/c-jwt"})
	if got["jwksUri"] != nil || got["jwk"].(map[string]any)["kid"] != generated["kid"] || got["jwk"].(map[string]any)["d"] != nil {
		t.Fatalf("after generating: %v", got)
	}
	_, cleared := f.must(t, http.StatusOK, call{method: "PATCH", path: "/issuers/payments/clients/c-jwt", body: `{"jwk":null}`})
	if cleared["jwk"] != nil {
		t.Fatalf("jwk null did not remove the key: %v", cleared)
	}
}

func TestDryRunsSayWhatAWriteWouldDoAndChangeNothing(t *testing.T) {
	f := newFixture(t)
	auditCount := func() int {
		entries, _ := f.store.ListAudit(context.Background(), store.Page{})
		return len(entries)
	}
	dry := func(want int, c call) map[string]any {
		t.Helper()
		before, audits := snapshot(t, f.store), auditCount()
		_, body := f.must(t, want, c)
		if after := snapshot(t, f.store); !reflect.DeepEqual(before, after) || auditCount() != audits {
			t.Fatalf("%s %s changed the store or the audit log", c.method, c.path)
		}
		return body
	}
	if got := dry(http.StatusOK, call{method: "PUT", path: "/issuers/payments?dryRun=true", body: validIssuer}); got["result"] != "created" {
		t.Fatalf("dry PUT of a new issuer: %v", got)
	}
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/payments", body: validIssuer})
	if got := dry(http.StatusOK, call{method: "PUT", path: "/issuers/payments?dryRun=true", body: validIssuer}); got["result"] != "unchanged" || got["changes"] != nil {
		t.Fatalf("dry PUT of the same issuer: %v", got)
	}
	changed := strings.Replace(strings.Replace(validIssuer, `"Payments"`, `"Payments v2"`, 1), `600`, `900`, 1)
	got := dry(http.StatusOK, call{method: "PUT", path: "/issuers/payments?dryRun=true", body: changed})
	if got["result"] != "updated" || !reflect.DeepEqual(got["changes"], []any{"description", "tokenLifetime"}) {
		t.Fatalf("dry PUT of a changed issuer: %v", got)
	}
	dry(http.StatusUnprocessableEntity, call{method: "PUT", path: "/issuers/payments?dryRun=true", body: `{"audience":""}`})
	dry(http.StatusPreconditionFailed, call{method: "PUT", path: "/issuers/payments?dryRun=true", body: changed, header: map[string]string{"If-Match": `"7"`}})

	if got := dry(http.StatusOK, call{method: "POST", path: "/issuers/payments/clients?dryRun=true", body: `{"clientId":"c-dry","name":"dry","scopes":["read"]}`}); got["result"] != "created" {
		t.Fatalf("dry POST: %v", got)
	}
	dry(http.StatusUnprocessableEntity, call{method: "POST", path: "/issuers/payments/clients?dryRun=true", body: `{"name":"dry","scopes":["nope"]}`})
	f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/payments/clients", body: `{"clientId":"c-dry","name":"dry","scopes":["read"]}`})
	dry(http.StatusConflict, call{method: "POST", path: "/issuers/payments/clients?dryRun=true", body: `{"clientId":"c-dry","name":"dry"}`})

	got = dry(http.StatusOK, call{method: "PATCH", path: "/issuers/payments/clients/c-dry?dryRun=true", body: `{"scopes":["read","write"],"enabled":false}`})
	if got["result"] != "updated" || !reflect.DeepEqual(got["changes"], []any{"scopes", "enabled"}) {
		t.Fatalf("dry PATCH: %v", got)
	}
	if got = dry(http.StatusOK, call{method: "PATCH", path: "/issuers/payments/clients/c-dry?dryRun=true", body: `{"name":"dry"}`}); got["result"] != "unchanged" {
		t.Fatalf("dry PATCH with nothing new: %v", got)
	}
	dry(http.StatusUnprocessableEntity, call{method: "PATCH", path: "/issuers/payments/clients/c-dry?dryRun=true", body: `{"roles":["nope"]}`})
	dry(http.StatusNotFound, call{method: "PATCH", path: "/issuers/payments/clients/c-none?dryRun=true", body: `{"name":"x"}`})
}

func TestAdminAuthenticationRules(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// The scheme is case-insensitive.
	for _, scheme := range []string{"Bearer", "bearer", "BEARER"} {
		resp, _ := f.do(t, call{method: "GET", path: "/issuers", token: "none", header: map[string]string{"Authorization": scheme + " " + f.token}})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("scheme %q: %d", scheme, resp.StatusCode)
		}
	}
	// Only the system issuer's tokens open the admin API, whatever scope
	// another issuer grants.
	f.must(t, http.StatusCreated, call{method: "PUT", path: "/issuers/rogue", body: `{"audience":"authz-admin","availableScopes":["authz:admin"]}`})
	_, rogue := f.must(t, http.StatusCreated, call{method: "POST", path: "/issuers/rogue/clients", body: `{"name":"r","scopes":["authz:admin"]}`})
	rogueToken := f.clientToken(t, "rogue", rogue["clientId"].(string), rogue["clientSecret"].(string))
	if resp, _ := f.do(t, call{method: "GET", path: "/issuers", token: rogueToken}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("another issuer's token granting authz:admin: %d, want 401", resp.StatusCode)
	}

	// An admin client that loses authz:admin loses its tokens at once.
	secret := credential.NewSecret()
	if _, err := f.store.CreateClient(ctx, store.Client{IssuerName: api.SystemIssuer, ID: "c-ops", Name: "ops", Scopes: []string{api.AdminScope},
		Audience: "authz-admin", Enabled: true, Secrets: []store.Secret{{ID: secret.ID, Digest: secret.Digest, Hint: secret.Hint}}}); err != nil {
		t.Fatal(err)
	}
	opsToken := f.clientToken(t, api.SystemIssuer, "c-ops", secret.Value)
	f.must(t, http.StatusOK, call{method: "GET", path: "/issuers", token: opsToken})
	if _, err := f.store.UpdateClient(ctx, api.SystemIssuer, "c-ops", func(c *store.Client) error { c.Scopes = []string{}; return nil }); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, f, opsToken, http.StatusUnauthorized)

	// Deleted and created again under the same id, even with the scope:
	// the old token stays dead.
	if err := f.store.DeleteClient(ctx, api.SystemIssuer, "c-ops"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	if _, err := f.store.CreateClient(ctx, store.Client{IssuerName: api.SystemIssuer, ID: "c-ops", Name: "ops again", Scopes: []string{api.AdminScope},
		Audience: "authz-admin", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if resp, body := f.do(t, call{method: "GET", path: "/issuers", token: opsToken}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a deleted client's token after re-creation: %d %v", resp.StatusCode, body)
	}
}

// waitStatus polls the admin API with token until it answers want: changes
// reach the token cache through the change feed.
func waitStatus(t *testing.T, f *fixture, token string, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if resp, _ := f.do(t, call{method: "GET", path: "/issuers", token: token}); resp.StatusCode == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the admin API did not answer %d within 5 s", want)
		}
	}
}
