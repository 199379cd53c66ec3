package gateway_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/authz-dev/authz/gateway"
)

func ordersIssuer() gateway.Issuer {
	return gateway.Issuer{
		Name:         "orders",
		IssuerURL:    "https://sso.example.com/realms/orders",
		DiscoveryURL: "https://sso.example.com/realms/orders/.well-known/openid-configuration",
		JWKSURL:      "https://sso.example.com/realms/orders/protocol/openid-connect/certs",
		Algorithm:    "RS256",
		Audience:     "orders-api",
		JWKSMaxAge:   5 * time.Minute,
		Scopes:       []string{"read", "write"},
	}
}

func render(t *testing.T, kind string) gateway.Config {
	t.Helper()
	cfg, err := gateway.Render(ordersIssuer(), gateway.Request{Kind: kind, Upstream: "https://orders.internal:8443/v1",
		Scopes: []string{"read"}, Roles: []gateway.Role{{Client: "orders-api", Name: "reader"}}})
	if err != nil {
		t.Fatalf("render %s: %v", kind, err)
	}
	return cfg
}

func yamlToJSON(t *testing.T, body []byte) []byte {
	t.Helper()
	var doc any
	if err := yaml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not YAML: %v\n%s", err, body)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEnvoyConfigIsValidForEnvoysOwnTypes decodes the configuration
// strictly into Envoy's bootstrap protobuf (unknown fields refused), runs
// every message's validation rules, and checks the values that matter.
func TestEnvoyConfigIsValidForEnvoysOwnTypes(t *testing.T) {
	cfg := render(t, gateway.Envoy)
	var boot bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(yamlToJSON(t, cfg.Body), &boot); err != nil {
		t.Fatalf("Envoy's types refuse the configuration: %v\n%s", err, cfg.Body)
	}
	if err := boot.ValidateAll(); err != nil {
		t.Fatalf("Envoy's validation rules refuse it: %v", err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := boot.StaticResources.Listeners[0].FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	if err := hcm.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	var jwt jwtauthnv3.JwtAuthentication
	var rbac rbacv3.RBAC
	var names []string
	for _, f := range hcm.HttpFilters {
		names = append(names, f.Name)
		switch f.Name {
		case "envoy.filters.http.jwt_authn":
			if err := f.GetTypedConfig().UnmarshalTo(&jwt); err != nil {
				t.Fatal(err)
			}
		case "envoy.filters.http.rbac":
			if err := f.GetTypedConfig().UnmarshalTo(&rbac); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !slices.Equal(names, []string{"envoy.filters.http.jwt_authn", "envoy.filters.http.rbac", "envoy.filters.http.router"}) {
		t.Errorf("filters %v: jwt_authn, then RBAC, then the router", names)
	}
	if err := jwt.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if err := rbac.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	p := jwt.Providers["authz"]
	remote := p.GetRemoteJwks()
	switch {
	case p.Issuer != ordersIssuer().IssuerURL:
		t.Errorf("issuer %q", p.Issuer)
	case !slices.Equal(p.Audiences, []string{"orders-api"}):
		t.Errorf("audiences %v", p.Audiences)
	case remote.GetHttpUri().GetUri() != ordersIssuer().JWKSURL:
		t.Errorf("JWKS URL %q", remote.GetHttpUri().GetUri())
	case remote.GetCacheDuration().AsDuration() != 5*time.Minute:
		t.Errorf("cache duration %v, want the JWKS max-age", remote.GetCacheDuration().AsDuration())
	case remote.GetAsyncFetch() == nil:
		t.Error("the JWKS is not fetched ahead of the first request")
	case jwt.Rules[0].GetRequires().GetProviderName() != "authz":
		t.Error("requests do not require the provider")
	}
	if len(rbac.GetRules().GetPolicies()) != 1 {
		t.Errorf("RBAC policies %v", rbac.GetRules().GetPolicies())
	}
	for _, c := range boot.StaticResources.Clusters {
		if c.Name != "authz_jwks" {
			continue
		}
		var tlsCtx tlsv3.UpstreamTlsContext
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tlsCtx); err != nil {
			t.Fatal(err)
		}
		sans := tlsCtx.GetCommonTlsContext().GetValidationContext().GetMatchTypedSubjectAltNames()
		if len(sans) != 1 || sans[0].GetMatcher().GetExact() != "sso.example.com" {
			t.Errorf("the JWKS cluster does not check that authz's certificate is for sso.example.com: %v", sans)
		}
	}
	clusters := map[string]bool{}
	for _, c := range boot.StaticResources.Clusters {
		clusters[c.Name] = c.TransportSocket != nil
	}
	if tls, ok := clusters["authz_jwks"]; !ok || !tls {
		t.Error("the JWKS cluster is missing or not TLS")
	}
	if _, ok := clusters["upstream"]; !ok {
		t.Error("no upstream cluster")
	}
}

// kongFields are the configuration fields of the jwt-keycloak plugin, from
// its schema (gbbirkisson/kong-plugin-jwt-keycloak, src/schema.lua, and
// well_known_template, which the plugin's handler formats with iss).
var kongFields = []string{"uri_param_names", "cookie_names", "claims_to_verify", "anonymous", "run_on_preflight",
	"maximum_expiration", "algorithm", "allowed_iss", "iss_key_grace_period", "well_known_template", "scope", "roles", "realm_roles",
	"client_roles", "consumer_match", "consumer_match_claim", "consumer_match_claim_custom_id", "consumer_match_ignore_not_found"}

func TestKongConfigHoldsOnlyThePluginsFields(t *testing.T) {
	cfg := render(t, gateway.KongJWTKeycloak)
	var doc struct {
		Format  string `yaml:"_format_version"`
		Plugins []struct {
			Name    string         `yaml:"name"`
			Enabled bool           `yaml:"enabled"`
			Config  map[string]any `yaml:"config"`
		} `yaml:"plugins"`
	}
	dec := yaml.NewDecoder(strings.NewReader(string(cfg.Body)))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("not decK YAML: %v", err)
	}
	if len(doc.Plugins) != 1 || doc.Plugins[0].Name != "jwt-keycloak" || !doc.Plugins[0].Enabled {
		t.Fatalf("plugins %+v", doc.Plugins)
	}
	c := doc.Plugins[0].Config
	for k := range c {
		if !slices.Contains(kongFields, k) {
			t.Errorf("field %q is not in the plugin's schema", k)
		}
	}
	want := map[string]any{
		// Anchored and escaped: the plugin matches iss as a Lua pattern,
		// unanchored, and fetches keys from a URL formatted from iss unless
		// the template names authz's own.
		"allowed_iss":         []any{`^https://sso%.example%.com/realms/orders$`},
		"well_known_template": ordersIssuer().DiscoveryURL,
		"algorithm":           "RS256", "consumer_match": true, "consumer_match_claim": "azp",
		"consumer_match_claim_custom_id": true, "scope": []any{"read"}, "client_roles": []any{"orders-api:reader"}, "claims_to_verify": []any{"exp"},
	}
	for k, v := range want {
		got, _ := json.Marshal(c[k])
		exp, _ := json.Marshal(v)
		if string(got) != string(exp) {
			t.Errorf("%s = %s, want %s", k, got, exp)
		}
	}
	if !strings.Contains(string(cfg.Body), ordersIssuer().DiscoveryURL) || !strings.Contains(string(cfg.Body), "# Keeps:") {
		t.Error("the comments do not name the discovery URL the plugin reads, or the guarantees kept")
	}
}

// krakendFields are the properties of KrakenD's auth/validator, from its
// JSON schema (https://www.krakend.io/schema/v2.12/auth/validator.json).
var krakendFields = []string{"alg", "audience", "auth_header_name", "cache", "cache_duration", "cipher_suites", "cookie_key",
	"disable_jwk_security", "failed_jwk_key_cooldown", "issuer", "jwk_fingerprints", "jwk_local_ca", "jwk_local_path", "jwk_url",
	"key_identify_strategy", "leeway", "operation_debug", "propagate_claims", "roles", "roles_key", "roles_key_is_nested",
	"scopes", "scopes_key", "scopes_matcher", "secret_url"}

func TestKrakenDConfigHoldsOnlyTheValidatorsFields(t *testing.T) {
	cfg := render(t, gateway.KrakenD)
	var doc struct {
		Version   int `json:"version"`
		Endpoints []struct {
			Endpoint    string                    `json:"endpoint"`
			ExtraConfig map[string]map[string]any `json:"extra_config"`
		} `json:"endpoints"`
	}
	if err := json.Unmarshal(cfg.Body, &doc); err != nil {
		t.Fatalf("not JSON: %v", err)
	}
	if doc.Version != 3 || len(doc.Endpoints) != 1 {
		t.Fatalf("config %+v", doc)
	}
	v := doc.Endpoints[0].ExtraConfig["auth/validator"]
	for k := range v {
		if !slices.Contains(krakendFields, k) {
			t.Errorf("field %q is not in the validator's schema", k)
		}
	}
	want := map[string]any{"alg": "RS256", "jwk_url": ordersIssuer().JWKSURL, "issuer": ordersIssuer().IssuerURL,
		"audience": []any{"orders-api"}, "scopes": []any{"read"}, "scopes_key": "scope", "cache_duration": 300.0,
		"roles": []any{"reader"}, "roles_key": "resource_access.orders-api.roles", "roles_key_is_nested": true}
	for k, want := range want {
		got, _ := json.Marshal(v[k])
		exp, _ := json.Marshal(want)
		if string(got) != string(exp) {
			t.Errorf("%s = %s, want %s", k, got, exp)
		}
	}
}

func TestApacheConfigRequiresIssuerAudienceScopeAndRole(t *testing.T) {
	body := string(render(t, gateway.Apache).Body)
	for _, want := range []string{
		"OIDCOAuthVerifyJwksUri " + ordersIssuer().JWKSURL,
		`Require claim "iss:` + ordersIssuer().IssuerURL + `"`,
		`Require claim "aud:orders-api"`,
		`Require claim "scope~(^|.* )(read)( .*|$)"`,
		`Require claim "resource_access.orders-api.roles:reader"`,
		`ProxyPass "https://orders.internal:8443/v1/"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the configuration lacks %q:\n%s", want, body)
		}
	}
}

// TestScopeMetacharactersSurviveApachesExpressionParser: Apache drops a
// backslash before a regular expression sees it, so orders.read must not
// become a pattern that also admits orders-read.
func TestScopeMetacharactersSurviveApachesExpressionParser(t *testing.T) {
	iss := ordersIssuer()
	iss.Scopes = []string{"orders.read", "a+b"}
	cfg, err := gateway.Render(iss, gateway.Request{Kind: gateway.Apache, Scopes: []string{"orders.read", "a+b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg.Body), `(orders[.]read|a[+]b)`) || strings.Contains(string(cfg.Body), `\`) {
		t.Errorf("the scope expression is not bracket-quoted:\n%s", cfg.Body)
	}
	for role, want := range map[string]gateway.Role{"orders:admin:read": {Client: "orders:admin", Name: "read"}, "read": {Client: "orders-api", Name: "read"}} {
		if got, err := gateway.ParseRole(role, "orders-api"); err != nil || got != want {
			t.Errorf("ParseRole(%q) = %+v, %v; want %+v (split at the last colon, as jwt-keycloak does)", role, got, err, want)
		}
	}
}

func TestRequestsThatCannotBeWrittenAreRefused(t *testing.T) {
	es := ordersIssuer()
	es.Algorithm = "ES256"
	plain := ordersIssuer()
	plain.JWKSURL = "http://sso.example.com/realms/orders/protocol/openid-connect/certs"
	for name, tc := range map[string]struct {
		iss gateway.Issuer
		req gateway.Request
	}{
		"an unknown gateway":                  {ordersIssuer(), gateway.Request{Kind: "nginx"}},
		"a scope the issuer does not offer":   {ordersIssuer(), gateway.Request{Kind: gateway.Envoy, Scopes: []string{"admin"}}},
		"an upstream that is no URL":          {ordersIssuer(), gateway.Request{Kind: gateway.Envoy, Upstream: "orders:8000"}},
		"an upstream with credentials":        {ordersIssuer(), gateway.Request{Kind: gateway.Apache, Upstream: "https://u:p@orders"}},
		"jwt-keycloak on an ES256 issuer":     {es, gateway.Request{Kind: gateway.KongJWTKeycloak}},
		"mod_auth_openidc with an http JWKS":  {plain, gateway.Request{Kind: gateway.Apache}},
		"a role that breaks out of its quote": {ordersIssuer(), gateway.Request{Kind: gateway.Apache, Roles: []gateway.Role{{Client: "a", Name: `x" granted`}}}},
		"an upstream with a query":            {ordersIssuer(), gateway.Request{Kind: gateway.Apache, Upstream: `http://h/?" retry=0 x="`}},
		"an upstream ending in a backslash":   {ordersIssuer(), gateway.Request{Kind: gateway.Apache, Upstream: `http://h/a\`}},
		"an upstream port out of range":       {ordersIssuer(), gateway.Request{Kind: gateway.Envoy, Upstream: "http://h:70000"}},
		"KrakenD with an http JWKS":           {plain, gateway.Request{Kind: gateway.KrakenD}},
		"KrakenD roles of a dotted client":    {ordersIssuer(), gateway.Request{Kind: gateway.KrakenD, Roles: []gateway.Role{{Client: "https://api.example.com", Name: "r"}}}},
	} {
		if _, err := gateway.Render(tc.iss, tc.req); !errors.Is(err, gateway.ErrInvalid) {
			t.Errorf("%s: %v, want a refusal", name, err)
		}
	}
}
