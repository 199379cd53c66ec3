// Package storetest is the conformance suite that every store.Store
// implementation must pass, so that the memory and PostgreSQL backends
// cannot drift apart.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/authz-dev/authz/store"
)

// Run runs every conformance test. newStore must return an empty store that
// belongs to the calling test alone.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"PutIssuerCreatesThenReplaces", testPutIssuerCreatesThenReplaces},
		{"GetIssuerReportsNotFound", testGetIssuerReportsNotFound},
		{"ListIssuersIsOrderedByName", testListIssuersIsOrderedByName},
		{"ClientRoundTripsWithSecrets", testClientRoundTripsWithSecrets},
		{"CreateClientRefusesDuplicateID", testCreateClientRefusesDuplicateID},
		{"CreateClientRefusesUnknownIssuer", testCreateClientRefusesUnknownIssuer},
		{"ClientIDsAreScopedToTheirIssuer", testClientIDsAreScopedToTheirIssuer},
		{"GetClientReportsNotFound", testGetClientReportsNotFound},
		{"SigningKeysRoundTrip", testSigningKeysRoundTrip},
		{"SecondActiveKeyIsRefused", testSecondActiveKeyIsRefused},
		{"SigningKeyRefusesUnknownIssuer", testSigningKeyRefusesUnknownIssuer},
		{"StoredRecordsDoNotAliasCallerSlices", testStoredRecordsDoNotAliasCallerSlices},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

func sampleIssuer(name string) store.Issuer {
	return store.Issuer{
		Name:                 name,
		Description:          "payments gateway",
		AvailableScopes:      []string{"read", "write"},
		Audience:             "https://api.example.test",
		TokenLifetime:        5 * time.Minute,
		SigningAlgorithm:     "RS256",
		ClientAuthenticators: []string{"client-secret"},
	}
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

func mustPutIssuer(t *testing.T, s store.Store, iss store.Issuer) store.Issuer {
	t.Helper()
	stored, _, err := s.PutIssuer(context.Background(), iss)
	if err != nil {
		t.Fatalf("PutIssuer(%q): %v", iss.Name, err)
	}
	return stored
}

func testPutIssuerCreatesThenReplaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	first, created, err := s.PutIssuer(ctx, sampleIssuer("payments"))
	if err != nil {
		t.Fatalf("PutIssuer: %v", err)
	}
	if !created || first.Revision != 1 || first.CreatedAt.IsZero() {
		t.Fatalf("first put: created=%v revision=%d createdAt=%v; want true, 1, set", created, first.Revision, first.CreatedAt)
	}

	changed := sampleIssuer("payments")
	changed.Description = "renamed"
	changed.AvailableScopes = []string{"read"}
	changed.TokenLifetime = time.Hour
	second, created, err := s.PutIssuer(ctx, changed)
	if err != nil {
		t.Fatalf("PutIssuer replace: %v", err)
	}
	if created || second.Revision != 2 || !second.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("replace: created=%v revision=%d createdAt=%v; want false, 2, %v", created, second.Revision, second.CreatedAt, first.CreatedAt)
	}

	got, err := s.GetIssuer(ctx, "payments")
	if err != nil {
		t.Fatalf("GetIssuer: %v", err)
	}
	if got.Description != "renamed" || !slices.Equal(got.AvailableScopes, []string{"read"}) ||
		got.TokenLifetime != time.Hour || got.Audience != changed.Audience ||
		got.SigningAlgorithm != "RS256" || !slices.Equal(got.ClientAuthenticators, []string{"client-secret"}) ||
		got.Revision != 2 {
		t.Fatalf("GetIssuer = %+v, want the replaced issuer", got)
	}
}

func testGetIssuerReportsNotFound(t *testing.T, s store.Store) {
	_, err := s.GetIssuer(context.Background(), "nobody")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIssuer(unknown) error = %v, want ErrNotFound", err)
	}
}

