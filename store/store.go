// Package store defines the durable records of authz and the contract every
// storage backend fulfils. It imports nothing else from this module.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned when the addressed record, or the record it belongs
// to, does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a write would break a uniqueness rule, such as
// a second client with the same id or a second active key for an issuer.
var ErrConflict = errors.New("conflict")

// Issuer is a CredentialIssuer: one authorization profile (tenant) with its
// own issuer URL, keys, scopes, audience and token lifetime.
type Issuer struct {
	Name                 string
	Description          string
	AvailableScopes      []string
	Audience             string
	TokenLifetime        time.Duration
	SigningAlgorithm     string
	ClientAuthenticators []string
	// Revision grows by one on every write; it backs ETags and lets caches
	// notice a replaced issuer.
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Client is a machine client registered under one issuer.
type Client struct {
	IssuerName string
	ID         string
	Name       string
	Scopes     []string
	Audience   string
	// TokenLifetime overrides the issuer's lifetime when non-zero.
	TokenLifetime time.Duration
	Enabled       bool
	Secrets       []Secret
	CreatedAt     time.Time
	UpdatedAt     time.Time
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

// Signing key states, in lifecycle order.
const (
	KeyPending KeyState = "pending"
	KeyActive  KeyState = "active"
	KeyRetired KeyState = "retired"
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
	CreatedAt        time.Time
}

// Store is the storage contract shared by every backend. Writes are atomic:
// an error means nothing changed.
type Store interface {
	// PutIssuer creates or replaces an issuer, keeping its CreatedAt, and
	// returns the stored record and whether it was newly created.
	PutIssuer(ctx context.Context, iss Issuer) (stored Issuer, created bool, err error)
	GetIssuer(ctx context.Context, name string) (Issuer, error)
	// ListIssuers returns every issuer ordered by name.
	ListIssuers(ctx context.Context) ([]Issuer, error)

	// CreateClient stores a client with its secrets. It returns ErrNotFound
	// when the issuer does not exist and ErrConflict when the id is taken.
	CreateClient(ctx context.Context, c Client) (Client, error)
	GetClient(ctx context.Context, issuerName, clientID string) (Client, error)

	// CreateSigningKey stores a key. It returns ErrNotFound when the issuer
	// does not exist and ErrConflict when the id is taken or the key would
	// be a second active key of its issuer.
	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns an issuer's keys, oldest first.
	ListSigningKeys(ctx context.Context, issuerName string) ([]SigningKey, error)

	// Ping reports whether the backend can serve requests.
	Ping(ctx context.Context) error
}
