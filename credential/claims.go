package credential

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"
)

// JWS typ values of access tokens: RFC 9068's (§2.1) on native issuers,
// and the plain JWT that Keycloak writes on Keycloak-style issuers.
const (
	AccessTokenType   = "at+jwt"
	KeycloakTokenType = "JWT"
)

// ErrInvalidToken is wrapped by every reason an access token is refused.
var ErrInvalidToken = errors.New("invalid access token")

// AccessClaims is the claim set of an access token this server signs
// (RFC 9068 §2.2), and what verifying one yields.
type AccessClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  Audience `json:"aud,omitempty"`
	Expiry    int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf,omitempty"`
	ID        string   `json:"jti"`
	// Type is Keycloak's token type claim, "Bearer", on Keycloak-style
	// issuers.
	Type string `json:"typ,omitempty"`
	// AuthorizedParty is what Kong's jwt-keycloak plugin matches against
	// its consumer: the client id.
	AuthorizedParty string `json:"azp"`
	Scope           string `json:"scope"`
	ClientID        string `json:"client_id"`
	// PreferredUsername is the service account's user name on
	// Keycloak-style issuers: service-account-<client id>.
	PreferredUsername string `json:"preferred_username,omitempty"`
	// RealmAccess and ResourceAccess are Keycloak's shapes for roles:
	// realm_access.roles for the issuer's own roles, and
	// resource_access.<client>.roles for roles defined on a client, which
	// the gateway plugin reads.
	RealmAccess    *Roles           `json:"realm_access,omitempty"`
	ResourceAccess map[string]Roles `json:"resource_access,omitempty"`
	// Keycloak's other service-account claims, on Keycloak-style issuers:
	// the authentication class ("1"), the address the client called from
	// (clientHost and clientAddress, which Keycloak writes alike for an
	// address it does not resolve), and, with the email scope,
	// email_verified false, since a service account has no address.
	AuthenticationClass string `json:"acr,omitempty"`
	ClientHost          string `json:"clientHost,omitempty"`
	ClientAddress       string `json:"clientAddress,omitempty"`
	EmailVerified       *bool  `json:"email_verified,omitempty"`
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
