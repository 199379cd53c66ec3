package credential

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/go-jose/go-jose/v4"
)

// KeycloakKID is the kid Keycloak gives a key (KeyUtils.createKeyId): the
// unpadded base64url SHA-256 of the public key's SubjectPublicKeyInfo DER.
// It is not an RFC 7638 thumbprint; keys carried over from Keycloak keep
// it, so that tokens and client assertions naming it still find their key.
// It takes a public or a private key.
func KeycloakKID(key any) (string, error) {
	if signer, ok := key.(crypto.Signer); ok {
		key = signer.Public()
	}
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", fmt.Errorf("encode a %T as SubjectPublicKeyInfo: %w", key, err)
	}
	sum := sha256.Sum256(spki)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// KeycloakDER reads key material as Keycloak keeps it: base64 DER with no
// armour (its exports and attributes), or PEM.
func KeycloakDER(material string) ([]byte, error) {
	if block, _ := pem.Decode([]byte(material)); block != nil {
		return block.Bytes, nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(material), ""))
	if err != nil || len(der) == 0 {
		return nil, errors.New("is neither PEM nor base64 DER")
	}
	return der, nil
}

// KeycloakPublicKey reads a public key as Keycloak keeps one (base64 DER
// or PEM): a SubjectPublicKeyInfo, or an X.509 certificate whose key it
// takes.
func KeycloakPublicKey(material string) (crypto.PublicKey, error) {
	der, err := KeycloakDER(material)
	if err != nil {
		return nil, err
	}
	if pub, err := x509.ParsePKIXPublicKey(der); err == nil {
		return pub, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errors.New("is neither a public key nor a certificate")
	}
	return cert.PublicKey, nil
}

// KeycloakPrivateKey reads a private key as Keycloak keeps one (base64 DER
// or PEM): PKCS #8, which its generated keys are, or the PKCS #1 (RSA) and
// SEC 1 (EC) forms an operator may have pasted into an "rsa" provider.
func KeycloakPrivateKey(material string) (crypto.Signer, error) {
	der, err := KeycloakDER(material)
	if err != nil {
		return nil, err
	}
	if key, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		signer, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("a %T cannot sign", key)
		}
		return signer, nil
	}
	if key, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return key, nil
	}
	if key, err := x509.ParseECPrivateKey(der); err == nil {
		return key, nil
	}
	return nil, errors.New("is not a PKCS #8, PKCS #1 or SEC 1 private key")
}

// KeycloakClientJWK turns a client's public key or certificate, as
// Keycloak keeps it (jwt.credential.public.key or
// jwt.credential.certificate), into the registered JWK of a client-jwt
// client, under the kid Keycloak gives that key, so that assertions signed
// for Keycloak keep naming it.
func KeycloakClientJWK(material string) ([]byte, error) {
	pub, err := KeycloakPublicKey(material)
	if err != nil {
		return nil, err
	}
	kid, err := KeycloakKID(pub)
	if err != nil {
		return nil, err
	}
	raw, err := (&jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"}).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("cannot be used: %v", err)
	}
	return ValidateClientJWK(raw)
}
