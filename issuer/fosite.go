package issuer

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"

	"github.com/authz-dev/authz/store"
)

// fositeClient presents a stored client to fosite. Only the secrets still
// valid when the client was read take part in authentication.
type fositeClient struct {
	record *store.Client // shared with the cache: read only
	hashes [][]byte
	scopes fosite.Arguments
}

var (
	_ fosite.ClientWithSecretRotation       = (*fositeClient)(nil)
	_ fosite.ClientWithCustomTokenLifespans = (*fositeClient)(nil)
)

// newFositeClient presents a client of iss. The client may request only the
// scopes its issuer still offers, even if the issuer dropped one since.
func newFositeClient(c *store.Client, iss store.Issuer, now time.Time) *fositeClient {
	fc := &fositeClient{record: c, scopes: c.Scopes}
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

func (c *fositeClient) GetRedirectURIs() []string { return nil }
func (c *fositeClient) GetGrantTypes() fosite.Arguments {
	return fosite.Arguments{"client_credentials"}
}
func (c *fositeClient) GetResponseTypes() fosite.Arguments { return nil }
func (c *fositeClient) GetScopes() fosite.Arguments        { return c.scopes }
func (c *fositeClient) IsPublic() bool                     { return false }
func (c *fositeClient) GetAudience() fosite.Arguments {
	if c.record.Audience == "" {
		return nil
	}
	return fosite.Arguments{c.record.Audience}
}

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

// accessTokenSigner implements fosite's jwt.Signer over the go-jose v4
// keyring, so the kid and alg in every header are those of the key that
// actually signed.
type accessTokenSigner struct {
	keys       Keyring
	issuerName string
}

var _ jwt.Signer = (*accessTokenSigner)(nil)

var errNoActiveKey = errors.New("issuer has no active signing key")

func (s *accessTokenSigner) Generate(_ context.Context, claims jwt.MapClaims, _ jwt.Mapper) (string, string, error) {
	key, ok := s.keys.Active(s.issuerName)
	if !ok {
		return "", "", fmt.Errorf("issuer %q: %w", s.issuerName, errNoActiveKey)
	}
	payload, err := encodeClaims(claims)
	if err != nil {
		return "", "", fmt.Errorf("encode claims: %w", err)
	}
	token, err := key.SignCompact(payload)
	if err != nil {
		return "", "", err
	}
	return token, signaturePart(token), nil
}

// accessTokenClaims is the RFC 9068 claim set this server signs. Encoding a
// struct skips the sorting and reflection that encoding fosite's map costs.
type accessTokenClaims struct {
	Issuer         string   `json:"iss"`
	Subject        string   `json:"sub"`
	Audience       []string `json:"aud"`
	Expiry         int64    `json:"exp"`
	IssuedAt       int64    `json:"iat"`
	NotBefore      int64    `json:"nbf"`
	ID             string   `json:"jti"`
	Scope          string   `json:"scope"`
	ClientID       string   `json:"client_id"`
	AuthorizedBy   string   `json:"azp"`
	ResourceAccess any      `json:"resource_access,omitempty"`
}

// encodeClaims renders fosite's claims through accessTokenClaims, or, should
// they hold anything else, as the map itself: no claim is ever dropped.
func encodeClaims(m jwt.MapClaims) ([]byte, error) {
	var c accessTokenClaims
	known := 0
	str := func(key string, dst *string) {
		if v, ok := m[key].(string); ok {
			*dst = v
			known++
		}
	}
	num := func(key string, dst *int64) {
		if v, ok := m[key].(int64); ok {
			*dst = v
			known++
		}
	}
	str("iss", &c.Issuer)
	str("sub", &c.Subject)
	str("jti", &c.ID)
	str("scope", &c.Scope)
	str("client_id", &c.ClientID)
	str("azp", &c.AuthorizedBy)
	num("exp", &c.Expiry)
	num("iat", &c.IssuedAt)
	num("nbf", &c.NotBefore)
	if aud, ok := m["aud"].([]string); ok {
		c.Audience = aud
		known++
	}
	if ra, ok := m["resource_access"]; ok {
		c.ResourceAccess = ra
		known++
	}
	if known != len(m) {
		return json.Marshal(m)
	}
	return json.Marshal(c)
}

// Decode verifies a token against every key the issuer publishes.
func (s *accessTokenSigner) Decode(_ context.Context, token string) (*jwt.Token, error) {
	return jwt.Parse(token, func(t *jwt.Token) (any, error) {
		jwks, ok := s.keys.JWKS(s.issuerName)
		if !ok {
			return nil, fmt.Errorf("issuer %q publishes no keys", s.issuerName)
		}
		kid, _ := t.Header["kid"].(string)
		pub, ok := jwks.PublicKey(kid)
		if !ok {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		if alg, _ := t.Header["alg"].(string); alg != pub.Algorithm {
			return nil, fmt.Errorf("alg %q does not match key %s (%s)", alg, kid, pub.Algorithm)
		}
		return pub.Key, nil
	})
}

func (s *accessTokenSigner) Validate(ctx context.Context, token string) (string, error) {
	t, err := s.Decode(ctx, token)
	if err != nil {
		return "", err
	}
	if err := t.Claims.Valid(); err != nil {
		return "", err
	}
	return signaturePart(token), nil
}

func (s *accessTokenSigner) Hash(_ context.Context, in []byte) ([]byte, error) {
	sum := sha256.Sum256(in)
	return sum[:], nil
}

func (s *accessTokenSigner) GetSignature(_ context.Context, token string) (string, error) {
	if strings.Count(token, ".") != 2 {
		return "", errors.New("token is not a compact JWS")
	}
	return signaturePart(token), nil
}

func (s *accessTokenSigner) GetSigningMethodLength(context.Context) int { return jwt.SHA256HashSize }

func signaturePart(token string) string { return token[strings.LastIndexByte(token, '.')+1:] }
