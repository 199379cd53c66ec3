package realm_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keycloak/realm"
	"github.com/authz-dev/authz/keycloak/realm/realmtest"
	"github.com/authz-dev/authz/store"
)

func translate(t *testing.T, export []byte, opts realm.Options) (realm.Plan, error) {
	t.Helper()
	rep, err := realm.ParseBytes(export)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	return realm.Translate(rep, opts)
}

func TestTranslateCarriesOverWhatConsumersAndGatewaysDependOn(t *testing.T) {
	r := realmtest.New(t, "orders", 0)
	plan, err := translate(t, r.Export, realm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	iss := plan.Import.Issuer
	if iss.Name != "orders" || !iss.Keycloak() || iss.TokenLifetime != 10*time.Minute || iss.SigningAlgorithm != "RS256" {
		t.Errorf("issuer %+v", iss)
	}
	if want := []string{"address", "email", "microprofile-jwt", "offline_access", "phone", "profile"}; !slices.Equal(iss.AvailableScopes, want) {
		t.Errorf("scopes %v, want %v (roles, web-origins, acr and basic are not in the scope claim)", iss.AvailableScopes, want)
	}
	clients := map[string]store.Client{}
	for _, c := range plan.Import.Clients {
		clients[c.ID] = c
	}
	var ids []string
	for id := range clients {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if want := []string{"account", realmtest.Billing, realmtest.OrdersAPI, realmtest.PartnerCert, realmtest.PartnerJWKS, realmtest.Reports}; !slices.Equal(ids, want) {
		t.Fatalf("clients %v, want %v", ids, want)
	}
	billing := clients[realmtest.Billing]
	if len(billing.Secrets) != 1 || !credential.SecretMatches(billing.Secrets[0].Digest, r.Secrets[realmtest.Billing]) {
		t.Errorf("billing's secret was not carried over as its digest")
	}
	if billing.InternalID != r.InternalIDs[realmtest.Billing] || billing.ServiceAccountID != r.ServiceAccounts[realmtest.Billing] {
		t.Errorf("billing's ids %q, %q were not kept", billing.InternalID, billing.ServiceAccountID)
	}
	if billing.Audience != realmtest.OrdersAPI || !slices.Equal(billing.Scopes, []string{"profile", "email"}) || !slices.Equal(billing.OptionalScopes, []string{"address", "phone", "offline_access", "microprofile-jwt"}) {
		t.Errorf("billing: audience %q, scopes %v, optional %v", billing.Audience, billing.Scopes, billing.OptionalScopes)
	}
	var mapped []string
	for _, m := range billing.RoleMappings {
		mapped = append(mapped, m.ClientID+"/"+m.Name)
	}
	// default-roles expands through its composites, manage-account
	// through its own, as Keycloak expands them into the token.
	if want := []string{"/default-roles-orders", "/offline_access", "/uma_authorization", "account/manage-account",
		"account/manage-account-links", "account/view-profile", "orders-api/read"}; !slices.Equal(mapped, want) {
		t.Errorf("billing's roles %v, want %v", mapped, want)
	}
	if clients[realmtest.Reports].Enabled || !billing.Enabled {
		t.Error("enabled flags were not carried over")
	}
	if c := clients[realmtest.PartnerCert]; len(c.PublicJWK) == 0 || len(c.Secrets) != 0 {
		t.Errorf("partner-cert: jwk %s, %d secrets", c.PublicJWK, len(c.Secrets))
	}
	if c := clients[realmtest.PartnerJWKS]; c.JWKSURI != "https://partner.example/jwks.json" {
		t.Errorf("partner-jwks: jwks_uri %q", c.JWKSURI)
	}
	if c := clients[realmtest.OrdersAPI]; c.Enabled || len(c.Secrets) != 0 || len(c.PublicJWK) != 0 {
		t.Errorf("orders-api holds roles only, yet is %+v", c)
	}
	if len(plan.Keys) != 2 || plan.Keys[0].KID != r.Keys[0].KID || plan.Keys[1].KID != r.Keys[1].KID || plan.Keys[0].Priority != 100 {
		t.Errorf("keys %+v, want the two RSA keys under Keycloak's kids", plan.Keys)
	}
	skipped := map[string]string{}
	for _, s := range plan.Skipped {
		skipped[s.Kind+" "+s.Name] = s.Reason
	}
	for _, want := range []string{"client web-app", "client realm-management", "users 1", "groups 1", "authentication flows 1",
		"key rsa-enc-generated", "key hmac-generated-hs512", "key aes-generated", "client scope roles", "client roles realm-management"} {
		if skipped[want] == "" {
			t.Errorf("%q is not reported skipped; skipped: %v", want, skipped)
		}
	}
}

func TestTranslateRefusesWhatItCannotCarryOverWhole(t *testing.T) {
	r := realmtest.New(t, "orders", 0)
	ec, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	tests := []struct {
		name   string
		change func(doc map[string]any)
		want   string
	}{
		{"a masked secret", func(doc map[string]any) { client(doc, realmtest.Billing)["secret"] = "**********" }, "masked"},
		{"a vault reference", func(doc map[string]any) { client(doc, realmtest.Billing)["secret"] = "${vault.billing}" }, "vault"},
		{"an empty secret", func(doc map[string]any) { client(doc, realmtest.Billing)["secret"] = "" }, "empty"},
		{"a client id authz cannot hold", func(doc map[string]any) { client(doc, realmtest.Billing)["clientId"] = "has space" }, "client id"},
		{"an unknown key provider", func(doc map[string]any) { keyProvider(doc, "rsa-legacy")["providerId"] = "vault-keys" }, "unknown key provider"},
		{"a keystore key", func(doc map[string]any) { keyProvider(doc, "rsa-legacy")["providerId"] = "java-keystore" }, "keystore"},
		{"an unreadable private key", func(doc map[string]any) { keyConfig(doc, "rsa-legacy")["privateKey"] = []any{"bm90IGEga2V5"} }, "private key"},
		{"a certificate of another key", func(doc map[string]any) {
			keyConfig(doc, "rsa-legacy")["certificate"] = keyConfig(doc, "rsa-generated")["certificate"]
		}, "another key"},
		{"an algorithm authz does not sign with", func(doc map[string]any) { keyConfig(doc, "rsa-legacy")["algorithm"] = []any{"RS512"} }, "RS512"},
		{"a P-384 key", func(doc map[string]any) {
			keyProvider(doc, "rsa-legacy")["providerId"] = "ecdsa-generated"
			keyConfig(doc, "rsa-legacy")["ecdsaPrivateKey"] = []any{base64.StdEncoding.EncodeToString(ecDER)}
			keyConfig(doc, "rsa-legacy")["ecdsaEllipticCurveKey"] = []any{"P-384"}
		}, "P-384"},
		{"a realm signing with RS512", func(doc map[string]any) { doc["defaultSignatureAlgorithm"] = "RS512" }, "RS512"},
		{"a client id twice", func(doc map[string]any) { client(doc, realmtest.Reports)["clientId"] = realmtest.Billing }, "appears twice"},
		{"a client id with a slash", func(doc map[string]any) { client(doc, realmtest.WebApp)["clientId"] = "web/app" }, "cannot hold"},
		{"a kid no JWKS can carry", func(doc map[string]any) { keyConfig(doc, "rsa-legacy")["kid"] = []any{"../keys/x"} }, "kid"},
		{"two keys under one kid", func(doc map[string]any) {
			keyConfig(doc, "rsa-legacy")["kid"] = []any{r.Keys[0].KID}
		}, "names another key"},
		{"a realm name that cannot name an issuer", func(doc map[string]any) { doc["realm"] = "Orders_Realm" }, "--issuer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(r.Export, &doc); err != nil {
				t.Fatal(err)
			}
			tc.change(doc)
			b, _ := json.Marshal(doc)
			_, err := translate(t, b, realm.Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one saying %q", err, tc.want)
			}
			for _, s := range r.Secrets {
				if strings.Contains(err.Error(), s) {
					t.Fatal("the error quotes a secret")
				}
			}
		})
	}
}

