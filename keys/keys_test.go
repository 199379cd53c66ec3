package keys

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	h := &harness{st: memory.New(), ring: NewKeyring(), sealer: newTestSealer(t), clock: &testClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}}
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

func published(t *testing.T, ring *Keyring, issuer string) map[string]bool {
	t.Helper()
	jwks, ok := ring.JWKS(issuer)
	if !ok {
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
			active, ok := h.ring.Active("payments")
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
			jwks, _ := h.ring.JWKS("payments")
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
	jwks, _ := h.ring.JWKS("payments")
	if bytes.Contains(jwks.Body, []byte(`"d"`)) || !published(t, h.ring, "payments")[k.ID] {
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
		pub := published(t, h.ring, "payments")
		for kid := range pub {
			if _, ok := firstSeen[kid]; !ok {
				firstSeen[kid] = h.clock.t
			}
		}
		active, _ := h.ring.Active("payments")
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
	first, _ := h.ring.Active("payments")
	if err := h.m.RotateNow(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if err := h.m.RotateNow(ctx, "payments"); err != nil { // a second call adds nothing
		t.Fatal(err)
	}
	keys := h.states(t, "payments")
	if len(keys) != 2 || keys[1].State != store.KeyPending || !published(t, h.ring, "payments")[keys[1].ID] {
		t.Fatalf("after RotateNow: %+v", keys)
	}
	h.clock.advance(testSchedule.PublishLead - time.Second)
	h.reconcile(t, "payments")
	if a, _ := h.ring.Active("payments"); a.ID != first.ID {
		t.Fatal("the new key signs before its lead is over")
	}
	h.clock.advance(time.Second)
	h.reconcile(t, "payments")
	if a, _ := h.ring.Active("payments"); a.ID != keys[1].ID {
		t.Fatal("the new key does not sign after its lead")
	}
	if !published(t, h.ring, "payments")[first.ID] {
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
			compromised, _ := h.ring.Active("payments")
			if tc.withPending {
				if err := h.m.RotateNow(ctx, "payments"); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.m.Revoke(ctx, "payments", compromised.ID); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			next, ok := h.ring.Active("payments")
			if !ok || next.ID == compromised.ID {
				t.Fatal("no fresh key signs after the revoke")
			}
			pub := published(t, h.ring, "payments")
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
	ecKey, _ := h.ring.Active("payments")
	iss, _ := h.st.GetIssuer(ctx, "payments")
	iss.SigningAlgorithm = RS256
	if _, _, err := h.st.PutIssuer(ctx, iss, 0); err != nil {
		t.Fatal(err)
	}
	h.reconcile(t, "payments")
	keys := h.states(t, "payments")
	rsaKey := keys[len(keys)-1]
	if pub := published(t, h.ring, "payments"); !pub[ecKey.ID] || !pub[rsaKey.ID] {
		t.Fatalf("while the EC key signs both must be published: %v", pub)
	}
	h.clock.advance(testSchedule.PublishLead)
	h.reconcile(t, "payments")
	if a, _ := h.ring.Active("payments"); a.ID != rsaKey.ID || a.Algorithm != RS256 {
		t.Fatalf("active = %+v, want the RSA key", a)
	}
	if pub := published(t, h.ring, "payments"); pub[ecKey.ID] || !pub[rsaKey.ID] {
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
	m := NewManager(h.st, both, NewKeyring(), testSchedule, h.clock.now)
	n, err := m.Rekey(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Rekey = %d, %v; want 2", n, err)
	}
	if n, err := m.Rekey(ctx); err != nil || n != 0 {
		t.Fatalf("second Rekey = %d, %v; want 0", n, err)
	}
	onlyNew, _ := NewSealer(newKEKBytes)
	if err := NewManager(h.st, onlyNew, NewKeyring(), testSchedule, h.clock.now).SyncAll(ctx); err != nil {
		t.Fatalf("the new KEK alone cannot open the re-sealed keys: %v", err)
	}
	if err := NewManager(h.st, oldKEK, NewKeyring(), testSchedule, h.clock.now).SyncAll(ctx); !errors.Is(err, ErrWrongKEK) {
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
	err := NewManager(h.st, newTestSealer(t), NewKeyring(), testSchedule, nil).Sync(context.Background(), "payments")
	if !errors.Is(err, ErrWrongKEK) {
		t.Fatalf("loading under a different KEK: error = %v, want ErrWrongKEK", err)
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

func TestSyncForgetsDeletedIssuersAndLoadsNewKeys(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": RS256, "billing": RS256})
	ctx := context.Background()
	h.reconcile(t, "payments")
	// Another node gives billing its key; this node learns of it by Sync.
	other := NewManager(h.st, h.sealer, NewKeyring(), testSchedule, h.clock.now)
	if _, err := other.Reconcile(ctx, "billing"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.ring.Active("billing"); ok {
		t.Fatal("billing's key is loaded before any sync")
	}
	if err := h.m.Sync(ctx, "billing"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.ring.Active("billing"); !ok {
		t.Fatal("Sync did not load billing's new key")
	}
	if err := h.st.DeleteIssuer(ctx, "payments", true, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Sync(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.ring.JWKS("payments"); ok {
		t.Fatal("a deleted issuer still publishes keys")
	}
	if err := h.st.DeleteIssuer(ctx, "billing", true, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.m.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.ring.JWKS("billing"); ok {
		t.Fatal("SyncAll kept a deleted issuer's keys")
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

// TestKeyPollSkipsUnchangedKeySets: a poll that finds an issuer's keys as
// they were keeps the loaded entry instead of opening every private key
// again; any change to the keys, or to the JWKS lifetime, rebuilds it.
func TestKeyPollSkipsUnchangedKeySets(t *testing.T) {
	h := newHarness(t, map[string]string{"payments": ES256})
	ctx := context.Background()
	h.reconcile(t, "payments")
	active, _ := h.ring.Active("payments")
	jwks, _ := h.ring.JWKS("payments")
	if err := h.m.SyncAll(ctx); err != nil {
		t.Fatal(err)
	}
	if again, _ := h.ring.Active("payments"); again != active {
		t.Error("an unchanged key set was opened again")
	}
	if again, _ := h.ring.JWKS("payments"); again != jwks {
		t.Error("an unchanged key set's JWKS was rebuilt")
	}

	if err := h.m.RotateNow(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	rotated, _ := h.ring.JWKS("payments")
	if rotated == jwks || len(published(t, h.ring, "payments")) != 2 {
		t.Error("a new pending key did not reach the JWKS")
	}

	iss, _ := h.st.GetIssuer(ctx, "payments")
	iss.KeyPublishLead = 3 * time.Hour
	if _, _, err := h.st.PutIssuer(ctx, iss, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.m.Sync(ctx, "payments"); err != nil {
		t.Fatal(err)
	}
	if lead, _ := h.ring.JWKS("payments"); lead == rotated {
		t.Error("a new JWKS lifetime did not rebuild the key set")
	}
}

// readCounter is the memory store, counting its per-issuer key reads.
type readCounter struct {
	*memory.Store
	perIssuer, all atomic.Int64
}

func (c *readCounter) ListSigningKeys(ctx context.Context, issuerName string) ([]store.SigningKey, error) {
	c.perIssuer.Add(1)
	return c.Store.ListSigningKeys(ctx, issuerName)
}

func (c *readCounter) ListAllSigningKeys(ctx context.Context) (map[string][]store.SigningKey, error) {
	c.all.Add(1)
	return c.Store.ListAllSigningKeys(ctx)
}

// TestRotationCheckReadsPerIssuerOnlyWhatIsDue: with many issuers and
// nothing due, a check is one read of all keys, not one per issuer; when
// transitions fall due, exactly those issuers are reconciled.
func TestRotationCheckReadsPerIssuerOnlyWhatIsDue(t *testing.T) {
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

	r.reconcileAll(ctx) // first keys for everyone
	if advanced.Load() != 50 {
		t.Fatalf("first check advanced %d issuers, want 50", advanced.Load())
	}
	counted.perIssuer.Store(0)
	counted.all.Store(0)
	h.clock.advance(time.Minute)
	r.reconcileAll(ctx)
	if n := counted.perIssuer.Load(); n != 0 || counted.all.Load() != 1 || advanced.Load() != 50 {
		t.Errorf("a check with nothing due read %d issuers' keys one by one and all keys %d times", n, counted.all.Load())
	}

	// Past the rotation period less the lead, every issuer publishes a
	// successor.
	h.clock.advance(testSchedule.RotationPeriod - testSchedule.PublishLead)
	r.reconcileAll(ctx)
	if advanced.Load() != 100 {
		t.Errorf("%d issuers advanced in all, want 100", advanced.Load())
	}
	for name := range issuers {
		if len(published(t, h.ring, name)) != 2 {
			t.Fatalf("issuer %s publishes %d keys, want its successor too", name, len(published(t, h.ring, name)))
		}
	}
}