func testListIssuersIsOrderedByName(t *testing.T, s store.Store) {
	for _, n := range []string{"zeta", "alpha", "mid"} {
		mustPutIssuer(t, s, sampleIssuer(n))
	}
	got, err := s.ListIssuers(context.Background())
	if err != nil {
		t.Fatalf("ListIssuers: %v", err)
	}
	var names []string
	for _, iss := range got {
		names = append(names, iss.Name)
	}
	if !slices.Equal(names, []string{"alpha", "mid", "zeta"}) {
		t.Fatalf("ListIssuers names = %v, want [alpha mid zeta]", names)
	}
}

func sampleClient(issuer, id string) store.Client {
	return store.Client{
		IssuerName:    issuer,
		ID:            id,
		Name:          "billing batch",
		Scopes:        []string{"read"},
		Audience:      "https://api.example.test",
		TokenLifetime: 2 * time.Minute,
		Enabled:       true,
		Secrets: []store.Secret{
			{ID: "s1", Digest: digest("one"), Hint: "…one"},
			{ID: "s2", Digest: digest("two"), Hint: "…two", ExpiresAt: time.Now().Add(time.Hour).UTC().Truncate(time.Second)},
		},
	}
}

func testClientRoundTripsWithSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	want := sampleClient("payments", "c-1")
	created, err := s.CreateClient(ctx, want)
	if err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	if created.CreatedAt.IsZero() || len(created.Secrets) != 2 || created.Secrets[0].CreatedAt.IsZero() {
		t.Fatalf("CreateClient returned %+v, want timestamps set", created)
	}
	got, err := s.GetClient(ctx, "payments", "c-1")
	if err != nil {
		t.Fatalf("GetClient: %v", err)
	}
	if got.Name != want.Name || !slices.Equal(got.Scopes, want.Scopes) || got.Audience != want.Audience ||
		got.TokenLifetime != want.TokenLifetime || got.Enabled != want.Enabled || !got.CreatedAt.Equal(created.CreatedAt) {
		t.Fatalf("GetClient = %+v, want %+v", got, want)
	}
	if len(got.Secrets) != 2 {
		t.Fatalf("GetClient secrets = %d, want 2", len(got.Secrets))
	}
	for i, sec := range got.Secrets {
		w := want.Secrets[i]
		if sec.ID != w.ID || !bytes.Equal(sec.Digest, w.Digest) || sec.Hint != w.Hint || !sec.ExpiresAt.Equal(w.ExpiresAt) {
			t.Errorf("secret %d = %+v, want %+v", i, sec, w)
		}
	}
	if !got.Secrets[0].ExpiresAt.IsZero() {
		t.Errorf("secret without expiry came back with ExpiresAt %v", got.Secrets[0].ExpiresAt)
	}
}

func testCreateClientRefusesDuplicateID(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if _, err := s.CreateClient(ctx, sampleClient("payments", "c-1")); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}
	dup := sampleClient("payments", "c-1")
	dup.Name = "impostor"
	if _, err := s.CreateClient(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate CreateClient error = %v, want ErrConflict", err)
	}
	got, err := s.GetClient(ctx, "payments", "c-1")
	if err != nil || got.Name != "billing batch" {
		t.Fatalf("after refused duplicate: client = %+v, %v; want the original", got, err)
	}
}

func testCreateClientRefusesUnknownIssuer(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.CreateClient(ctx, sampleClient("ghost", "c-1")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("CreateClient under unknown issuer error = %v, want ErrNotFound", err)
	}
	if _, err := s.GetClient(ctx, "ghost", "c-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused client is readable: %v", err)
	}
}

func testClientIDsAreScopedToTheirIssuer(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("billing"))
	if _, err := s.CreateClient(ctx, sampleClient("payments", "shared-id")); err != nil {
		t.Fatalf("CreateClient payments: %v", err)
	}
	if _, err := s.GetClient(ctx, "billing", "shared-id"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("client of payments visible under billing: %v", err)
	}
	if _, err := s.CreateClient(ctx, sampleClient("billing", "shared-id")); err != nil {
		t.Fatalf("same id under another issuer: %v", err)
	}
}

