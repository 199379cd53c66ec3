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
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, credential.AccessTokenType) {
		return invalid("typ is not " + credential.AccessTokenType)
	}
	jwks, ok := s.keys.JWKS(issuerName)
	if !ok {
		return invalid("unknown issuer")
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
	case claims.Issuer != s.IssuerURL(issuerName):
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
	if c.CreatedAt.Truncate(time.Second).Unix() > claims.IssuedAt {
		return invalid("issued to an earlier client of the same id")
	}
	t, err := s.tenantFor(ctx, issuerName)
	if err != nil {
		return credential.AccessClaims{}, err
	}
	if allowed := newFositeClient(c, t.issuer).scopes; slices.ContainsFunc(claims.Scopes(), func(sc string) bool { return !slices.Contains(allowed, sc) }) {
		return invalid("grants a scope its client no longer has")
	}
	return claims, nil
}
