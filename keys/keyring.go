package keys

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/document"
)

// ActiveKey is the key an issuer signs with now. Its protected header is
// encoded once, so signing a token costs one hash and one signature.
type ActiveKey struct {
	ID        string
	Algorithm string
	// header is the base64url protected header: alg, kid and the
	// RFC 9068 typ; keycloakHeader has Keycloak's typ, JWT, instead.
	header, keycloakHeader string
	signer                 func(signingInput []byte) ([]byte, error)
}

// SignCompact signs payload as a compact JWS (RFC 7515 §7.1) whose header
// carries this key's alg and kid and the access-token typ.
func (k *ActiveKey) SignCompact(payload []byte) (string, error) { return k.sign(k.header, payload) }

// SignKeycloak signs payload as SignCompact does, with the typ Keycloak
// writes, JWT, for Keycloak-style issuers.
func (k *ActiveKey) SignKeycloak(payload []byte) (string, error) {
	return k.sign(k.keycloakHeader, payload)
}

func (k *ActiveKey) sign(header string, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(header)+2+enc.EncodedLen(len(payload))+enc.EncodedLen(512))
	buf = append(buf, header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	sig, err := k.signer(buf)
	if err != nil {
		return "", fmt.Errorf("sign with key %s: %w", k.ID, err)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// JWKS is an issuer's published key set, rendered once per change. Its
// MaxAge is how long verifiers may cache the set, derived from the issuer's
// publication lead.
type JWKS struct {
	*document.Document
	keys map[string]jose.JSONWebKey
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
	// source is the digest of the stored keys (and JWKS lifetime) this
	// entry was built from: a reload of the same set is skipped.
	source [sha256.Size]byte
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

// source is the digest an issuer's entry was built from.
func (r *Keyring) source(issuerName string) ([sha256.Size]byte, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	k, ok := r.issuers[issuerName]
	return k.source, ok
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

// NewActiveKey prepares a signer of access tokens for a private key, as the
// keyring does; the load tool uses it to measure raw signing.
func NewActiveKey(priv crypto.Signer, alg, kid string) (*ActiveKey, error) {
	return newActiveKey(jose.JSONWebKey{Key: priv, Algorithm: alg, KeyID: kid})
}

// newActiveKey prepares a signer for a private JWK: the JWS signature of its
// algorithm (RFC 7518 §3, RFC 8037 §3.1) over the standard library's
// primitives.
func newActiveKey(priv jose.JSONWebKey) (*ActiveKey, error) {
	header := func(typ string) string {
		h, _ := json.Marshal(struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
			Typ string `json:"typ"`
		}{priv.Algorithm, priv.KeyID, typ})
		return base64.RawURLEncoding.EncodeToString(h)
	}
	k := &ActiveKey{ID: priv.KeyID, Algorithm: priv.Algorithm,
		header: header(credential.AccessTokenType), keycloakHeader: header(credential.KeycloakTokenType)}
	switch key := priv.Key.(type) {
	case *rsa.PrivateKey:
		switch priv.Algorithm {
		case RS256:
			k.signer = func(in []byte) ([]byte, error) {
				h := sha256.Sum256(in)
				return rsa.SignPKCS1v15(nil, key, crypto.SHA256, h[:])
			}
		case PS256:
			k.signer = func(in []byte) ([]byte, error) {
				h := sha256.Sum256(in)
				return rsa.SignPSS(rand.Reader, key, crypto.SHA256, h[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
			}
		}
	case *ecdsa.PrivateKey:
		if priv.Algorithm == ES256 && key.Curve == elliptic.P256() {
			k.signer = func(in []byte) ([]byte, error) {
				h := sha256.Sum256(in)
				// A nil random source selects RFC 6979 deterministic nonces:
				// 20 % cheaper than the hedged default, and as safe here, where
				// no two payloads are alike (each has its own jti).
				der, err := key.Sign(nil, h[:], crypto.SHA256)
				if err != nil {
					return nil, err
				}
				return ecdsaJWSSignature(der, 32)
			}
		}
	case ed25519.PrivateKey:
		if priv.Algorithm == EdDSA {
			k.signer = func(in []byte) ([]byte, error) { return ed25519.Sign(key, in), nil }
		}
	}
	if k.signer == nil {
		return nil, fmt.Errorf("key %s: a %T cannot sign %s", priv.KeyID, priv.Key, priv.Algorithm)
	}
	return k, nil
}

// newJWKS renders the published set.
func newJWKS(published []jose.JSONWebKey, maxAge time.Duration) (*JWKS, error) {
	if published == nil {
		published = []jose.JSONWebKey{}
	}
	doc, err := document.New(jose.JSONWebKeySet{Keys: published}, maxAge)
	if err != nil {
		return nil, fmt.Errorf("render JWKS: %w", err)
	}
	byKid := make(map[string]jose.JSONWebKey, len(published))
	for _, k := range published {
		byKid[k.KeyID] = k
	}
	return &JWKS{Document: doc, keys: byKid}, nil
}

// ecdsaJWSSignature turns an ASN.1 ECDSA signature into the JWS form
// (RFC 7518 §3.4): r and s as fixed-size big-endian halves.
func ecdsaJWSSignature(der []byte, size int) ([]byte, error) {
	var seq, r, s cryptobyte.String
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&r, asn1.INTEGER) || !seq.ReadASN1(&s, asn1.INTEGER) || !seq.Empty() {
		return nil, errors.New("malformed ECDSA signature")
	}
	sig := make([]byte, 2*size)
	for i, v := range [][]byte{r, s} {
		v = bytes.TrimLeft(v, "\x00") // INTEGERs carry a sign byte
		if len(v) > size {
			return nil, errors.New("ECDSA signature value too long")
		}
		copy(sig[(i+1)*size-len(v):(i+1)*size], v)
	}
	return sig, nil
}
