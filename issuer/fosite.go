package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// fositeClient presents an authenticated client to fosite, which checks the
// requested grant, scopes and audience against it.
type fositeClient struct {
	record *store.Client // shared with the cache: read only
	// defaults are granted unrequested; scopes may be requested: the
	// defaults and the optional ones, less any the issuer no longer
	// offers.
	defaults fosite.Arguments
	scopes   fosite.Arguments
	audience fosite.Arguments
}

// clientGrantTypes is every client's only grant; fosite only reads it.
var clientGrantTypes = fosite.Arguments{grantClientCredentials}

// newFositeClient presents a client of iss.
func newFositeClient(c *store.Client, iss store.Issuer) *fositeClient {
	offered := func(sc string) bool {
		return slices.Contains(iss.AvailableScopes, sc) || slices.Contains(credential.ReservedScopes(), sc) ||
			(iss.Keycloak() && sc == credential.RolesScope)
	}
	fc := &fositeClient{record: c}
	for _, sc := range c.Scopes {
		if offered(sc) {
			fc.defaults = append(fc.defaults, sc)
		}
	}
	fc.scopes = slices.Clone(fc.defaults)
	for _, sc := range c.OptionalScopes {
		if offered(sc) && !slices.Contains(fc.scopes, sc) {
			fc.scopes = append(fc.scopes, sc)
		}
	}
	if iss.Keycloak() {
		// Keycloak takes openid from any client.
		fc.scopes = append(fc.scopes, "openid")
	}
	if c.Audience != "" {
		fc.audience = fosite.Arguments{c.Audience}
	}
	return fc
}

// lifetime is how long the client's tokens live.
func (c *fositeClient) lifetime(iss store.Issuer) time.Duration {
	if c.record.TokenLifetime > 0 {
		return c.record.TokenLifetime
	}
	return iss.TokenLifetime
}

func (c *fositeClient) GetID() string { return c.record.ID }

// GetHashedSecret is nil: the issuer checks secrets itself, before fosite
// sees the client.
func (c *fositeClient) GetHashedSecret() []byte            { return nil }
func (c *fositeClient) GetRedirectURIs() []string          { return nil }
func (c *fositeClient) GetGrantTypes() fosite.Arguments    { return clientGrantTypes }
func (c *fositeClient) GetResponseTypes() fosite.Arguments { return nil }
func (c *fositeClient) GetScopes() fosite.Arguments        { return c.scopes }
func (c *fositeClient) IsPublic() bool                     { return false }
func (c *fositeClient) GetAudience() fosite.Arguments      { return c.audience }

// fositeStorage is the storage fosite is composed with. It stores nothing,
// since access tokens are stateless JWTs, and serves no clients, since the
// issuer authenticates them before fosite runs.
type fositeStorage struct{}

var (
	_ fosite.Storage            = fositeStorage{}
	_ oauth2.AccessTokenStorage = fositeStorage{}
)

// errNotFositesJob answers fosite's hooks for work this server does itself:
// client lookup and assertion replay (clientauth.go).
var errNotFositesJob = errors.New("clients and client assertions are handled by authz, not fosite")

func (fositeStorage) GetClient(context.Context, string) (fosite.Client, error) {
	return nil, errNotFositesJob
}

func (fositeStorage) ClientAssertionJWTValid(context.Context, string) error {
	return errNotFositesJob
}

func (fositeStorage) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errNotFositesJob
}

func (fositeStorage) CreateAccessTokenSession(context.Context, string, fosite.Requester) error {
	return nil
}

func (fositeStorage) GetAccessTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}

func (fositeStorage) DeleteAccessTokenSession(context.Context, string) error { return nil }

// tokenSession is the fosite session of one token request: the issuer it
// is for, and the instants the token's time claims come from, all decided
// by serveToken from one reading of the clock.
type tokenSession struct {
	tenant    *tenant
	subject   string
	issuedAt  time.Time
	expiresAt time.Time
	// clientAddress is where the request came from, for Keycloak-style
	// tokens.
	clientAddress string
}

var _ fosite.Session = (*tokenSession)(nil)

// SetExpiresAt ignores fosite, which computes an expiry from its own
// reading of the wall clock: exp follows iat, decided once by serveToken.
func (s *tokenSession) SetExpiresAt(fosite.TokenType, time.Time) {}

func (s *tokenSession) GetExpiresAt(tt fosite.TokenType) time.Time {
	if tt == fosite.AccessToken {
		return s.expiresAt
	}
	return time.Time{}
}

func (s *tokenSession) GetUsername() string { return "" }
func (s *tokenSession) GetSubject() string  { return s.subject }

func (s *tokenSession) Clone() fosite.Session {
	c := *s
	return &c
}

// accessTokenStrategy is fosite's access-token strategy: it signs tokens
// with the active key of the session's issuer, so the kid and alg in every
// header are those of the key that actually signed. It builds the claims
// straight from the granted request, where fosite's JWT strategy would
// build, copy and re-read a claim map per token.
type accessTokenStrategy struct {
	keys Keyring
}

var _ oauth2.AccessTokenStrategy = (*accessTokenStrategy)(nil)

func (st *accessTokenStrategy) GenerateAccessToken(ctx context.Context, req fosite.Requester) (string, string, error) {
	session, ok := req.GetSession().(*tokenSession)
	if !ok {
		return "", "", fmt.Errorf("session is a %T, not a token session", req.GetSession())
	}
	client, ok := req.GetClient().(*fositeClient)
	if !ok {
		return "", "", fmt.Errorf("client is a %T, not a stored client", req.GetClient())
	}
	t := session.tenant
	if t == nil || !t.exists() {
		return "", "", errNoTenant
	}
	key, err := st.keys.Active(ctx, t.issuer.Name)
	if err != nil {
		return "", "", err
	}
	claims := accessClaims(t.issuer, t.issuerURL, client.record, session, req.GetGrantedScopes(), req.GetGrantedAudience())
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("encode claims: %w", err)
	}
	sign := key.SignCompact
	if t.issuer.Keycloak() {
		sign = key.SignKeycloak
	}
	token, err := sign(payload)
	if err != nil {
		return "", "", err
	}
	return token, signaturePart(token), nil
}

// errNoTenant would mean a token request reached fosite without the issuer
// it is for: only serveToken makes sessions, and it always names one.
var errNoTenant = errors.New("token session names no issuer")

// errNoStoredTokens answers fosite's validation hook, which only flows this
// server does not compose call: introspection verifies tokens itself.
var errNoStoredTokens = errors.New("access tokens are verified by the introspection endpoint, not fosite")

func (st *accessTokenStrategy) ValidateAccessToken(context.Context, fosite.Requester, string) error {
	return errNoStoredTokens
}

func (st *accessTokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	return signaturePart(token)
}

func signaturePart(token string) string { return token[strings.LastIndexByte(token, '.')+1:] }
