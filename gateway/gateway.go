// Package gateway writes the configuration with which an API gateway
// admits only the tokens of one issuer, for one audience, with the scopes
// or roles an API requires: Kong's jwt-keycloak plugin, Envoy's jwt_authn
// and RBAC filters, Apache's mod_auth_openidc, and KrakenD's JWT
// validator. Each configuration says, in its own comments, which of the
// server's guarantees it keeps and what the operator must still decide.
package gateway

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kinds of gateway.
const (
	KongJWTKeycloak = "kong-jwt-keycloak"
	Envoy           = "envoy"
	Apache          = "apache"
	KrakenD         = "krakend"
)

// Kinds lists every gateway a configuration can be written for.
func Kinds() []string { return []string{KongJWTKeycloak, Envoy, Apache, KrakenD} }

// Issuer is what a gateway must know of an issuer to verify its tokens.
type Issuer struct {
	Name         string
	IssuerURL    string
	DiscoveryURL string
	JWKSURL      string
	Algorithm    string
	// Audience is the aud the API requires.
	Audience string
	// JWKSMaxAge is how long a gateway may cache the JWKS: the server
	// publishes every key at least that long before it signs.
	JWKSMaxAge time.Duration
	// Scopes are the scopes the issuer offers.
	Scopes []string
}

// Role is a client role a token must carry: resource_access.<Client>.roles.
type Role struct{ Client, Name string }

func (r Role) String() string { return r.Client + ":" + r.Name }

// ParseRole reads CLIENT:ROLE, or ROLE alone for a role of the audience's
// client. It splits at the last colon, as jwt-keycloak does, so a client
// id may hold colons and a role name may not.
func ParseRole(s, audience string) (Role, error) {
	client, name := audience, s
	if i := strings.LastIndex(s, ":"); i >= 0 {
		client, name = s[:i], s[i+1:]
	}
	if client == "" || name == "" || strings.ContainsAny(s, " \t\"\\") {
		return Role{}, fmt.Errorf("role %q must be CLIENT:ROLE or ROLE (a role of the audience's client)", s)
	}
	return Role{Client: client, Name: name}, nil
}

// Request says which gateway and what it must require. A token passes with
// any one of the scopes and any one of the roles (as jwt-keycloak checks
// them), and with both kinds when both are given.
type Request struct {
	Kind     string
	Upstream string
	Scopes   []string
	Roles    []Role
}

// Config is one gateway's configuration.
type Config struct {
	Kind string
	// MediaType is the type of Body: YAML, JSON, or Apache's text.
	MediaType string
	Body      []byte
}

// ErrInvalid marks a request that cannot be written for this issuer.
var ErrInvalid = errors.New("invalid gateway configuration request")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// defaultUpstream is where the API runs when the operator names no
// upstream: a placeholder to replace.
const defaultUpstream = "http://127.0.0.1:8000"

// tokenPattern is what a scope or role may be: what a regular expression
// or a configuration file can hold literally.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9._:/~+@-]{1,128}$`)

// Render writes the configuration req asks for.
func Render(iss Issuer, req Request) (Config, error) {
	if req.Upstream == "" {
		req.Upstream = defaultUpstream
	}
	up, err := parseUpstream(req.Upstream)
	if err != nil {
		return Config{}, err
	}
	for _, s := range req.Scopes {
		if !slices.Contains(iss.Scopes, s) {
			return Config{}, invalid("issuer %q does not offer scope %q (it offers %s)", iss.Name, s, strings.Join(iss.Scopes, ", "))
		}
	}
	for _, r := range slices.Concat(req.Scopes, roleStrings(req.Roles)) {
		if !tokenPattern.MatchString(r) {
			return Config{}, invalid("%q cannot be written into a gateway configuration", r)
		}
	}
	if iss.Audience == "" || !tokenPattern.MatchString(strings.NewReplacer("://", "").Replace(iss.Audience)) {
		return Config{}, invalid("issuer %q's audience %q cannot be written into a gateway configuration", iss.Name, iss.Audience)
	}
	switch req.Kind {
	case KongJWTKeycloak:
		return kong(iss, req)
	case Envoy:
		return envoy(iss, req, up)
	case Apache:
		return apache(iss, req, up)
	case KrakenD:
		return krakend(iss, req, up)
	default:
		return Config{}, invalid("unknown gateway %q: one of %s", req.Kind, strings.Join(Kinds(), ", "))
	}
}

