package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/credential"
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
		if _, err := NewSealer(make([]byte, KEKSize), make([]byte, n)); err == nil {
			t.Errorf("NewSealer accepted a %d-byte older KEK", n)
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

func TestSealerSealsUnderTheFirstKEKAndOpensUnderAny(t *testing.T) {
	oldKEK, newKEK := newKEK(t), newKEK(t)
	old, _ := NewSealer(oldKEK)
	sealedOld := old.Seal("payments", "k1", []byte("secret"))
	both, err := NewSealer(newKEK, oldKEK)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := both.Open(old.KEKID(), "payments", "k1", sealedOld); err != nil || string(got) != "secret" {
		t.Fatalf("open under the older KEK: %q, %v", got, err)
	}
	if both.KEKID() == old.KEKID() || both.KEKIDs()[0] != both.KEKID() || len(both.KEKIDs()) != 2 {
		t.Fatalf("KEK ids %v, primary %s", both.KEKIDs(), both.KEKID())
	}
}

// testClock is a settable clock for the manager.
type testClock struct{ t time.Time }

func (c *testClock) now() time.Time          { return c.t }
func (c *testClock) advance(d time.Duration) { c.t = c.t.Add(d) }

type harness struct {
	st     *memory.Store
	ring   *Keyring
	sealer *Sealer
	clock  *testClock
	m      *Manager
}

var testSchedule = Schedule{RotationPeriod: time.Hour, PublishLead: 10 * time.Minute, RetirePeriod: 30 * time.Minute}

func newHarness(t *testing.T, issuers map[string]string) *harness {
	t.Helper()
	h := &harness{st: memory.New(), ring: NewKeyring(0), sealer: newTestSealer(t), clock: &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
	for name, alg := range issuers {
		if _, _, err := h.st.PutIssuer(context.Background(), store.Issuer{Name: name, SigningAlgorithm: alg}, 0); err != nil {
			t.Fatal(err)
		}
	}
	h.m = NewManager(h.st, h.sealer, h.ring, testSchedule, h.clock.now)
	return h
}

func (h *harness) reconcile(t *testing.T, issuer string) {
	t.Helper()
	if _, err := h.m.Reconcile(context.Background(), issuer); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
}

// states summarizes an issuer's keys as "kidprefix:state" in creation order.
func (h *harness) states(t *testing.T, issuer string) []store.SigningKey {
	t.Helper()
	keys, err := h.st.ListSigningKeys(context.Background(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// active and jwks are the manager's answers, ok false on any error.
func (h *harness) active(issuer string) (*ActiveKey, bool) {
	k, err := h.m.Active(context.Background(), issuer)
	return k, err == nil
}

func (h *harness) jwks(issuer string) (*JWKS, bool) {
	j, err := h.m.JWKS(context.Background(), issuer)
	return j, err == nil
}

func published(t *testing.T, m *Manager, issuer string) map[string]bool {
	t.Helper()
	jwks, err := m.JWKS(context.Background(), issuer)
	if err != nil {
		return nil
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks.Body, &set); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, k := range set.Keys {
		out[k.KeyID] = true
	}
	return out
}

func TestReconcileSignsWithEveryAlgorithm(t *testing.T) {
	for _, alg := range Algorithms() {
		t.Run(alg, func(t *testing.T) {
			h := newHarness(t, map[string]string{"payments": alg})
			h.reconcile(t, "payments")
			active, ok := h.active("payments")
			if !ok || active.Algorithm != alg {
				t.Fatalf("Active = %+v, %v; want an %s key", active, ok, alg)
			}
			token, err := active.SignCompact([]byte(`{"sub":"c-1"}`))
			if err != nil {
				t.Fatalf("SignCompact: %v", err)
			}
			jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
			if err != nil {
				t.Fatalf("ParseSigned: %v", err)
			}
			hdr := jws.Signatures[0].Header
			if hdr.KeyID != active.ID || hdr.Algorithm != alg || hdr.ExtraHeaders["typ"] != credential.AccessTokenType {
				t.Fatalf("header kid=%q alg=%q typ=%v", hdr.KeyID, hdr.Algorithm, hdr.ExtraHeaders["typ"])
			}
			jwks, _ := h.jwks("payments")
			pub, ok := jwks.PublicKey(hdr.KeyID)
			if !ok || !pub.IsPublic() {
				t.Fatalf("published key %q missing or not public", hdr.KeyID)
			}
			if _, err := jws.Verify(pub); err != nil {
				t.Fatalf("token does not verify against the published key: %v", err)
			}
		})
	}
}

func TestReconcileIsIdempotentAndStoresOnlySealedKeys(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": RS256})
	for range 3 {
		h.reconcile(t, "payments")
	}
	stored := h.states(t, "payments")
	if len(stored) != 1 {
		t.Fatalf("stored keys = %d, want exactly 1", len(stored))
	}
	k := stored[0]
	if k.State != store.KeyActive || k.KEKID != h.sealer.KEKID() || !k.ActivatedAt.Equal(h.clock.t) {
		t.Fatalf("stored key = %+v", k)
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
	jwks, _ := h.jwks("payments")
	if bytes.Contains(jwks.Body, []byte(`"d"`)) || !published(t, h.m, "payments")[k.ID] {
		t.Fatalf("JWKS = %s", jwks.Body)
	}
}

func TestPlanRotationCoversEveryTransitionAndBoundary(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := testSchedule // period 1h, lead 10m, retire 30m
	active := store.SigningKey{ID: "a", Algorithm: RS256, State: store.KeyActive, ActivatedAt: t0}
	pending := store.SigningKey{ID: "p", Algorithm: RS256, State: store.KeyPending, CreatedAt: t0.Add(50 * time.Minute), ActivateAt: t0.Add(time.Hour)}
	retired := store.SigningKey{ID: "r", Algorithm: RS256, State: store.KeyRetired, DeleteAt: t0.Add(20 * time.Minute)}
	revoked := store.SigningKey{ID: "x", Algorithm: RS256, State: store.KeyRevoked, DeleteAt: t0.Add(20 * time.Minute)}
	tests := []struct {
		name string
		now  time.Time
		alg  string
		keys []store.SigningKey
		want plan
	}{
		{"first key signs at once", t0, RS256, nil, plan{create: store.KeyActive, createAlg: RS256}},
		{"young active key: nothing", t0.Add(49*time.Minute + 59*time.Second), RS256, []store.SigningKey{active}, plan{}},
		{"successor published a lead before the period ends", t0.Add(50 * time.Minute), RS256, []store.SigningKey{active},
			plan{create: store.KeyPending, createAlg: RS256, activateAt: t0.Add(time.Hour)}},
		{"pending key waits out its lead", t0.Add(59*time.Minute + 59*time.Second), RS256, []store.SigningKey{active, pending}, plan{}},
		{"pending key signs when the lead is over", t0.Add(time.Hour), RS256, []store.SigningKey{active, pending},
			plan{promote: "p", retire: "a", deleteAfter: t0.Add(90 * time.Minute)}},
		{"retired key stays before its time", t0.Add(20*time.Minute - time.Second), RS256, []store.SigningKey{active, retired}, plan{}},
		{"retired key goes at its time", t0.Add(20 * time.Minute), RS256, []store.SigningKey{active, retired}, plan{remove: []string{"r"}}},
		{"revoked key record goes at its time", t0.Add(20 * time.Minute), RS256, []store.SigningKey{active, revoked}, plan{remove: []string{"x"}}},
		{"algorithm change is a rotation", t0.Add(time.Minute), ES256, []store.SigningKey{active},
			plan{create: store.KeyPending, createAlg: ES256, activateAt: t0.Add(11 * time.Minute)}},
		{"pending key of a dropped algorithm is replaced", t0.Add(55 * time.Minute), ES256, []store.SigningKey{active, pending},
			plan{remove: []string{"p"}, create: store.KeyPending, createAlg: ES256, activateAt: t0.Add(65 * time.Minute)}},
		{"no active key: pending key signs at once", t0.Add(51 * time.Minute), RS256, []store.SigningKey{pending}, plan{promote: "p"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := planRotation(tc.now, s, tc.alg, tc.keys)
			if got.create != tc.want.create || got.createAlg != tc.want.createAlg || !got.activateAt.Equal(tc.want.activateAt) ||
				got.promote != tc.want.promote || got.retire != tc.want.retire || !got.deleteAfter.Equal(tc.want.deleteAfter) ||
				strings.Join(got.remove, ",") != strings.Join(tc.want.remove, ",") {
				t.Fatalf("plan = %+v\nwant   %+v", got, tc.want)
			}
		})
	}
}

// TestRotationWalksTheWholeScheduleAndPublishesBeforeUse drives the manager
// with a fake clock through two rotations, checking at every minute that
// the signing key has been published for at least the lead and that retired
// keys stay published for the retire period.
func TestRotationWalksTheWholeScheduleAndPublishesBeforeUse(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": RS256})
	firstSeen := map[string]time.Time{}
	lastSigned := map[string]time.Time{}
	start := h.clock.t
	signers := map[string]bool{}
	for h.clock.t.Before(start.Add(3 * time.Hour)) {
		h.reconcile(t, "payments")
		pub := published(t, h.m, "payments")
		for kid := range pub {
			if _, ok := firstSeen[kid]; !ok {
				firstSeen[kid] = h.clock.t
			}
		}
		active, _ := h.active("payments")
		if !pub[active.ID] {
			t.Fatalf("at %v the signing key %s is not published", h.clock.t.Sub(start), active.ID)
		}
		signers[active.ID] = true
		if len(signers) > 1 && h.clock.t.Sub(firstSeen[active.ID]) < testSchedule.PublishLead {
			t.Fatalf("at %v key %s signs %v after publication, less than the lead", h.clock.t.Sub(start), active.ID, h.clock.t.Sub(firstSeen[active.ID]))
		}
		for kid, last := range lastSigned {
			if kid != active.ID && !pub[kid] && h.clock.t.Sub(last) < testSchedule.RetirePeriod {
				t.Fatalf("at %v key %s left the JWKS %v after it last signed", h.clock.t.Sub(start), kid, h.clock.t.Sub(last))
			}
		}
		lastSigned[active.ID] = h.clock.t
		if n := len(h.states(t, "payments")); n > 3 {
			t.Fatalf("%d keys stored; retired keys are not being deleted", n)
		}
		h.clock.advance(time.Minute)
	}
	if len(signers) != 3 {
		t.Fatalf("%d keys signed over 3 periods, want 3", len(signers))
	}
}

func TestRotateNowPublishesFirstAndSignsAfterTheLead(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": RS256})
	ctx := context.Background()
	h.reconcile(t, "payments")
	first, _ := h.active("payments")
	if err := h.m.RotateNow(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if err := h.m.RotateNow(ctx, "payments"); err != nil { // a second call adds nothing
		t.Fatal(err)
	}
	keys := h.states(t, "payments")
	if len(keys) != 2 || keys[1].State != store.KeyPending || !published(t, h.m, "payments")[keys[1].ID] {
		t.Fatalf("after RotateNow: %+v", keys)
	}
	h.clock.advance(testSchedule.PublishLead - time.Second)
	h.reconcile(t, "payments")
	if a, _ := h.active("payments"); a.ID != first.ID {
		t.Fatal("the new key signs before its lead is over")
	}
	h.clock.advance(time.Second)
	h.reconcile(t, "payments")
	if a, _ := h.active("payments"); a.ID != keys[1].ID {
		t.Fatal("the new key does not sign after its lead")
	}
	if !published(t, h.m, "payments")[first.ID] {
		t.Fatal("the retired key left the JWKS at once")
	}
}

func TestRevokeWithdrawsTheKeyAndAFreshKeySigns(t *testing.T) {
	tests := []struct {
		name        string
		withPending bool
	}{{"no successor yet", false}, {"successor pending", true}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, map[string]string{"payments": ES256})
			ctx := context.Background()
			h.reconcile(t, "payments")
			compromised, _ := h.active("payments")
			if tc.withPending {
				if err := h.m.RotateNow(ctx, "payments"); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.m.Revoke(ctx, "payments", compromised.ID); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			next, ok := h.active("payments")
			if !ok || next.ID == compromised.ID {
				t.Fatal("no fresh key signs after the revoke")
			}
			pub := published(t, h.m, "payments")
			if pub[compromised.ID] || !pub[next.ID] {
				t.Fatalf("JWKS after revoke: %v", pub)
			}
			if err := h.m.Revoke(ctx, "payments", compromised.ID); err != nil {
				t.Fatalf("second revoke: %v", err)
			}
			if err := h.m.Revoke(ctx, "payments", "no-such-kid"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("revoke unknown kid: %v", err)
			}
		})
	}
}

func TestRSAIssuerPublishesOnlyRSAKeysOnceAnRSAKeySigns(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": ES256})
	ctx := context.Background()
	h.reconcile(t, "payments")
	ecKey, _ := h.active("payments")
	iss, _ := h.st.GetIssuer(ctx, "payments")
	iss.SigningAlgorithm = RS256
	if _, _, err := h.st.PutIssuer(ctx, iss, 0); err != nil {
		t.Fatal(err)
	}
	h.reconcile(t, "payments")
	keys := h.states(t, "payments")
	rsaKey := keys[len(keys)-1]
	if pub := published(t, h.m, "payments"); !pub[ecKey.ID] || !pub[rsaKey.ID] {
		t.Fatalf("while the EC key signs both must be published: %v", pub)
	}
	h.clock.advance(testSchedule.PublishLead)
	h.reconcile(t, "payments")
	if a, _ := h.active("payments"); a.ID != rsaKey.ID || a.Algorithm != RS256 {
		t.Fatalf("active = %+v, want the RSA key", a)
	}
	if pub := published(t, h.m, "payments"); pub[ecKey.ID] || !pub[rsaKey.ID] {
		t.Fatalf("an RS256 issuer publishes a non-RSA key: %v", pub)
	}
}

func TestRekeyResealsUnderTheNewKEKAndIsSafeToRepeat(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": RS256, "billing": EdDSA})
	ctx := context.Background()
	h.reconcile(t, "payments")
	h.reconcile(t, "billing")
	oldKEK := h.sealer
	newKEKBytes := newKEK(t)
	both, _ := NewSealer(newKEKBytes, kekBytesOf(t, h))
	m := NewManager(h.st, both, NewKeyring(0), testSchedule, h.clock.now)
	n, err := m.Rekey(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Rekey = %d, %v; want 2", n, err)
	}
	if n, err := m.Rekey(ctx); err != nil || n != 0 {
		t.Fatalf("second Rekey = %d, %v; want 0", n, err)
	}
	onlyNew, _ := NewSealer(newKEKBytes)
	if err := NewManager(h.st, onlyNew, NewKeyring(0), testSchedule, h.clock.now).CheckKEKs(ctx); err != nil {
		t.Fatalf("the new KEK alone cannot open the re-sealed keys: %v", err)
	}
	if err := NewManager(h.st, oldKEK, NewKeyring(0), testSchedule, h.clock.now).CheckKEKs(ctx); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("the old KEK alone: %v, want ErrWrongKEK", err)
	}
}

// kekBytesOf recovers the harness's KEK by building the harness with a
// known one instead; kept as a helper so the test reads in order.
func kekBytesOf(t *testing.T, h *harness) []byte {
	t.Helper()
	kek := newKEK(t)
	s, _ := NewSealer(kek)
	// Re-seal the stored keys under this known KEK, the way an operator's
	// old KEK would have sealed them.
	ctx := context.Background()
	issuers, _ := h.st.ListIssuers(ctx, store.Page{})
	for _, iss := range issuers {
		_, err := h.st.UpdateSigningKeys(ctx, iss.Name, func(keys []store.SigningKey) ([]store.SigningKey, error) {
			for i, k := range keys {
				plain, err := h.sealer.Open(k.KEKID, k.IssuerName, k.ID, k.SealedPrivateKey)
				if err != nil {
					return nil, err
				}
				keys[i].SealedPrivateKey, keys[i].KEKID = s.Seal(k.IssuerName, k.ID, plain), s.KEKID()
			}
			return keys, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	h.sealer = s
	return kek
}

func TestLoadUnderAnotherKEKFailsClearly(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": RS256})
	h.reconcile(t, "payments")
	other := NewManager(h.st, newTestSealer(t), NewKeyring(0), testSchedule, nil)
	if _, err := other.Active(context.Background(), "payments"); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("loading under a different KEK: error = %v, want ErrWrongKEK", err)
	}
	if err := other.CheckKEKs(context.Background()); !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("CheckKEKs under a different KEK: error = %v, want ErrWrongKEK", err)
	}
}

func TestJWKSMaxAgeFollowsThePublicationLead(t *testing.T) {
	tests := []struct {
		lead, want time.Duration
	}{
		{11 * time.Minute, 5 * time.Minute},
		{DefaultSchedule(5 * time.Minute).PublishLead, 5 * time.Minute},
		{12 * time.Second, 4 * time.Second},
		{time.Second, 0},
	}
	for _, tc := range tests {
		s := Schedule{PublishLead: tc.lead}
		if got := s.JWKSMaxAge(); got != tc.want {
			t.Errorf("lead %v: max-age %v, want %v", tc.lead, got, tc.want)
		}
		if 2*s.JWKSMaxAge() >= tc.lead {
			t.Errorf("lead %v: two cache lifetimes (%v) do not fit in the lead", tc.lead, 2*s.JWKSMaxAge())
		}
	}
}

// TestKeysLoadOnFirstUseAndInvalidationReloads: another node's writes reach
// this node's keyring through Invalidate (a change notification) or
// InvalidateChanged (the poll); until then it serves what it holds, and an
// issuer it never held is loaded from the store as it is.
func TestKeysLoadOnFirstUseAndInvalidationReloads(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": ES256, "billing": ES256})
	ctx := context.Background()
	other := NewManager(h.st, h.sealer, NewKeyring(0), testSchedule, h.clock.now)
	if err := h.m.InvalidateChanged(ctx); err != nil { // marks where polls begin
		t.Fatal(err)
	}
	if _, err := h.m.Active(ctx, "payments"); !errors.Is(err, ErrNoActiveKey) {
		t.Fatalf("Active before any key = %v, want ErrNoActiveKey", err)
	}
	if _, err := other.Reconcile(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.active("payments"); ok {
		t.Fatal("the keyring dropped its entry without being told")
	}
	h.m.Invalidate("payments")
	first, ok := h.active("payments")
	if !ok {
		t.Fatal("Invalidate did not make the next use load the new key")
	}

	// billing was never held: its first use loads what the store has.
	if _, err := other.Reconcile(ctx, "billing"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.active("billing"); !ok {
		t.Fatal("first use of billing did not load its key")
	}

	// A rotation the notification missed is caught by the poll.
	if err := other.RotateNow(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if n := len(published(t, h.m, "payments")); n != 1 {
		t.Fatalf("publishes %d keys before the poll, want the 1 it held", n)
	}
	if err := h.m.InvalidateChanged(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(published(t, h.m, "payments")); n != 2 {
		t.Fatalf("publishes %d keys after the poll, want the pending successor too", n)
	}
	if again, _ := h.active("payments"); again.ID != first.ID {
		t.Fatal("the pending key signs before its lead")
	}

	if err := h.st.DeleteIssuer(ctx, "billing", true, 0); err != nil {
		t.Fatal(err)
	}
	h.m.Invalidate("billing")
	if _, err := h.m.JWKS(ctx, "billing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("JWKS of a deleted issuer = %v, want ErrNotFound", err)
	}
}

// TestKeyringHoldsItsBoundAndSharesConcurrentLoads: a bounded keyring
// evicts issuers whose keys were only published before those promoted by
// tokens, and a burst of first uses of one issuer opens its keys once.
func TestKeyringHoldsItsBoundAndSharesConcurrentLoads(t *testing.T) {
	issuers := map[string]string{}
	for i := range 5 {
		issuers[fmt.Sprintf("tenant-%d", i)] = ES256
	}
	h := newHarness(t, issuers)
	ctx := context.Background()
	for name := range issuers {
		h.reconcile(t, name)
	}
	counted := &readCounter{Store: h.st}
	h.m = NewManager(counted, h.sealer, NewKeyring(3), testSchedule, h.clock.now)

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := h.m.Active(ctx, "tenant-0"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Two tokens issued, as the token endpoint promotes after each.
	h.m.Promote("tenant-0")
	h.m.Promote("tenant-0")
	if n := counted.perIssuer.Load(); n != 1 {
		t.Fatalf("20 concurrent first uses read the keys %d times, want once", n)
	}
	for i := range 5 {
		if _, err := h.m.JWKS(ctx, fmt.Sprintf("tenant-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	before := h.m.CacheStats()
	if before.Entries != 3 || before.Hits+before.Misses != 25 || counted.perIssuer.Load() != 5 {
		t.Fatalf("stats = %+v after %d loads, want 3 entries (the bound) after 25 lookups and 5 loads", before, counted.perIssuer.Load())
	}
	// tenant-0, in steady use, outlived the four others used once; the
	// first of those was evicted.
	if _, err := h.m.JWKS(ctx, "tenant-0"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.m.JWKS(ctx, "tenant-1"); err != nil {
		t.Fatal(err)
	}
	if st := h.m.CacheStats(); st.Hits != before.Hits+1 || st.Misses != before.Misses+1 || counted.perIssuer.Load() != 6 {
		t.Fatalf("stats = %+v after %d loads; want tenant-0 a hit and the evicted tenant-1 loaded again", st, counted.perIssuer.Load())
	}
}

// TestAMissJustAfterALoadEndedDoesNotLoadAgain reproduces, step by step,
// the window the concurrent test above hit on CI about once in a few runs:
// a caller misses the cache, another caller's load stores the keys and
// ends, and only then does the first reach the single flight.
func TestAMissJustAfterALoadEndedDoesNotLoadAgain(t *testing.T) {
	ctx := context.Background()
	ring := NewKeyring(0)
	loads := 0
	load := func(context.Context, string) (*issuerKeys, error) {
		loads++
		return &issuerKeys{jwks: &JWKS{}}, nil
	}
	first, err := ring.get(ctx, "payments", load)
	if err != nil {
		t.Fatal(err)
	}
	// The caller that missed before that load stored its keys.
	late, err := ring.loading.do(ctx, "payments", ring.held, func(ctx context.Context) (*issuerKeys, error) {
		return load(ctx, "payments")
	})
	if err != nil {
		t.Fatal(err)
	}
	if loads != 1 || late != first {
		t.Fatalf("a caller that missed just before the load ended loaded %d times in all, want 1 and the same keys", loads)
	}
}

func TestRotatorRotatesOnlyWhileItHoldsTheLock(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": RS256})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unlock, _, ok, _ := h.st.TryLock(ctx, rotationLock)
	if !ok {
		t.Fatal("could not take the lock first")
	}
	done := make(chan struct{})
	go func() {
		NewRotator(h.m, h.st, 5*time.Millisecond, nil).Run(ctx)
		close(done)
	}()
	time.Sleep(50 * time.Millisecond)
	if keys := h.states(t, "payments"); len(keys) != 0 {
		t.Fatal("the rotator worked without the lock")
	}
	unlock()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.states(t, "payments")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the rotator did not take the free lock and create a key")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if _, _, ok, _ := h.st.TryLock(context.Background(), rotationLock); !ok {
		t.Fatal("the rotator kept the lock after it stopped")
	}
}

func TestES256SignaturesVerifyWhateverTheLengthOfRAndS(t *testing.T) {
	priv, err := Generate(ES256)
	if err != nil {
		t.Fatal(err)
	}
	key, err := NewActiveKey(priv, ES256, "k")
	if err != nil {
		t.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: ES256, KeyID: "k"}
	// One r or s in 128 has a leading zero byte that ASN.1 drops; 3,000
	// signatures meet some 23 of them.
	short := 0
	for i := range 3000 {
		token, err := key.SignCompact(fmt.Appendf(nil, `{"n":%d}`, i))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jws.Verify(pub); err != nil {
			t.Fatalf("signature %d does not verify: %v", i, err)
		}
		sig := jws.Signatures[0].Signature
		if sig[0] == 0 || sig[32] == 0 {
			short++
		}
	}
	if short == 0 {
		t.Fatal("no signature with a short r or s among 3,000: the padding path went untested")
	}
	again, _ := key.SignCompact([]byte(`{"n":0}`))
	if first, _ := key.SignCompact([]byte(`{"n":0}`)); first != again {
		t.Error("ES256 signatures should be deterministic (RFC 6979)")
	}
}

func TestECDSAJWSSignatureRefusesMalformedASN1(t *testing.T) {
	for name, der := range map[string][]byte{
		"empty":           {},
		"not a sequence":  {0x02, 0x01, 0x01},
		"one integer":     {0x30, 0x03, 0x02, 0x01, 0x01},
		"trailing data":   {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00},
		"integer too big": append([]byte{0x30, 0x26, 0x02, 0x21, 0x01}, append(make([]byte, 32), 0x02, 0x01, 0x01)...),
	} {
		if _, err := ecdsaJWSSignature(der, 32); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	sig, err := ecdsaJWSSignature([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x05}, 32)
	if err != nil || sig[31] != 0x80 || sig[63] != 0x05 || bytes.Count(sig, []byte{0}) != 62 {
		t.Fatalf("small values: %x, %v", sig, err)
	}
}

// readCounter is the memory store, counting its per-issuer key reads and
// the issuers its due lists return.
type readCounter struct {
	*memory.Store
	perIssuer, due atomic.Int64
}

func (c *readCounter) ListSigningKeys(ctx context.Context, issuerName string) ([]store.SigningKey, error) {
	c.perIssuer.Add(1)
	return c.Store.ListSigningKeys(ctx, issuerName)
}

func (c *readCounter) GetIssuerKeys(ctx context.Context, name, clientID string) (store.IssuerKeys, error) {
	c.perIssuer.Add(1)
	return c.Store.GetIssuerKeys(ctx, name, clientID)
}

func (c *readCounter) ListKeysDue(ctx context.Context, now time.Time, after store.DueCursor, limit int) ([]store.IssuerKeys, error) {
	due, err := c.Store.ListKeysDue(ctx, now, after, limit)
	c.due.Add(int64(len(due)))
	return due, err
}

// TestRotationCheckReadsOnlyWhatIsDue: with many issuers and nothing due, a
// check reads no issuer at all; when transitions fall due, exactly those
// issuers are read and reconciled, and each publishes its successor.
func TestRotationCheckReadsOnlyWhatIsDue(t *testing.T) {
	issuers := map[string]string{}
	for i := range 50 {
		issuers[fmt.Sprintf("tenant-%02d", i)] = ES256
	}
	h := newHarness(t, issuers)
	counted := &readCounter{Store: h.st}
	h.m = NewManager(counted, h.sealer, h.ring, testSchedule, h.clock.now)
	r := NewRotator(h.m, h.st, time.Hour, nil)
	var advanced atomic.Int64
	r.OnAdvance = func(string) { advanced.Add(1) }
	ctx := context.Background()

	r.check(ctx, nil) // first keys for everyone
	if advanced.Load() != 50 {
		t.Fatalf("first check advanced %d issuers, want 50", advanced.Load())
	}
	r.check(ctx, nil) // plans every new key set
	counted.perIssuer.Store(0)
	counted.due.Store(0)
	h.clock.advance(time.Minute)
	r.check(ctx, nil)
	if counted.perIssuer.Load() != 0 || counted.due.Load() != 0 || advanced.Load() != 50 {
		t.Errorf("a check with nothing due read %d issuers as due and %d issuers' keys one by one", counted.due.Load(), counted.perIssuer.Load())
	}

	// One issuer is rotated by hand: only it is due, and planned again.
	if err := h.m.RotateNow(ctx, "tenant-07"); err != nil {
		t.Fatal(err)
	}
	r.check(ctx, nil)
	if counted.due.Load() != 1 || advanced.Load() != 50 {
		t.Errorf("after one rotation a check read %d issuers as due, want 1, and advanced none", counted.due.Load())
	}

	// Past the rotation period less the lead, every other issuer publishes
	// a successor; tenant-07 promotes its own when its lead is over.
	h.clock.advance(testSchedule.RotationPeriod - testSchedule.PublishLead)
	r.check(ctx, nil)
	if advanced.Load() != 100 {
		t.Errorf("%d issuers advanced in all, want 100", advanced.Load())
	}
	for name := range issuers {
		if len(published(t, h.m, name)) != 2 {
			t.Fatalf("issuer %s publishes %d keys, want its successor too", name, len(published(t, h.m, name)))
		}
	}
}

// TestARotatorThatLosesItsLockStopsItsCheck: the node that takes the lock
// over checks the rest; the one that lost it makes no further transition.
func TestARotatorThatLosesItsLockStopsItsCheck(t *testing.T) {
	issuers := map[string]string{}
	for i := range 5 {
		issuers[fmt.Sprintf("tenant-%d", i)] = ES256
	}
	h := newHarness(t, issuers)
	r := NewRotator(h.m, h.st, time.Hour, nil)
	lost := make(chan struct{})
	var advanced []string
	r.OnAdvance = func(name string) {
		advanced = append(advanced, name)
		close(lost)
	}
	r.check(context.Background(), lost)
	if len(advanced) != 1 {
		t.Fatalf("after losing the lock at its first transition, the check advanced %v, want only the first", advanced)
	}
	for name := range issuers {
		if got := len(h.states(t, name)); (name == advanced[0]) != (got == 1) {
			t.Errorf("%s has %d keys; only %s should have its first", name, got, advanced[0])
		}
	}
}

// TestDueAtIsWhenThePlanFirstHasWork: for every kind of key set, nothing is
// planned an instant before dueAt and something is at it.
func TestDueAtIsWhenThePlanFirstHasWork(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := func(id string, state store.KeyState, alg string, mod func(*store.SigningKey)) store.SigningKey {
		k := store.SigningKey{ID: id, State: state, Algorithm: alg, CreatedAt: t0}
		if mod != nil {
			mod(&k)
		}
		return k
	}
	active := key("a", store.KeyActive, ES256, func(k *store.SigningKey) { k.ActivatedAt = t0 })
	tests := []struct {
		name string
		keys []store.SigningKey
		want time.Time // zero: now
	}{
		{"no keys", nil, time.Time{}},
		{"active alone", []store.SigningKey{active}, t0.Add(testSchedule.RotationPeriod - testSchedule.PublishLead)},
		{"active of another algorithm", []store.SigningKey{key("a", store.KeyActive, RS256, func(k *store.SigningKey) { k.ActivatedAt = t0 })}, time.Time{}},
		{"pending successor", []store.SigningKey{active, key("p", store.KeyPending, ES256, func(k *store.SigningKey) { k.ActivateAt = t0.Add(5 * time.Minute) })}, t0.Add(5 * time.Minute)},
		{"pending of another algorithm", []store.SigningKey{active, key("p", store.KeyPending, RS256, nil)}, time.Time{}},
		{"retired key deleted first", []store.SigningKey{active, key("r", store.KeyRetired, ES256, func(k *store.SigningKey) { k.DeleteAt = t0.Add(time.Minute) })}, t0.Add(time.Minute)},
		{"revoked key deleted after the rotation", []store.SigningKey{active, key("x", store.KeyRevoked, ES256, func(k *store.SigningKey) { k.DeleteAt = t0.Add(100 * time.Hour) })}, t0.Add(testSchedule.RotationPeriod - testSchedule.PublishLead)},
		{"pending but nothing active", []store.SigningKey{key("p", store.KeyPending, ES256, func(k *store.SigningKey) { k.ActivateAt = t0.Add(time.Hour) })}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := dueAt(testSchedule, ES256, tc.keys)
			if !got.Equal(tc.want) {
				t.Fatalf("dueAt = %v, want %v", got, tc.want)
			}
			if got.IsZero() {
				if planRotation(t0, testSchedule, ES256, tc.keys).empty() {
					t.Fatal("due now, but nothing is planned now")
				}
				return
			}
			if !planRotation(got.Add(-time.Nanosecond), testSchedule, ES256, tc.keys).empty() {
				t.Error("something is planned before dueAt")
			}
			if planRotation(got, testSchedule, ES256, tc.keys).empty() {
				t.Error("nothing is planned at dueAt")
			}
		})
	}
}

// stallingStore holds the first key read, after it has read, until gate
// closes: a load that read just before another node's write.
type stallingStore struct {
	*memory.Store
	gate  chan struct{}
	reads atomic.Int64
}

func (s *stallingStore) GetIssuerKeys(ctx context.Context, name, clientID string) (store.IssuerKeys, error) {
	ik, err := s.Store.GetIssuerKeys(ctx, name, clientID)
	if s.reads.Add(1) == 1 {
		<-s.gate
	}
	return ik, err
}

// TestAUseAfterInvalidationNeverJoinsAnOlderLoad: once a write is heard, no
// caller gets the keys a load read before it, and that load is not kept.
func TestAUseAfterInvalidationNeverJoinsAnOlderLoad(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": ES256})
	ctx := context.Background()
	h.reconcile(t, "payments")
	stalling := &stallingStore{Store: h.st, gate: make(chan struct{})}
	m := NewManager(stalling, h.sealer, NewKeyring(0), testSchedule, h.clock.now)
	stale := make(chan int)
	go func() {
		j, err := m.JWKS(ctx, "payments")
		if err != nil {
			t.Error(err)
		}
		stale <- len(j.byKid())
	}()
	for deadline := time.Now().Add(5 * time.Second); stalling.reads.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first load never read the store")
		}
	}
	if err := h.m.RotateNow(ctx, "payments"); err != nil { // another node's write
		t.Fatal(err)
	}
	m.Invalidate("payments")
	if j, err := m.JWKS(ctx, "payments"); err != nil || len(j.byKid()) != 2 {
		t.Fatalf("a use after the invalidation got %v keys (%v), want the 2 written", len(j.byKid()), err)
	}
	close(stalling.gate)
	if n := <-stale; n != 1 {
		t.Fatalf("the older load read %d keys, want 1", n)
	}
	if j, _ := m.JWKS(ctx, "payments"); len(j.byKid()) != 2 {
		t.Fatal("the older load was kept")
	}
}

// heldBackStore answers every poll with the same written issuers, as
// PostgreSQL does while a long transaction elsewhere holds the mark back.
type heldBackStore struct {
	*memory.Store
	versions map[string]uint64
}

func (s *heldBackStore) KeysChangedSince(context.Context, uint64) (map[string]uint64, uint64, error) {
	return s.versions, 7, nil
}

// TestAPollDropsEachWriteOnce: an issuer a poll lists again at the same
// version keeps its keys; only a new version drops them.
func TestAPollDropsEachWriteOnce(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": ES256})
	ctx := context.Background()
	h.reconcile(t, "payments")
	held := &heldBackStore{Store: h.st, versions: map[string]uint64{"payments": 41}}
	m := NewManager(held, h.sealer, NewKeyring(0), testSchedule, h.clock.now)
	poll := func() {
		if err := m.InvalidateChanged(ctx); err != nil {
			t.Fatal(err)
		}
	}
	poll() // the mark
	load := func() uint64 {
		if _, err := m.JWKS(ctx, "payments"); err != nil {
			t.Fatal(err)
		}
		return m.CacheStats().Misses
	}
	load()
	poll()
	if load() != 2 {
		t.Fatal("a poll's first sight of a write did not drop the keys")
	}
	poll()
	poll()
	if load() != 2 {
		t.Fatal("polls that list the same write again dropped the keys again")
	}
	held.versions = map[string]uint64{"payments": 42}
	poll()
	if load() != 3 {
		t.Fatal("a new write listed by a poll did not drop the keys")
	}
}
