package keys

import (
	"crypto"
	"fmt"
	"slices"

	"github.com/authz-dev/authz/store"
)

// ImportedKey is a signing key carried over from another server (a
// Keycloak realm), under the kid that server published.
type ImportedKey struct {
	KID       string
	Algorithm string
	Private   crypto.Signer
	// Active keys may sign there; the highest Priority among them does.
	Active   bool
	Priority int64
}

// ImportKeys is the key step of an import, for store.IssuerImport.Keys.
// Imported keys the issuer lacks are sealed and added: the
// highest-priority active one of the issuer's algorithm signs, the others
// are published as retired keys until the retire period ends, so that
// tokens the old server signed keep verifying. On a new issuer the signer
// signs at once: the old server has published it all along. On an issuer
// that already signs here, it is published now and signs after the
// publication lead, as a rotation's successor does. Keys the issuer has
// keep their state, so a second import of the same file changes nothing
// and undoes no rotation since; a key revoked here is refused. Normal
// rotation takes over from the imported key.
func (m *Manager) ImportKeys(iss store.Issuer, imported []ImportedKey) func([]store.SigningKey) ([]store.SigningKey, error) {
	return func(current []store.SigningKey) ([]store.SigningKey, error) {
		now := m.now()
		retireUntil := now.Add(m.ScheduleFor(iss).RetirePeriod)
		have := map[string]bool{}
		signing := false
		for _, k := range current {
			have[k.ID] = true
			signing = signing || k.State == store.KeyActive
			if k.State == store.KeyRevoked && slices.ContainsFunc(imported, func(i ImportedKey) bool { return i.KID == k.ID }) {
				return nil, fmt.Errorf("key %s was revoked here: take it out of the realm before importing", k.ID)
			}
		}
		var signer *ImportedKey
		for i, k := range imported {
			if k.Active && k.Algorithm == iss.SigningAlgorithm && (signer == nil || k.Priority > signer.Priority) {
				signer = &imported[i]
			}
		}
		next := current
		for _, k := range imported {
			if have[k.KID] {
				continue
			}
			if !SupportedAlgorithm(k.Algorithm) {
				return nil, fmt.Errorf("key %s: algorithm %q is not one this server signs with", k.KID, k.Algorithm)
			}
			sk, err := m.sealKey(iss.Name, k.KID, k.Algorithm, k.Private, store.KeyRetired)
			if err != nil {
				return nil, fmt.Errorf("key %s: %w", k.KID, err)
			}
			switch {
			case signer != nil && k.KID == signer.KID && !signing:
				sk.State, sk.ActivatedAt = store.KeyActive, now
			case signer != nil && k.KID == signer.KID:
				next = withoutPending(next, iss.SigningAlgorithm)
				sk.State, sk.ActivateAt = store.KeyPending, now.Add(m.ScheduleFor(iss).PublishLead)
			default:
				sk.RetiredAt, sk.DeleteAt = now, retireUntil
			}
			next = append(next, sk)
			have[k.KID] = true
		}
		return next, nil
	}
}

// withoutPending drops the pending successors of alg: an imported signer
// takes their place.
func withoutPending(keys []store.SigningKey, alg string) []store.SigningKey {
	return slices.DeleteFunc(keys, func(k store.SigningKey) bool { return k.State == store.KeyPending && k.Algorithm == alg })
}
