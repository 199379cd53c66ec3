package keys

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/store"
)

// AccessTokenType is the JWS typ of every token the keyring signs: RFC 9068
// access tokens.
const AccessTokenType = "at+jwt"

// KeyStore is the part of the store the key manager needs.
type KeyStore interface {
	GetIssuer(ctx context.Context, name string) (store.Issuer, error)
	ListIssuers(ctx context.Context, page store.Page) ([]store.Issuer, error)
	CreateSigningKey(ctx context.Context, k store.SigningKey) error
	ListSigningKeys(ctx context.Context, issuerName string) ([]store.SigningKey, error)
}

// Manager creates issuers' signing keys and loads them into the keyring.
type Manager struct {
	store  KeyStore
	sealer *Sealer
	ring   *Keyring
}

// NewManager returns a Manager that stores keys in st, sealed by sealer, and
// loads them into ring.
func NewManager(st KeyStore, sealer *Sealer, ring *Keyring) *Manager {
	return &Manager{store: st, sealer: sealer, ring: ring}
}

// EnsureActive gives an issuer an active key of algorithm alg when it has
// none, then loads the issuer's keys into the keyring. A new issuer has
// never published a key, so no gateway can hold a stale set: its first key
// may sign at once.
func (m *Manager) EnsureActive(ctx context.Context, issuerName, alg string) error {
	stored, err := m.store.ListSigningKeys(ctx, issuerName)
	if err != nil {
		return err
	}
	hasActive := false
	for _, k := range stored {
		hasActive = hasActive || k.State == store.KeyActive
	}
	if !hasActive {
		k, err := m.newSealedKey(issuerName, alg, store.KeyActive)
		if err != nil {
			return err
		}
		// Another node may have created the key a moment ago; its key is as
		// good as ours.
		if err := m.store.CreateSigningKey(ctx, k); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return m.Load(ctx, issuerName)
}

// Sync brings an issuer's keyring entry in line with the store after a
// change: it reloads the keys of an issuer that exists and forgets those of
// one that is gone.
func (m *Manager) Sync(ctx context.Context, issuerName string) error {
	if _, err := m.store.GetIssuer(ctx, issuerName); errors.Is(err, store.ErrNotFound) {
		m.ring.forget(issuerName)
		return nil
	} else if err != nil {
		return err
	}
	return m.Load(ctx, issuerName)
}

// SyncAll reloads every issuer's keys and forgets issuers that are gone,
// for start-up and for when change notifications may have been missed.
func (m *Manager) SyncAll(ctx context.Context) error {
	issuers, err := m.store.ListIssuers(ctx, store.Page{})
	if err != nil {
		return err
	}
	live := make(map[string]bool, len(issuers))
	for _, iss := range issuers {
		live[iss.Name] = true
		if err := m.Load(ctx, iss.Name); err != nil {
			return fmt.Errorf("load keys of issuer %q: %w", iss.Name, err)
		}
	}
	m.ring.retain(live)
	return nil
}

// Load reads an issuer's keys from the store, opens them, and replaces the
// issuer's entry in the keyring.
func (m *Manager) Load(ctx context.Context, issuerName string) error {
	stored, err := m.store.ListSigningKeys(ctx, issuerName)
	if err != nil {
		return err
	}
	var next issuerKeys
	published := make([]jose.JSONWebKey, 0, len(stored))
	for _, sk := range stored {
		var pub jose.JSONWebKey
		if err := pub.UnmarshalJSON(sk.PublicJWK); err != nil {
			return fmt.Errorf("parse public key %s of issuer %q: %w", sk.ID, issuerName, err)
		}
		published = append(published, pub)
		if sk.State != store.KeyActive {
			continue
		}
		priv, err := m.openPrivateKey(sk)
		if err != nil {
			return err
		}
		if next.active, err = newActiveKey(priv, AccessTokenType); err != nil {
			return err
		}
	}
	if next.jwks, err = newJWKS(published); err != nil {
		return err
	}
	m.ring.set(issuerName, next)
	return nil
}

func (m *Manager) newSealedKey(issuerName, alg string, state store.KeyState) (store.SigningKey, error) {
	priv, err := generatePrivateKey(alg)
	if err != nil {
		return store.SigningKey{}, err
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg, Use: "sig"}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("thumbprint new key: %w", err)
	}
	// The RFC 7638 thumbprint is unique per key and lets anyone holding the
	// public key recompute its kid.
	pub.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode private key: %w", err)
	}
	return store.SigningKey{
		ID:               pub.KeyID,
		IssuerName:       issuerName,
		Algorithm:        alg,
		State:            state,
		PublicJWK:        pubJSON,
		SealedPrivateKey: m.sealer.Seal(issuerName, pub.KeyID, der),
		KEKID:            m.sealer.KEKID(),
	}, nil
}

func (m *Manager) openPrivateKey(sk store.SigningKey) (jose.JSONWebKey, error) {
	der, err := m.sealer.Open(sk.KEKID, sk.IssuerName, sk.ID, sk.SealedPrivateKey)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("issuer %q: %w", sk.IssuerName, err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("issuer %q: parse private key %s: %w", sk.IssuerName, sk.ID, err)
	}
	return jose.JSONWebKey{Key: priv, KeyID: sk.ID, Algorithm: sk.Algorithm, Use: "sig"}, nil
}
