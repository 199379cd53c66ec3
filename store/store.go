// Package store defines the durable records of authz and the contract every
// storage backend fulfils. It imports nothing else from this module.
package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// ErrNotFound is returned when the addressed record, or the record it belongs
// to, does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness rule, such as
// a second client with the same id or a second active key for an issuer, or
// would orphan records, such as deleting an issuer that still has clients.
var ErrConflict = errors.New("conflict")

// ErrUnavailable is returned when the backend cannot be reached: the caller
// may retry later, and nothing was written.
var ErrUnavailable = errors.New("store unavailable")

// ErrPrecondition is returned when a conditional write finds the record at
// another revision than the caller expected.
var ErrPrecondition = errors.New("precondition failed")

// Issuer is a CredentialIssuer: one authorization profile (tenant) with its
// own issuer URL, keys, scopes, audience and token lifetime.
type Issuer struct {
	Name                 string
	Description          string
	AvailableScopes      []string
	ClientRoles          []string
	Audience             string
	TokenLifetime        time.Duration
	SigningAlgorithm     string
	ClientAuthenticators []string
	// The key schedule; zero values mean the server's defaults.
	KeyRotationPeriod time.Duration
	KeyPublishLead    time.Duration
	KeyRetirePeriod   time.Duration
	// URLStyle is how the issuer's URLs look, and whose token claims it
	// signs: URLStyleNative or URLStyleKeycloak.
	URLStyle string
	// AnonymousRegistration lets anyone register a client through the
	// registration service, without a token.
	AnonymousRegistration bool
	// Revision grows by one on every write; it backs ETags and lets caches
	// notice a replaced issuer.
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SameSettings reports whether o would change nothing a caller can set on
// i: a replacement with the same settings keeps its revision.
func (i Issuer) SameSettings(o Issuer) bool { return len(i.ChangedSettings(o)) == 0 }

// ChangedSettings names the settings o would change on i, by field name.
func (i Issuer) ChangedSettings(o Issuer) []string {
	return changed(
		setting{"Description", i.Description == o.Description},
		setting{"AvailableScopes", slices.Equal(i.AvailableScopes, o.AvailableScopes)},
		setting{"ClientRoles", slices.Equal(i.ClientRoles, o.ClientRoles)},
		setting{"Audience", i.Audience == o.Audience},
		setting{"TokenLifetime", i.TokenLifetime == o.TokenLifetime},
		setting{"SigningAlgorithm", i.SigningAlgorithm == o.SigningAlgorithm},
		setting{"ClientAuthenticators", slices.Equal(i.ClientAuthenticators, o.ClientAuthenticators)},
		setting{"KeyRotationPeriod", i.KeyRotationPeriod == o.KeyRotationPeriod},
		setting{"KeyPublishLead", i.KeyPublishLead == o.KeyPublishLead},
		setting{"KeyRetirePeriod", i.KeyRetirePeriod == o.KeyRetirePeriod},
		setting{"URLStyle", i.URLStyle == o.URLStyle},
		setting{"AnonymousRegistration", i.AnonymousRegistration == o.AnonymousRegistration},
	)
}

// URL styles of an issuer.
const (
	// URLStyleNative serves an issuer at /issuers/{name}.
	URLStyleNative = ""
	// URLStyleKeycloak serves an issuer at /realms/{name}, with Keycloak's
	// endpoint paths and the claims Keycloak puts in service-account tokens.
	URLStyleKeycloak = "keycloak"
)

// Keycloak reports whether the issuer is served Keycloak-style.
func (i Issuer) Keycloak() bool { return i.URLStyle == URLStyleKeycloak }

// setting is one compared field: its name and whether it is unchanged.
type setting struct {
	name string
	same bool
}

func changed(settings ...setting) []string {
	var out []string
	for _, s := range settings {
		if !s.same {
			out = append(out, s.name)
		}
	}
	return out
}

// CheckRevision is the condition of a conditional write: ErrPrecondition
// unless want is 0 (unconditional) or the issuer's revision.
func (i Issuer) CheckRevision(want int64) error {
	if want != 0 && i.Revision != want {
		return fmt.Errorf("issuer %q is at revision %d, not %d: %w", i.Name, i.Revision, want, ErrPrecondition)
	}
	return nil
}

// Client is a machine client registered under one issuer.
type Client struct {
	IssuerName string
	ID         string
	// InternalID is the client's id in Keycloak's admin API, distinct from
	// its client id and fixed for its life; ServiceAccountID is the id of
	// its service account, the sub of its tokens on Keycloak-style issuers.
	// The store makes both when they are empty.
	InternalID       string
	ServiceAccountID string
	Name             string
	// Scopes are the client's default scopes; OptionalScopes it may also
	// request.
	Scopes         []string
	OptionalScopes []string
	Roles          []string
	Audience       string
	// TokenLifetime overrides the issuer's lifetime when non-zero.
	TokenLifetime time.Duration
	Enabled       bool
	Secrets       []Secret
	// PublicJWK (a JSON Web Key) or JWKSURI, when set, lets the client
	// authenticate with a signed JWT (RFC 7523 private_key_jwt).
	PublicJWK []byte
	JWKSURI   string
	// RoleMappings are the roles mapped to the client's service account;
	// its tokens carry them, all of them when FullScopeAllowed, else those
	// also in ScopeMappings. On write only their IDs count; reads fill in
	// the rest.
	RoleMappings     []RoleRef
	ScopeMappings    []RoleRef
	FullScopeAllowed bool
	// RegistrationTokenDigest is the digest of the client's current
	// registration access token (RFC 7592), if it has one.
	RegistrationTokenDigest []byte
	// RegisteredWith is the id of the initial access token that registered
	// the client, if one did; RegisterClient sets it and nothing changes
	// it. That token may go on managing the client it registered.
	RegisteredWith string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Role is a role defined on a client (a resource client, such as an API),
// or on the issuer itself (a realm role) when ClientID is empty.
type Role struct {
	IssuerName  string
	ClientID    string
	ID          string
	Name        string
	Description string
}

// RoleRef names a role from a mapping: by ID, with the client (empty for a
// realm role) and name it has.
type RoleRef struct {
	ID       string
	ClientID string
	Name     string
}

// CompareRoleRefs is the order in which stores return a client's mappings:
// by client (realm roles first), then name.
func CompareRoleRefs(a, b RoleRef) int {
	return cmp.Or(cmp.Compare(a.ClientID, b.ClientID), cmp.Compare(a.Name, b.Name))
}

// InitialAccessToken lets its holder register clients of one issuer
// (RFC 7591): until ExpiresAt (zero: no expiry), at most RemainingCount
// more times. Only its digest is kept.
type InitialAccessToken struct {
	IssuerName     string
	ID             string
	Digest         []byte
	CreatedAt      time.Time
	ExpiresAt      time.Time
	RemainingCount int
}

// ChangedSettings names the settings o would change on c, by field name:
// what an update may change, not its secrets or times.
func (c Client) ChangedSettings(o Client) []string {
	return changed(
		setting{"Name", c.Name == o.Name},
		setting{"Scopes", slices.Equal(c.Scopes, o.Scopes)},
		setting{"Roles", slices.Equal(c.Roles, o.Roles)},
		setting{"Audience", c.Audience == o.Audience},
		setting{"TokenLifetime", c.TokenLifetime == o.TokenLifetime},
		setting{"Enabled", c.Enabled == o.Enabled},
		setting{"PublicJWK", sameJSON(c.PublicJWK, o.PublicJWK)},
		setting{"JWKSURI", c.JWKSURI == o.JWKSURI},
		setting{"OptionalScopes", slices.Equal(c.OptionalScopes, o.OptionalScopes)},
		setting{"FullScopeAllowed", c.FullScopeAllowed == o.FullScopeAllowed},
		setting{"RoleMappings", sameRoles(c.RoleMappings, o.RoleMappings)},
		setting{"ScopeMappings", sameRoles(c.ScopeMappings, o.ScopeMappings)},
	)
}

// sameJSON compares two JSON documents by value: PostgreSQL hands back a
// JWK with its members in another order than it was written.
func sameJSON(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// sameRoles compares role mappings by role, in any order.
func sameRoles(a, b []RoleRef) bool {
	ids := func(refs []RoleRef) []string {
		out := make([]string, len(refs))
		for i, r := range refs {
			out[i] = r.ID
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(ids(a), ids(b))
}

// Secret is one credential of a client. Only its SHA-256 digest is kept.
type Secret struct {
	ID     string
	Digest []byte
	// Hint is the last characters of the secret, enough for an operator to
	// tell secrets apart and too little to help an attacker.
	Hint      string
	CreatedAt time.Time
	// ExpiresAt is zero for a secret that does not expire.
	ExpiresAt time.Time
}

// ValidAt reports whether the secret may still authenticate at time now.
func (s Secret) ValidAt(now time.Time) bool {
	return s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt)
}

// KeyState is the lifecycle stage of a signing key.
type KeyState string

// Signing key states, in lifecycle order. Pending, active and retired keys
// are published; only the active key signs. A revoked key is neither
// published nor used; it is kept for the record until DeleteAt.
const (
	KeyPending KeyState = "pending"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
	KeyRevoked KeyState = "revoked"
)

// SigningKey is an issuer's token-signing key. The private half is only ever
// stored sealed under a key-encryption key.
type SigningKey struct {
	ID         string
	IssuerName string
	Algorithm  string
	State      KeyState
	// PublicJWK is the JSON Web Key of the public half.
	PublicJWK []byte
	// SealedPrivateKey is the AEAD-sealed private key; KEKID names the
	// key-encryption key that sealed it.
	SealedPrivateKey []byte
	KEKID            string
	// CreatedAt is when the key was first published.
	CreatedAt time.Time
	// ActivateAt is when a pending key may start to sign.
	ActivateAt  time.Time
	ActivatedAt time.Time
	RetiredAt   time.Time
	// DeleteAt is when a retired or revoked key is removed.
	DeleteAt time.Time
}

// PutResult says what PutIssuer did.
type PutResult int

// Outcomes of PutIssuer.
const (
	Created PutResult = iota + 1
	Updated
	Unchanged
)

// Page selects a slice of an ordered listing: the records after the key
// After (empty: from the start), at most Limit of them (0: all).
type Page struct {
	After string
	Limit int
}

// ClientQuery filters a listing of clients.
type ClientQuery struct {
	Page
	// Name, when set, keeps clients whose name contains it, ignoring case;
	// IDContains, clients whose id does.
	Name       string
	IDContains string
	// Enabled, when set, keeps clients in that state.
	Enabled *bool
}

// AuditEntry records one administrative write and how it ended.
type AuditEntry struct {
	ID    int64
	At    time.Time
	Actor string // the admin client_id
	// ActorIssuer is the issuer of the acting client: "system" for the
	// server's admins, the issuer itself for a tenant's delegated admin.
	ActorIssuer string
	Action      string // e.g. "issuer.put", "client.disable"
	Resource    string // e.g. "issuers/payments/clients/c-123"
	Outcome     string // "success" or "failure"
	Status      int    // the HTTP status answered
	Detail      string
}

// ChangeKind names what kind of record changed.
type ChangeKind string

// Kinds of Change. ChangeAll means any record may have changed unseen, as
// after a lost connection: drop every cache.
const (
	ChangeIssuer ChangeKind = "issuer"
	ChangeClient ChangeKind = "client"
	ChangeKey    ChangeKind = "key"
	ChangeAll    ChangeKind = "all"
)

// IssuerKeys is an issuer and its keys, oldest first, read together, with
// their version: it changes whenever either is written.
type IssuerKeys struct {
	Issuer  Issuer
	Keys    []SigningKey
	Version uint64
	// Position is where this entry stands in ListKeysDue's order: the
	// cursor of the page after it.
	Position DueCursor
	// Client is, from GetIssuerKeys, the client it was asked for, read in
	// the same round trip; nil if none was asked for or the issuer has no
	// client of that id.
	Client *Client
}

// DueCursor is a position in the due order of ListKeysDue; the zero value
// is the beginning.
type DueCursor struct {
	// Due is the due time as the store writes it, opaque to callers.
	Due    string
	Issuer string
}

// KeysDue is when an issuer's keys next need a look, as planned from the
// version of them the planner read.
type KeysDue struct {
	Issuer  string
	Version uint64
	At      time.Time
}

// Change tells that a record was written by some node.
type Change struct {
	Kind     ChangeKind
	Issuer   string
	ClientID string
}

// Store is the storage contract shared by every backend. Writes are atomic:
// an error means nothing changed.
type Store interface {
	// PutIssuer creates or replaces an issuer, keeping its CreatedAt. A
	// non-zero ifRevision makes it conditional: ErrPrecondition unless the
	// stored issuer is at that revision. Replacing with identical content
	// leaves the revision alone and reports Unchanged.
	PutIssuer(ctx context.Context, iss Issuer, ifRevision int64) (Issuer, PutResult, error)
	GetIssuer(ctx context.Context, name string) (Issuer, error)
	// ListIssuers returns issuers ordered by name; Page.After is a name.
	ListIssuers(ctx context.Context, page Page) ([]Issuer, error)
	// DeleteIssuer deletes an issuer with its keys. With clients left it
	// returns ErrConflict, unless cascade also deletes them.
	DeleteIssuer(ctx context.Context, name string, cascade bool, ifRevision int64) error

	// CreateClient stores a client with its secrets. It returns ErrNotFound
	// when the issuer does not exist and ErrConflict when the id is taken.
	CreateClient(ctx context.Context, c Client) (Client, error)
	// GetClient returns a client with all of its secrets, expired included.
	GetClient(ctx context.Context, issuerName, clientID string) (Client, error)
	// GetClientByInternalID and GetClientByServiceAccount find a client by
	// its Keycloak-style ids.
	GetClientByInternalID(ctx context.Context, issuerName, internalID string) (Client, error)
	GetClientByServiceAccount(ctx context.Context, issuerName, serviceAccountID string) (Client, error)
	// RegisterClient creates a client as CreateClient does; with an initial
	// access token's digest it also spends one of the token's uses, in the
	// same transaction: ErrNotFound when the issuer has no such token,
	// ErrPrecondition when it has expired or is used up.
	RegisterClient(ctx context.Context, c Client, initialAccessDigest []byte, now time.Time) (Client, error)
	// ListClients returns an issuer's clients ordered by id, without their
	// secrets; Page.After is a client id.
	ListClients(ctx context.Context, issuerName string, q ClientQuery) ([]Client, error)
	// UpdateClient reads a client, lets update change its name, scopes,
	// roles, audience, lifetime, enabled flag, public JWK, JWKS URI, role
	// and scope mappings and registration token, and writes it back, all
	// atomically. Mappings must name roles of the client's issuer
	// (ErrNotFound otherwise). An error from update aborts the write and is
	// returned.
	UpdateClient(ctx context.Context, issuerName, clientID string, update func(*Client) error) (Client, error)
	DeleteClient(ctx context.Context, issuerName, clientID string) error
	// AddClientSecret adds a secret and makes every other secret of the
	// client expire at retireOthersAt at the latest; a zero retireOthersAt
	// leaves them as they are.
	AddClientSecret(ctx context.Context, issuerName, clientID string, s Secret, retireOthersAt time.Time) (Client, error)
	DeleteClientSecret(ctx context.Context, issuerName, clientID, secretID string) error

	// CreateRole defines a role on a client of an issuer, or on the issuer
	// itself when ClientID is empty; an empty ID is made by the store. It
	// returns ErrNotFound when the issuer or client does not exist and
	// ErrConflict when the name is taken there.
	CreateRole(ctx context.Context, r Role) (Role, error)
	// ListRoles returns the roles defined on a client (empty: the issuer's
	// realm roles), ordered by name.
	ListRoles(ctx context.Context, issuerName, clientID string) ([]Role, error)
	// DeleteRole deletes a role and every mapping to it.
	DeleteRole(ctx context.Context, issuerName, clientID, name string) error

	// CreateInitialAccessToken stores a token; an empty ID is made by the
	// store.
	CreateInitialAccessToken(ctx context.Context, t InitialAccessToken) (InitialAccessToken, error)
	ListInitialAccessTokens(ctx context.Context, issuerName string) ([]InitialAccessToken, error)
	DeleteInitialAccessToken(ctx context.Context, issuerName, id string) error

	// ListSigningKeys returns an issuer's keys, oldest first.
	ListSigningKeys(ctx context.Context, issuerName string) ([]SigningKey, error)
	// GetIssuerKeys returns an issuer and its keys, oldest first, and, when
	// clientID is not empty, that client of the issuer if it has one, all
	// read in one round trip: a node's first use of an issuer, whose first
	// token also needs its client. Version and Position are unset.
	GetIssuerKeys(ctx context.Context, name, clientID string) (IssuerKeys, error)
	// ListKeysDue returns, in due order (the recorded due time, then the
	// name) and after the position after, up to limit issuers with their
	// keys whose keys need a look at now: the due time last recorded for
	// them has come, or they (or their keys) were written since, which
	// makes them due at once. A new issuer is due at once.
	ListKeysDue(ctx context.Context, now time.Time, after DueCursor, limit int) ([]IssuerKeys, error)
	// SetKeysDue records when each issuer's keys next need a look, but only
	// where the issuer and its keys are still at the version planned from;
	// others stay due.
	SetKeysDue(ctx context.Context, due []KeysDue) error
	// OneKeyPerKEK returns one stored key sealed under each KEK any key is
	// sealed under, so that a node can check at start-up that it can open
	// them all.
	OneKeyPerKEK(ctx context.Context) ([]SigningKey, error)
	// MarkAllKeysDue makes every issuer's keys due at once.
	MarkAllKeysDue(ctx context.Context) error
	// KeyChangeMark is where a reader of KeysChangedSince begins: every
	// later write of an issuer or its keys is at or after it.
	KeyChangeMark(ctx context.Context) (uint64, error)
	// KeysChangedSince names the issuers written (settings or keys) at or
	// after mark, possibly with some written before it, each with its
	// version (as IssuerKeys.Version), and returns the mark for the next
	// call. Deleted issuers are not named.
	KeysChangedSince(ctx context.Context, mark uint64) (versions map[string]uint64, next uint64, err error)
	// UpdateSigningKeys hands update the issuer's keys and stores the set it
	// returns: keys left out are deleted, new ids are inserted (CreatedAt is
	// set by the store), others are updated. Writers of one issuer's keys
	// are serialized across nodes. An error from update aborts the write.
	// It returns ErrNotFound when the issuer does not exist and ErrConflict
	// when the result holds two active keys or a kid another issuer uses.
	UpdateSigningKeys(ctx context.Context, issuerName string, update func([]SigningKey) ([]SigningKey, error)) ([]SigningKey, error)

	// TryLock takes a named cluster-wide lock without waiting. It reports
	// false when another holder has it. The lock is held until unlock is
	// called or the holder's connection is lost; lost reports the latter.
	TryLock(ctx context.Context, name string) (unlock func(), lost <-chan struct{}, ok bool, err error)

	// RecordAssertion remembers a client assertion's jti until expiresAt.
	// It returns ErrConflict when the client already used that jti.
	RecordAssertion(ctx context.Context, issuerName, clientID, jti string, expiresAt time.Time) error
	// DeleteExpiredAssertions forgets jtis that expired before now and
	// returns how many.
	DeleteExpiredAssertions(ctx context.Context, now time.Time) (int64, error)

	// ImportIssuer writes an issuer with its roles, clients and keys in
	// one transaction and reports what it did to each record, in the
	// order issuer, roles, clients, keys. With dryRun it writes nothing
	// and reports what it would do. An error means nothing changed:
	// ErrNotFound when a mapping names a role neither stored nor
	// imported, ErrConflict when an id is taken.
	ImportIssuer(ctx context.Context, imp IssuerImport, dryRun bool) ([]ImportItem, error)

	// AppendAudit records an entry; ID and At are assigned by the store.
	AppendAudit(ctx context.Context, e AuditEntry) error
	// ListAudit returns entries newest first; Page.After is an entry ID in
	// decimal.
	ListAudit(ctx context.Context, page Page) ([]AuditEntry, error)

	// Watch calls fn for every change any node makes, until ctx ends. It
	// first calls fn with ChangeAll once it listens, and again whenever it
	// may have missed changes. fn must not block for long.
	Watch(ctx context.Context, fn func(Change)) error

	// Ping reports whether the backend can serve requests.
	Ping(ctx context.Context) error
}

// IssuerImport is an issuer carried over from elsewhere (a Keycloak realm)
// with its roles, clients and keys, written in one transaction by
// ImportIssuer.
type IssuerImport struct {
	Issuer Issuer
	// Roles are created where the issuer has none of that client and
	// name, else their description is updated. Their IDs are the store's.
	Roles []Role
	// Clients are created, or their settings, ids, mappings and secrets
	// replaced: a secret the client has (by digest) keeps its id. Their
	// mappings name roles by client and name: IDs are resolved by the
	// store.
	Clients []Client
	// Keys hands the issuer's stored keys to the importer, which returns
	// the whole next set, as UpdateSigningKeys does. Nil leaves them.
	Keys func(current []SigningKey) ([]SigningKey, error)
}

// ImportItem is what an import did, or would do, to one record.
type ImportItem struct {
	Kind   string // "issuer", "role", "client", "key"
	Name   string // issuer name, "client/role" ("/role" for a realm role), client id, kid
	Result PutResult
	// Changed names the fields an update changes.
	Changed []string
	// Detail says more where it helps: the state a new key takes.
	Detail string
}

// Kinds of ImportItem.
const (
	ImportIssuerKind = "issuer"
	ImportRoleKind   = "role"
	ImportClientKind = "client"
	ImportKeyKind    = "key"
)

// MergeImportedClient is what an import makes of a client: the imported
// settings, ids, mappings and secrets over the stored client (nil: a new
// one), secrets it already has (by digest) keeping their ids.
// It names the fields that change; a client with nothing to change comes
// back with none.
func MergeImportedClient(stored *Client, imported Client) (Client, []string) {
	if stored == nil {
		return imported, nil
	}
	next := *stored
	next.Name, next.Scopes, next.OptionalScopes = imported.Name, imported.Scopes, imported.OptionalScopes
	next.Roles, next.Audience, next.TokenLifetime = imported.Roles, imported.Audience, imported.TokenLifetime
	next.Enabled, next.PublicJWK, next.JWKSURI = imported.Enabled, imported.PublicJWK, imported.JWKSURI
	next.RoleMappings, next.ScopeMappings = imported.RoleMappings, imported.ScopeMappings
	next.FullScopeAllowed = imported.FullScopeAllowed
	changes := stored.ChangedSettings(next)
	if imported.InternalID != "" && imported.InternalID != stored.InternalID {
		next.InternalID = imported.InternalID
		changes = append(changes, "InternalID")
	}
	if imported.ServiceAccountID != "" && imported.ServiceAccountID != stored.ServiceAccountID {
		next.ServiceAccountID = imported.ServiceAccountID
		changes = append(changes, "ServiceAccountID")
	}
	// The file's secrets are the client's: one it lacks is added, one it
	// has keeps its id and takes the file's expiry, and one the file no
	// longer holds (Keycloak regenerated it) is dropped.
	next.Secrets = nil
	secretsChanged := false
	for _, sec := range imported.Secrets {
		i := slices.IndexFunc(stored.Secrets, func(s Secret) bool { return bytes.Equal(s.Digest, sec.Digest) })
		if i < 0 {
			next.Secrets, secretsChanged = append(next.Secrets, sec), true
			continue
		}
		kept := stored.Secrets[i]
		if !kept.ExpiresAt.Equal(sec.ExpiresAt) {
			kept.ExpiresAt, secretsChanged = sec.ExpiresAt, true
		}
		next.Secrets = append(next.Secrets, kept)
	}
	if len(next.Secrets) != len(stored.Secrets) {
		secretsChanged = true
	}
	if secretsChanged {
		changes = append(changes, "Secrets")
	}
	return next, changes
}

// KeyChanges reports what replacing an issuer's keys current with next
// does to each key.
func KeyChanges(current, next []SigningKey) []ImportItem {
	var items []ImportItem
	for _, k := range next {
		i := slices.IndexFunc(current, func(c SigningKey) bool { return c.ID == k.ID })
		switch {
		case i < 0:
			items = append(items, ImportItem{Kind: ImportKeyKind, Name: k.ID, Result: Created, Detail: string(k.State)})
		case current[i].State != k.State:
			items = append(items, ImportItem{Kind: ImportKeyKind, Name: k.ID, Result: Updated, Changed: []string{"State"}, Detail: string(k.State)})
		default:
			items = append(items, ImportItem{Kind: ImportKeyKind, Name: k.ID, Result: Unchanged})
		}
	}
	return items
}

// RoleName names a role within its issuer, as an import names it: its
// client's id ("" for a realm role) and its name.
type RoleName struct{ ClientID, Name string }

// RolesByName indexes an issuer's roles by RoleName.
type RolesByName map[RoleName]Role

// IndexRoles indexes roles by RoleName.
func IndexRoles(roles []Role) RolesByName {
	out := make(RolesByName, len(roles))
	for _, r := range roles {
		out[RoleName{r.ClientID, r.Name}] = r
	}
	return out
}

// Resolve names each mapped role by the id it has in the index:
// ErrNotFound for a role the index lacks.
func (idx RolesByName) Resolve(refs []RoleRef) ([]RoleRef, error) {
	out := make([]RoleRef, 0, len(refs))
	for _, ref := range refs {
		r, ok := idx[RoleName{ref.ClientID, ref.Name}]
		if !ok {
			return nil, fmt.Errorf("role %q of client %q: %w", ref.Name, ref.ClientID, ErrNotFound)
		}
		out = append(out, RoleRef{ID: r.ID, ClientID: r.ClientID, Name: r.Name})
	}
	return out, nil
}

// PlanRoles is what an import does to roles: for each imported role, in
// order, its ImportItem, and which roles to create (new) and which stored
// ones take a new description (update, with their ids).
func (idx RolesByName) PlanRoles(imported []Role) (items []ImportItem, create, update []Role) {
	for _, r := range imported {
		item := ImportItem{Kind: ImportRoleKind, Name: r.ClientID + "/" + r.Name, Result: Unchanged}
		current, ok := idx[RoleName{r.ClientID, r.Name}]
		switch {
		case !ok:
			item.Result = Created
			create = append(create, r)
		case current.Description != r.Description:
			item.Result, item.Changed = Updated, []string{"Description"}
			current.Description = r.Description
			update = append(update, current)
		}
		items = append(items, item)
	}
	return items, create, update
}
