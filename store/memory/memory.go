// Package memory is an in-process implementation of store.Store for
// development and tests. Nothing it holds survives the process.
package memory

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/authz-dev/authz/store"
)

// Store keeps records in maps behind one lock. Every record is copied on the
// way in and out, so callers can never alias the stored state.
type Store struct {
	mu      sync.RWMutex
	now     func() time.Time
	issuers map[string]store.Issuer
	clients map[clientKey]store.Client
	keys    map[string]store.SigningKey
}

type clientKey struct{ issuer, id string }

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		// PostgreSQL keeps microseconds; so does this store, so that both
		// backends hand back equal records.
		now:     func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		issuers: map[string]store.Issuer{},
		clients: map[clientKey]store.Client{},
		keys:    map[string]store.SigningKey{},
	}
}

// Ping always succeeds: the store is this process.
func (s *Store) Ping(context.Context) error { return nil }

// PutIssuer creates or replaces an issuer.
func (s *Store) PutIssuer(_ context.Context, iss store.Issuer) (store.Issuer, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	old, exists := s.issuers[iss.Name]
	iss = copyIssuer(iss)
	iss.UpdatedAt = now
	if exists {
		iss.CreatedAt = old.CreatedAt
		iss.Revision = old.Revision + 1
	} else {
		iss.CreatedAt = now
		iss.Revision = 1
	}
	s.issuers[iss.Name] = iss
	return copyIssuer(iss), !exists, nil
}

// GetIssuer returns one issuer.
func (s *Store) GetIssuer(_ context.Context, name string) (store.Issuer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	iss, ok := s.issuers[name]
	if !ok {
		return store.Issuer{}, fmt.Errorf("get issuer %q: %w", name, store.ErrNotFound)
	}
	return copyIssuer(iss), nil
}

// ListIssuers returns every issuer ordered by name.
func (s *Store) ListIssuers(context.Context) ([]store.Issuer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := slices.Sorted(maps.Keys(s.issuers))
	out := make([]store.Issuer, 0, len(names))
	for _, n := range names {
		out = append(out, copyIssuer(s.issuers[n]))
	}
	return out, nil
}

// CreateClient stores a client with its secrets.
func (s *Store) CreateClient(_ context.Context, c store.Client) (store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.issuers[c.IssuerName]; !ok {
		return store.Client{}, fmt.Errorf("create client of issuer %q: %w", c.IssuerName, store.ErrNotFound)
	}
	key := clientKey{c.IssuerName, c.ID}
	if _, ok := s.clients[key]; ok {
		return store.Client{}, fmt.Errorf("create client %q: %w", c.ID, store.ErrConflict)
	}
	seen := map[string]bool{}
	for _, sec := range c.Secrets {
		if seen[sec.ID] {
			return store.Client{}, fmt.Errorf("create client %q: secret %q: %w", c.ID, sec.ID, store.ErrConflict)
		}
		seen[sec.ID] = true
	}
	now := s.now()
	c = copyClient(c)
	c.CreatedAt, c.UpdatedAt = now, now
	for i := range c.Secrets {
		c.Secrets[i].CreatedAt = now
	}
	s.clients[key] = c
	return copyClient(c), nil
}

// GetClient returns a client with all of its secrets.
func (s *Store) GetClient(_ context.Context, issuerName, clientID string) (store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[clientKey{issuerName, clientID}]
	if !ok {
		return store.Client{}, fmt.Errorf("get client %q of issuer %q: %w", clientID, issuerName, store.ErrNotFound)
	}
	return copyClient(c), nil
}

// CreateSigningKey stores a sealed signing key.
func (s *Store) CreateSigningKey(_ context.Context, k store.SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.issuers[k.IssuerName]; !ok {
		return fmt.Errorf("create signing key of issuer %q: %w", k.IssuerName, store.ErrNotFound)
	}
	if _, ok := s.keys[k.ID]; ok {
		return fmt.Errorf("create signing key %q: %w", k.ID, store.ErrConflict)
	}
	if k.State == store.KeyActive {
		for _, other := range s.keys {
			if other.IssuerName == k.IssuerName && other.State == store.KeyActive {
				return fmt.Errorf("create signing key %q: issuer %q already has an active key: %w", k.ID, k.IssuerName, store.ErrConflict)
			}
		}
	}
	k = copyKey(k)
	k.CreatedAt = s.now()
	s.keys[k.ID] = k
	return nil
}

// ListSigningKeys returns an issuer's keys, oldest first.
func (s *Store) ListSigningKeys(_ context.Context, issuerName string) ([]store.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.SigningKey
	for _, k := range s.keys {
		if k.IssuerName == issuerName {
			out = append(out, copyKey(k))
		}
	}
	slices.SortFunc(out, func(a, b store.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func copyIssuer(iss store.Issuer) store.Issuer {
	iss.AvailableScopes = cloneStrings(iss.AvailableScopes)
	iss.ClientAuthenticators = cloneStrings(iss.ClientAuthenticators)
	return iss
}

func copyClient(c store.Client) store.Client {
	c.Scopes = cloneStrings(c.Scopes)
	secrets := make([]store.Secret, len(c.Secrets))
	for i, sec := range c.Secrets {
		sec.Digest = slices.Clone(sec.Digest)
		secrets[i] = sec
	}
	c.Secrets = secrets
	if len(c.Secrets) == 0 {
		c.Secrets = nil
	}
	return c
}

func copyKey(k store.SigningKey) store.SigningKey {
	k.PublicJWK = slices.Clone(k.PublicJWK)
	k.SealedPrivateKey = slices.Clone(k.SealedPrivateKey)
	return k
}

// cloneStrings copies a slice and turns nil into empty, as PostgreSQL's
// not-null array columns do.
func cloneStrings(s []string) []string {
	return append([]string{}, s...)
}