func TestClientsAreCarriedOverAsTheAdminAPICanManageThem(t *testing.T) {
	r := realmtest.New(t, "orders", 0)
	var doc map[string]any
	_ = json.Unmarshal(r.Export, &doc)
	client(doc, realmtest.Billing)["name"] = "Billing\x1b[31m " + strings.Repeat("long ", 100)
	mappers := client(doc, realmtest.Billing)["protocolMappers"].([]any)
	mappers[0].(map[string]any)["config"].(map[string]any)["included.client.audience"] = "realm-management"
	b, _ := json.Marshal(doc)
	plan, err := translate(t, b, realm.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan.Import.Clients {
		if c.ID != realmtest.Billing {
			continue
		}
		if strings.ContainsRune(c.Name, 0x1b) || len(c.Name) > 200 {
			t.Errorf("name %q keeps control characters or exceeds 200 bytes", c.Name)
		}
		if c.Audience == "realm-management" {
			t.Error("the reserved audience realm-management was carried over")
		}
	}
}

func TestParseRefusesWhatIsNotARealmExport(t *testing.T) {
	r := realmtest.New(t, "orders", 0)
	for name, doc := range map[string][]byte{
		"truncated":      r.Export[:len(r.Export)/2],
		"not JSON":       []byte("realm: orders"),
		"no realm":       []byte(`{"clients": []}`),
		"two documents":  []byte(`{"realm": "a"} {"realm": "b"}`),
		"a wrong type":   []byte(`{"realm": "a", "clients": {}}`),
		"an empty input": nil,
	} {
		if _, err := realm.ParseBytes(doc); err == nil {
			t.Errorf("%s: parsed", name)
		} else if strings.Contains(err.Error(), r.Secrets[realmtest.Billing]) {
			t.Errorf("%s: the error quotes a secret", name)
		}
	}
}

func TestRotatedSecretsComeAlongUntilTheyExpire(t *testing.T) {
	r := realmtest.New(t, "orders", 0)
	now := time.Now()
	for _, tc := range []struct {
		expires time.Time
		secrets int
	}{{now.Add(time.Hour), 2}, {now.Add(-time.Hour), 1}} {
		var doc map[string]any
		_ = json.Unmarshal(r.Export, &doc)
		attrs := client(doc, realmtest.Billing)["attributes"].(map[string]any)
		attrs["client.secret.rotated"] = "the-previous-secret-of-billing-0123"
		attrs["client.secret.rotated.expiration.time"] = strconv.FormatInt(tc.expires.Unix(), 10)
		b, _ := json.Marshal(doc)
		plan, err := translate(t, b, realm.Options{Now: now})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range plan.Import.Clients {
			if c.ID == realmtest.Billing && len(c.Secrets) != tc.secrets {
				t.Errorf("rotated secret expiring %v: %d secrets, want %d", tc.expires, len(c.Secrets), tc.secrets)
			}
		}
	}
}

func client(doc map[string]any, id string) map[string]any {
	for _, c := range doc["clients"].([]any) {
		if c.(map[string]any)["clientId"] == id {
			return c.(map[string]any)
		}
	}
	panic("no client " + id)
}

func keyProvider(doc map[string]any, name string) map[string]any {
	for _, c := range doc["components"].(map[string]any)["org.keycloak.keys.KeyProvider"].([]any) {
		if c.(map[string]any)["name"] == name {
			return c.(map[string]any)
		}
	}
	panic("no key provider " + name)
}

func keyConfig(doc map[string]any, name string) map[string]any {
	return keyProvider(doc, name)["config"].(map[string]any)
}
