package credential_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os/exec"
	"strings"
	"testing"

	"github.com/authz-dev/authz/credential"
)

// TestKeycloakKIDMatchesOpenSSL checks the derivation against one made by
// another program: OpenSSL's SHA-256 of the public key's DER, which is
// what Keycloak's KeyUtils.createKeyId hashes.
func TestKeycloakKIDMatchesOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl is not installed: make test installs it")
	}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, key := range map[string]any{"RSA": rsaKey, "EC": ecKey} {
		der, _ := x509.MarshalPKCS8PrivateKey(key)
		privatePEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		pub := exec.Command(openssl, "pkey", "-pubout", "-outform", "DER")
		pub.Stdin = bytes.NewReader(privatePEM)
		spki, err := pub.Output()
		if err != nil {
			t.Fatalf("%s: openssl pkey: %v", name, err)
		}
		digest := exec.Command(openssl, "dgst", "-sha256", "-binary")
		digest.Stdin = bytes.NewReader(spki)
		sum, err := digest.Output()
		if err != nil {
			t.Fatalf("%s: openssl dgst: %v", name, err)
		}
		want := strings.TrimRight(base64.URLEncoding.EncodeToString(sum), "=")
		got, err := credential.KeycloakKID(key)
		if err != nil || got != want {
			t.Errorf("%s: KeycloakKID = %q, %v; OpenSSL's digest gives %q", name, got, err, want)
		}
	}
}

func TestKeycloakKeyMaterialIsReadInEveryFormKeycloakKeeps(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	pkcs1 := x509.MarshalPKCS1PrivateKey(key)
	want, _ := credential.KeycloakKID(key)
	for name, material := range map[string]string{
		"base64 PKCS #8 (generated keys)": base64.StdEncoding.EncodeToString(pkcs8),
		"PEM PKCS #1 (pasted keys)":       string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: pkcs1})),
		"wrapped base64":                  strings.Join(splitEvery(base64.StdEncoding.EncodeToString(pkcs8), 64), "\n"),
	} {
		priv, err := credential.KeycloakPrivateKey(material)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if kid, _ := credential.KeycloakKID(priv); kid != want {
			t.Errorf("%s: another key came out", name)
		}
	}
	if _, err := credential.KeycloakPrivateKey("bm90IGEga2V5"); err == nil {
		t.Error("a private key was read from base64 text")
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out, s = append(out, s[:n]), s[n:]
	}
	return append(out, s)
}
