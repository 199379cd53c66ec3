package keys

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// KeyStore is the part of the store the key manager needs.
type KeyStore interface {
	GetIssuer(ctx context.Context, name string) (store.Issuer, error)
	ListIssuers(ctx context.Context, page store.Page) ([]store.Issuer, error)
	ListSigningKeys(ctx context.Context, issuerName string) ([]store.SigningKey, error)
	ListAllSigningKeys(ctx context.Context) (map[string][]store.SigningKey, error)
	UpdateSigningKeys(ctx context.Context, issuerName string, update func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error)
}

// Manager moves issuers' keys through their lifecycle and loads them into
// the keyring.
type Manager struct {
	store    KeyStore
	sealer   *Sealer
	ring     *Keyring
	defaults Schedule
	now      func() time.Time
}

// NewManager returns a Manager that stores keys in st, sealed by sealer,
// loads them into ring, and schedules them by defaults where an issuer has
// no schedule of its own. now may be nil for the wall clock.
func NewManager(st KeyStore, sealer *Sealer, ring *Keyring, defaults Schedule, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	return &Manager{store: st, sealer: sealer, ring: ring, defaults: defaults, now: now}
}

// ScheduleFor is an issuer's effective key schedule.
func (m *Manager) ScheduleFor(iss store.Issuer) Schedule { return m.defaults.For(iss) }

// errNothingDue aborts a key update that, on a second look inside the
// transaction, has nothing to do.
var errNothingDue = errors.New("nothing due")

// Reconcile makes every transition an issuer's keys are due for (first key,
// publication of a successor, promotion, deletion), loads the result, and
// reports whether anything changed. It writes only when something is due,
// so it is cheap to call on every tick.
func (m *Manager) Reconcile(ctx context.Context, issuerName string) (bool, error) {
	iss, err := m.store.GetIssuer(ctx, issuerName)
	if err != nil {
		return false, err
	}
	sched := m.ScheduleFor(iss)
	current, err := m.store.ListSigningKeys(ctx, issuerName)
	if err != nil {
		return false, err
	}
	if planRotation(m.now(), sched, iss.SigningAlgorithm, current).empty() {
		if _, loaded := m.ring.JWKS(issuerName); loaded {
			return false, nil
		}
		return false, m.load(iss, current)
	}
	keys, err := m.store.UpdateSigningKeys(ctx, issuerName, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		p := planRotation(m.now(), sched, iss.SigningAlgorithm, keys)
		if p.empty() {
			return nil, errNothingDue
		}
		return m.apply(issuerName, p, keys)
	})
	if errors.Is(err, errNothingDue) {
		return false, m.loadIssuer(ctx, iss)
	}
	if err != nil {
		return false, err
	}
	return true, m.load(iss, keys)
}

// apply turns a plan into the issuer's next key set.
func (m *Manager) apply(issuerName string, p plan, keys []store.SigningKey) ([]store.SigningKey, error) {
	now := m.now()
	next := slices.DeleteFunc(keys, func(k store.SigningKey) bool { return slices.Contains(p.remove, k.ID) })
	for i := range next {
		switch next[i].ID {
		case p.retire:
			next[i].State, next[i].RetiredAt, next[i].DeleteAt = store.KeyRetired, now, p.deleteAfter
		case p.promote:
			next[i].State, next[i].ActivatedAt = store.KeyActive, now
		}
	}
	if p.create != "" {
		k, err := m.NewSealedKey(issuerName, p.createAlg, p.create)
		if err != nil {
			return nil, err
		}
		if p.create == store.KeyActive {
			k.ActivatedAt = now
		} else {
			k.ActivateAt = p.activateAt
		}
		next = append(next, k)
	}
	return next, nil
}

// RotateNow starts a rotation: a new key is published at once and signs
// after the publication lead. With a successor already pending it does
// nothing.
func (m *Manager) RotateNow(ctx context.Context, issuerName string) error {
	iss, err := m.store.GetIssuer(ctx, issuerName)
	if err != nil {
		return err
	}
	sched := m.ScheduleFor(iss)
	keys, err := m.store.UpdateSigningKeys(ctx, issuerName, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		for _, k := range keys {
			if k.State == store.KeyPending && k.Algorithm == iss.SigningAlgorithm {
				return nil, errNothingDue
			}
		}
		p := planRotation(m.now(), sched, iss.SigningAlgorithm, keys)
		if p.create == "" && p.promote == "" {
			p.create, p.createAlg, p.activateAt = store.KeyPending, iss.SigningAlgorithm, m.now().Add(sched.PublishLead)
		}
		return m.apply(issuerName, p, keys)
	})
	if errors.Is(err, errNothingDue) {
		return m.loadIssuer(ctx, iss)
	}
	if err != nil {
		return err
	}
	return m.load(iss, keys)
}

