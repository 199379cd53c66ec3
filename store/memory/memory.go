// Package memory is an in-process implementation of store.Store for
// development and tests. Nothing it holds survives the process.
package memory

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/authz-dev/authz/store"
)

// Store keeps records in maps behind one lock. Every record is copied on the
// way in and out, so callers can never alias the stored state.
type Store struct {
	mu       sync.RWMutex
	now      func() time.Time
	issuers  map[string]store.Issuer
	clients  map[clientKey]store.Client
	keys     map[string]store.SigningKey
	audit    []store.AuditEntry
	watchers map[int]chan store.Change
	nextID   int
	locks    map[string]bool
	jtis     map[jtiKey]time.Time
	roles    map[string]store.Role // by ID
	initial  map[clientKey]store.InitialAccessToken
	// held, while an import runs, collects its changes, which are told
	// only if it commits.
	held *[]store.Change
	// keyVersions and keysDue track issuers' keys for the rotator and the
	// key poll: the version is taken from keyVersion at each write.
	keyVersion  uint64
	keyVersions map[string]uint64
	keysDue     map[string]time.Time
}

type jtiKey struct{ issuer, client, jti string }

type clientKey struct{ issuer, id string }

var _ store.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		// PostgreSQL keeps microseconds; so does this store, so that both
		// backends hand back equal records.
		now:      func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		issuers:  map[string]store.Issuer{},
		clients:  map[clientKey]store.Client{},
		keys:     map[string]store.SigningKey{},
		watchers: map[int]chan store.Change{},
		locks:    map[string]bool{},
		jtis:     map[jtiKey]time.Time{},
		roles:    map[string]store.Role{},
		initial:  map[clientKey]store.InitialAccessToken{},

		keyVersions: map[string]uint64{},
		keysDue:     map[string]time.Time{},
	}
}

// Ping always succeeds: the store is this process.
func (s *Store) Ping(context.Context) error { return nil }

// notify queues a change for every watcher; the caller holds the lock. A
// watcher that has fallen far behind is told to drop everything instead.
func (s *Store) notify(c store.Change) {
	if s.held != nil {
		*s.held = append(*s.held, c)
		return
	}
	if c.Kind == store.ChangeIssuer || c.Kind == store.ChangeKey {
		s.keysWritten(c.Issuer)
	}
	for _, ch := range s.watchers {
		select {
		case ch <- c:
		default:
			select {
			case <-ch:
			default:
			}
			select {
			case ch <- store.Change{Kind: store.ChangeAll}:
			default:
			}
		}
	}
}

// Watch delivers changes until ctx ends.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) error {
	ch := make(chan store.Change, 1024)
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.watchers[id] = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, id)
		s.mu.Unlock()
	}()
	fn(store.Change{Kind: store.ChangeAll})
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-ch:
			fn(c)
		}
	}
}

// PutIssuer creates or replaces an issuer.
func (s *Store) PutIssuer(_ context.Context, iss store.Issuer, ifRevision int64) (store.Issuer, store.PutResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stored, result, _, err := s.putIssuer(iss, ifRevision)
	return stored, result, err
}

