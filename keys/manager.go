package keys

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
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
	GetIssuerKeys(ctx context.Context, name, clientID string) (store.IssuerKeys, error)
	UpdateSigningKeys(ctx context.Context, issuerName string, update func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error)
	ListKeysDue(ctx context.Context, now time.Time, after store.DueCursor, limit int) ([]store.IssuerKeys, error)
	SetKeysDue(ctx context.Context, due []store.KeysDue) error
	MarkAllKeysDue(ctx context.Context) error
	KeyChangeMark(ctx context.Context) (uint64, error)
	KeysChangedSince(ctx context.Context, mark uint64) (map[string]uint64, uint64, error)
	OneKeyPerKEK(ctx context.Context) ([]store.SigningKey, error)
}

// Manager moves issuers' keys through their lifecycle and serves them,
// from the keyring, to the token endpoint and the JWKS.
type Manager struct {
	store    KeyStore
	sealer   *Sealer
	ring     *Keyring
	defaults Schedule
	now      func() time.Time
	// loader is m.load, made once: a method value allocates each time.
	loader func(context.Context, string) (*issuerKeys, error)

	// changeMark is where the next poll of written keys begins; 0 until
	// the first poll. heard are the versions the last poll found, so that
	// rows it lists again (a long transaction anywhere holds the mark
	// back) are not dropped again.
	markMu     sync.Mutex
	changeMark uint64
	heard      map[string]uint64
}

// NewManager returns a Manager that stores keys in st, sealed by sealer,
// holds them in ring, and schedules them by defaults where an issuer has
// no schedule of its own. now may be nil for the wall clock.
func NewManager(st KeyStore, sealer *Sealer, ring *Keyring, defaults Schedule, now func() time.Time) *Manager {
	if now == nil {
		now = time.Now
	}
	m := &Manager{store: st, sealer: sealer, ring: ring, defaults: defaults, now: now}
	m.loader = m.load
	return m
}

// ErrNoActiveKey is returned for an issuer that has no key to sign with.
var ErrNoActiveKey = errors.New("issuer has no active signing key")

// Active returns the key issuerName signs with, loading the issuer's keys
// if this node does not hold them.
func (m *Manager) Active(ctx context.Context, issuerName string) (*ActiveKey, error) {
	k, err := m.ring.get(ctx, issuerName, m.loader)
	if err != nil {
		return nil, err
	}
	if k.active == nil {
		return nil, fmt.Errorf("issuer %q: %w", issuerName, ErrNoActiveKey)
	}
	return k.active()
}

// JWKS returns the key set issuerName publishes, loading the issuer's keys
// if this node does not hold them.
func (m *Manager) JWKS(ctx context.Context, issuerName string) (*JWKS, error) {
	k, err := m.ring.get(ctx, issuerName, m.loader)
	if err != nil {
		return nil, err
	}
	return k.jwks, nil
}

// load builds an issuer's keyring entry from the store. The entry is built
// from the stored states alone, so a node that loads an issuer late
// publishes what every other node does: a pending key before it signs, a
// retired one until its tokens have expired.
func (m *Manager) load(ctx context.Context, issuerName string) (*issuerKeys, error) {
	ik, err := m.store.GetIssuerKeys(ctx, issuerName, "")
	if err != nil {
		return nil, err
	}
	return m.build(ik.Issuer, ik.Keys)
}

// LoadIssuer reads an issuer from the store. When this node holds none of
// its keys, it reads them in the same round trip and keeps them, and with
// them the client clientID names, if not empty: a cold issuer's first
// token then waits for the store once, not once for the issuer with its
// keys and once for its client. clientRead says whether it read that
// client; client is nil when the issuer has none of that id.
func (m *Manager) LoadIssuer(ctx context.Context, issuerName, clientID string) (iss store.Issuer, client *store.Client, clientRead bool, err error) {
	if m.ring.holds(issuerName) {
		iss, err := m.store.GetIssuer(ctx, issuerName)
		return iss, nil, false, err
	}
	epoch := m.ring.epoch()
	ik, err := m.store.GetIssuerKeys(ctx, issuerName, clientID)
	if err != nil {
		return store.Issuer{}, nil, false, err
	}
	// Keys that do not build are not kept: their use reports why, as a
	// load fails the same way.
	if k, err := m.build(ik.Issuer, ik.Keys); err == nil {
		m.ring.offer(issuerName, epoch, k)
	}
	return ik.Issuer, ik.Client, clientID != "", nil
}

// Promote marks an issuer's keys as in steady use, after a use a stranger
// cannot make (a token issued, a token verified): only such uses protect
// them from being pushed out by lookups of other issuers' JWKS.
func (m *Manager) Promote(issuerName string) { m.ring.promote(issuerName) }

// CacheStats reports the keyring's lookups and size.
func (m *Manager) CacheStats() CacheStats { return m.ring.Stats() }

// Invalidate drops what this node holds of an issuer's keys, when any node
// wrote them; the next use loads them again.
func (m *Manager) Invalidate(issuerName string) { m.ring.forget(issuerName) }

