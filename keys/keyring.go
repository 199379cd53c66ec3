package keys

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// ActiveKey is the key an issuer signs with now. Its signer is built once,
// so signing a token costs one signature and nothing else.
type ActiveKey struct {
	ID        string
	Algorithm string
	signer    jose.Signer
}

// SignCompact signs payload as a compact JWS whose header carries this key's
// kid and alg and the given typ.
func (k *ActiveKey) SignCompact(payload []byte) (string, error) {
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign with key %s: %w", k.ID, err)
	}
	return jws.CompactSerialize()
}

// JWKS is an issuer's published key set, rendered once per change.
type JWKS struct {
	Body []byte
	ETag string
	// MaxAge is how long verifiers may cache the set, derived from the
	// issuer's publication lead.
	MaxAge time.Duration
	keys   map[string]jose.JSONWebKey
}

// PublicKey returns the published key with the given kid.
func (j *JWKS) PublicKey(kid string) (jose.JSONWebKey, bool) {
	k, ok := j.keys[kid]
	return k, ok
}

// issuerKeys is one issuer's immutable key snapshot; a reload swaps it whole,
// so readers never see a half-updated set.
type issuerKeys struct {
	active *ActiveKey
	jwks   *JWKS
}

// Keyring holds every issuer's signing key and published key set in memory,
// so the token endpoint and JWKS never touch the database.
type Keyring struct {
	mu      sync.RWMutex
	issuers map[string]issuerKeys
}

// NewKeyring returns an empty keyring.
func NewKeyring() *Keyring { return &Keyring{issuers: map[string]issuerKeys{}} }

// Active returns the key issuerName signs with, if it has one.
func (r *Keyring) Active(issuerName string) (*ActiveKey, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k := r.issuers[issuerName].active
	return k, k != nil
}

// JWKS returns the key set issuerName publishes, if it is loaded.
func (r *Keyring) JWKS(issuerName string) (*JWKS, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	j := r.issuers[issuerName].jwks
	return j, j != nil
}

func (r *Keyring) forget(issuerName string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.issuers, issuerName)
}

// retain forgets every issuer not in live.
func (r *Keyring) retain(live map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.issuers {
		if !live[name] {
			delete(r.issuers, name)
		}
	}
}

func (r *Keyring) set(issuerName string, k issuerKeys) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.issuers[issuerName] = k
}

// newActiveKey prepares a reusable signer for a private JWK.
func newActiveKey(priv jose.JSONWebKey, typ string) (*ActiveKey, error) {
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(priv.Algorithm), Key: priv},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		return nil, fmt.Errorf("prepare signer for key %s: %w", priv.KeyID, err)
	}
	return &ActiveKey{ID: priv.KeyID, Algorithm: priv.Algorithm, signer: signer}, nil
}

// newJWKS renders the published set. The ETag is a digest of the body, so
// every node that publishes the same keys hands out the same ETag.
func newJWKS(published []jose.JSONWebKey, maxAge time.Duration) (*JWKS, error) {
	if published == nil {
		published = []jose.JSONWebKey{}
	}
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: published})
	if err != nil {
		return nil, fmt.Errorf("render JWKS: %w", err)
	}
	sum := sha256.Sum256(body)
	byKid := make(map[string]jose.JSONWebKey, len(published))
	for _, k := range published {
		byKid[k.KeyID] = k
	}
	return &JWKS{
		Body:   body,
		ETag:   `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`,
		MaxAge: maxAge,
		keys:   byKid,
	}, nil
}
