package gateway

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

func yamlConfig(kind, preamble string, doc any) (Config, error) {
	body, err := yaml.Marshal(doc)
	if err != nil {
		return Config{}, fmt.Errorf("encode %s configuration: %w", kind, err)
	}
	return Config{Kind: kind, MediaType: "application/yaml", Body: append([]byte(preamble), body...)}, nil
}

// kong writes the jwt-keycloak plugin as the API services portal's
// client-credentials template wires it, in decK's YAML.
func kong(iss Issuer, req Request) (Config, error) {
	if iss.Algorithm != "RS256" {
		return Config{}, invalid("jwt-keycloak converts every JWKS key as RSA and checks RS256: issuer %q signs %s", iss.Name, iss.Algorithm)
	}
	var b strings.Builder
	header(&b, "#", iss, "Kong jwt-keycloak plugin", []string{
		fmt.Sprintf("the plugin reads %s, then its jwks_uri; it retries every key it has and refetches the JWKS (at most every iss_key_grace_period seconds) when none verifies, so a new kid costs one fetch", iss.DiscoveryURL),
		"consumer_match admits only tokens whose azp (the client id) is a Kong consumer's custom_id, as the portal registers consumers",
		"allowed_iss is an anchored Lua pattern and well_known_template names authz's discovery URL itself: the plugin matches iss as a pattern and would otherwise fetch keys from a URL the token names",
	}, []string{
		"the plugin fetches discovery and the JWKS without checking authz's TLS certificate: reach authz over a network you trust",
		"the plugin keeps keys it fetched until none verifies a token: a key revoked in authz stays trusted by Kong until Kong restarts or its cache is purged",
		fmt.Sprintf("jwt-keycloak does not check aud: tokens of every client of issuer %q pass unless client_roles requires a role of the API's client (--role)", iss.Name),
		"which routes or services carry this plugin (add service: or route: to it, as decK expects); apply it with `deck gateway apply`, not sync, which would delete what the file does not hold",
		"whether consumers that are not registered in Kong may pass (consumer_match_ignore_not_found)",
	})
	cfg := map[string]any{
		"allowed_iss":                     []string{"^" + luaPatternLiteral(iss.IssuerURL) + "$"},
		"well_known_template":             strings.ReplaceAll(iss.DiscoveryURL, "%", "%%"),
		"algorithm":                       iss.Algorithm,
		"claims_to_verify":                []string{"exp"},
		"consumer_match":                  true,
		"consumer_match_claim":            "azp",
		"consumer_match_claim_custom_id":  true,
		"consumer_match_ignore_not_found": false,
		"run_on_preflight":                true,
	}
	if len(req.Scopes) > 0 {
		cfg["scope"] = req.Scopes
	}
	if len(req.Roles) > 0 {
		cfg["client_roles"] = roleStrings(req.Roles)
	}
	doc := map[string]any{
		"_format_version": "3.0",
		"plugins":         []any{map[string]any{"name": "jwt-keycloak", "enabled": true, "config": cfg}},
	}
	return yamlConfig(KongJWTKeycloak, b.String(), doc)
}