// InvalidateChanged drops the keys of every issuer written since the last
// call, as a safety net for a change notification lost in a way the feed
// could not notice. It reads only what was written, whatever the number of
// issuers. The first call only marks where the next begins: call it once
// before serving.
func (m *Manager) InvalidateChanged(ctx context.Context) error {
	m.markMu.Lock()
	defer m.markMu.Unlock()
	if m.changeMark == 0 {
		mark, err := m.store.KeyChangeMark(ctx)
		if err != nil {
			return err
		}
		m.changeMark = mark
		return nil
	}
	versions, next, err := m.store.KeysChangedSince(ctx, m.changeMark)
	if err != nil {
		return err
	}
	for name, v := range versions {
		if m.heard[name] != v {
			m.ring.forget(name)
		}
	}
	m.changeMark, m.heard = next, versions
	return nil
}

// CheckKEKs opens one stored key under each KEK the store's keys are sealed
// with: a missing KEK is a start-up error, not a failure at some issuer's
// first token request.
func (m *Manager) CheckKEKs(ctx context.Context) error {
	sample, err := m.store.OneKeyPerKEK(ctx)
	if err != nil {
		return err
	}
	for _, sk := range sample {
		if _, err := m.openPrivateKey(sk); err != nil {
			return err
		}
	}
	return nil
}

// ScheduleFor is an issuer's effective key schedule.
func (m *Manager) ScheduleFor(iss store.Issuer) Schedule { return m.defaults.For(iss) }

// errNothingDue aborts a key update that, on a second look inside the
// transaction, has nothing to do.
var errNothingDue = errors.New("nothing due")

// Reconcile makes every transition an issuer's keys are due for (first key,
// publication of a successor, promotion, deletion) and reports whether
// anything changed. It writes only when something is due, so it is cheap
// to call on every tick.
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
		return false, nil
	}
	return m.update(ctx, issuerName, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		p := planRotation(m.now(), sched, iss.SigningAlgorithm, keys)
		if p.empty() {
			return nil, errNothingDue
		}
		return m.apply(issuerName, p, keys)
	})
}

// update writes an issuer's keys and drops what this node holds of them
// (other nodes hear of it through the store's change feed). It reports
// false when update found nothing due.
func (m *Manager) update(ctx context.Context, issuerName string, update func([]store.SigningKey) ([]store.SigningKey, error)) (bool, error) {
	_, err := m.store.UpdateSigningKeys(ctx, issuerName, update)
	if errors.Is(err, errNothingDue) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m.ring.forget(issuerName)
	return true, nil
}

// nextDue plans an issuer's keys as the rotator read them: when they next
// need a transition, or false if one is due now.
func (m *Manager) nextDue(ik store.IssuerKeys) (time.Time, bool) {
	sched := m.ScheduleFor(ik.Issuer)
	now := m.now()
	if !planRotation(now, sched, ik.Issuer.SigningAlgorithm, ik.Keys).empty() {
		return time.Time{}, false
	}
	return dueAt(sched, ik.Issuer.SigningAlgorithm, ik.Keys), true
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
	_, err = m.update(ctx, issuerName, func(keys []store.SigningKey) ([]store.SigningKey, error) {
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
	return err
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
	_, err = m.update(ctx, issuerName, func(keys []store.SigningKey) ([]store.SigningKey, error) {
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
	return err
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

// build makes the keyring entry: the active key signs; pending, active and
// retired keys are published. While an RSA key signs, only RSA keys are
// published, because the gateway plugin in the field converts every key in
// the set as RSA and one other key breaks verification for all tokens.
func (m *Manager) build(iss store.Issuer, stored []store.SigningKey) (*issuerKeys, error) {
	next := &issuerKeys{}
	activeIsRSA := false
	for _, sk := range stored {
		if sk.State != store.KeyActive {
			continue
		}
		// The private key is opened at the first token, not here: a JWKS
		// request, which anyone may send for any issuer, never pays for it.
		next.active = sync.OnceValues(func() (*ActiveKey, error) {
			priv, err := m.openPrivateKey(sk)
			if err != nil {
				return nil, err
			}
			return newActiveKey(priv)
		})
		activeIsRSA = sk.Algorithm == RS256 || sk.Algorithm == PS256
	}
	published := make([]jose.JSONWebKey, 0, len(stored))
	for _, sk := range stored {
		if sk.State == store.KeyRevoked {
			continue
		}
		var pub jose.JSONWebKey
		if err := pub.UnmarshalJSON(sk.PublicJWK); err != nil {
			return nil, fmt.Errorf("parse public key %s of issuer %q: %w", sk.ID, iss.Name, err)
		}
		if _, isRSA := pub.Key.(*rsa.PublicKey); activeIsRSA && !isRSA {
			continue
		}
		published = append(published, pub)
	}
	var err error
	if next.jwks, err = newJWKS(published, m.ScheduleFor(iss).JWKSMaxAge()); err != nil {
		return nil, err
	}
	return next, nil
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

// NewFirstKeys generates, on every core, an active key for each issuer
// named, activated at, in stored form; it stores nothing (bulk loads of
// issuers store them).
func (m *Manager) NewFirstKeys(issuerNames []string, alg string, at time.Time) ([]store.SigningKey, error) {
	sealed := make([]store.SigningKey, len(issuerNames))
	var next atomic.Int64
	errs := make([]error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(issuerNames) && errs[w] == nil; i = int(next.Add(1)) - 1 {
				sealed[i], errs[w] = m.NewSealedKey(issuerNames[i], alg, store.KeyActive)
				sealed[i].ActivatedAt = at
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sealed, nil
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