// putIssuer creates or replaces an issuer and names the settings it
// changed; the caller holds the lock.
func (s *Store) putIssuer(iss store.Issuer, ifRevision int64) (store.Issuer, store.PutResult, []string, error) {
	now := s.now()
	iss = copyIssuer(iss)
	old, exists := s.issuers[iss.Name]
	if !exists {
		if ifRevision != 0 {
			return store.Issuer{}, 0, nil, fmt.Errorf("put issuer %q: it does not exist: %w", iss.Name, store.ErrPrecondition)
		}
		iss.CreatedAt, iss.UpdatedAt, iss.Revision = now, now, 1
		s.issuers[iss.Name] = iss
		s.notify(store.Change{Kind: store.ChangeIssuer, Issuer: iss.Name})
		return copyIssuer(iss), store.Created, nil, nil
	}
	if err := old.CheckRevision(ifRevision); err != nil {
		return store.Issuer{}, 0, nil, fmt.Errorf("put issuer: %w", err)
	}
	changed := old.ChangedSettings(iss)
	if len(changed) == 0 {
		return copyIssuer(old), store.Unchanged, nil, nil
	}
	iss.CreatedAt, iss.UpdatedAt, iss.Revision = old.CreatedAt, now, old.Revision+1
	s.issuers[iss.Name] = iss
	s.notify(store.Change{Kind: store.ChangeIssuer, Issuer: iss.Name})
	return copyIssuer(iss), store.Updated, changed, nil
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

// page cuts an ordered listing after a key and to a limit.
func page[T any](sorted []T, key func(T) string, p store.Page) []T {
	start, _ := slices.BinarySearchFunc(sorted, p.After, func(v T, after string) int {
		if key(v) <= after {
			return -1
		}
		return 1
	})
	sorted = sorted[start:]
	if p.Limit > 0 && len(sorted) > p.Limit {
		sorted = sorted[:p.Limit]
	}
	return sorted
}

// ListIssuers returns issuers ordered by name.
func (s *Store) ListIssuers(_ context.Context, p store.Page) ([]store.Issuer, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.Issuer
	for _, n := range slices.Sorted(maps.Keys(s.issuers)) {
		out = append(out, copyIssuer(s.issuers[n]))
	}
	return page(out, func(i store.Issuer) string { return i.Name }, p), nil
}

// DeleteIssuer deletes an issuer and its keys, and with cascade its clients.
func (s *Store) DeleteIssuer(_ context.Context, name string, cascade bool, ifRevision int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	iss, ok := s.issuers[name]
	if !ok {
		return fmt.Errorf("delete issuer %q: %w", name, store.ErrNotFound)
	}
	if err := iss.CheckRevision(ifRevision); err != nil {
		return fmt.Errorf("delete issuer: %w", err)
	}
	var clients []clientKey
	for k := range s.clients {
		if k.issuer == name {
			clients = append(clients, k)
		}
	}
	if len(clients) > 0 && !cascade {
		return fmt.Errorf("delete issuer %q: it still has %d clients: %w", name, len(clients), store.ErrConflict)
	}
	for _, k := range clients {
		delete(s.clients, k)
		s.notify(store.Change{Kind: store.ChangeClient, Issuer: name, ClientID: k.id})
	}
	for kid, k := range s.keys {
		if k.IssuerName == name {
			delete(s.keys, kid)
		}
	}
	for id, r := range s.roles {
		if r.IssuerName == name {
			delete(s.roles, id)
		}
	}
	for k := range s.initial {
		if k.issuer == name {
			delete(s.initial, k)
		}
	}
	delete(s.issuers, name)
	s.notify(store.Change{Kind: store.ChangeKey, Issuer: name})
	s.notify(store.Change{Kind: store.ChangeIssuer, Issuer: name})
	return nil
}

// CreateClient stores a client with its secrets.
func (s *Store) CreateClient(ctx context.Context, c store.Client) (store.Client, error) {
	return s.RegisterClient(ctx, c, nil, time.Time{})
}

// RegisterClient creates a client, spending a use of an initial access
// token when given one.
func (s *Store) RegisterClient(_ context.Context, c store.Client, initialAccessDigest []byte, now time.Time) (store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var spend func()
	c.RegisteredWith = ""
	if initialAccessDigest != nil {
		key, t, ok := s.initialByDigest(c.IssuerName, initialAccessDigest)
		switch {
		case !ok:
			return store.Client{}, fmt.Errorf("register client of issuer %q: no such initial access token: %w", c.IssuerName, store.ErrNotFound)
		case !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt):
			return store.Client{}, fmt.Errorf("register client: the initial access token expired: %w", store.ErrPrecondition)
		case t.RemainingCount <= 0:
			return store.Client{}, fmt.Errorf("register client: the initial access token is used up: %w", store.ErrPrecondition)
		}
		spend = func() {
			t.RemainingCount--
			s.initial[key] = t
		}
		c.RegisteredWith = t.ID
	}
	stored, err := s.createClient(c)
	if err == nil && spend != nil {
		spend()
	}
	return stored, err
}

func (s *Store) initialByDigest(issuerName string, digest []byte) (clientKey, store.InitialAccessToken, bool) {
	for k, t := range s.initial {
		if k.issuer == issuerName && slices.Equal(t.Digest, digest) {
			return k, t, true
		}
	}
	return clientKey{}, store.InitialAccessToken{}, false
}

// createClient stores a client; the caller holds the lock.
func (s *Store) createClient(c store.Client) (store.Client, error) {
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
	if c.InternalID == "" {
		c.InternalID = newUUID()
	}
	if c.ServiceAccountID == "" {
		c.ServiceAccountID = newUUID()
	}
	for _, other := range s.clients {
		if other.IssuerName == c.IssuerName && (other.InternalID == c.InternalID || other.ServiceAccountID == c.ServiceAccountID) {
			return store.Client{}, fmt.Errorf("create client %q: its internal or service-account id is taken: %w", c.ID, store.ErrConflict)
		}
	}
	if err := s.checkRoles(c.IssuerName, c.RoleMappings, c.ScopeMappings); err != nil {
		return store.Client{}, fmt.Errorf("create client %q: %w", c.ID, err)
	}
	now := s.now()
	c = copyClient(c)
	c.RoleMappings, c.ScopeMappings = uniqueRefs(c.RoleMappings), uniqueRefs(c.ScopeMappings)
	c.CreatedAt, c.UpdatedAt = now, now
	for i := range c.Secrets {
		c.Secrets[i].CreatedAt = now
	}
	s.clients[key] = c
	s.notify(store.Change{Kind: store.ChangeClient, Issuer: c.IssuerName, ClientID: c.ID})
	return s.resolved(c), nil
}

