package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/memory"
)

func newKEK(t *testing.T) []byte {
	t.Helper()
	kek := make([]byte, KEKSize)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	return kek
}

func newTestSealer(t *testing.T) *Sealer {
	t.Helper()
	s, err := NewSealer(newKEK(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewSealerRejectsKEKOfWrongLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := NewSealer(make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte KEK", n)
		}
	}
}

func TestSealedKeyOpensOnlyForItsIssuerAndKid(t *testing.T) {
	s := newTestSealer(t)
	plain := []byte("private key material")
	sealed := s.Seal("payments", "kid-1", plain)
	if bytes.Contains(sealed, plain) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1

	tests := []struct {
		name                  string
		kekID, issuer, kid    string
		sealed                []byte
		wantErr, wantWrongKEK bool
	}{
		{"its own row", s.KEKID(), "payments", "kid-1", sealed, false, false},
		{"another kid", s.KEKID(), "payments", "kid-2", sealed, true, false},
		{"another issuer", s.KEKID(), "billing", "kid-1", sealed, true, false},
		{"flipped bit", s.KEKID(), "payments", "kid-1", tampered, true, false},
		{"truncated", s.KEKID(), "payments", "kid-1", sealed[:10], true, false},
		{"another KEK", "kek-other", "payments", "kid-1", sealed, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.Open(tc.kekID, tc.issuer, tc.kid, tc.sealed)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Open error = %v, want error %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrWrongKEK) != tc.wantWrongKEK {
				t.Fatalf("Open error = %v, want ErrWrongKEK %v", err, tc.wantWrongKEK)
			}
			if !tc.wantErr && !bytes.Equal(got, plain) {
				t.Fatalf("Open = %q, want %q", got, plain)
			}
		})
	}
}

func TestSealerNamesKEKByFingerprintNotContent(t *testing.T) {
	kek := newKEK(t)
	s, _ := NewSealer(kek)
	again, _ := NewSealer(bytes.Clone(kek))
	other := newTestSealer(t)
	if s.KEKID() != again.KEKID() || s.KEKID() == other.KEKID() {
		t.Fatalf("KEK ids: %s %s %s; want equal for equal KEKs, different otherwise", s.KEKID(), again.KEKID(), other.KEKID())
	}
	if strings.Contains(s.KEKID(), string(kek)) {
		t.Fatal("KEK id reveals the KEK")
	}
}

func newIssuerStore(t *testing.T, names ...string) *memory.Store {
	t.Helper()
	st := memory.New()
	for _, n := range names {
		if _, _, err := st.PutIssuer(context.Background(), store.Issuer{Name: n}, 0); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

func TestEnsureActiveSignsWithEveryAlgorithm(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			ctx := context.Background()
			st := newIssuerStore(t, "payments")
			ring := NewKeyring()
			m := NewManager(st, newTestSealer(t), ring)
			if err := m.EnsureActive(ctx, "payments", alg); err != nil {
				t.Fatalf("EnsureActive: %v", err)
			}
			active, ok := ring.Active("payments")
			if !ok || active.Algorithm != alg {
				t.Fatalf("Active = %+v, %v; want an %s key", active, ok, alg)
			}
			token, err := active.SignCompact([]byte(`{"sub":"c-1"}`))
			if err != nil {
				t.Fatalf("SignCompact: %v", err)
			}
			jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("ParseSigned: %v", err)
			}
			h := jws.Signatures[0].Header
			if h.KeyID != active.ID || h.Algorithm != alg || h.ExtraHeaders["typ"] != AccessTokenType {
				t.Fatalf("header kid=%q alg=%q typ=%v; want %q, %q, %q", h.KeyID, h.Algorithm, h.ExtraHeaders["typ"], active.ID, alg, AccessTokenType)
			}
			jwks, ok := ring.JWKS("payments")
			if !ok {
				t.Fatal("no JWKS loaded")
			}
			pub, ok := jwks.PublicKey(h.KeyID)
			if !ok || !pub.IsPublic() {
				t.Fatalf("published key %q missing or not public", h.KeyID)
			}
			if _, err := jws.Verify(pub); err != nil {
				t.Fatalf("token does not verify against the published key: %v", err)
			}
		})
	}
}