func testGetClientReportsNotFound(t *testing.T, s store.Store) {
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if _, err := s.GetClient(context.Background(), "payments", "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetClient(unknown) error = %v, want ErrNotFound", err)
	}
}

func sampleKey(issuer, id string, state store.KeyState) store.SigningKey {
	return store.SigningKey{
		ID:               id,
		IssuerName:       issuer,
		Algorithm:        "RS256",
		State:            state,
		PublicJWK:        []byte(`{"kty":"RSA","kid":"` + id + `"}`),
		SealedPrivateKey: []byte("sealed-" + id),
		KEKID:            "kek-1",
	}
}

func testSigningKeysRoundTrip(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("other"))
	for _, k := range []store.SigningKey{
		sampleKey("payments", "k1", store.KeyActive),
		sampleKey("payments", "k2", store.KeyPending),
		sampleKey("other", "k3", store.KeyActive),
	} {
		if err := s.CreateSigningKey(ctx, k); err != nil {
			t.Fatalf("CreateSigningKey(%s): %v", k.ID, err)
		}
	}
	got, err := s.ListSigningKeys(ctx, "payments")
	if err != nil {
		t.Fatalf("ListSigningKeys: %v", err)
	}
	ids := map[string]store.SigningKey{}
	for _, k := range got {
		ids[k.ID] = k
	}
	if len(got) != 2 || ids["k1"].State != store.KeyActive || ids["k2"].State != store.KeyPending {
		t.Fatalf("ListSigningKeys(payments) = %+v, want k1 active and k2 pending", got)
	}
	k1 := ids["k1"]
	if k1.Algorithm != "RS256" || !bytes.Equal(k1.SealedPrivateKey, []byte("sealed-k1")) || k1.KEKID != "kek-1" ||
		k1.CreatedAt.IsZero() || len(k1.PublicJWK) == 0 {
		t.Fatalf("k1 = %+v, want every field kept", k1)
	}
	if err := s.CreateSigningKey(ctx, sampleKey("payments", "k1", store.KeyPending)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate kid error = %v, want ErrConflict", err)
	}
}

func testSecondActiveKeyIsRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if err := s.CreateSigningKey(ctx, sampleKey("payments", "k1", store.KeyActive)); err != nil {
		t.Fatalf("CreateSigningKey: %v", err)
	}
	if err := s.CreateSigningKey(ctx, sampleKey("payments", "k2", store.KeyActive)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second active key error = %v, want ErrConflict", err)
	}
	got, err := s.ListSigningKeys(ctx, "payments")
	if err != nil || len(got) != 1 {
		t.Fatalf("after refused key: %d keys, %v; want 1", len(got), err)
	}
}

func testSigningKeyRefusesUnknownIssuer(t *testing.T, s store.Store) {
	if err := s.CreateSigningKey(context.Background(), sampleKey("ghost", "k1", store.KeyActive)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("key under unknown issuer error = %v, want ErrNotFound", err)
	}
}

func testStoredRecordsDoNotAliasCallerSlices(t *testing.T, s store.Store) {
	ctx := context.Background()
	iss := sampleIssuer("payments")
	mustPutIssuer(t, s, iss)
	iss.AvailableScopes[0] = "mutated"
	got, err := s.GetIssuer(ctx, "payments")
	if err != nil {
		t.Fatal(err)
	}
	if got.AvailableScopes[0] != "read" {
		t.Fatalf("caller's slice write reached the store: %v", got.AvailableScopes)
	}
	got.AvailableScopes[0] = "mutated-again"
	again, _ := s.GetIssuer(ctx, "payments")
	if again.AvailableScopes[0] != "read" {
		t.Fatalf("returned slice aliases the store: %v", again.AvailableScopes)
	}
}
