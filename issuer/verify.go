package issuer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

var signingAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// VerifyAccessToken checks that raw is an unexpired access token that
// issuerName signed with a key it still publishes, for a client that still
// exists, is enabled, existed when the token was issued (a client deleted
// and created again under the same id does not inherit its tokens), and
// may still have every scope the token grants. Every refusal wraps
// credential.ErrInvalidToken.
func (s *Server) VerifyAccessToken(ctx context.Context, issuerName, raw string) (credential.AccessClaims, error) {
	var claims credential.AccessClaims
	invalid := func(reason string) (credential.AccessClaims, error) {
		return credential.AccessClaims{}, fmt.Errorf("%w: %s", credential.ErrInvalidToken, reason)
	}
	tok, err := jwt.ParseSigned(raw, signingAlgorithms)
	if err != nil {
		return invalid("not a signed JWT")
	}
	t, err := s.tenantFor(ctx, issuerName, nil)
	if errors.Is(err, store.ErrNotFound) {
		return invalid("unknown issuer")
	}
	if err != nil {
		return credential.AccessClaims{}, err
	}
	h := tok.Headers[0]
	wantType := credential.AccessTokenType
	if t.issuer.Keycloak() {
		wantType = credential.KeycloakTokenType
	}
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, wantType) {
		return invalid("typ is not " + wantType)
	}
	jwks, err := s.keys.JWKS(ctx, issuerName)
	if err != nil {
		return credential.AccessClaims{}, err
	}
	pub, ok := jwks.PublicKey(h.KeyID)
	if !ok || pub.Algorithm != h.Algorithm {
		return invalid("signed by no key the issuer publishes")
	}
	if err := tok.Claims(pub.Key, &claims); err != nil {
		return invalid("bad signature or claims")
	}
	now := s.cfg.Now().Unix()
	switch {
	case claims.Issuer != s.IssuerURL(t.issuer):
		return invalid("issued by another issuer")
	case now >= claims.Expiry:
		return invalid("expired")
	case now < claims.NotBefore || now < claims.IssuedAt:
		return invalid("not valid yet")
	}
	c, err := s.client(ctx, issuerName, claims.ClientID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.Enabled) {
		return invalid("client is deleted or disabled")
	}
	if err != nil {
		return credential.AccessClaims{}, err
	}
	if c.CreatedAt.Truncate(time.Second).Unix() > claims.IssuedAt || !sameIncarnation(claims.ID, c) ||
		(t.issuer.Keycloak() && claims.Subject != c.ServiceAccountID) {
		return invalid("issued to an earlier client of the same id")
	}
	if allowed := newFositeClient(c, t.issuer).scopes; slices.ContainsFunc(claims.Scopes(), func(sc string) bool { return !slices.Contains(allowed, sc) }) {
		return invalid("grants a scope its client no longer has")
	}
	if !stillEntitled(t.issuer, c, claims) {
		return invalid("carries a role or audience its client no longer has")
	}
	s.promote(issuerName, claims.ClientID)
	return claims, nil
}

// IssuerOf names the issuer a token claims to come from, before anything
// about it is verified: the name in its iss, if that is one of this
// server's issuer URLs.
func (s *Server) IssuerOf(raw string) (string, bool) {
	tok, err := jwt.ParseSigned(raw, signingAlgorithms)
	if err != nil {
		return "", false
	}
	var claims struct {
		Issuer string `json:"iss"`
	}
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		return "", false
	}
	for _, prefix := range []string{s.cfg.PublicURL + "/issuers/", s.cfg.PublicURL + "/realms/"} {
		// The name is a stranger's until the token verifies: it must be
		// one an issuer could have before anything looks it up, as a name
		// in a public path must.
		if name, ok := strings.CutPrefix(claims.Issuer, prefix); ok && credential.ValidIssuerName(name) {
			return name, true
		}
	}
	return "", false
}

// stillEntitled reports whether every role and audience a token carries is
// one its client would get now.
func stillEntitled(iss store.Issuer, c *store.Client, claims credential.AccessClaims) bool {
	realm, resource := roleClaims(c)
	audience := credential.Audience{c.Audience}
	if iss.Keycloak() {
		realm, resource, audience = keycloakEntitlements(c, realm, resource)
	}
	within := func(have []string, allowed []string) bool {
		return !slices.ContainsFunc(have, func(v string) bool { return !slices.Contains(allowed, v) })
	}
	if claims.RealmAccess != nil && (realm == nil || !within(claims.RealmAccess.Roles, realm.Roles)) {
		return false
	}
	for client, roles := range claims.ResourceAccess {
		if !within(roles.Roles, resource[client].Roles) {
			return false
		}
	}
	return within(claims.Audience, audience)
}
