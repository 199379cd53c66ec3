package keys

import (
	"time"

	"github.com/authz-dev/authz/store"
)

// Schedule is when an issuer's keys move through their states.
type Schedule struct {
	// RotationPeriod is how long a key signs before its successor takes
	// over.
	RotationPeriod time.Duration
	// PublishLead is how long a new key is published before it signs. It
	// must exceed how long any verifier caches the JWKS, which is why the
	// JWKS max-age is derived from it.
	PublishLead time.Duration
	// RetirePeriod is how long a key stays published after it stops
	// signing: at least the longest token lifetime, plus clock skew.
	RetirePeriod time.Duration
}

// Defaults of the key schedule, from the one setting operators think in:
// how long gateways may cache the JWKS.
const (
	DefaultRotationPeriod = 30 * 24 * time.Hour
	// maxTokenLifetime is the longest lifetime any token can have, so keys
	// retired this long ago (plus skew) have no live tokens.
	maxTokenLifetime = 24 * time.Hour
	clockSkew        = 5 * time.Minute
)

// DefaultSchedule derives the schedule from the JWKS max-age: a new key is
// published two cache lifetimes and a minute before it signs, and a retired
// key outlives the longest possible token.
func DefaultSchedule(jwksMaxAge time.Duration) Schedule {
	return Schedule{
		RotationPeriod: DefaultRotationPeriod,
		PublishLead:    2*jwksMaxAge + time.Minute,
		RetirePeriod:   maxTokenLifetime + clockSkew,
	}
}

// For returns an issuer's schedule: its own settings where it has them, the
// defaults elsewhere.
func (d Schedule) For(iss store.Issuer) Schedule {
	s := d
	if iss.KeyRotationPeriod > 0 {
		s.RotationPeriod = iss.KeyRotationPeriod
	}
	if iss.KeyPublishLead > 0 {
		s.PublishLead = iss.KeyPublishLead
	}
	if iss.KeyRetirePeriod > 0 {
		s.RetirePeriod = iss.KeyRetirePeriod
	}
	return s
}

// JWKSMaxAge is the Cache-Control max-age that keeps the publish-before-use
// promise: a verifier that fetched the JWKS just before a key was published
// refetches, twice over, before that key signs.
func (s Schedule) JWKSMaxAge() time.Duration {
	margin := min(time.Minute, s.PublishLead/4)
	return max(0, (s.PublishLead-margin)/2).Truncate(time.Second)
}

// plan is what an issuer's keys need now.
type plan struct {
	create      store.KeyState // pending or active; empty: create nothing
	createAlg   string
	activateAt  time.Time // of a created pending key
	promote     string    // pending kid to activate
	retire      string    // active kid to retire
	deleteAfter time.Time // of the retired key
	remove      []string  // kids whose time is up
}

func (p plan) empty() bool {
	return p.create == "" && p.promote == "" && p.retire == "" && len(p.remove) == 0
}

// keyRoles are an issuer's keys by the part they play in its schedule.
type keyRoles struct {
	active *store.SigningKey
	// pending is the newest pending key of the issuer's algorithm; stray
	// are pending keys of another, which will never sign.
	pending *store.SigningKey
	stray   []string
	// ending are retired and revoked keys with a deletion time.
	ending []*store.SigningKey
}

func rolesOf(alg string, keys []store.SigningKey) keyRoles {
	var r keyRoles
	for i := range keys {
		k := &keys[i]
		switch k.State {
		case store.KeyActive:
			r.active = k
		case store.KeyPending:
			if k.Algorithm != alg {
				r.stray = append(r.stray, k.ID)
			} else if r.pending == nil || k.CreatedAt.After(r.pending.CreatedAt) {
				r.pending = k
			}
		case store.KeyRetired, store.KeyRevoked:
			if !k.DeleteAt.IsZero() {
				r.ending = append(r.ending, k)
			}
		}
	}
	return r
}

// planRotation is the key state machine: given an issuer's keys and the time,
// it says which transitions are due. It is pure, so every transition and
// boundary can be tested with a made-up clock.
func planRotation(now time.Time, s Schedule, alg string, keys []store.SigningKey) plan {
	r := rolesOf(alg, keys)
	// A pending key of an algorithm the issuer no longer uses will never
	// sign: replace it.
	p := plan{remove: r.stray}
	for _, k := range r.ending {
		if !now.Before(k.DeleteAt) {
			p.remove = append(p.remove, k.ID)
		}
	}
	active, pending := r.active, r.pending
	switch {
	case active == nil && pending != nil:
		// Nothing signs: availability wins over the remaining lead.
		p.promote = pending.ID
	case active == nil:
		// A new issuer has never published a key, so no verifier holds a
		// set without it: its first key may sign at once.
		p.create, p.createAlg = store.KeyActive, alg
	case pending != nil:
		if !now.Before(pending.ActivateAt) {
			p.promote, p.retire, p.deleteAfter = pending.ID, active.ID, now.Add(s.RetirePeriod)
		}
	case active.Algorithm != alg || !now.Before(active.ActivatedAt.Add(s.RotationPeriod-s.PublishLead)):
		p.create, p.createAlg, p.activateAt = store.KeyPending, alg, now.Add(s.PublishLead)
	}
	return p
}

// dueAt is the earliest time at which planRotation has something to do for
// these keys, if nothing else writes them; the zero time means now. The
// rotator records it, so that a check reads only the issuers whose time
// has come.
func dueAt(s Schedule, alg string, keys []store.SigningKey) time.Time {
	r := rolesOf(alg, keys)
	var next time.Time
	switch {
	case r.active == nil || len(r.stray) > 0 || (r.pending == nil && r.active.Algorithm != alg):
		return time.Time{}
	case r.pending != nil:
		next = r.pending.ActivateAt
	default:
		next = r.active.ActivatedAt.Add(s.RotationPeriod - s.PublishLead)
	}
	for _, k := range r.ending {
		if k.DeleteAt.Before(next) {
			next = k.DeleteAt
		}
	}
	return next
}
