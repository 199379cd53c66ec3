package credential

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
)

// secretBytes is the entropy of a generated client secret: 256 bits, enough
// that a plain SHA-256 digest is as strong as any password hash.
const secretBytes = 32

// hintLength is how much of a secret an operator sees to tell secrets
// apart: too little to help an attacker.
const hintLength = 4

// Secret is a client secret as it is stored: an id, the SHA-256 digest and a
// hint. Value holds the secret itself only right after NewSecret, so that it
// can be shown once.
type Secret struct {
	Value  string
	ID     string
	Digest []byte
	Hint   string
}

// NewSecret makes a random secret of 256 bits.
func NewSecret() Secret {
	raw := make([]byte, secretBytes)
	_, _ = rand.Read(raw)
	return StoredSecret(base64.RawURLEncoding.EncodeToString(raw))
}

// StoredSecret is what is kept of a secret chosen elsewhere, such as one
// carried over from another server: its digest, never the value.
func StoredSecret(value string) Secret {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	// A short secret (one carried over from elsewhere) would be half
	// shown by its hint: it gets none.
	hint := ""
	if len(value) >= 4*hintLength {
		hint = value[len(value)-hintLength:]
	}
	return Secret{Value: value, ID: hex.EncodeToString(id), Digest: SecretDigest(value), Hint: hint}
}

// SecretDigest is the digest under which a secret is stored.
func SecretDigest(value string) []byte {
	sum := sha256.Sum256([]byte(value))
	return sum[:]
}

// SecretMatches reports, in time independent of where they differ, whether
// presented is the secret whose digest is stored.
func SecretMatches(digest []byte, presented string) bool {
	sum := sha256.Sum256([]byte(presented))
	return len(digest) == len(sum) && subtle.ConstantTimeCompare(digest, sum[:]) == 1
}

// Prefixes of the opaque bearer tokens of client registration (RFC 7591
// and 7592), which tell them from each other and from access tokens.
const (
	InitialAccessPrefix      = "authz-iat."
	RegistrationAccessPrefix = "authz-rat."
)

// NewOpaqueToken makes a bearer token of 256 random bits behind prefix. Only
// its digest (SecretDigest) is to be kept.
func NewOpaqueToken(prefix string) string {
	raw := make([]byte, secretBytes)
	_, _ = rand.Read(raw)
	return prefix + base64.RawURLEncoding.EncodeToString(raw)
}
