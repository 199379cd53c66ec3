// Package realmtest writes Keycloak realm exports for tests, in the exact
// JSON shape of `kc.sh export`, with fresh keys and secrets, and keeps
// what a test needs to act as the Keycloak that wrote them: the signing
// keys, the secrets, the service-account ids.
package realmtest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"testing"
	"time"
)

// Key is one of the realm's RSA signing keys.
type Key struct {
	Private  *rsa.PrivateKey
	KID      string // as Keycloak publishes it
	Priority int
}

// Realm is an export and what its Keycloak knew.
type Realm struct {
	Name   string
	Export []byte
	// Keys are the signing keys, the one that signs first.
	Keys []Key
	// Secrets are the secrets of the secret clients, by client id.
	Secrets map[string]string
	// ServiceAccounts are the service-account user ids, by client id.
	ServiceAccounts map[string]string
	// InternalIDs are the clients' ids in Keycloak's admin API.
	InternalIDs map[string]string
	// PartnerKey signs the assertions of the client-jwt client "partner-cert".
	PartnerKey *rsa.PrivateKey
}

// The clients every realm has, besides bulk ones.
const (
	Billing     = "billing"      // client-secret, enabled, roles, audience mapper
	Reports     = "reports"      // client-secret, disabled
	PartnerCert = "partner-cert" // client-jwt with a certificate
	PartnerJWKS = "partner-jwks" // client-jwt with a JWKS URL
	OrdersAPI   = "orders-api"   // bearer-only, holds roles
	WebApp      = "web-app"      // public browser client
)