// Revoke withdraws a compromised key at once: it leaves the JWKS, never
// signs again, and if it was signing, a successor signs immediately (the
// pending key if there is one, else a fresh key). Emergencies cannot wait
// for the publication lead.
func (m *Manager) Revoke(ctx context.Context, issuerName, kid string) error {
	iss, err := m.store.GetIssuer(ctx, issuerName)
	if err != nil {
		return err
	}
	sched := m.ScheduleFor(iss)
	keys, err := m.store.UpdateSigningKeys(ctx, issuerName, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		i := slices.IndexFunc(keys, func(k store.SigningKey) bool { return k.ID == kid })
		if i < 0 {
			return nil, fmt.Errorf("key %s of issuer %q: %w", kid, issuerName, store.ErrNotFound)
		}
		if keys[i].State == store.KeyRevoked {
			return nil, errNothingDue
		}
		now := m.now()
		wasActive := keys[i].State == store.KeyActive
		keys[i].State, keys[i].RetiredAt, keys[i].DeleteAt = store.KeyRevoked, now, now.Add(sched.RetirePeriod)
		if !wasActive {
			return keys, nil
		}
		// With the active key gone, the state machine promotes the pending
		// key or creates an active one.
		return m.apply(issuerName, planRotation(now, sched, iss.SigningAlgorithm, keys), keys)
	})
	if errors.Is(err, errNothingDue) {
		return m.loadIssuer(ctx, iss)
	}
	if err != nil {
		return err
	}
	return m.load(iss, keys)
}

// Rekey re-seals every stored private key under the primary KEK, one issuer
// per transaction. Keys already under it are left alone, so it is safe to
// run again after an interruption. It returns how many keys it re-sealed.
func (m *Manager) Rekey(ctx context.Context) (int, error) {
	issuers, err := m.store.ListIssuers(ctx, store.Page{})
	if err != nil {
		return 0, err
	}
	total := 0
	for _, iss := range issuers {
		n := 0
		_, err := m.store.UpdateSigningKeys(ctx, iss.Name, func(keys []store.SigningKey) ([]store.SigningKey, error) {
			n = 0
			for i, k := range keys {
				if k.KEKID == m.sealer.KEKID() {
					continue
				}
				plain, err := m.sealer.Open(k.KEKID, k.IssuerName, k.ID, k.SealedPrivateKey)
				if err != nil {
					return nil, err
				}
				keys[i].SealedPrivateKey, keys[i].KEKID = m.sealer.Seal(k.IssuerName, k.ID, plain), m.sealer.KEKID()
				n++
			}
			if n == 0 {
				return nil, errNothingDue
			}
			return keys, nil
		})
		if err != nil && !errors.Is(err, errNothingDue) {
			return total, fmt.Errorf("re-seal keys of issuer %q: %w", iss.Name, err)
		}
		total += n
	}
	return total, nil
}

// Sync brings an issuer's keyring entry in line with the store after a
// change: it reloads the keys of an issuer that exists and forgets those of
// one that is gone.
func (m *Manager) Sync(ctx context.Context, issuerName string) error {
	iss, err := m.store.GetIssuer(ctx, issuerName)
	if errors.Is(err, store.ErrNotFound) {
		m.ring.forget(issuerName)
		return nil
	}
	if err != nil {
		return err
	}
	return m.loadIssuer(ctx, iss)
}

// SyncAll reloads every issuer's keys and forgets issuers that are gone,
// for start-up and for when change notifications may have been missed. It
// reads the issuers and all their keys in two queries, whatever their
// number.
func (m *Manager) SyncAll(ctx context.Context) error {
	issuers, all, err := m.listAll(ctx)
	if err != nil {
		return err
	}
	live := make(map[string]bool, len(issuers))
	for _, iss := range issuers {
		live[iss.Name] = true
		if err := m.load(iss, all[iss.Name]); err != nil {
			return fmt.Errorf("load keys of issuer %q: %w", iss.Name, err)
		}
	}
	m.ring.retain(live)
	return nil
}

// listAll reads every issuer and every issuer's keys. An issuer created
// between the two reads shows no keys; its change notification loads them.
func (m *Manager) listAll(ctx context.Context) ([]store.Issuer, map[string][]store.SigningKey, error) {
	issuers, err := m.store.ListIssuers(ctx, store.Page{})
	if err != nil {
		return nil, nil, err
	}
	all, err := m.store.ListAllSigningKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	return issuers, all, nil
}