// checkRoles refuses mappings to roles the issuer does not have; the
// caller holds the lock.
func (s *Store) checkRoles(issuerName string, mappings ...[]store.RoleRef) error {
	for _, refs := range mappings {
		for _, ref := range refs {
			if r, ok := s.roles[ref.ID]; !ok || r.IssuerName != issuerName {
				return fmt.Errorf("role %q: %w", ref.ID, store.ErrNotFound)
			}
		}
	}
	return nil
}

// resolved copies a client for a caller, its role references filled in
// from the roles they name; the caller holds the lock.
func (s *Store) resolved(c store.Client) store.Client {
	c = copyClient(c)
	resolve := func(refs []store.RoleRef) []store.RoleRef {
		var out []store.RoleRef
		for _, ref := range refs {
			if r, ok := s.roles[ref.ID]; ok {
				out = append(out, store.RoleRef{ID: r.ID, ClientID: r.ClientID, Name: r.Name})
			}
		}
		slices.SortFunc(out, store.CompareRoleRefs)
		return out
	}
	c.RoleMappings, c.ScopeMappings = resolve(c.RoleMappings), resolve(c.ScopeMappings)
	return c
}

// GetClientByInternalID finds a client by its Keycloak-style id.
func (s *Store) GetClientByInternalID(_ context.Context, issuerName, internalID string) (store.Client, error) {
	return s.findClient(issuerName, "internal id "+internalID, func(c store.Client) bool { return c.InternalID == internalID })
}

// GetClientByServiceAccount finds a client by its service account's id.
func (s *Store) GetClientByServiceAccount(_ context.Context, issuerName, serviceAccountID string) (store.Client, error) {
	return s.findClient(issuerName, "service account "+serviceAccountID, func(c store.Client) bool { return c.ServiceAccountID == serviceAccountID })
}

func (s *Store) findClient(issuerName, what string, match func(store.Client) bool) (store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for k, c := range s.clients {
		if k.issuer == issuerName && match(c) {
			return s.resolved(c), nil
		}
	}
	return store.Client{}, fmt.Errorf("find client by %s of issuer %q: %w", what, issuerName, store.ErrNotFound)
}

// GetClient returns a client with all of its secrets.
func (s *Store) GetClient(_ context.Context, issuerName, clientID string) (store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[clientKey{issuerName, clientID}]
	if !ok {
		return store.Client{}, fmt.Errorf("get client %q of issuer %q: %w", clientID, issuerName, store.ErrNotFound)
	}
	return s.resolved(c), nil
}

// ListClients returns an issuer's clients ordered by id, without secrets.
func (s *Store) ListClients(_ context.Context, issuerName string, q store.ClientQuery) ([]store.Client, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []store.Client
	for k, c := range s.clients {
		if k.issuer != issuerName ||
			(q.Name != "" && !strings.Contains(strings.ToLower(c.Name), strings.ToLower(q.Name))) ||
			(q.IDContains != "" && !strings.Contains(strings.ToLower(k.id), strings.ToLower(q.IDContains))) ||
			(q.Enabled != nil && c.Enabled != *q.Enabled) {
			continue
		}
		c = s.resolved(c)
		c.Secrets = nil
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b store.Client) int { return cmp.Compare(a.ID, b.ID) })
	return page(out, func(c store.Client) string { return c.ID }, q.Page), nil
}