// parseUpstream reads the API's URL: http or https, a host and port, an
// optional path, and nothing a configuration file could mistake for
// syntax (no query, fragment, quotes, backslashes or non-ASCII).
func parseUpstream(raw string) (*url.URL, error) {
	refuse := invalid("upstream %q must be an http or https URL with a host, an optional port and path, and no credentials, query or fragment", raw)
	for _, c := range []byte(raw) {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' || c == '\'' {
			return nil, refuse
		}
	}
	up, err := url.Parse(raw)
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Hostname() == "" || up.User != nil ||
		up.Opaque != "" || up.RawQuery != "" || up.ForceQuery || up.Fragment != "" {
		return nil, refuse
	}
	if p := up.Port(); p != "" {
		var n int
		if _, err := fmt.Sscan(p, &n); err != nil || n < 1 || n > 65535 {
			return nil, refuse
		}
	}
	return up, nil
}

func roleStrings(roles []Role) []string {
	out := make([]string, len(roles))
	for i, r := range roles {
		out[i] = r.String()
	}
	return out
}

// kept are the guarantees every configuration keeps, in words.
func kept(iss Issuer) []string {
	return []string{
		fmt.Sprintf("only tokens whose iss is %s pass, signed %s by a key of its JWKS", iss.IssuerURL, iss.Algorithm),
		fmt.Sprintf("authz publishes each key at least %s (the JWKS max-age) before it signs, and for the issuer's retire period after it stops", iss.JWKSMaxAge),
		"a key revoked in authz leaves its JWKS at once, but a gateway honours its cached copy until that cache expires (below)",
	}
}

// comment writes lines as comments with prefix.
func comment(b *strings.Builder, prefix string, title string, lines []string) {
	fmt.Fprintf(b, "%s %s\n", prefix, title)
	for _, l := range lines {
		fmt.Fprintf(b, "%s   - %s\n", prefix, l)
	}
}

func header(b *strings.Builder, prefix string, iss Issuer, kind string, keeps, decide []string) {
	fmt.Fprintf(b, "%s %s configuration for authz issuer %q, written by `authz gateway-config`.\n", prefix, kind, iss.Name)
	comment(b, prefix, "Keeps:", append(kept(iss), keeps...))
	comment(b, prefix, "You decide:", decide)
}

// regexpAnyWord matches a space-delimited claim (such as scope) that
// holds one of words; anchored at both ends, it means the same in RE2's
// full match (Envoy) and PCRE's search (Apache).
func regexpAnyWord(words []string) string {
	quoted := make([]string, len(words))
	for i, w := range words {
		quoted[i] = literal(w)
	}
	return `(^|.* )(` + strings.Join(quoted, "|") + `)( .*|$)`
}

// literal writes a word for a regular expression with its metacharacters
// in brackets, not behind backslashes: Apache's expression parser drops
// a backslash before the regular expression sees it. tokenPattern leaves
// only . and + to quote.
func literal(w string) string {
	return strings.NewReplacer(".", "[.]", "+", "[+]").Replace(w)
}

// seconds is a cache lifetime in whole seconds, at least one.
func seconds(d time.Duration) int64 { return max(1, int64(d/time.Second)) }

// hostPort splits a URL's host and port, with the scheme's default port.
func hostPort(u *url.URL) (string, int) {
	port := u.Port()
	if port == "" {
		if u.Scheme == "https" {
			return u.Hostname(), 443
		}
		return u.Hostname(), 80
	}
	var n int
	_, _ = fmt.Sscan(port, &n)
	return u.Hostname(), n
}
