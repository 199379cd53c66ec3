package credential_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/credential"
)

func TestSecretMatchesOnlyItsOwnDigest(t *testing.T) {
	s := credential.NewSecret()
	if len(s.Value) != 43 || s.Hint != s.Value[len(s.Value)-4:] || len(s.ID) != 16 {
		t.Fatalf("secret %d chars, hint %q, id %q", len(s.Value), s.Hint, s.ID)
	}
	if !credential.SecretMatches(s.Digest, s.Value) {
		t.Fatal("a secret does not match its own digest")
	}
	// A digest that differs only in its last byte must be refused: the
	// comparison covers every byte.
	almost := append([]byte(nil), s.Digest...)
	almost[len(almost)-1] ^= 1
	if credential.SecretMatches(almost, s.Value) {
		t.Fatal("a digest differing in its last byte matched")
	}
	for _, bad := range [][]byte{nil, s.Digest[:31], append(append([]byte(nil), s.Digest...), 0)} {
		if credential.SecretMatches(bad, s.Value) {
			t.Fatalf("a digest of %d bytes matched", len(bad))
		}
	}
	if credential.SecretMatches(s.Digest, s.Value+"x") || credential.SecretMatches(s.Digest, "") {
		t.Fatal("another secret matched")
	}
}

func TestStoredSecretKeepsNoValueButTheDigest(t *testing.T) {
	s := credential.StoredSecret("kc-secret-from-keycloak-1234")
	if s.Hint != "1234" || !credential.SecretMatches(s.Digest, "kc-secret-from-keycloak-1234") {
		t.Fatalf("hint %q, matches %v", s.Hint, credential.SecretMatches(s.Digest, "kc-secret-from-keycloak-1234"))
	}
	// A short secret carried over from elsewhere would be half shown by
	// a hint, or whole: it gets none.
	for _, short := range []string{"ab", "kc-secret-1234"} {
		if h := credential.StoredSecret(short).Hint; h != "" {
			t.Fatalf("the secret %q has the hint %q", short, h)
		}
	}
}

func TestCheckClientKeyRules(t *testing.T) {
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		key  jose.JSONWebKey
		want string // part of the error; empty: accepted
	}{
		{"RSA 2048", jose.JSONWebKey{Key: &rsa2048.PublicKey}, ""},
		{"RSA 1024", jose.JSONWebKey{Key: &rsa1024.PublicKey}, "at least 2048 bits"},
		{"P-256", jose.JSONWebKey{Key: &p256.PublicKey, Use: "sig", Algorithm: "ES256"}, ""},
		{"P-224", jose.JSONWebKey{Key: &p224.PublicKey}, "P-256 or P-384"},
		{"Ed25519", jose.JSONWebKey{Key: edPub}, ""},
		{"private", jose.JSONWebKey{Key: edPriv}, "public key"},
		{"encryption", jose.JSONWebKey{Key: &rsa2048.PublicKey, Use: "enc"}, "encryption key"},
		{"HMAC alg", jose.JSONWebKey{Key: &rsa2048.PublicKey, Algorithm: "HS256"}, "not accepted"},
		{"symmetric", jose.JSONWebKey{Key: []byte("0123456789abcdef")}, "public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := credential.CheckClientKey(tc.key)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if !errors.Is(credential.CheckClientKey(jose.JSONWebKey{Key: &rsa2048.PublicKey, Use: "enc"}), credential.ErrEncryptionKey) {
		t.Fatal("an encryption key is not reported as such")
	}
}

func TestValidateClientJWKAddsTheThumbprintKid(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	raw, _ := jose.JSONWebKey{Key: &p256.PublicKey}.MarshalJSON()
	out, err := credential.ValidateClientJWK(raw)
	if err != nil {
		t.Fatal(err)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(out); err != nil {
		t.Fatal(err)
	}
	want, _ := credential.ThumbprintKID(p256)
	if jwk.KeyID != want {
		t.Fatalf("kid %q, want the thumbprint %q", jwk.KeyID, want)
	}
	if fromPublic, _ := credential.ThumbprintKID(&p256.PublicKey); fromPublic != want {
		t.Fatalf("the kid of the public key %q differs from the private key's %q", fromPublic, want)
	}
	if _, err := credential.ValidateClientJWK([]byte(`{"kty":"nope"}`)); err == nil {
		t.Fatal("a malformed JWK was accepted")
	}
}

// TestThumbprintKIDIsRFC7638 checks the derivation against the example of
// RFC 7638 §3.1, computed there by hand.
func TestThumbprintKIDIsRFC7638(t *testing.T) {
	const example = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON([]byte(example)); err != nil {
		t.Fatal(err)
	}
	kid, err := credential.ThumbprintKID(jwk.Key)
	if err != nil || kid != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("kid %q, %v", kid, err)
	}
}

func TestAudienceReadsAStringOrAList(t *testing.T) {
	for raw, want := range map[string][]string{`"a"`: {"a"}, `["a","b"]`: {"a", "b"}} {
		var a credential.Audience
		if err := json.Unmarshal([]byte(raw), &a); err != nil || strings.Join(a, ",") != strings.Join(want, ",") {
			t.Fatalf("%s: %v, %v", raw, a, err)
		}
	}
	var a credential.Audience
	if err := json.Unmarshal([]byte(`1`), &a); err == nil {
		t.Fatal("a number was read as an audience")
	}
	out, _ := json.Marshal(credential.AccessClaims{Audience: credential.Audience{"a"}})
	if !strings.Contains(string(out), `"aud":["a"]`) {
		t.Fatalf("aud is not written as a list: %s", out)
	}
}

func TestNamesThatCanIdentifyIssuersAndClients(t *testing.T) {
	for id, valid := range map[string]bool{
		"c-billing": true, "5D0C6941-19444960DC7": true, "svc.team@example": true, strings.Repeat("a", 255): true,
		"": false, strings.Repeat("a", 256): false, "has space": false, "quo\"te": false, "back\\slash": false,
		"nul\x00": false, "\xffutf": false, "é": false,
	} {
		if got := credential.ValidClientID(id); got != valid {
			t.Errorf("ValidClientID(%q) = %v", id, got)
		}
	}
	for name, valid := range map[string]bool{"payments": true, "aps-v2": true, "ab": false, "Payments": false, "a/b": false, "x\x00y": false} {
		if got := credential.ValidIssuerName(name); got != valid {
			t.Errorf("ValidIssuerName(%q) = %v", name, got)
		}
	}
}