// UpdateClient changes a client's mutable fields atomically.
func (s *Store) UpdateClient(_ context.Context, issuerName, clientID string, update func(*store.Client) error) (store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := clientKey{issuerName, clientID}
	old, ok := s.clients[key]
	if !ok {
		return store.Client{}, fmt.Errorf("update client %q of issuer %q: %w", clientID, issuerName, store.ErrNotFound)
	}
	c := s.resolved(old)
	if err := update(&c); err != nil {
		return store.Client{}, err
	}
	if err := s.checkRoles(issuerName, c.RoleMappings, c.ScopeMappings); err != nil {
		return store.Client{}, fmt.Errorf("update client %q: %w", clientID, err)
	}
	// Only the mutable fields take effect, as in PostgreSQL.
	next := copyClient(old)
	next.Name, next.Scopes, next.Roles, next.Audience = c.Name, cloneStrings(c.Scopes), cloneStrings(c.Roles), c.Audience
	next.TokenLifetime, next.Enabled, next.UpdatedAt = c.TokenLifetime, c.Enabled, s.now()
	next.PublicJWK, next.JWKSURI = slices.Clone(c.PublicJWK), c.JWKSURI
	next.OptionalScopes, next.FullScopeAllowed = cloneStrings(c.OptionalScopes), c.FullScopeAllowed
	next.RoleMappings, next.ScopeMappings = uniqueRefs(c.RoleMappings), uniqueRefs(c.ScopeMappings)
	next.RegistrationTokenDigest = slices.Clone(c.RegistrationTokenDigest)
	s.clients[key] = next
	s.notify(store.Change{Kind: store.ChangeClient, Issuer: issuerName, ClientID: clientID})
	return s.resolved(next), nil
}

// uniqueRefs keeps one reference per role.
func uniqueRefs(refs []store.RoleRef) []store.RoleRef {
	seen := map[string]bool{}
	var out []store.RoleRef
	for _, r := range refs {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, store.RoleRef{ID: r.ID})
		}
	}
	return out
}

// DeleteClient deletes a client and its secrets.
func (s *Store) DeleteClient(_ context.Context, issuerName, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := clientKey{issuerName, clientID}
	if _, ok := s.clients[key]; !ok {
		return fmt.Errorf("delete client %q of issuer %q: %w", clientID, issuerName, store.ErrNotFound)
	}
	delete(s.clients, key)
	s.notify(store.Change{Kind: store.ChangeClient, Issuer: issuerName, ClientID: clientID})
	for id, r := range s.roles {
		if r.IssuerName == issuerName && r.ClientID == clientID {
			s.deleteRole(id)
		}
	}
	return nil
}

// CreateRole defines a role on a client or on the issuer.
func (s *Store) CreateRole(_ context.Context, r store.Role) (store.Role, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.issuers[r.IssuerName]; !ok {
		return store.Role{}, fmt.Errorf("create role of issuer %q: %w", r.IssuerName, store.ErrNotFound)
	}
	if _, ok := s.clients[clientKey{r.IssuerName, r.ClientID}]; r.ClientID != "" && !ok {
		return store.Role{}, fmt.Errorf("create role of client %q: %w", r.ClientID, store.ErrNotFound)
	}
	for _, other := range s.roles {
		if other.ID == r.ID || (other.IssuerName == r.IssuerName && other.ClientID == r.ClientID && other.Name == r.Name) {
			return store.Role{}, fmt.Errorf("create role %q: %w", r.Name, store.ErrConflict)
		}
	}
	if r.ID == "" {
		r.ID = newUUID()
	}
	s.roles[r.ID] = r
	return r, nil
}

