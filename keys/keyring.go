package keys

import (
	"bytes"
	"context"
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
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/document"
	"github.com/authz-dev/authz/lru"
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
//
// The keys themselves are parsed from the rendered set at the first
// PublicKey: most issuers' tokens are verified by gateways, never here, and
// a node that holds thousands of issuers would otherwise keep every key
// parsed, a dozen objects each for the collector to mark.
type JWKS struct {
	*document.Document
	parse sync.Once
	keys  map[string]jose.JSONWebKey
}

// PublicKey returns the published key with the given kid.
func (j *JWKS) PublicKey(kid string) (jose.JSONWebKey, bool) {
	k, ok := j.byKid()[kid]
	return k, ok
}

// byKid is the published keys by kid, parsed at the first call.
func (j *JWKS) byKid() map[string]jose.JSONWebKey {
	j.parse.Do(func() {
		var set jose.JSONWebKeySet
		// The body is this server's own rendering of keys it parsed:
		// it cannot fail to parse back (TestReconcileSignsWithEveryAlgorithm
		// verifies through it for every algorithm).
		_ = json.Unmarshal(j.Body, &set)
		j.keys = make(map[string]jose.JSONWebKey, len(set.Keys))
		for _, k := range set.Keys {
			j.keys[k.KeyID] = k
		}
	})
	return j.keys
}

// issuerKeys is one issuer's immutable key snapshot; a reload swaps it whole,
// so readers never see a half-updated set.
type issuerKeys struct {
	// active opens the signing key on first use; nil: nothing signs.
	active func() (*ActiveKey, error)
	jwks   *JWKS
}

// Keyring holds recently used issuers' signing keys and published key sets
// in memory, up to a bound, so that the token endpoint and JWKS of a warm
// issuer never touch the database. An issuer is loaded on first use and
// dropped when any node writes its keys; with 100,000 issuers, loading all
// at start-up and again on every poll was most of a node's idle work and
// memory (BENCHMARKS.md, tenant scale).
type Keyring struct {
	entries *lru.Cache[string, *issuerKeys]
	loading singleFlight[*issuerKeys]
	hits    atomic.Uint64
	misses  atomic.Uint64
}

// DefaultKeyringSize is how many issuers' keys a keyring holds unless told
// otherwise; a warm ES256 issuer costs about 4 KiB in all, its keys and its
// protocol state (-bench IssuerBytes ./issuer).
const DefaultKeyringSize = 20_000

// NewKeyring returns an empty keyring of at most maxIssuers issuers
// (DefaultKeyringSize when not positive).
func NewKeyring(maxIssuers int) *Keyring {
	if maxIssuers <= 0 {
		maxIssuers = DefaultKeyringSize
	}
	return &Keyring{entries: lru.New[string, *issuerKeys](maxIssuers)}
}

// CacheStats are a cache's lookups since start and its size now.
type CacheStats struct {
	Hits, Misses uint64
	Entries      int
}

// Stats reports the keyring's lookups and size.
func (r *Keyring) Stats() CacheStats {
	return CacheStats{Hits: r.hits.Load(), Misses: r.misses.Load(), Entries: r.entries.Len()}
}

// get returns an issuer's keys, calling load on a miss; concurrent misses
// of one issuer share one load, and a load that raced with a write of the
// issuer's keys serves its callers but is not kept.
//
// load takes the issuer's name rather than closing over it, so that a hit,
// every warm token's path, allocates nothing.
func (r *Keyring) get(ctx context.Context, issuerName string, load func(context.Context, string) (*issuerKeys, error)) (*issuerKeys, error) {
	k, ok, epoch := r.entries.Get(issuerName)
	if ok {
		r.hits.Add(1)
		return k, nil
	}
	r.misses.Add(1)
	return r.loading.do(ctx, issuerName, r.held, func(ctx context.Context) (*issuerKeys, error) {
		k, err := load(ctx, issuerName)
		if err == nil {
			r.entries.Put(issuerName, k, epoch)
		}
		return k, err
	})
}

// offer keeps keys read elsewhere (with the issuer, in the same round
// trip) unless the keyring holds the issuer's already (a load meanwhile
// may have read newer ones) or forgot them since epoch.
func (r *Keyring) offer(issuerName string, epoch uint64, k *issuerKeys) {
	r.entries.Add(issuerName, k, epoch)
}

// held returns the keys the keyring has for an issuer, without counting a
// lookup.
func (r *Keyring) held(issuerName string) (*issuerKeys, bool) {
	k, ok, _ := r.entries.Get(issuerName)
	return k, ok
}

// epoch is the value to hand to offer for a read that begins now.
func (r *Keyring) epoch() uint64 { return r.entries.Epoch() }

// holds reports whether the keyring has an issuer's keys.
func (r *Keyring) holds(issuerName string) bool { return r.entries.Contains(issuerName) }

// promote counts a use of an issuer's keys that a stranger cannot make:
// see lru.Cache.Promote.
func (r *Keyring) promote(issuerName string) { r.entries.Promote(issuerName) }

// forget drops an issuer's keys; the next use loads them again, and does
// not join a load that began before.
func (r *Keyring) forget(issuerName string) {
	r.entries.Remove(issuerName)
	r.loading.forget(issuerName)
}

// singleFlight runs one load per key at a time: callers that arrive while
// it runs wait for its result instead of loading again.
type singleFlight[V any] struct {
	mu    sync.Mutex
	calls map[string]*flight[V]
}

type flight[V any] struct {
	done  chan struct{}
	value V
	err   error
}

// do runs load for key unless a load of key is under way, and returns its
// result. When none is under way it first asks held: a caller that missed
// the cache just before a load stored its value and ended would otherwise
// load again. The load runs detached from the first caller's cancellation, so
// one caller that gives up does not fail the others; each caller stops
// waiting when its own ctx ends.
func (g *singleFlight[V]) do(ctx context.Context, key string, held func(string) (V, bool), load func(context.Context) (V, error)) (V, error) {
	g.mu.Lock()
	if g.calls == nil {
		g.calls = map[string]*flight[V]{}
	}
	f, running := g.calls[key]
	if !running {
		// A load stores its value before it leaves calls under g.mu, so
		// held sees what the last load of key stored.
		if v, ok := held(key); ok {
			g.mu.Unlock()
			return v, nil
		}
		f = &flight[V]{done: make(chan struct{})}
		g.calls[key] = f
		go func() {
			loadCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), loadTimeout)
			defer cancel()
			defer func() {
				// Off the request's goroutine, a panic would stop the node.
				if p := recover(); p != nil {
					f.err = fmt.Errorf("load %s: panic: %v", key, p)
				}
				g.mu.Lock()
				if g.calls[key] == f {
					delete(g.calls, key)
				}
				g.mu.Unlock()
				close(f.done)
			}()
			f.value, f.err = load(loadCtx)
		}()
	}
	g.mu.Unlock()
	select {
	case <-f.done:
		return f.value, f.err
	case <-ctx.Done():
		var zero V
		return zero, ctx.Err()
	}
}

// forget makes the next call for key start a load of its own: one under
// way read the store before a write that made it stale.
func (g *singleFlight[V]) forget(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.calls, key)
}

// loadTimeout bounds one load of an issuer's keys.
const loadTimeout = 2 * time.Second

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
	return &JWKS{Document: doc}, nil
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