// due says whether Reconcile has anything to do for an issuer whose stored
// keys are these: a transition, or a first load into the keyring.
func (m *Manager) due(iss store.Issuer, keys []store.SigningKey) bool {
	if _, loaded := m.ring.JWKS(iss.Name); !loaded {
		return true
	}
	return !planRotation(m.now(), m.ScheduleFor(iss), iss.SigningAlgorithm, keys).empty()
}

// loadIssuer reads an issuer's keys from the store, opens them, and
// replaces the issuer's entry in the keyring.
func (m *Manager) loadIssuer(ctx context.Context, iss store.Issuer) error {
	stored, err := m.store.ListSigningKeys(ctx, iss.Name)
	if err != nil {
		return err
	}
	return m.load(iss, stored)
}

// load builds the keyring entry: the active key signs; pending, active and
// retired keys are published. While an RSA key signs, only RSA keys are
// published, because the gateway plugin in the field converts every key in
// the set as RSA and one other key breaks verification for all tokens.
func (m *Manager) load(iss store.Issuer, stored []store.SigningKey) error {
	maxAge := m.ScheduleFor(iss).JWKSMaxAge()
	// Key polls reload every issuer: opening each private key again and
	// rebuilding each key set when nothing changed cost most of a core at
	// 100,000 issuers (BENCHMARKS.md, tenant scale).
	source := keySetDigest(stored, maxAge)
	if loaded, ok := m.ring.source(iss.Name); ok && loaded == source {
		return nil
	}
	next := issuerKeys{source: source}
	activeIsRSA := false
	for _, sk := range stored {
		if sk.State != store.KeyActive {
			continue
		}
		priv, err := m.openPrivateKey(sk)
		if err != nil {
			return err
		}
		if next.active, err = newActiveKey(priv); err != nil {
			return err
		}
		_, activeIsRSA = priv.Key.(*rsa.PrivateKey)
	}
	published := make([]jose.JSONWebKey, 0, len(stored))
	for _, sk := range stored {
		if sk.State == store.KeyRevoked {
			continue
		}
		var pub jose.JSONWebKey
		if err := pub.UnmarshalJSON(sk.PublicJWK); err != nil {
			return fmt.Errorf("parse public key %s of issuer %q: %w", sk.ID, iss.Name, err)
		}
		if _, isRSA := pub.Key.(*rsa.PublicKey); activeIsRSA && !isRSA {
			continue
		}
		published = append(published, pub)
	}
	var err error
	if next.jwks, err = newJWKS(published, maxAge); err != nil {
		return err
	}
	m.ring.set(iss.Name, next)
	return nil
}

// keySetDigest is the digest of everything load reads: every stored field
// of every key, and the JWKS lifetime.
func keySetDigest(stored []store.SigningKey, maxAge time.Duration) [sha256.Size]byte {
	h := sha256.New()
	field := func(b []byte) {
		_ = binary.Write(h, binary.BigEndian, uint32(len(b)))
		h.Write(b)
	}
	instant := func(t time.Time) { _ = binary.Write(h, binary.BigEndian, t.UnixNano()) }
	_ = binary.Write(h, binary.BigEndian, int64(maxAge))
	for _, k := range stored {
		field([]byte(k.ID))
		field([]byte(k.IssuerName))
		field([]byte(k.Algorithm))
		field([]byte(k.State))
		field(k.PublicJWK)
		field(k.SealedPrivateKey)
		field([]byte(k.KEKID))
		for _, t := range []time.Time{k.CreatedAt, k.ActivateAt, k.ActivatedAt, k.RetiredAt, k.DeleteAt} {
			instant(t)
		}
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// NewSealedKey generates a key for issuerName and returns its stored form,
// sealed under the KEK, in state; it stores nothing (authz-bench seed stores
// many at once).
func (m *Manager) NewSealedKey(issuerName, alg string, state store.KeyState) (store.SigningKey, error) {
	priv, err := Generate(alg)
	if err != nil {
		return store.SigningKey{}, err
	}
	kid, err := credential.ThumbprintKID(priv)
	if err != nil {
		return store.SigningKey{}, err
	}
	return m.sealKey(issuerName, kid, alg, priv, state)
}

// sealKey makes the stored form of a private key: its public JWK under
// kid, and the private half sealed under the KEK.
func (m *Manager) sealKey(issuerName, kid, alg string, priv crypto.Signer, state store.KeyState) (store.SigningKey, error) {
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: alg, Use: "sig"}
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode private key: %w", err)
	}
	return store.SigningKey{
		ID:               kid,
		IssuerName:       issuerName,
		Algorithm:        alg,
		State:            state,
		PublicJWK:        pubJSON,
		SealedPrivateKey: m.sealer.Seal(issuerName, kid, der),
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