// ListRoles returns a client's roles, or the issuer's realm roles.
func (s *Store) ListRoles(_ context.Context, issuerName, clientID string) ([]store.Role, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.issuers[issuerName]; !ok {
		return nil, fmt.Errorf("list roles of issuer %q: %w", issuerName, store.ErrNotFound)
	}
	if _, ok := s.clients[clientKey{issuerName, clientID}]; clientID != "" && !ok {
		return nil, fmt.Errorf("list roles of client %q: %w", clientID, store.ErrNotFound)
	}
	out := []store.Role{}
	for _, r := range s.roles {
		if r.IssuerName == issuerName && r.ClientID == clientID {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b store.Role) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteRole deletes a role and the mappings to it.
func (s *Store) DeleteRole(_ context.Context, issuerName, clientID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, r := range s.roles {
		if r.IssuerName == issuerName && r.ClientID == clientID && r.Name == name {
			s.deleteRole(id)
			return nil
		}
	}
	return fmt.Errorf("delete role %q of client %q: %w", name, clientID, store.ErrNotFound)
}

// deleteRole removes a role and every mapping to it, telling of each client
// whose tokens change; the caller holds the lock.
func (s *Store) deleteRole(id string) {
	delete(s.roles, id)
	for k, c := range s.clients {
		has := func(r store.RoleRef) bool { return r.ID == id }
		if slices.ContainsFunc(c.RoleMappings, has) || slices.ContainsFunc(c.ScopeMappings, has) {
			c = copyClient(c)
			c.RoleMappings, c.ScopeMappings = slices.DeleteFunc(c.RoleMappings, has), slices.DeleteFunc(c.ScopeMappings, has)
			s.clients[k] = c
			s.notify(store.Change{Kind: store.ChangeClient, Issuer: k.issuer, ClientID: k.id})
		}
	}
}

// CreateInitialAccessToken stores an initial access token.
func (s *Store) CreateInitialAccessToken(_ context.Context, t store.InitialAccessToken) (store.InitialAccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.issuers[t.IssuerName]; !ok {
		return store.InitialAccessToken{}, fmt.Errorf("create initial access token of issuer %q: %w", t.IssuerName, store.ErrNotFound)
	}
	if t.ID == "" {
		t.ID = newUUID()
	}
	key := clientKey{t.IssuerName, t.ID}
	if _, taken := s.initial[key]; taken {
		return store.InitialAccessToken{}, fmt.Errorf("create initial access token %q: %w", t.ID, store.ErrConflict)
	}
	if _, _, taken := s.initialByDigest(t.IssuerName, t.Digest); taken {
		return store.InitialAccessToken{}, fmt.Errorf("create initial access token: digest taken: %w", store.ErrConflict)
	}
	t.Digest = slices.Clone(t.Digest)
	t.CreatedAt = s.now()
	t.ExpiresAt = t.ExpiresAt.UTC().Truncate(time.Microsecond)
	s.initial[key] = t
	return t, nil
}

// ListInitialAccessTokens lists an issuer's initial access tokens, oldest
// first.
func (s *Store) ListInitialAccessTokens(_ context.Context, issuerName string) ([]store.InitialAccessToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.issuers[issuerName]; !ok {
		return nil, fmt.Errorf("list initial access tokens of issuer %q: %w", issuerName, store.ErrNotFound)
	}
	out := []store.InitialAccessToken{}
	for k, t := range s.initial {
		if k.issuer == issuerName {
			t.Digest = slices.Clone(t.Digest)
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b store.InitialAccessToken) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteInitialAccessToken revokes an initial access token.
func (s *Store) DeleteInitialAccessToken(_ context.Context, issuerName, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := clientKey{issuerName, id}
	if _, ok := s.initial[key]; !ok {
		return fmt.Errorf("delete initial access token %q: %w", id, store.ErrNotFound)
	}
	delete(s.initial, key)
	return nil
}

// newUUID makes a random (version 4) UUID, as PostgreSQL's
// gen_random_uuid does.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// AddClientSecret adds a secret and bounds the others' validity.
func (s *Store) AddClientSecret(_ context.Context, issuerName, clientID string, sec store.Secret, retireOthersAt time.Time) (store.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := clientKey{issuerName, clientID}
	c, ok := s.clients[key]
	if !ok {
		return store.Client{}, fmt.Errorf("add secret to client %q of issuer %q: %w", clientID, issuerName, store.ErrNotFound)
	}
	c = copyClient(c)
	for i, old := range c.Secrets {
		if old.ID == sec.ID {
			return store.Client{}, fmt.Errorf("add secret %q: %w", sec.ID, store.ErrConflict)
		}
		if !retireOthersAt.IsZero() && (old.ExpiresAt.IsZero() || retireOthersAt.Before(old.ExpiresAt)) {
			c.Secrets[i].ExpiresAt = retireOthersAt.UTC().Truncate(time.Microsecond)
		}
	}
	sec.Digest = slices.Clone(sec.Digest)
	sec.CreatedAt = s.now()
	c.Secrets = append(c.Secrets, sec)
	s.clients[key] = c
	s.notify(store.Change{Kind: store.ChangeClient, Issuer: issuerName, ClientID: clientID})
	return copyClient(c), nil
}

// DeleteClientSecret revokes one secret.
func (s *Store) DeleteClientSecret(_ context.Context, issuerName, clientID, secretID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := clientKey{issuerName, clientID}
	c, ok := s.clients[key]
	i := slices.IndexFunc(c.Secrets, func(sec store.Secret) bool { return sec.ID == secretID })
	if !ok || i < 0 {
		return fmt.Errorf("delete secret %q of client %q: %w", secretID, clientID, store.ErrNotFound)
	}
	c = copyClient(c)
	c.Secrets = slices.Delete(c.Secrets, i, i+1)
	s.clients[key] = c
	s.notify(store.Change{Kind: store.ChangeClient, Issuer: issuerName, ClientID: clientID})
	return nil
}

// ListSigningKeys returns an issuer's keys, oldest first.
func (s *Store) ListSigningKeys(_ context.Context, issuerName string) ([]store.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keysOf(issuerName), nil
}

// keysWritten gives an issuer's keys a new version and makes them due; the
// caller holds the lock.
func (s *Store) keysWritten(issuerName string) {
	if _, ok := s.issuers[issuerName]; !ok {
		delete(s.keyVersions, issuerName)
		delete(s.keysDue, issuerName)
		return
	}
	s.keyVersion++
	s.keyVersions[issuerName] = s.keyVersion
	delete(s.keysDue, issuerName)
}

// GetIssuerKeys returns an issuer with its keys and, if asked, a client.
func (s *Store) GetIssuerKeys(_ context.Context, name, clientID string) (store.IssuerKeys, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	iss, ok := s.issuers[name]
	if !ok {
		return store.IssuerKeys{}, fmt.Errorf("get issuer %q: %w", name, store.ErrNotFound)
	}
	ik := store.IssuerKeys{Issuer: copyIssuer(iss), Keys: s.keysOf(name)}
	if clientID != "" {
		if c, ok := s.clients[clientKey{name, clientID}]; ok {
			c = s.resolved(c)
			ik.Client = &c
		}
	}
	return ik, nil
}

// ListKeysDue returns issuers whose keys need a look, with their keys, in
// due order; an issuer due at once sorts first, as -infinity.
func (s *Store) ListKeysDue(_ context.Context, now time.Time, after store.DueCursor, limit int) ([]store.IssuerKeys, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	before := func(a, b store.DueCursor) int {
		return cmp.Or(cmp.Compare(a.Due, b.Due), cmp.Compare(a.Issuer, b.Issuer))
	}
	var due []store.DueCursor
	for name := range s.issuers {
		at, planned := s.keysDue[name]
		if planned && at.After(now) {
			continue
		}
		p := store.DueCursor{Issuer: name}
		if planned {
			// Zero-padded Unix nanoseconds, after the empty Due of "at
			// once", sort as the times do.
			p.Due = fmt.Sprintf("%020d", at.UnixNano())
		}
		if after == (store.DueCursor{}) || before(p, after) > 0 {
			due = append(due, p)
		}
	}
	slices.SortFunc(due, before)
	if limit > 0 && len(due) > limit {
		due = due[:limit]
	}
	out := make([]store.IssuerKeys, 0, len(due))
	for _, p := range due {
		out = append(out, store.IssuerKeys{Issuer: copyIssuer(s.issuers[p.Issuer]), Keys: s.keysOf(p.Issuer), Version: s.keyVersions[p.Issuer], Position: p})
	}
	return out, nil
}

// SetKeysDue records due times for keys still at the planned version.
func (s *Store) SetKeysDue(_ context.Context, due []store.KeysDue) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range due {
		if v, ok := s.keyVersions[d.Issuer]; ok && v == d.Version {
			s.keysDue[d.Issuer] = d.At
		}
	}
	return nil
}

// OneKeyPerKEK returns one key sealed under each KEK in use.
func (s *Store) OneKeyPerKEK(context.Context) ([]store.SigningKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byKEK := map[string]store.SigningKey{}
	for _, k := range s.keys {
		if have, ok := byKEK[k.KEKID]; !ok || k.ID < have.ID {
			byKEK[k.KEKID] = copyKey(k)
		}
	}
	return slices.SortedFunc(maps.Values(byKEK), func(a, b store.SigningKey) int { return cmp.Compare(a.KEKID, b.KEKID) }), nil
}

// MarkAllKeysDue makes every issuer's keys due.
func (s *Store) MarkAllKeysDue(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.keysDue)
	return nil
}

// KeyChangeMark is the version the next write will take.
func (s *Store) KeyChangeMark(context.Context) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keyVersion + 1, nil
}

// KeysChangedSince names the issuers whose keys' version is at least mark.
func (s *Store) KeysChangedSince(_ context.Context, mark uint64) (map[string]uint64, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	versions := map[string]uint64{}
	for name, v := range s.keyVersions {
		if v >= mark {
			versions[name] = v
		}
	}
	return versions, s.keyVersion + 1, nil
}

// UpdateSigningKeys rewrites an issuer's keys atomically.
func (s *Store) UpdateSigningKeys(_ context.Context, issuerName string, update func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateKeys(issuerName, update)
}

// updateKeys is UpdateSigningKeys with the lock held.
func (s *Store) updateKeys(issuerName string, update func([]store.SigningKey) ([]store.SigningKey, error)) ([]store.SigningKey, error) {
	if _, ok := s.issuers[issuerName]; !ok {
		return nil, fmt.Errorf("update signing keys of issuer %q: %w", issuerName, store.ErrNotFound)
	}
	current := s.keysOf(issuerName)
	next, err := update(slices.Clone(current))
	if err != nil {
		return nil, err
	}
	active := 0
	created := map[string]time.Time{}
	for _, k := range current {
		created[k.ID] = k.CreatedAt
	}
	for _, k := range next {
		if k.State == store.KeyActive {
			active++
		}
		if other, ok := s.keys[k.ID]; ok && other.IssuerName != issuerName {
			return nil, fmt.Errorf("update signing keys: kid %q belongs to another issuer: %w", k.ID, store.ErrConflict)
		}
	}
	if active > 1 {
		return nil, fmt.Errorf("update signing keys: issuer %q would have %d active keys: %w", issuerName, active, store.ErrConflict)
	}
	for _, k := range current {
		delete(s.keys, k.ID)
	}
	now := s.now()
	for _, k := range next {
		k = copyKey(k)
		k.IssuerName = issuerName
		k.CreatedAt = now
		if at, ok := created[k.ID]; ok {
			k.CreatedAt = at
		}
		for _, t := range []*time.Time{&k.ActivateAt, &k.ActivatedAt, &k.RetiredAt, &k.DeleteAt} {
			*t = t.UTC().Truncate(time.Microsecond)
		}
		s.keys[k.ID] = k
	}
	s.notify(store.Change{Kind: store.ChangeKey, Issuer: issuerName})
	return s.keysOf(issuerName), nil
}

// ImportIssuer writes an imported issuer with its roles, clients and keys
// at once: every step writes through the maps, and a failure or a dry run
// puts back the maps as they were. Records are replaced, never changed in
// place, so shallow copies of the maps are a whole snapshot.
func (s *Store) ImportIssuer(_ context.Context, imp store.IssuerImport, dryRun bool) ([]store.ImportItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	issuers, clients, roles, keys := maps.Clone(s.issuers), maps.Clone(s.clients), maps.Clone(s.roles), maps.Clone(s.keys)
	var changes []store.Change
	s.held = &changes
	items, err := s.importIssuer(imp)
	s.held = nil
	if err != nil || dryRun {
		s.issuers, s.clients, s.roles, s.keys = issuers, clients, roles, keys
		if err != nil {
			return nil, fmt.Errorf("import issuer %q: %w", imp.Issuer.Name, err)
		}
		return items, nil
	}
	for _, c := range changes {
		s.notify(c)
	}
	return items, nil
}

// importIssuer does the writes of ImportIssuer; the caller holds the lock.
func (s *Store) importIssuer(imp store.IssuerImport) ([]store.ImportItem, error) {
	name := imp.Issuer.Name
	_, result, changed, err := s.putIssuer(imp.Issuer, 0)
	if err != nil {
		return nil, err
	}
	items := []store.ImportItem{{Kind: store.ImportIssuerKind, Name: name, Result: result, Changed: changed}}
	var stored []store.Role
	for _, r := range s.roles {
		if r.IssuerName == name {
			stored = append(stored, r)
		}
	}
	roleItems, create, update := store.IndexRoles(stored).PlanRoles(imp.Roles)
	items = append(items, roleItems...)
	for _, r := range create {
		r.IssuerName, r.ID = name, newUUID()
		s.roles[r.ID] = r
		stored = append(stored, r)
	}
	for _, r := range update {
		s.roles[r.ID] = r
	}
	roles := store.IndexRoles(stored)
	for _, c := range imp.Clients {
		c.IssuerName = name
		if c.RoleMappings, err = roles.Resolve(c.RoleMappings); err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		if c.ScopeMappings, err = roles.Resolve(c.ScopeMappings); err != nil {
			return nil, fmt.Errorf("client %q: %w", c.ID, err)
		}
		key := clientKey{name, c.ID}
		var current *store.Client
		if old, ok := s.clients[key]; ok {
			resolved := s.resolved(old)
			current = &resolved
		}
		next, changed := store.MergeImportedClient(current, c)
		item := store.ImportItem{Kind: store.ImportClientKind, Name: c.ID, Result: store.Unchanged, Changed: changed}
		switch {
		case current == nil:
			if _, err := s.createClient(next); err != nil {
				return nil, err
			}
			item.Result = store.Created
		case len(changed) > 0:
			if err := s.replaceImportedClient(next); err != nil {
				return nil, err
			}
			item.Result = store.Updated
		}
		items = append(items, item)
	}
	if imp.Keys != nil {
		current := s.keysOf(name)
		next, err := imp.Keys(slices.Clone(current))
		if err != nil {
			return nil, err
		}
		items = append(items, store.KeyChanges(current, next)...)
		if _, err := s.updateKeys(name, func([]store.SigningKey) ([]store.SigningKey, error) { return next, nil }); err != nil {
			return nil, err
		}
	}
	return items, nil
}

// replaceImportedClient stores an existing client as an import merged it:
// its ids may change, and its new secrets are stamped now; the caller
// holds the lock.
func (s *Store) replaceImportedClient(c store.Client) error {
	for _, other := range s.clients {
		if other.IssuerName == c.IssuerName && other.ID != c.ID && (other.InternalID == c.InternalID || other.ServiceAccountID == c.ServiceAccountID) {
			return fmt.Errorf("import client %q: its internal or service-account id is taken: %w", c.ID, store.ErrConflict)
		}
	}
	now := s.now()
	next := copyClient(c)
	next.RoleMappings, next.ScopeMappings = uniqueRefs(c.RoleMappings), uniqueRefs(c.ScopeMappings)
	next.UpdatedAt = now
	for i := range next.Secrets {
		if next.Secrets[i].CreatedAt.IsZero() {
			next.Secrets[i].CreatedAt = now
		}
	}
	s.clients[clientKey{c.IssuerName, c.ID}] = next
	s.notify(store.Change{Kind: store.ChangeClient, Issuer: c.IssuerName, ClientID: c.ID})
	return nil
}

// keysOf lists an issuer's keys, oldest first; the caller holds the lock.
func (s *Store) keysOf(issuerName string) []store.SigningKey {
	var out []store.SigningKey
	for _, k := range s.keys {
		if k.IssuerName == issuerName {
			out = append(out, copyKey(k))
		}
	}
	slices.SortFunc(out, oldestFirst)
	return out
}

func oldestFirst(a, b store.SigningKey) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}