// luaPatternLiteral escapes a Lua pattern's magic characters.
func luaPatternLiteral(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune("^$()%.[]*+-?", c) {
			b.WriteRune('%')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// envoy writes a listener that admits only the issuer's tokens for the
// audience (jwt_authn) with a scope or role (RBAC), and the clusters of
// the upstream and of authz's JWKS.
func envoy(iss Issuer, req Request, upstream *url.URL) (Config, error) {
	jwks, err := url.Parse(iss.JWKSURL)
	if err != nil {
		return Config{}, fmt.Errorf("JWKS URL: %w", err)
	}
	var b strings.Builder
	header(&b, "#", iss, "Envoy", []string{
		fmt.Sprintf("jwt_authn caches the JWKS for %ds, the JWKS max-age, and fetches it before the first request (async_fetch), retrying a failed fetch, so every key is in its cache before it signs", seconds(iss.JWKSMaxAge)),
		fmt.Sprintf("tokens must name %q in aud", iss.Audience),
	}, append(plainJWKS(iss),
		"the listener's address and port, and TLS towards callers (add a transport_socket to the filter chain)",
		"the upstream's address, here "+upstream.String(),
		"whether the JWKS is reached over the public network or a private route to authz",
	))
	providers := map[string]any{"authz": map[string]any{
		"issuer":    iss.IssuerURL,
		"audiences": []string{iss.Audience},
		"remote_jwks": map[string]any{
			"http_uri":       map[string]any{"uri": iss.JWKSURL, "cluster": "authz_jwks", "timeout": "5s"},
			"cache_duration": fmt.Sprintf("%ds", seconds(iss.JWKSMaxAge)),
			"async_fetch":    map[string]any{},
			"retry_policy":   map[string]any{"num_retries": 3},
		},
		"forward":             true,
		"payload_in_metadata": "jwt_payload",
	}}
	filters := []any{map[string]any{
		"name": "envoy.filters.http.jwt_authn",
		"typed_config": map[string]any{
			"@type":     "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
			"providers": providers,
			"rules":     []any{map[string]any{"match": map[string]any{"prefix": "/"}, "requires": map[string]any{"provider_name": "authz"}}},
		},
	}}
	if policies := envoyPolicies(req); len(policies) > 0 {
		filters = append(filters, map[string]any{
			"name": "envoy.filters.http.rbac",
			"typed_config": map[string]any{
				"@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
				"rules": map[string]any{"action": "ALLOW", "policies": policies},
			},
		})
	}
	filters = append(filters, map[string]any{"name": "envoy.filters.http.router",
		"typed_config": map[string]any{"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}})
	listener := map[string]any{
		"name":    "api",
		"address": map[string]any{"socket_address": map[string]any{"address": "0.0.0.0", "port_value": 10000}},
		"filter_chains": []any{map[string]any{"filters": []any{map[string]any{
			"name": "envoy.filters.network.http_connection_manager",
			"typed_config": map[string]any{
				"@type":       "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
				"stat_prefix": "api",
				"route_config": map[string]any{"name": "api", "virtual_hosts": []any{map[string]any{
					"name": "api", "domains": []string{"*"},
					"routes": []any{map[string]any{"match": map[string]any{"prefix": "/"}, "route": map[string]any{"cluster": "upstream"}}},
				}}},
				"http_filters": filters,
			},
		}}}},
	}
	doc := map[string]any{"static_resources": map[string]any{
		"listeners": []any{listener},
		"clusters":  []any{envoyCluster("upstream", upstream), envoyCluster("authz_jwks", jwks)},
	}}
	return yamlConfig(Envoy, b.String(), doc)
}

// envoyPolicies are the RBAC policies that admit a token with one of the
// scopes and one of the roles; none when nothing is required.
func envoyPolicies(req Request) map[string]any {
	claim := func(path []string, regex string) map[string]any {
		keys := []any{map[string]any{"key": "jwt_payload"}}
		for _, p := range path {
			keys = append(keys, map[string]any{"key": p})
		}
		return map[string]any{"metadata": map[string]any{
			"filter": "envoy.filters.http.jwt_authn",
			"path":   keys,
			"value":  map[string]any{"string_match": map[string]any{"safe_regex": map[string]any{"regex": regex}}},
		}}
	}
	var required []any
	if len(req.Scopes) > 0 {
		// One small expression a scope: Envoy refuses large RE2 programs.
		var anyScope []any
		for _, sc := range req.Scopes {
			anyScope = append(anyScope, claim([]string{"scope"}, regexpAnyWord([]string{sc})))
		}
		required = append(required, map[string]any{"or_ids": map[string]any{"ids": anyScope}})
	}
	if len(req.Roles) > 0 {
		var anyRole []any
		for _, r := range req.Roles {
			anyRole = append(anyRole, map[string]any{"metadata": map[string]any{
				"filter": "envoy.filters.http.jwt_authn",
				"path":   []any{map[string]any{"key": "jwt_payload"}, map[string]any{"key": "resource_access"}, map[string]any{"key": r.Client}, map[string]any{"key": "roles"}},
				"value":  map[string]any{"list_match": map[string]any{"one_of": map[string]any{"string_match": map[string]any{"exact": r.Name}}}},
			}})
		}
		required = append(required, map[string]any{"or_ids": map[string]any{"ids": anyRole}})
	}
	if len(required) == 0 {
		return nil
	}
	return map[string]any{"scopes-and-roles": map[string]any{
		"permissions": []any{map[string]any{"any": true}},
		"principals":  []any{map[string]any{"and_ids": map[string]any{"ids": required}}},
	}}
}

func envoyCluster(name string, u *url.URL) map[string]any {
	host, port := hostPort(u)
	c := map[string]any{
		"name":            name,
		"type":            "LOGICAL_DNS",
		"connect_timeout": "5s",
		"load_assignment": map[string]any{"cluster_name": name, "endpoints": []any{map[string]any{"lb_endpoints": []any{
			map[string]any{"endpoint": map[string]any{"address": map[string]any{"socket_address": map[string]any{"address": host, "port_value": port}}}},
		}}}},
	}
	if u.Scheme == "https" {
		// The chain and the name: a CA's certificate for any other name
		// must not serve this cluster (for the JWKS, it would forge keys).
		san := map[string]any{"san_type": "DNS", "matcher": map[string]any{"exact": host}}
		if _, err := netip.ParseAddr(host); err == nil {
			san["san_type"] = "IP_ADDRESS"
		}
		c["transport_socket"] = map[string]any{"name": "envoy.transport_sockets.tls", "typed_config": map[string]any{
			"@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
			"sni":   host,
			"common_tls_context": map[string]any{"validation_context": map[string]any{
				"trusted_ca":                    map[string]any{"filename": "/etc/ssl/certs/ca-certificates.crt"},
				"match_typed_subject_alt_names": []any{san},
			}},
		}}
	}
	return c
}

// apache writes mod_auth_openidc as an OAuth 2.0 resource server in front
// of the upstream.
func apache(iss Issuer, req Request, upstream *url.URL) (Config, error) {
	if !strings.HasPrefix(iss.JWKSURL, "https://") {
		return Config{}, invalid("mod_auth_openidc fetches a JWKS over https only, and issuer %q's is %s: serve authz with TLS or set --public-url https://…", iss.Name, iss.JWKSURL)
	}
	var b strings.Builder
	header(&b, "#", iss, "Apache httpd mod_auth_openidc (OAuth 2.0 resource server)", []string{
		fmt.Sprintf("the JWKS is cached for %ds (OIDCJWKSRefreshInterval: the JWKS max-age, or the module's minimum of %ds), and fetched again when a token names a kid it does not hold, so a rotation costs one fetch", apacheJWKSRefresh(iss), apacheMinJWKSRefresh),
		fmt.Sprintf("tokens must name %q in aud; REMOTE_USER and the OIDC_CLAIM_* headers the upstream sees are the client's", iss.Audience),
	}, []string{
		"the virtual host, port and TLS towards callers; put these lines inside it",
		"OIDCCABundlePath, when authz's certificate is not signed by a CA the system trusts",
		"mod_ssl (a2enmod ssl), when the upstream is https",
		"the upstream's address, here " + upstream.String(),
	})
	fmt.Fprintf(&b, "OIDCOAuthVerifyJwksUri %s\n", iss.JWKSURL)
	fmt.Fprintf(&b, "OIDCJWKSRefreshInterval %d\n", apacheJWKSRefresh(iss))
	b.WriteString("OIDCOAuthAcceptTokenAs header\n")
	b.WriteString("OIDCOAuthRemoteUserClaim azp\n")
	b.WriteString("\n<Location \"/\">\n")
	b.WriteString("  AuthType oauth20\n")
	b.WriteString("  <RequireAll>\n")
	fmt.Fprintf(&b, "    Require claim \"iss:%s\"\n", iss.IssuerURL)
	fmt.Fprintf(&b, "    Require claim \"aud:%s\"\n", iss.Audience)
	if len(req.Scopes) > 0 {
		fmt.Fprintf(&b, "    Require claim \"scope~%s\"\n", regexpAnyWord(req.Scopes))
	}
	if len(req.Roles) > 0 {
		b.WriteString("    <RequireAny>\n")
		for _, r := range req.Roles {
			fmt.Fprintf(&b, "      Require claim \"resource_access.%s.roles:%s\"\n", r.Client, r.Name)
		}
		b.WriteString("    </RequireAny>\n")
	}
	b.WriteString("  </RequireAll>\n")
	if upstream.Scheme == "https" {
		// mod_ssl proxies to https, checking the upstream's chain and name.
		b.WriteString("SSLProxyEngine on\nSSLProxyVerify require\nSSLProxyCheckPeerName on\nSSLProxyCheckPeerExpire on\n")
	}
	target := strings.TrimRight(upstream.String(), "/") + "/"
	fmt.Fprintf(&b, "  ProxyPass \"%s\"\n  ProxyPassReverse \"%s\"\n", target, target)
	b.WriteString("</Location>\n")
	return Config{Kind: Apache, MediaType: "text/plain; charset=utf-8", Body: []byte(b.String())}, nil
}

// apacheMinJWKSRefresh is the least OIDCJWKSRefreshInterval
// mod_auth_openidc takes.
const apacheMinJWKSRefresh = 300

func apacheJWKSRefresh(iss Issuer) int64 { return max(apacheMinJWKSRefresh, seconds(iss.JWKSMaxAge)) }

// krakend writes an endpoint guarded by KrakenD's JWT validator. JSON has
// no comments: KrakenD reads and ignores "@comment".
func krakend(iss Issuer, req Request, upstream *url.URL) (Config, error) {
	if !strings.HasPrefix(iss.JWKSURL, "https://") {
		return Config{}, invalid("KrakenD fetches a JWKS over https only (disable_jwk_security stays false), and issuer %q's is %s: serve authz with TLS or set --public-url https://…", iss.Name, iss.JWKSURL)
	}
	var b strings.Builder
	header(&b, "", iss, "KrakenD", []string{
		fmt.Sprintf("the JWKS is cached for %ds (cache_duration), the JWKS max-age", seconds(iss.JWKSMaxAge)),
		fmt.Sprintf("tokens must name %q in aud", iss.Audience),
	}, []string{
		"the endpoints: this one forwards /api/{path} to the upstream; list yours",
		fmt.Sprintf("alg is pinned to %s: change it here if the issuer's signing algorithm changes", iss.Algorithm),
		"the upstream's address, here " + upstream.String(),
	})
	validator := map[string]any{
		"alg":                  iss.Algorithm,
		"jwk_url":              iss.JWKSURL,
		"issuer":               iss.IssuerURL,
		"audience":             []string{iss.Audience},
		"cache":                true,
		"cache_duration":       seconds(iss.JWKSMaxAge),
		"disable_jwk_security": false,
		"operation_debug":      false,
	}
	if len(req.Scopes) > 0 {
		validator["scopes"], validator["scopes_key"], validator["scopes_matcher"] = req.Scopes, "scope", "any"
	}
	if len(req.Roles) > 0 {
		if len(distinctClients(req.Roles)) > 1 {
			return Config{}, invalid("KrakenD reads roles from one claim: give roles of one client")
		}
		if strings.Contains(req.Roles[0].Client, ".") {
			return Config{}, invalid("KrakenD splits roles_key at dots, so the roles of client %q cannot be found: name a client without dots", req.Roles[0].Client)
		}
		names := make([]string, len(req.Roles))
		for i, r := range req.Roles {
			names[i] = r.Name
		}
		validator["roles"], validator["roles_key"], validator["roles_key_is_nested"] = names, "resource_access."+req.Roles[0].Client+".roles", true
	}
	host := strings.TrimRight(upstream.Scheme+"://"+upstream.Host, "/")
	doc := map[string]any{
		"$schema":  "https://www.krakend.io/schema/v2.12/krakend.json",
		"@comment": strings.TrimSpace(b.String()),
		"version":  3,
		"endpoints": []any{map[string]any{
			"endpoint":        "/api/{path}",
			"method":          "GET",
			"input_headers":   []string{"Authorization"},
			"backend":         []any{map[string]any{"host": []string{host}, "url_pattern": strings.TrimRight(upstream.Path, "/") + "/{path}", "encoding": "no-op"}},
			"output_encoding": "no-op",
			"extra_config":    map[string]any{"auth/validator": validator},
		}},
	}
	body, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return Config{}, err
	}
	return Config{Kind: KrakenD, MediaType: "application/json", Body: append(body, '\n')}, nil
}

// plainJWKS warns, for the operator's decisions, of a JWKS served over
// plain http, where anyone on the path can swap the keys.
func plainJWKS(iss Issuer) []string {
	if strings.HasPrefix(iss.JWKSURL, "https://") {
		return nil
	}
	return []string{"the JWKS is fetched over plain http: anyone on the path between the gateway and authz can swap its keys; use https outside a closed network"}
}

func distinctClients(roles []Role) map[string]bool {
	out := map[string]bool{}
	for _, r := range roles {
		out[r.Client] = true
	}
	return out
}
