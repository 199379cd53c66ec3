package keys

import (
	"crypto"
	"fmt"

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
// highest-priority active one of the issuer's algorithm signs from now on
// (the key that signed before is retired), the others are published as
// retired keys until the retire period ends, so that tokens the old server
// signed keep verifying. Keys the issuer has keep their state, so a second
// import of the same file changes nothing and undoes no rotation since;
// normal rotation takes over from the imported key.
func (m *Manager) ImportKeys(iss store.Issuer, imported []ImportedKey) func([]store.SigningKey) ([]store.SigningKey, error) {
	return func(current []store.SigningKey) ([]store.SigningKey, error) {
		now := m.now()
		retireUntil := now.Add(m.ScheduleFor(iss).RetirePeriod)
		have := map[string]bool{}
		for _, k := range current {
			have[k.ID] = true
		}
		var signer *ImportedKey
		for i, k := range imported {
			if k.Active && k.Algorithm == iss.SigningAlgorithm && (signer == nil || k.Priority > signer.Priority) {
				signer = &imported[i]
			}
		}
		next := current
		if signer != nil && !have[signer.KID] {
			for i := range next {
				if next[i].State == store.KeyActive {
					next[i].State, next[i].RetiredAt, next[i].DeleteAt = store.KeyRetired, now, retireUntil
				}
			}
		}
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
			if signer != nil && k.KID == signer.KID {
				sk.State, sk.ActivatedAt = store.KeyActive, now
			} else {
				sk.RetiredAt, sk.DeleteAt = now, retireUntil
			}
			next = append(next, sk)
			have[k.KID] = true
		}
		return next, nil
	}
}
