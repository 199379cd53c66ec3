package issuer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
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
	record   *store.Client // shared with the cache: read only
	scopes   fosite.Arguments
	audience fosite.Arguments
}

// clientGrantTypes is every client's only grant; fosite only reads it.
var clientGrantTypes = fosite.Arguments{grantClientCredentials}

// newFositeClient presents a client of iss. The client may request only the
// scopes its issuer still offers, even if the issuer dropped one since.
func newFositeClient(c *store.Client, iss store.Issuer) *fositeClient {
	fc := &fositeClient{record: c, scopes: c.Scopes}
	if c.Audience != "" {
		fc.audience = fosite.Arguments{c.Audience}
	}
	if slices.ContainsFunc(c.Scopes, func(sc string) bool { return !slices.Contains(iss.AvailableScopes, sc) }) {
		fc.scopes = slices.DeleteFunc(slices.Clone(c.Scopes), func(sc string) bool { return !slices.Contains(iss.AvailableScopes, sc) })
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

// tokenSession is the fosite session of one token request: the instants
// the token's time claims come from, all decided by serveToken from one
// reading of the clock.
type tokenSession struct {
	subject   string
	issuedAt  time.Time
	expiresAt time.Time
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

// accessTokenStrategy is fosite's access-token strategy for one issuer: it
// signs RFC 9068 tokens with the issuer's active key, so the kid and alg in
// every header are those of the key that actually signed. It builds the
// claims straight from the granted request, where fosite's JWT strategy
// would build, copy and re-read a claim map per token.
type accessTokenStrategy struct {
	keys       Keyring
	issuerName string
	issuerURL  string
}

var _ oauth2.AccessTokenStrategy = (*accessTokenStrategy)(nil)

var errNoActiveKey = errors.New("issuer has no active signing key")

func (st *accessTokenStrategy) GenerateAccessToken(_ context.Context, req fosite.Requester) (string, string, error) {
	session, ok := req.GetSession().(*tokenSession)
	if !ok {
		return "", "", fmt.Errorf("session is a %T, not a token session", req.GetSession())
	}
	client, ok := req.GetClient().(*fositeClient)
	if !ok {
		return "", "", fmt.Errorf("client is a %T, not a stored client", req.GetClient())
	}
	key, ok := st.keys.Active(st.issuerName)
	if !ok {
		return "", "", fmt.Errorf("issuer %q: %w", st.issuerName, errNoActiveKey)
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	// RFC 9068 §2.2: sub and client_id name the client; azp is what the
	// gateway plugin matches against its consumer.
	claims := credential.AccessClaims{
		Issuer:          st.issuerURL,
		Subject:         client.GetID(),
		Audience:        credential.Audience(req.GetGrantedAudience()),
		Expiry:          session.expiresAt.Unix(),
		IssuedAt:        session.issuedAt.Unix(),
		NotBefore:       session.issuedAt.Unix(),
		ID:              base64.RawURLEncoding.EncodeToString(jti[:]),
		Scope:           strings.Join(req.GetGrantedScopes(), " "),
		ClientID:        client.GetID(),
		AuthorizedParty: client.GetID(),
	}
	if claims.Audience == nil {
		claims.Audience = credential.Audience{}
	}
	if roles := client.record.Roles; len(roles) > 0 {
		claims.ResourceAccess = map[string]credential.Roles{client.record.Audience: {Roles: roles}}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", "", fmt.Errorf("encode claims: %w", err)
	}
	token, err := key.SignCompact(payload)
	if err != nil {
		return "", "", err
	}
	return token, signaturePart(token), nil
}

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
