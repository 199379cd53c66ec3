package issuer

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/authz-dev/authz/store"
)

// secretBytes is the entropy of a client secret: 256 bits, enough that a
// plain SHA-256 digest is as strong as any password hash.
const secretBytes = 32

// NewClientSecret makes a random secret. It returns the secret, to be shown
// once, and the record to store, which holds only its digest. A non-zero
// expiresAt bounds the secret's validity.
func NewClientSecret(expiresAt time.Time) (string, store.Secret) {
	raw := make([]byte, secretBytes)
	_, _ = rand.Read(raw)
	secret := base64.RawURLEncoding.EncodeToString(raw)
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	digest := sha256.Sum256([]byte(secret))
	return secret, store.Secret{
		ID:        hex.EncodeToString(id),
		Digest:    digest[:],
		Hint:      secret[len(secret)-4:],
		ExpiresAt: expiresAt,
	}
}
