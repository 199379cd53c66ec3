package issuer

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"

	"github.com/authz-dev/authz/store"
)

// fositeClient presents a stored client to fosite. Only the secrets still
// valid when the client was read take part in authentication.
type fositeClient struct {
	record   *store.Client // shared with the cache: read only
	hashes   [][]byte
	scopes   fosite.Arguments
	audience fosite.Arguments
}

// clientGrantTypes is every client's only grant; fosite only reads it.
var clientGrantTypes = fosite.Arguments{grantClientCredentials}

var (
	_ fosite.ClientWithSecretRotation       = (*fositeClient)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*fositeClient)(nil)
)

// newFositeClient presents a client of iss. The client may request only the
// scopes its issuer still offers, even if the issuer dropped one since.
func newFositeClient(c *store.Client, iss store.Issuer, now time.Time) *fositeClient {
	fc := &fositeClient{record: c, scopes: c.Scopes}
	if c.Audience != "" {
		fc.audience = fosite.Arguments{c.Audience}
	}
	if slices.ContainsFunc(c.Scopes, func(sc string) bool { return !slices.Contains(iss.AvailableScopes, sc) }) {
		fc.scopes = slices.DeleteFunc(slices.Clone(c.Scopes), func(sc string) bool { return !slices.Contains(iss.AvailableScopes, sc) })
	}
	for _, s := range c.Secrets {
		if s.ValidAt(now) {
			fc.hashes = append(fc.hashes, s.Digest)
		}
	}
	return fc
}

func (c *fositeClient) GetID() string { return c.record.ID }

// GetHashedSecret returns the first valid digest; fosite tries the rest
// through GetRotatedHashes. A client with no valid secret returns nil, which
// matches nothing.
func (c *fositeClient) GetHashedSecret() []byte {
	if len(c.hashes) == 0 {
		return nil
	}
	return c.hashes[0]
}

func (c *fositeClient) GetRotatedHashes() [][]byte {
	if len(c.hashes) < 2 {
		return nil
	}
	return c.hashes[1:]
}

func (c *fositeClient) GetRedirectURIs() []string          { return nil }
func (c *fositeClient) GetGrantTypes() fosite.Arguments    { return clientGrantTypes }
func (c *fositeClient) GetResponseTypes() fosite.Arguments { return nil }
func (c *fositeClient) GetScopes() fosite.Arguments        { return c.scopes }
func (c *fositeClient) IsPublic() bool                     { return false }
func (c *fositeClient) GetAudience() fosite.Arguments      { return c.audience }

func (c *fositeClient) GetEffectiveLifespan(_ fosite.GrantType, tt fosite.TokenType, fallback time.Duration) time.Duration {
	if tt == fosite.AccessToken && c.record.TokenLifetime > 0 {
		return c.record.TokenLifetime
	}
	return fallback
}

// fositeStorage serves one issuer's clients to fosite and stores nothing:
// access tokens are stateless JWTs.
type fositeStorage struct {
	clients func(ctx context.Context, issuerName, clientID string) (*store.Client, error)
	issuer  store.Issuer
	now     func() time.Time
}

var (
	_ fosite.Storage            = (*fositeStorage)(nil)
	_ oauth2.AccessTokenStorage = (*fositeStorage)(nil)
)

// errClientDisabled is never shown to the caller; fosite turns every client
// lookup failure into the same invalid_client.
var errClientDisabled = errors.New("client is disabled")

func (s *fositeStorage) GetClient(ctx context.Context, id string) (fosite.Client, error) {
	c, err := s.clients(ctx, s.issuer.Name, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: unknown client", fosite.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !c.Enabled {
		return nil, errClientDisabled
	}
	return newFositeClient(c, s.issuer, s.now()), nil
}

// errAssertionsHandledElsewhere covers fosite's own client-assertion hooks:
// this server verifies assertions itself (clientauth.go), so fosite's are
// never reached.
var errAssertionsHandledElsewhere = errors.New("client assertions are verified by authz, not fosite")

func (s *fositeStorage) ClientAssertionJWTValid(context.Context, string) error {
	return errAssertionsHandledElsewhere
}

