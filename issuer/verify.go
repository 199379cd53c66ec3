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

	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// AccessClaims are the claims of an access token this server issued.
type AccessClaims struct {
	Issuer   string
	Subject  string
	ClientID string
	Scopes   []string
	Audience []string
	IssuedAt time.Time
	Expiry   time.Time
}

// HasScope reports whether the token grants scope.
func (c AccessClaims) HasScope(scope string) bool { return slices.Contains(c.Scopes, scope) }

// ErrInvalidToken is wrapped by every reason VerifyAccessToken refuses.
var ErrInvalidToken = errors.New("invalid access token")

var signingAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// VerifyAccessToken checks that raw is an unexpired access token that
// issuerName signed with a key it still publishes, for a client that still
// exists and is enabled.
func (s *Server) VerifyAccessToken(ctx context.Context, issuerName, raw string) (AccessClaims, error) {
	tok, err := jwt.ParseSigned(raw, signingAlgorithms)
	if err != nil {
		return AccessClaims{}, fmt.Errorf("%w: not a signed JWT", ErrInvalidToken)
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, keys.AccessTokenType) {
		return AccessClaims{}, fmt.Errorf("%w: typ is not %s", ErrInvalidToken, keys.AccessTokenType)
	}
	jwks, ok := s.keys.JWKS(issuerName)
	if !ok {
		return AccessClaims{}, fmt.Errorf("%w: unknown issuer", ErrInvalidToken)
	}
	pub, ok := jwks.PublicKey(h.KeyID)
	if !ok || pub.Algorithm != h.Algorithm {
		return AccessClaims{}, fmt.Errorf("%w: signed by no key the issuer publishes", ErrInvalidToken)
	}
	var std jwt.Claims
	var extra struct {
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}
	if err := tok.Claims(pub.Key, &std, &extra); err != nil {
		return AccessClaims{}, fmt.Errorf("%w: bad signature", ErrInvalidToken)
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: s.IssuerURL(issuerName), Time: s.cfg.Now()}, 0); err != nil {
		return AccessClaims{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	c, err := s.client(ctx, issuerName, extra.ClientID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !c.Enabled) {
		return AccessClaims{}, fmt.Errorf("%w: client is deleted or disabled", ErrInvalidToken)
	}
	if err != nil {
		return AccessClaims{}, err
	}
	out := AccessClaims{
		Issuer:   std.Issuer,
		Subject:  std.Subject,
		ClientID: extra.ClientID,
		Scopes:   strings.Fields(extra.Scope),
		Audience: std.Audience,
	}
	if std.IssuedAt != nil {
		out.IssuedAt = std.IssuedAt.Time()
	}
	if std.Expiry != nil {
		out.Expiry = std.Expiry.Time()
	}
	return out, nil
}