// TryLock takes a named lock within this process, which is the whole
// cluster of a memory store.
func (s *Store) TryLock(_ context.Context, name string) (func(), <-chan struct{}, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.locks[name] {
		return nil, nil, false, nil
	}
	s.locks[name] = true
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.locks, name)
			s.mu.Unlock()
		})
	}
	return unlock, make(chan struct{}), true, nil
}

// RecordAssertion remembers a jti and refuses a second use.
func (s *Store) RecordAssertion(_ context.Context, issuerName, clientID, jti string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := jtiKey{issuerName, clientID, jti}
	if _, seen := s.jtis[key]; seen {
		return fmt.Errorf("record assertion of client %q: %w", clientID, store.ErrConflict)
	}
	s.jtis[key] = expiresAt
	return nil
}

// DeleteExpiredAssertions forgets expired jtis.
func (s *Store) DeleteExpiredAssertions(_ context.Context, now time.Time) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, exp := range s.jtis {
		if exp.Before(now) {
			delete(s.jtis, k)
			n++
		}
	}
	return n, nil
}

// AppendAudit records an audit entry.
func (s *Store) AppendAudit(_ context.Context, e store.AuditEntry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.ID = int64(len(s.audit) + 1)
	e.At = s.now()
	s.audit = append(s.audit, e)
	return nil
}