func (s *fositeStorage) SetClientAssertionJWT(context.Context, string, time.Time) error {
	return errAssertionsHandledElsewhere
}

func (s *fositeStorage) CreateAccessTokenSession(context.Context, string, fosite.Requester) error {
	return nil
}

func (s *fositeStorage) GetAccessTokenSession(context.Context, string, fosite.Session) (fosite.Requester, error) {
	return nil, fosite.ErrNotFound
}

func (s *fositeStorage) DeleteAccessTokenSession(context.Context, string) error { return nil }

// secretHasher compares client secrets with their stored SHA-256 digests.
// Secrets are 32 random bytes, so a slow password hash would add cost and no
// strength.
type secretHasher struct{}

var _ fosite.Hasher = secretHasher{}

var errSecretMismatch = errors.New("client secret does not match")

func (secretHasher) Compare(_ context.Context, digest, secret []byte) error {
	sum := sha256.Sum256(secret)
	if len(digest) != len(sum) || subtle.ConstantTimeCompare(digest, sum[:]) != 1 {
		return errSecretMismatch
	}
	return nil
}

func (secretHasher) Hash(_ context.Context, secret []byte) ([]byte, error) {
	sum := sha256.Sum256(secret)
	return sum[:], nil
}

// tokenSession is the fosite session of one token request: the instants
// the token's time claims come from. fosite's JWTSession would carry a
// claim map and a header map per token that nothing here reads.
type tokenSession struct {
	subject   string
	issuedAt  time.Time
	expiresAt time.Time
}

var _ fosite.Session = (*tokenSession)(nil)

func (s *tokenSession) SetExpiresAt(tt fosite.TokenType, exp time.Time) {
	if tt == fosite.AccessToken {
		s.expiresAt = exp
	}
}

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
	verify     func(ctx context.Context, issuerName, raw string) (AccessClaims, error)
}

var _ oauth2.AccessTokenStrategy = (*accessTokenStrategy)(nil)

var errNoActiveKey = errors.New("issuer has no active signing key")

// accessTokenClaims is the RFC 9068 claim set this server signs.
type accessTokenClaims struct {
	Issuer         string                 `json:"iss"`
	Subject        string                 `json:"sub"`
	Audience       []string               `json:"aud"`
	Expiry         int64                  `json:"exp"`
	IssuedAt       int64                  `json:"iat"`
	NotBefore      int64                  `json:"nbf"`
	ID             string                 `json:"jti"`
	Scope          string                 `json:"scope"`
	ClientID       string                 `json:"client_id"`
	AuthorizedBy   string                 `json:"azp"`
	ResourceAccess map[string]clientRoles `json:"resource_access,omitempty"`
}

// clientRoles is Keycloak's shape, which the gateway plugin reads roles
// from: resource_access.<audience>.roles.
type clientRoles struct {
	Roles []string `json:"roles"`
}

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
	claims := accessTokenClaims{
		Issuer:       st.issuerURL,
		Subject:      client.GetID(),
		Audience:     req.GetGrantedAudience(),
		Expiry:       session.expiresAt.Unix(),
		IssuedAt:     session.issuedAt.Unix(),
		NotBefore:    session.issuedAt.Unix(),
		ID:           base64.RawURLEncoding.EncodeToString(jti[:]),
		Scope:        strings.Join(req.GetGrantedScopes(), " "),
		ClientID:     client.GetID(),
		AuthorizedBy: client.GetID(),
	}
	if claims.Audience == nil {
		claims.Audience = []string{}
	}
	if roles := client.record.Roles; len(roles) > 0 {
		claims.ResourceAccess = map[string]clientRoles{client.record.Audience: {Roles: roles}}
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

// ValidateAccessToken is fosite's hook for flows this server does not
// compose (introspection has its own endpoint); it verifies as they do.
func (st *accessTokenStrategy) ValidateAccessToken(ctx context.Context, _ fosite.Requester, token string) error {
	_, err := st.verify(ctx, st.issuerName, token)
	return err
}

func (st *accessTokenStrategy) AccessTokenSignature(_ context.Context, token string) string {
	return signaturePart(token)
}

func signaturePart(token string) string { return token[strings.LastIndexByte(token, '.')+1:] }
