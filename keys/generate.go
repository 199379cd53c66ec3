package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"slices"
)

// Signing algorithms an issuer may use. RS256 is RFC 9068's mandatory one and
// the default.
const (
	RS256 = "RS256"
	PS256 = "PS256"
	ES256 = "ES256"
	EdDSA = "EdDSA"
)

// Algorithms lists every supported signing algorithm.
func Algorithms() []string { return []string{RS256, PS256, ES256, EdDSA} }

// SupportedAlgorithm reports whether alg can sign tokens.
func SupportedAlgorithm(alg string) bool { return slices.Contains(Algorithms(), alg) }

// rsaBits is the modulus size of generated RSA keys: RFC 9068 and NIST both
// accept 2048, and larger keys cost every token request a slower signature.
const rsaBits = 2048

// Generate makes a fresh private key of the type alg needs: RSA-2048 for
// RS256 and PS256, P-256 for ES256, Ed25519 for EdDSA.
func Generate(alg string) (crypto.Signer, error) {
	switch alg {
	case RS256, PS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	case ES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	default:
		return nil, fmt.Errorf("unsupported signing algorithm %q", alg)
	}
}