// keycloakKID is Keycloak's kid of a public key, written out here as the
// test's own statement of it.
func keycloakKID(t testing.TB, pub any) string {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spki)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func secret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b) // 32 characters, as Keycloak makes them
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// certificate is a self-signed certificate of key, base64 DER as Keycloak
// keeps it.
func certificate(t testing.TB, key *rsa.PrivateKey, cn string) string {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

// New writes a realm export with two RSA signing keys of different
// priority, the clients named above, bulk more secret clients
// (bulk-00001, ...), roles mapped to service accounts, default and
// optional scopes, a user, and the parts authz leaves out.
func New(t testing.TB, name string, bulk int) Realm {
	r := Realm{Name: name, Secrets: map[string]string{}, ServiceAccounts: map[string]string{}, InternalIDs: map[string]string{}}
	primary, legacy := rsaKey(t), rsaKey(t)
	r.Keys = []Key{
		{Private: primary, KID: keycloakKID(t, &primary.PublicKey), Priority: 100},
		{Private: legacy, KID: keycloakKID(t, &legacy.PublicKey), Priority: 50},
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(primary)
	if err != nil {
		t.Fatal(err)
	}
	r.PartnerKey = rsaKey(t)

	defaultScopes := []string{"web-origins", "acr", "profile", "roles", "basic", "email"}
	serviceClient := func(clientID, authenticator string, enabled bool, attrs map[string]string, mappers []any) map[string]any {
		id := uuid()
		r.InternalIDs[clientID] = id
		c := map[string]any{
			"id": id, "clientId": clientID, "name": "", "description": "", "surrogateAuthRequired": false,
			"enabled": enabled, "alwaysDisplayInConsole": false, "clientAuthenticatorType": authenticator,
			"redirectUris": []string{}, "webOrigins": []string{}, "notBefore": 0, "bearerOnly": false,
			"consentRequired": false, "standardFlowEnabled": false, "implicitFlowEnabled": false,
			"directAccessGrantsEnabled": false, "serviceAccountsEnabled": true, "publicClient": false,
			"frontchannelLogout": true, "protocol": "openid-connect", "attributes": attrs,
			"authenticationFlowBindingOverrides": map[string]any{}, "fullScopeAllowed": true,
			"nodeReRegistrationTimeout": -1, "protocolMappers": mappers,
			"defaultClientScopes": defaultScopes, "optionalClientScopes": []string{"address", "phone", "offline_access", "microprofile-jwt"},
		}
		if authenticator == "client-secret" {
			s := secret()
			r.Secrets[clientID] = s
			c["secret"] = s
		}
		return c
	}
	audienceMapper := map[string]any{"id": uuid(), "name": "orders-api audience", "protocol": "openid-connect",
		"protocolMapper": "oidc-audience-mapper", "consentRequired": false,
		"config": map[string]string{"included.client.audience": OrdersAPI, "id.token.claim": "false", "access.token.claim": "true"}}
	clientIDMapper := map[string]any{"id": uuid(), "name": "Client ID", "protocol": "openid-connect",
		"protocolMapper": "oidc-usersessionmodel-note-mapper", "consentRequired": false,
		"config": map[string]string{"user.session.note": "client_id", "id.token.claim": "true", "access.token.claim": "true", "claim.name": "client_id", "jsonType.label": "String"}}
	clients := []any{
		serviceClient(Billing, "client-secret", true, map[string]string{"client.secret.creation.time": "1700000000"}, []any{audienceMapper, clientIDMapper}),
		serviceClient(Reports, "client-secret", false, map[string]string{}, []any{}),
		serviceClient(PartnerCert, "client-jwt", true, map[string]string{"jwt.credential.certificate": certificate(t, r.PartnerKey, PartnerCert), "use.jwks.url": "false"}, []any{}),
		serviceClient(PartnerJWKS, "client-jwt", true, map[string]string{"use.jwks.url": "true", "jwks.url": "https://partner.example/jwks.json"}, []any{}),
		map[string]any{"id": uuid(), "clientId": OrdersAPI, "name": "Orders API", "enabled": true, "bearerOnly": true,
			"clientAuthenticatorType": "client-secret", "secret": "**********", "serviceAccountsEnabled": false, "publicClient": false,
			"protocol": "openid-connect", "attributes": map[string]string{}, "fullScopeAllowed": true,
			"defaultClientScopes": defaultScopes, "optionalClientScopes": []string{}},
		map[string]any{"id": uuid(), "clientId": WebApp, "name": "Web shop", "enabled": true, "publicClient": true,
			"standardFlowEnabled": true, "redirectUris": []string{"https://shop.example/*"}, "protocol": "openid-connect",
			"attributes": map[string]string{"pkce.code.challenge.method": "S256"}, "fullScopeAllowed": true,
			"defaultClientScopes": defaultScopes, "optionalClientScopes": []string{}},
		map[string]any{"id": uuid(), "clientId": "account", "name": "${client_account}", "enabled": true, "publicClient": true,
			"baseUrl": "/realms/" + name + "/account/", "protocol": "openid-connect", "attributes": map[string]string{}, "fullScopeAllowed": false,
			"defaultClientScopes": defaultScopes, "optionalClientScopes": []string{}},
		map[string]any{"id": uuid(), "clientId": "realm-management", "name": "${client_realm-management}", "enabled": true, "bearerOnly": true,
			"protocol": "openid-connect", "attributes": map[string]string{}, "fullScopeAllowed": false},
	}
	for i := 1; i <= bulk; i++ {
		clients = append(clients, serviceClient(fmt.Sprintf("bulk-%05d", i), "client-secret", true, map[string]string{}, []any{}))
	}

	users := []any{map[string]any{"id": uuid(), "username": "alice", "email": "alice@example.test", "enabled": true,
		"credentials": []any{map[string]any{"type": "password", "hashedSaltedValue": "x", "salt": "y"}}}}
	for _, c := range clients {
		c := c.(map[string]any)
		if c["serviceAccountsEnabled"] != true {
			continue
		}
		clientID := c["clientId"].(string)
		id := uuid()
		r.ServiceAccounts[clientID] = id
		u := map[string]any{"id": id, "username": "service-account-" + clientID, "emailVerified": false, "enabled": true,
			"serviceAccountClientId": clientID, "realmRoles": []string{"default-roles-" + name}, "clientRoles": map[string]any{}}
		if clientID == Billing {
			u["clientRoles"] = map[string]any{OrdersAPI: []string{"read"}}
		}
		users = append(users, u)
	}

	role := func(n, desc string, composites map[string]any) map[string]any {
		out := map[string]any{"id": uuid(), "name": n, "description": desc, "composite": composites != nil, "attributes": map[string]any{}}
		if composites != nil {
			out["composites"] = composites
		}
		return out
	}
	scope := func(n string, inToken bool) map[string]any {
		return map[string]any{"id": uuid(), "name": n, "protocol": "openid-connect",
			"attributes": map[string]string{"include.in.token.scope": fmt.Sprint(inToken), "display.on.consent.screen": "true"}}
	}
	export := map[string]any{
		"id": uuid(), "realm": name, "displayName": "Orders", "enabled": true, "sslRequired": "external",
		"accessTokenLifespan": 600, "defaultSignatureAlgorithm": "RS256", "registrationAllowed": false,
		"roles": map[string]any{
			"realm": []any{
				role("default-roles-"+name, "${role_default-roles}", map[string]any{
					"realm": []string{"offline_access", "uma_authorization"}, "client": map[string]any{"account": []string{"view-profile", "manage-account"}}}),
				role("offline_access", "${role_offline-access}", nil),
				role("uma_authorization", "${role_uma_authorization}", nil),
			},
			"client": map[string]any{
				OrdersAPI: []any{role("read", "reads orders", nil), role("write", "writes orders", nil)},
				"account": []any{role("view-profile", "${role_view-profile}", nil),
					role("manage-account", "${role_manage-account}", map[string]any{"client": map[string]any{"account": []string{"manage-account-links"}}}),
					role("manage-account-links", "${role_manage-account-links}", nil)},
				"realm-management": []any{role("manage-clients", "${role_manage-clients}", nil), role("view-clients", "${role_view-clients}", nil)},
				WebApp:             []any{},
			},
		},
		"clients": clients,
		"users":   users,
		"clientScopes": []any{scope("profile", true), scope("email", true), scope("roles", false), scope("web-origins", false),
			scope("acr", false), scope("basic", false), scope("offline_access", true), scope("address", true), scope("phone", true),
			scope("microprofile-jwt", true)},
		"defaultDefaultClientScopes":  defaultScopes,
		"defaultOptionalClientScopes": []string{"offline_access", "address", "phone", "microprofile-jwt"},
		"groups":                      []any{map[string]any{"id": uuid(), "name": "staff", "path": "/staff"}},
		"identityProviders":           []any{},
		"authenticationFlows":         []any{map[string]any{"id": uuid(), "alias": "browser", "providerId": "basic-flow", "topLevel": true, "builtIn": true}},
		"components": map[string]any{
			"org.keycloak.keys.KeyProvider": []any{
				map[string]any{"id": uuid(), "name": "rsa-generated", "providerId": "rsa-generated", "subComponents": map[string]any{},
					"config": map[string][]string{"privateKey": {base64.StdEncoding.EncodeToString(pkcs8)}, "keyUse": {"SIG"},
						"certificate": {certificate(t, primary, name)}, "priority": {"100"}, "enabled": {"true"}, "active": {"true"}, "algorithm": {"RS256"}}},
				map[string]any{"id": uuid(), "name": "rsa-legacy", "providerId": "rsa", "subComponents": map[string]any{},
					"config": map[string][]string{"privateKey": {string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(legacy)}))},
						"priority": {"50"}, "enabled": {"true"}, "active": {"true"}, "algorithm": {"RS256"}}},
				map[string]any{"id": uuid(), "name": "rsa-enc-generated", "providerId": "rsa-enc-generated", "subComponents": map[string]any{},
					"config": map[string][]string{"privateKey": {"MIIE"}, "priority": {"100"}, "algorithm": {"RSA-OAEP"}}},
				map[string]any{"id": uuid(), "name": "hmac-generated-hs512", "providerId": "hmac-generated", "subComponents": map[string]any{},
					"config": map[string][]string{"kid": {uuid()}, "secret": {secret()}, "priority": {"100"}, "algorithm": {"HS512"}}},
				map[string]any{"id": uuid(), "name": "aes-generated", "providerId": "aes-generated", "subComponents": map[string]any{},
					"config": map[string][]string{"kid": {uuid()}, "secret": {secret()}, "priority": {"100"}}},
			},
		},
	}
	b, err := json.MarshalIndent(export, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	r.Export = b
	return r
}

// PrivatePEMs are the encodings in which the realm's private keys could
// leak into a log.
func (r Realm) PrivatePEMs() []string {
	var out []string
	for _, k := range r.Keys {
		out = append(out, base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(k.Private))[40:104])
		if der, err := x509.MarshalPKCS8PrivateKey(k.Private); err == nil {
			out = append(out, base64.StdEncoding.EncodeToString(der)[40:104])
		}
	}
	return out
}
