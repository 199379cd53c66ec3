package credential

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// AccessTokenType is the JWS typ of every access token (RFC 9068 §2.1).
const AccessTokenType = "at+jwt"

// ErrInvalidToken is wrapped by every reason an access token is refused.
var ErrInvalidToken = errors.New("invalid access token")

// AccessClaims is the claim set of an access token this server signs
// (RFC 9068 §2.2), and what verifying one yields.
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	ID        string   `json:"jti"`
	Scope     string   `json:"scope"`
	ClientID  string   `json:"client_id"`
	// AuthorizedParty is what Kong's jwt-keycloak plugin matches against
	// its consumer: the client id.
	AuthorizedParty string `json:"azp"`
	// ResourceAccess is Keycloak's shape for client roles:
	// resource_access.<resource>.roles, which the gateway plugin reads.
	ResourceAccess map[string]Roles `json:"resource_access,omitempty"`
}

// Roles is one resource's roles in a token.
type Roles struct {
	Roles []string `json:"roles"`
}

// Scopes are the token's scopes.
func (c AccessClaims) Scopes() []string { return strings.Fields(c.Scope) }

// HasScope reports whether the token grants scope.
func (c AccessClaims) HasScope(scope string) bool { return slices.Contains(c.Scopes(), scope) }

// IssuedAtTime is iat as a time.
func (c AccessClaims) IssuedAtTime() time.Time { return time.Unix(c.IssuedAt, 0) }

// ExpiryTime is exp as a time.
func (c AccessClaims) ExpiryTime() time.Time { return time.Unix(c.Expiry, 0) }

// Audience is the aud claim. This server always writes a list; reading, it
// also takes the single string RFC 7519 §4.1.3 allows.
type Audience []string

// UnmarshalJSON reads a string or a list of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud must be a string or a list of strings")
	}
	*a = many
	return nil
}

// TokenResponse is RFC 6749 §5.1's successful token response.
type TokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}
