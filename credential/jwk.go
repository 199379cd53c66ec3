package credential

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/go-jose/go-jose/v4"
)

// AssertionAlgorithms are the signatures a client assertion may carry:
// asymmetric only, so no "none" and no HMAC keyed with a public key.
var AssertionAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.EdDSA,
}

// AssertionAlgorithmNames are AssertionAlgorithms as strings, for metadata
// and messages.
func AssertionAlgorithmNames() []string {
	names := make([]string, len(AssertionAlgorithms))
	for i, a := range AssertionAlgorithms {
		names[i] = string(a)
	}
	return names
}

// minRSABits is the smallest RSA modulus a client may sign with.
const minRSABits = 2048

// ErrEncryptionKey marks a key published for encryption, which a verifier
// of signatures passes over rather than refuses.
var ErrEncryptionKey = errors.New(`use is "enc": an encryption key`)

// CheckClientKey applies the rules every key a client signs assertions with
// must meet, registered or fetched from its jwks_uri: a public key, for
// signatures, RSA of at least 2048 bits, EC P-256 or P-384, or Ed25519,
// with an accepted alg if it names one.
func CheckClientKey(jwk jose.JSONWebKey) error {
	if !jwk.IsPublic() {
		return errors.New("must be a public key: never send a private key")
	}
	switch jwk.Use {
	case "", "sig":
	case "enc":
		return ErrEncryptionKey
	default:
		return errors.New(`use must be "sig"`)
	}
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("RSA keys must have at least %d bits, not %d", minRSABits, k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return errors.New("EC keys must be on P-256 or P-384")
		}
	case ed25519.PublicKey:
	default:
		return fmt.Errorf("key type %T is not accepted; use RSA, EC or Ed25519", jwk.Key)
	}
	if jwk.Algorithm != "" && !slices.Contains(AssertionAlgorithmNames(), jwk.Algorithm) {
		return fmt.Errorf("alg %q is not accepted for client assertions", jwk.Algorithm)
	}
	return nil
}

// ValidateClientJWK checks a client's registered public key and returns it
// normalized, with a kid (its RFC 7638 thumbprint when it had none).
func ValidateClientJWK(raw []byte) ([]byte, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("is not a JSON Web Key: %v", err)
	}
	if err := CheckClientKey(jwk); err != nil {
		return nil, err
	}
	if jwk.KeyID == "" {
		kid, err := ThumbprintKID(jwk.Key)
		if err != nil {
			return nil, err
		}
		jwk.KeyID = kid
	}
	return jwk.MarshalJSON()
}

// ThumbprintKID is the kid this server gives a public key: its RFC 7638
// SHA-256 thumbprint, which anyone holding the key can recompute. It takes
// a public or a private key.
func ThumbprintKID(key any) (string, error) {
	if signer, ok := key.(crypto.Signer); ok {
		key = signer.Public()
	}
	thumb, err := (&jose.JSONWebKey{Key: key}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("thumbprint of a %T: %w", key, err)
	}
	return base64.RawURLEncoding.EncodeToString(thumb), nil
}