func TestEnsureActiveIsIdempotentAndStoresOnlySealedKeys(t *testing.T) {
	ctx := context.Background()
	st := newIssuerStore(t, "payments")
	sealer := newTestSealer(t)
	ring := NewKeyring()
	m := NewManager(st, sealer, ring)
	for range 3 {
		if err := m.EnsureActive(ctx, "payments", RS256); err != nil {
			t.Fatalf("EnsureActive: %v", err)
		}
	}
	stored, err := st.ListSigningKeys(ctx, "payments")
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored keys = %d, %v; want exactly 1", len(stored), err)
	}
	k := stored[0]
	if k.State != store.KeyActive || k.KEKID != sealer.KEKID() {
		t.Fatalf("stored key = state %s kek %s; want active under %s", k.State, k.KEKID, sealer.KEKID())
	}
	var pub map[string]any
	if err := json.Unmarshal(k.PublicJWK, &pub); err != nil {
		t.Fatal(err)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := pub[private]; ok {
			t.Fatalf("stored public JWK carries private member %q", private)
		}
	}
	jwks, _ := ring.JWKS("payments")
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks.Body, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 || set.Keys[0]["kty"] != "RSA" || set.Keys[0]["d"] != nil || set.Keys[0]["kid"] != k.ID {
		t.Fatalf("JWKS = %s; want the one public RSA key", jwks.Body)
	}
}

func TestLoadUnderAnotherKEKFailsClearly(t *testing.T) {
	ctx := context.Background()
	st := newIssuerStore(t, "payments")
	if err := NewManager(st, newTestSealer(t), NewKeyring()).EnsureActive(ctx, "payments", RS256); err != nil {
		t.Fatal(err)
	}
	err := NewManager(st, newTestSealer(t), NewKeyring()).Load(ctx, "payments")
	if !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("Load under a different KEK error = %v, want ErrWrongKEK", err)
	}
}

func TestJWKSETagFollowsContent(t *testing.T) {
	ctx := context.Background()
	st := newIssuerStore(t, "a", "b")
	ring := NewKeyring()
	m := NewManager(st, newTestSealer(t), ring)
	for _, n := range []string{"a", "b"} {
		if err := m.EnsureActive(ctx, n, ES256); err != nil {
			t.Fatal(err)
		}
	}
	a1, _ := ring.JWKS("a")
	if err := m.Load(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	a2, _ := ring.JWKS("a")
	b, _ := ring.JWKS("b")
	if a1.ETag != a2.ETag {
		t.Errorf("reloading the same keys changed the ETag: %s → %s", a1.ETag, a2.ETag)
	}
	if a1.ETag == b.ETag {
		t.Errorf("different key sets share ETag %s", a1.ETag)
	}
}

func TestUnknownAlgorithmIsRefused(t *testing.T) {
	st := newIssuerStore(t, "payments")
	err := NewManager(st, newTestSealer(t), NewKeyring()).EnsureActive(context.Background(), "payments", "HS256")
	if err == nil {
		t.Fatal("EnsureActive accepted HS256")
	}
}

func TestSyncForgetsDeletedIssuersAndLoadsNewKeys(t *testing.T) {
	ctx := context.Background()
	st := newIssuerStore(t, "payments", "billing")
	ring := NewKeyring()
	sealer := newTestSealer(t)
	m := NewManager(st, sealer, ring)
	if err := m.EnsureActive(ctx, "payments", RS256); err != nil {
		t.Fatal(err)
	}
	// Another node gives billing its key; this node learns of it by Sync.
	if err := NewManager(st, sealer, NewKeyring()).EnsureActive(ctx, "billing", RS256); err != nil {
		t.Fatal(err)
	}
	if _, ok := ring.Active("billing"); ok {
		t.Fatal("billing's key is loaded before any sync")
	}
	if err := m.Sync(ctx, "billing"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ring.Active("billing"); !ok {
		t.Fatal("Sync did not load billing's new key")
	}
	if err := st.DeleteIssuer(ctx, "payments", true, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.Sync(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ring.JWKS("payments"); ok {
		t.Fatal("a deleted issuer still publishes keys")
	}
	if err := st.DeleteIssuer(ctx, "billing", true, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := ring.JWKS("billing"); ok {
		t.Fatal("SyncAll kept a deleted issuer's keys")
	}
}