// ListAudit returns audit entries newest first.
func (s *Store) ListAudit(_ context.Context, p store.Page) ([]store.AuditEntry, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := len(s.audit)
	if p.After != "" {
		before, err := strconv.ParseInt(p.After, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("list audit entries: cursor %q is not an entry id", p.After)
		}
		end = int(min(max(before-1, 0), int64(len(s.audit))))
	}
	var out []store.AuditEntry
	for i := end - 1; i >= 0 && (p.Limit <= 0 || len(out) < p.Limit); i-- {
		out = append(out, s.audit[i])
	}
	return out, nil
}

func copyIssuer(iss store.Issuer) store.Issuer {
	iss.AvailableScopes = cloneStrings(iss.AvailableScopes)
	iss.ClientRoles = cloneStrings(iss.ClientRoles)
	iss.ClientAuthenticators = cloneStrings(iss.ClientAuthenticators)
	return iss
}

func copyClient(c store.Client) store.Client {
	c.PublicJWK = slices.Clone(c.PublicJWK)
	c.Scopes = cloneStrings(c.Scopes)
	c.OptionalScopes = cloneStrings(c.OptionalScopes)
	c.Roles = cloneStrings(c.Roles)
	c.RoleMappings = slices.Clone(c.RoleMappings)
	c.ScopeMappings = slices.Clone(c.ScopeMappings)
	c.RegistrationTokenDigest = slices.Clone(c.RegistrationTokenDigest)
	var secrets []store.Secret
	for _, sec := range c.Secrets {
		sec.Digest = slices.Clone(sec.Digest)
		secrets = append(secrets, sec)
	}
	c.Secrets = secrets
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
