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
	"slices"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KEKSize is the length in bytes of a key-encryption key.
const KEKSize = chacha20poly1305.KeySize

// Sealer encrypts private keys at rest with XChaCha20-Poly1305. The sealed
// bytes are bound to the key's issuer and id as associated data, so a sealed
// key copied into another row fails to open.
//
// A Sealer may know several key-encryption keys: it seals under the first
// and opens under whichever sealed a key, so KEKs can be rotated.
type Sealer struct {
	kekID string // the primary KEK's id
	aeads map[string]cipher.AEAD
}

// NewSealer returns a Sealer that seals under the first of the 32-byte
// key-encryption keys and opens under any of them.
func NewSealer(primary []byte, older ...[]byte) (*Sealer, error) {
	s := &Sealer{aeads: map[string]cipher.AEAD{}}
	for i, kek := range append([][]byte{primary}, older...) {
		if len(kek) != KEKSize {
			return nil, fmt.Errorf("key-encryption key %d must be %d bytes, got %d", i+1, KEKSize, len(kek))
		}
		aead, err := chacha20poly1305.NewX(kek)
		if err != nil {
			return nil, fmt.Errorf("create AEAD: %w", err)
		}
		id := kekFingerprint(kek)
		if i == 0 {
			s.kekID = id
		}
		s.aeads[id] = aead
	}
	return s, nil
}

// kekFingerprint names a KEK without revealing it, so that a key sealed under
// another KEK is reported as such rather than as corrupt.
func kekFingerprint(kek []byte) string {
	sum := sha256.Sum256(append([]byte("authz key-encryption key id\x00"), kek...))
	return "kek-" + hex.EncodeToString(sum[:6])
}

// KEKID names the key-encryption key this Sealer seals under.
func (s *Sealer) KEKID() string { return s.kekID }

// KEKIDs names every key-encryption key this Sealer can open with, the
// primary first.
func (s *Sealer) KEKIDs() []string {
	ids := []string{s.kekID}
	for id := range s.aeads {
		if id != s.kekID {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids[1:])
	return ids
}

func associatedData(issuerName, kid string) []byte {
	return []byte("authz signing key\x00" + issuerName + "\x00" + kid)
}

// Seal encrypts plaintext for the key kid of issuerName. The result is the
// random nonce followed by the ciphertext.
func (s *Sealer) Seal(issuerName, kid string, plaintext []byte) []byte {
	aead := s.aeads[s.kekID]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	_, _ = rand.Read(nonce) // crypto/rand.Read never fails on supported platforms.
	return aead.Seal(nonce, nonce, plaintext, associatedData(issuerName, kid))
}

// ErrWrongKEK reports a key sealed under a key-encryption key that is not
// configured.
var ErrWrongKEK = errors.New("sealed under a key-encryption key that is not configured")

// Open decrypts a key sealed by Seal for the same issuer and kid.
func (s *Sealer) Open(kekID, issuerName, kid string, sealed []byte) ([]byte, error) {
	aead, ok := s.aeads[kekID]
	if !ok {
		return nil, fmt.Errorf("open key %s: %w (sealed under %s; configured: %s)", kid, ErrWrongKEK, kekID, strings.Join(s.KEKIDs(), ", "))
	}
	n := aead.NonceSize()
	if len(sealed) < n+aead.Overhead() {
		return nil, fmt.Errorf("open key %s: sealed data too short", kid)
	}
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], associatedData(issuerName, kid))
	if err != nil {
		return nil, fmt.Errorf("open key %s: authentication failed: the sealed key was altered or belongs to another key", kid)
	}
	return plain, nil
}
