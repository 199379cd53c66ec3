// Package keys generates issuer signing keys, seals their private halves
// under the operator's key-encryption key, and serves them from an in-memory
// keyring to the token endpoint and the JWKS.
package keys

import (
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// KEKSize is the length in bytes of a key-encryption key.
const KEKSize = chacha20poly1305.KeySize

// Sealer encrypts private keys at rest with XChaCha20-Poly1305. The sealed
// bytes are bound to the key's issuer and id as associated data, so a sealed
// key copied into another row fails to open.
type Sealer struct {
	kekID string
	aead  cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key-encryption key.
func NewSealer(kek []byte) (*Sealer, error) {
	if len(kek) != KEKSize {
		return nil, fmt.Errorf("key-encryption key must be %d bytes, got %d", KEKSize, len(kek))
	}
	aead, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, fmt.Errorf("create AEAD: %w", err)
	}
	return &Sealer{kekID: kekFingerprint(kek), aead: aead}, nil
}

// kekFingerprint names a KEK without revealing it, so that a key sealed under
// another KEK is reported as such rather than as corrupt.
func kekFingerprint(kek []byte) string {
	sum := sha256.Sum256(append([]byte("authz key-encryption key id\x00"), kek...))
	return "kek-" + hex.EncodeToString(sum[:6])
}

// KEKID names the key-encryption key this Sealer seals under.
func (s *Sealer) KEKID() string { return s.kekID }

func associatedData(issuerName, kid string) []byte {
	return []byte("authz signing key\x00" + issuerName + "\x00" + kid)
}

// Seal encrypts plaintext for the key kid of issuerName. The result is the
// random nonce followed by the ciphertext.
func (s *Sealer) Seal(issuerName, kid string, plaintext []byte) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms.
	return s.aead.Seal(nonce, nonce, plaintext, associatedData(issuerName, kid))
}

// ErrWrongKEK reports a key sealed under a key-encryption key that is not
// configured.
var ErrWrongKEK = errors.New("sealed under a key-encryption key that is not configured")

// Open decrypts a key sealed by Seal for the same issuer and kid.
func (s *Sealer) Open(kekID, issuerName, kid string, sealed []byte) ([]byte, error) {
	if kekID != s.kekID {
		return nil, fmt.Errorf("open key %s: %w (sealed under %s, configured %s)", kid, ErrWrongKEK, kekID, s.kekID)
	}
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("open key %s: sealed data too short", kid)
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], associatedData(issuerName, kid))
	if err != nil {
		return nil, fmt.Errorf("open key %s: authentication failed: the sealed key was altered or belongs to another key", kid)
	}
	return plain, nil
}
