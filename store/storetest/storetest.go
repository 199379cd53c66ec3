// Package storetest is the conformance suite that every store.Store
// implementation must pass, so that the memory and PostgreSQL backends
// cannot drift apart.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/authz-dev/authz/credential"
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
		{"IssuerKeysComeWithTheClientAskedFor", testIssuerKeysComeWithTheClientAskedFor},
		{"SigningKeysRoundTrip", testSigningKeysRoundTrip},
		{"KeysDueAreNewOrWrittenOrTimedOut", testKeysDueAreNewOrWrittenOrTimedOut},
		{"KeysDuePagesInDueOrder", testKeysDuePagesInDueOrder},
		{"OneKeyPerKEKSamplesEveryKEK", testOneKeyPerKEKSamplesEveryKEK},
		{"KeysChangedSinceNamesWrittenIssuers", testKeysChangedSinceNamesWrittenIssuers},
		{"SecondActiveKeyIsRefused", testSecondActiveKeyIsRefused},
		{"SigningKeyRefusesUnknownIssuer", testSigningKeyRefusesUnknownIssuer},
		{"StoredRecordsDoNotAliasCallerSlices", testStoredRecordsDoNotAliasCallerSlices},
		{"PutIssuerWithSameContentIsUnchanged", testPutIssuerWithSameContentIsUnchanged},
		{"ConditionalPutIssuerChecksRevision", testConditionalPutIssuerChecksRevision},
		{"ListIssuersPages", testListIssuersPages},
		{"DeleteIssuerRefusesWhileClientsExist", testDeleteIssuerRefusesWhileClientsExist},
		{"DeleteIssuerCascadesToClientsAndKeys", testDeleteIssuerCascadesToClientsAndKeys},
		{"ConditionalDeleteIssuerChecksRevision", testConditionalDeleteIssuerChecksRevision},
		{"ListClientsFiltersAndPages", testListClientsFiltersAndPages},
		{"UpdateClientChangesMutableFields", testUpdateClientChangesMutableFields},
		{"UpdateClientErrorChangesNothing", testUpdateClientErrorChangesNothing},
		{"DeleteClientRemovesIt", testDeleteClientRemovesIt},
		{"AddClientSecretBoundsOtherSecrets", testAddClientSecretBoundsOtherSecrets},
		{"DeleteClientSecretRevokesOne", testDeleteClientSecretRevokesOne},
		{"AuditListsNewestFirstAndPages", testAuditListsNewestFirstAndPages},
		{"WatchReportsEveryKindOfChange", testWatchReportsEveryKindOfChange},
		{"IssuerKeepsItsKeySchedule", testIssuerKeepsItsKeySchedule},
		{"KeyLifecycleRoundTrips", testKeyLifecycleRoundTrips},
		{"UpdateSigningKeysErrorChangesNothing", testUpdateSigningKeysErrorChangesNothing},
		{"ConcurrentKeyUpdatesAreSerialized", testConcurrentKeyUpdatesAreSerialized},
		{"TryLockIsExclusive", testTryLockIsExclusive},
		{"ClientKeepsItsAssertionKeys", testClientKeepsItsAssertionKeys},
		{"AssertionJTIsAreSingleUse", testAssertionJTIsAreSingleUse},
		{"IssuerKeepsItsURLStyleAndRegistrationPolicy", testIssuerKeepsItsURLStyleAndRegistrationPolicy},
		{"ClientGetsKeycloakIDsAndIsFoundByThem", testClientGetsKeycloakIDsAndIsFoundByThem},
		{"ClientKeepsOptionalScopesAndRegistrationToken", testClientKeepsOptionalScopesAndRegistrationToken},
		{"RolesAreDefinedOnClientsAndTheIssuer", testRolesAreDefinedOnClientsAndTheIssuer},
		{"RoleMappingsResolveAndStayWithinTheIssuer", testRoleMappingsResolveAndStayWithinTheIssuer},
		{"DeletingARoleOrItsClientRemovesItsMappings", testDeletingARoleOrItsClientRemovesItsMappings},
		{"InitialAccessTokensAreSpentOnlyBySuccessfulRegistrations", testInitialAccessTokensAreSpentOnlyBySuccessfulRegistrations},
		{"AuditKeepsTheActorsIssuer", testAuditKeepsTheActorsIssuer},
		{"ImportIssuerCreatesThenChangesNothing", testImportIssuerCreatesThenChangesNothing},
		{"ImportIssuerUpdatesWhatChanged", testImportIssuerUpdatesWhatChanged},
		{"ImportIssuerDryRunAndFailuresChangeNothing", testImportIssuerDryRunAndFailuresChangeNothing},
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

func digest(s string) []byte { return credential.SecretDigest(s) }

func mustPutIssuer(t *testing.T, s store.Store, iss store.Issuer) store.Issuer {
	t.Helper()
	stored, _, err := s.PutIssuer(context.Background(), iss, 0)
	if err != nil {
		t.Fatalf("PutIssuer(%q): %v", iss.Name, err)
	}
	return stored
}

func testPutIssuerCreatesThenReplaces(t *testing.T, s store.Store) {
	ctx := context.Background()
	first, result, err := s.PutIssuer(ctx, sampleIssuer("payments"), 0)
	if err != nil {
		t.Fatalf("PutIssuer: %v", err)
	}
	if result != store.Created || first.Revision != 1 || first.CreatedAt.IsZero() {
		t.Fatalf("first put: result=%v revision=%d createdAt=%v; want Created, 1, set", result, first.Revision, first.CreatedAt)
	}

	changed := sampleIssuer("payments")
	changed.Description = "renamed"
	changed.AvailableScopes = []string{"read"}
	changed.TokenLifetime = time.Hour
	changed.ClientRoles = []string{"auditor"}
	second, result, err := s.PutIssuer(ctx, changed, 0)
	if err != nil {
		t.Fatalf("PutIssuer replace: %v", err)
	}
	if result != store.Updated || second.Revision != 2 || !second.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("replace: result=%v revision=%d createdAt=%v; want Updated, 2, %v", result, second.Revision, second.CreatedAt, first.CreatedAt)
	}

	got, err := s.GetIssuer(ctx, "payments")
	if err != nil {
		t.Fatalf("GetIssuer: %v", err)
	}
	if got.Description != "renamed" || !slices.Equal(got.AvailableScopes, []string{"read"}) ||
		got.TokenLifetime != time.Hour || got.Audience != changed.Audience ||
		got.SigningAlgorithm != "RS256" || !slices.Equal(got.ClientAuthenticators, []string{"client-secret"}) ||
		!slices.Equal(got.ClientRoles, []string{"auditor"}) || got.Revision != 2 {
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
	got, err := s.ListIssuers(context.Background(), store.Page{})
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
		Roles:         []string{"viewer"},
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
	if got.Name != want.Name || !slices.Equal(got.Scopes, want.Scopes) || !slices.Equal(got.Roles, want.Roles) || got.Audience != want.Audience ||
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

// testIssuerKeysComeWithTheClientAskedFor: a cold issuer's first token
// reads the issuer, its keys and its client at once; the client is the one
// GetClient reads, of that issuer only.
func testIssuerKeysComeWithTheClientAskedFor(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("other"))
	if err := addKey(s, sampleKey("payments", "k1", store.KeyActive)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateClient(ctx, sampleClient("payments", "c-1")); err != nil {
		t.Fatal(err)
	}
	want, err := s.GetClient(ctx, "payments", "c-1")
	if err != nil {
		t.Fatal(err)
	}
	ik, err := s.GetIssuerKeys(ctx, "payments", "c-1")
	if err != nil || ik.Client == nil || !reflect.DeepEqual(*ik.Client, want) || len(ik.Keys) != 1 || ik.Issuer.Name != "payments" {
		t.Fatalf("GetIssuerKeys with c-1 = %+v, %v; want the issuer, its key and what GetClient reads: %+v", ik, err, want)
	}
	for _, tc := range []struct{ issuer, client string }{{"payments", ""}, {"payments", "nobody"}, {"other", "c-1"}} {
		ik, err := s.GetIssuerKeys(ctx, tc.issuer, tc.client)
		if err != nil || ik.Client != nil || ik.Issuer.Name != tc.issuer {
			t.Errorf("GetIssuerKeys(%q, %q) = client %+v, %v; want the issuer and no client", tc.issuer, tc.client, ik.Client, err)
		}
	}
	if _, err := s.GetIssuerKeys(ctx, "nobody", "c-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIssuerKeys of no issuer with a client: %v, want ErrNotFound", err)
	}
}

func testGetClientReportsNotFound(t *testing.T, s store.Store) {
	mustPutIssuer(t, s, sampleIssuer("payments"))
	ctx := context.Background()
	// Bytes no stored text can hold (PostgreSQL refuses NUL and invalid
	// UTF-8 outright) still mean "no such record", not a server fault.
	for _, id := range []string{"nobody", "nul\x00id", "\xffbad"} {
		if _, err := s.GetClient(ctx, "payments", id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetClient(%q) error = %v, want ErrNotFound", id, err)
		}
	}
	for _, name := range []string{"nul\x00x", "\xffbad"} {
		if _, err := s.GetIssuer(ctx, name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetIssuer(%q) error = %v, want ErrNotFound", name, err)
		}
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

// addKey appends a key to its issuer's set.
func addKey(s store.Store, k store.SigningKey) error {
	_, err := s.UpdateSigningKeys(context.Background(), k.IssuerName, func(keys []store.SigningKey) ([]store.SigningKey, error) {
		return append(keys, k), nil
	})
	return err
}

// keysDue lists the names ListKeysDue returns at now, checking each entry's
// keys against ListSigningKeys.
func keysDue(t *testing.T, s store.Store, now time.Time) map[string]store.IssuerKeys {
	t.Helper()
	ctx := context.Background()
	due, err := s.ListKeysDue(ctx, now, store.DueCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]store.IssuerKeys{}
	for _, ik := range due {
		byName[ik.Issuer.Name] = ik
		one, err := s.ListSigningKeys(ctx, ik.Issuer.Name)
		if err != nil {
			t.Fatal(err)
		}
		if len(one) != len(ik.Keys) || (len(one) > 0 && !reflect.DeepEqual(one, ik.Keys)) {
			t.Errorf("ListKeysDue's keys of %s = %+v, want what ListSigningKeys says: %+v", ik.Issuer.Name, ik.Keys, one)
		}
	}
	return byName
}

func testKeysDueAreNewOrWrittenOrTimedOut(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	for _, name := range []string{"payments", "other", "keyless"} {
		mustPutIssuer(t, s, sampleIssuer(name))
	}
	for _, k := range []store.SigningKey{
		sampleKey("payments", "k1", store.KeyActive),
		sampleKey("other", "k3", store.KeyActive),
		sampleKey("payments", "k2", store.KeyPending),
	} {
		if err := addKey(s, k); err != nil {
			t.Fatalf("add %s: %v", k.ID, err)
		}
	}
	due := keysDue(t, s, now)
	if len(due) != 3 || len(due["payments"].Keys) != 2 || due["payments"].Issuer.Audience != "https://api.example.test" {
		t.Fatalf("new issuers due = %+v, want all three, payments with its two keys", due)
	}
	one, err := s.GetIssuerKeys(ctx, "payments", "")
	if err != nil || !reflect.DeepEqual(one.Keys, due["payments"].Keys) || !reflect.DeepEqual(one.Issuer, due["payments"].Issuer) {
		t.Fatalf("GetIssuerKeys = %+v, %v; want what ListKeysDue says", one, err)
	}
	if _, err := s.GetIssuerKeys(ctx, "nobody", ""); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetIssuerKeys of no issuer: %v, want ErrNotFound", err)
	}

	// Planned: nothing is due before the recorded times.
	var plans []store.KeysDue
	for name, ik := range due {
		plans = append(plans, store.KeysDue{Issuer: name, Version: ik.Version, At: now.Add(time.Hour)})
	}
	if err := s.SetKeysDue(ctx, plans); err != nil {
		t.Fatal(err)
	}
	if due := keysDue(t, s, now); len(due) != 0 {
		t.Fatalf("due after planning = %v, want none", slices.Collect(maps.Keys(due)))
	}
	if due := keysDue(t, s, now.Add(time.Hour)); len(due) != 3 {
		t.Fatalf("due at the planned time = %v, want all three", slices.Collect(maps.Keys(due)))
	}

	// A write of the keys, or of the issuer, makes it due again, and a plan
	// made from the version before the write is not recorded.
	if err := addKey(s, sampleKey("other", "k4", store.KeyPending)); err != nil {
		t.Fatal(err)
	}
	changed := sampleIssuer("keyless")
	changed.SigningAlgorithm = "ES256"
	mustPutIssuer(t, s, changed)
	due = keysDue(t, s, now)
	if len(due) != 2 || due["other"].Version == 0 || due["keyless"].Issuer.SigningAlgorithm != "ES256" {
		t.Fatalf("due after writes = %+v, want other and keyless", due)
	}
	if err := s.SetKeysDue(ctx, plans); err != nil {
		t.Fatal(err)
	}
	if due := keysDue(t, s, now); len(due) != 2 {
		t.Fatalf("a plan of an older version was recorded: due = %v, want other and keyless", slices.Collect(maps.Keys(due)))
	}

	if err := s.MarkAllKeysDue(ctx); err != nil {
		t.Fatal(err)
	}
	if due := keysDue(t, s, now); len(due) != 3 {
		t.Fatalf("due after MarkAllKeysDue = %v, want all three", slices.Collect(maps.Keys(due)))
	}
	if err := s.DeleteIssuer(ctx, "other", true, 0); err != nil {
		t.Fatal(err)
	}
	if due := keysDue(t, s, now); len(due) != 2 {
		t.Fatalf("due after deleting other = %v, want payments and keyless", slices.Collect(maps.Keys(due)))
	}
}

func testKeysDuePagesInDueOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	for _, name := range []string{"d", "b", "a", "c", "e", "f"} {
		mustPutIssuer(t, s, sampleIssuer(name))
	}
	due, err := s.ListKeysDue(ctx, now, store.DueCursor{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	// a and e were planned for an hour ago, d two hours ago: they follow
	// the issuers due at once, oldest due first.
	var plans []store.KeysDue
	for _, ik := range due {
		switch ik.Issuer.Name {
		case "a", "e":
			plans = append(plans, store.KeysDue{Issuer: ik.Issuer.Name, Version: ik.Version, At: now.Add(-time.Hour)})
		case "d":
			plans = append(plans, store.KeysDue{Issuer: ik.Issuer.Name, Version: ik.Version, At: now.Add(-2 * time.Hour)})
		}
	}
	if err := s.SetKeysDue(ctx, plans); err != nil {
		t.Fatal(err)
	}
	var got []string
	var after store.DueCursor
	for range 10 {
		page, err := s.ListKeysDue(ctx, now, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, ik := range page {
			got = append(got, ik.Issuer.Name)
			after = ik.Position
		}
		if len(page) < 2 {
			break
		}
	}
	if want := []string{"b", "c", "f", "d", "a", "e"}; !slices.Equal(got, want) {
		t.Fatalf("pages = %v, want %v", got, want)
	}
}

func testOneKeyPerKEKSamplesEveryKEK(t *testing.T, s store.Store) {
	ctx := context.Background()
	if sample, err := s.OneKeyPerKEK(ctx); err != nil || len(sample) != 0 {
		t.Fatalf("OneKeyPerKEK of no keys = %v, %v; want none", sample, err)
	}
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("other"))
	k2 := sampleKey("other", "k2", store.KeyActive)
	k2.KEKID = "kek-2"
	for _, k := range []store.SigningKey{sampleKey("payments", "k1", store.KeyActive), sampleKey("payments", "k0", store.KeyPending), k2} {
		if err := addKey(s, k); err != nil {
			t.Fatal(err)
		}
	}
	sample, err := s.OneKeyPerKEK(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, k := range sample {
		got = append(got, k.KEKID+"/"+k.ID)
		if string(k.SealedPrivateKey) != "sealed-"+k.ID {
			t.Errorf("key %s came back without its sealed private key", k.ID)
		}
	}
	if want := []string{"kek-1/k0", "kek-2/k2"}; !slices.Equal(got, want) {
		t.Fatalf("OneKeyPerKEK = %v, want %v", got, want)
	}
}

func testKeysChangedSinceNamesWrittenIssuers(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("doomed"))
	mark, err := s.KeyChangeMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := addKey(s, sampleKey("payments", "k1", store.KeyActive)); err != nil {
		t.Fatal(err)
	}
	mustPutIssuer(t, s, sampleIssuer("fresh"))
	if err := s.DeleteIssuer(ctx, "doomed", true, 0); err != nil {
		t.Fatal(err)
	}
	versions, next, err := s.KeysChangedSince(ctx, mark)
	if err != nil {
		t.Fatal(err)
	}
	_, hasDoomed := versions["doomed"]
	if versions["payments"] == 0 || versions["fresh"] == 0 || hasDoomed {
		t.Fatalf("changed since the mark = %v, want payments and fresh, not the deleted doomed", versions)
	}
	due := keysDue(t, s, time.Now())
	if versions["payments"] != due["payments"].Version {
		t.Errorf("payments changed at version %d, but its keys are due at version %d", versions["payments"], due["payments"].Version)
	}
	if next < mark {
		t.Fatalf("next mark %d is before the mark %d", next, mark)
	}
	if err := addKey(s, sampleKey("fresh", "k2", store.KeyActive)); err != nil {
		t.Fatal(err)
	}
	again, _, err := s.KeysChangedSince(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if again["fresh"] == 0 || again["fresh"] == versions["fresh"] {
		t.Fatalf("changed since the next mark = %v, want fresh at a new version (was %d)", again, versions["fresh"])
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
		if err := addKey(s, k); err != nil {
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
	if err := addKey(s, sampleKey("payments", "k3", store.KeyPending)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("kid of another issuer: error = %v, want ErrConflict", err)
	}
}

func testSecondActiveKeyIsRefused(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if err := addKey(s, sampleKey("payments", "k1", store.KeyActive)); err != nil {
		t.Fatalf("CreateSigningKey: %v", err)
	}
	if err := addKey(s, sampleKey("payments", "k2", store.KeyActive)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second active key error = %v, want ErrConflict", err)
	}
	got, err := s.ListSigningKeys(ctx, "payments")
	if err != nil || len(got) != 1 {
		t.Fatalf("after refused key: %d keys, %v; want 1", len(got), err)
	}
}

func testSigningKeyRefusesUnknownIssuer(t *testing.T, s store.Store) {
	if err := addKey(s, sampleKey("ghost", "k1", store.KeyActive)); !errors.Is(err, store.ErrNotFound) {
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

func testPutIssuerWithSameContentIsUnchanged(t *testing.T, s store.Store) {
	first := mustPutIssuer(t, s, sampleIssuer("payments"))
	again, result, err := s.PutIssuer(context.Background(), sampleIssuer("payments"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if result != store.Unchanged || again.Revision != first.Revision || !again.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("identical put: result=%v revision=%d; want Unchanged at revision %d", result, again.Revision, first.Revision)
	}
}

func testConditionalPutIssuerChecksRevision(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.PutIssuer(ctx, sampleIssuer("payments"), 3); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("conditional create of a missing issuer: %v, want ErrPrecondition", err)
	}
	if _, err := s.GetIssuer(ctx, "payments"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused conditional create stored the issuer: %v", err)
	}
	mustPutIssuer(t, s, sampleIssuer("payments"))
	stale := sampleIssuer("payments")
	stale.Description = "stale writer"
	if _, _, err := s.PutIssuer(ctx, stale, 7); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("put at a stale revision: %v, want ErrPrecondition", err)
	}
	fresh := sampleIssuer("payments")
	fresh.Description = "fresh writer"
	got, result, err := s.PutIssuer(ctx, fresh, 1)
	if err != nil || result != store.Updated || got.Revision != 2 {
		t.Fatalf("put at the current revision: %v %v %d", err, result, got.Revision)
	}
	if got, _ := s.GetIssuer(ctx, "payments"); got.Description != "fresh writer" {
		t.Fatalf("description = %q, want the fresh writer's", got.Description)
	}
}

func testListIssuersPages(t *testing.T, s store.Store) {
	for _, n := range []string{"e-5", "a-1", "c-3", "b-2", "d-4"} {
		mustPutIssuer(t, s, sampleIssuer(n))
	}
	var names []string
	after := ""
	for range 10 {
		got, err := s.ListIssuers(context.Background(), store.Page{After: after, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) > 2 {
			t.Fatalf("page of %d, limit 2", len(got))
		}
		if len(got) == 0 {
			break
		}
		for _, iss := range got {
			names = append(names, iss.Name)
		}
		after = got[len(got)-1].Name
	}
	if !slices.Equal(names, []string{"a-1", "b-2", "c-3", "d-4", "e-5"}) {
		t.Fatalf("paged names = %v", names)
	}
}

func testDeleteIssuerRefusesWhileClientsExist(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if _, err := s.CreateClient(ctx, sampleClient("payments", "c-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIssuer(ctx, "payments", false, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("delete with clients: %v, want ErrConflict", err)
	}
	if _, err := s.GetClient(ctx, "payments", "c-1"); err != nil {
		t.Fatalf("refused delete lost the client: %v", err)
	}
	if err := s.DeleteIssuer(ctx, "nowhere", false, 0); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("delete unknown issuer: %v, want ErrNotFound", err)
	}
}

func testDeleteIssuerCascadesToClientsAndKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("other"))
	for _, c := range []store.Client{sampleClient("payments", "c-1"), sampleClient("other", "c-1")} {
		if _, err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := addKey(s, sampleKey("payments", "k1", store.KeyActive)); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteIssuer(ctx, "payments", true, 0); err != nil {
		t.Fatalf("cascade delete: %v", err)
	}
	if _, err := s.GetIssuer(ctx, "payments"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("issuer survived: %v", err)
	}
	if _, err := s.GetClient(ctx, "payments", "c-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("client survived: %v", err)
	}
	if keys, _ := s.ListSigningKeys(ctx, "payments"); len(keys) != 0 {
		t.Fatalf("%d keys survived", len(keys))
	}
	if _, err := s.GetClient(ctx, "other", "c-1"); err != nil {
		t.Fatalf("another issuer's client went too: %v", err)
	}
	// The name is free again, and a new issuer under it starts afresh.
	if again := mustPutIssuer(t, s, sampleIssuer("payments")); again.Revision != 1 {
		t.Fatalf("recreated issuer at revision %d", again.Revision)
	}
}

func testConditionalDeleteIssuerChecksRevision(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if err := s.DeleteIssuer(ctx, "payments", false, 2); !errors.Is(err, store.ErrPrecondition) {
		t.Fatalf("delete at a stale revision: %v, want ErrPrecondition", err)
	}
	if err := s.DeleteIssuer(ctx, "payments", false, 1); err != nil {
		t.Fatalf("delete at the current revision: %v", err)
	}
}

func testListClientsFiltersAndPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("other"))
	for i, name := range []string{"Billing Batch", "billing nightly", "Reports", "Billing Old"} {
		c := sampleClient("payments", fmt.Sprintf("c-%d", i))
		c.Name = name
		c.Enabled = name != "Billing Old"
		if _, err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateClient(ctx, sampleClient("other", "c-9")); err != nil {
		t.Fatal(err)
	}
	enabled, disabled := true, false
	tests := []struct {
		name  string
		query store.ClientQuery
		want  []string
	}{
		{"all", store.ClientQuery{}, []string{"c-0", "c-1", "c-2", "c-3"}},
		{"name contains, any case", store.ClientQuery{Name: "BILLING"}, []string{"c-0", "c-1", "c-3"}},
		{"enabled only", store.ClientQuery{Enabled: &enabled}, []string{"c-0", "c-1", "c-2"}},
		{"disabled billing", store.ClientQuery{Name: "billing", Enabled: &disabled}, []string{"c-3"}},
		{"second page", store.ClientQuery{Page: store.Page{After: "c-1", Limit: 2}}, []string{"c-2", "c-3"}},
		{"no match", store.ClientQuery{Name: "nobody"}, nil},
		{"id contains, any case", store.ClientQuery{IDContains: "C-"}, []string{"c-0", "c-1", "c-2", "c-3"}},
		{"id contains and enabled", store.ClientQuery{IDContains: "3", Enabled: &disabled}, []string{"c-3"}},
		{"id contains nothing", store.ClientQuery{IDContains: "c-9"}, nil},
	}
	for _, tc := range tests {
		got, err := s.ListClients(ctx, "payments", tc.query)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var ids []string
		for _, c := range got {
			ids = append(ids, c.ID)
			if len(c.Secrets) != 0 {
				t.Fatalf("%s: listing carries secrets", tc.name)
			}
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: ids = %v, want %v", tc.name, ids, tc.want)
		}
	}
}

func testUpdateClientChangesMutableFields(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	created, err := s.CreateClient(ctx, sampleClient("payments", "c-1"))
	if err != nil {
		t.Fatal(err)
	}
	updated, err := s.UpdateClient(ctx, "payments", "c-1", func(c *store.Client) error {
		c.Name = "renamed"
		c.Scopes = []string{"read", "write"}
		c.Roles = []string{"admin"}
		c.Audience = "https://other.example.test"
		c.TokenLifetime = 10 * time.Minute
		c.Enabled = false
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateClient: %v", err)
	}
	got, err := s.GetClient(ctx, "payments", "c-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []store.Client{updated, got} {
		if c.Name != "renamed" || !slices.Equal(c.Scopes, []string{"read", "write"}) || !slices.Equal(c.Roles, []string{"admin"}) ||
			c.Audience != "https://other.example.test" || c.TokenLifetime != 10*time.Minute || c.Enabled ||
			len(c.Secrets) != 2 || !c.CreatedAt.Equal(created.CreatedAt) {
			t.Fatalf("after update: %+v", c)
		}
	}
	if _, err := s.UpdateClient(ctx, "payments", "nobody", func(*store.Client) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update unknown client: %v, want ErrNotFound", err)
	}
}

func testUpdateClientErrorChangesNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if _, err := s.CreateClient(ctx, sampleClient("payments", "c-1")); err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("refused by caller")
	_, err := s.UpdateClient(ctx, "payments", "c-1", func(c *store.Client) error {
		c.Name = "half-done"
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("UpdateClient error = %v, want the caller's", err)
	}
	if got, _ := s.GetClient(ctx, "payments", "c-1"); got.Name != "billing batch" {
		t.Fatalf("aborted update was written: name %q", got.Name)
	}
}

func testDeleteClientRemovesIt(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if _, err := s.CreateClient(ctx, sampleClient("payments", "c-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClient(ctx, "payments", "c-1"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	if _, err := s.GetClient(ctx, "payments", "c-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted client readable: %v", err)
	}
	if err := s.DeleteClient(ctx, "payments", "c-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
}

func testAddClientSecretBoundsOtherSecrets(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	c := sampleClient("payments", "c-1")
	soon := time.Now().Add(time.Minute).UTC().Truncate(time.Second)
	c.Secrets[1].ExpiresAt = soon // s1 never expires; s2 expires in a minute
	if _, err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	grace := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	updated, err := s.AddClientSecret(ctx, "payments", "c-1", store.Secret{ID: "s3", Digest: digest("three"), Hint: "…ree"}, grace)
	if err != nil {
		t.Fatalf("AddClientSecret: %v", err)
	}
	got, _ := s.GetClient(ctx, "payments", "c-1")
	for _, cl := range []store.Client{updated, got} {
		byID := map[string]store.Secret{}
		for _, sec := range cl.Secrets {
			byID[sec.ID] = sec
		}
		if len(byID) != 3 || !byID["s1"].ExpiresAt.Equal(grace) || !byID["s2"].ExpiresAt.Equal(soon) ||
			!byID["s3"].ExpiresAt.IsZero() || !bytes.Equal(byID["s3"].Digest, digest("three")) {
			t.Fatalf("secrets after rotation: %+v", cl.Secrets)
		}
	}
	// A zero time adds a secret and leaves the others alone.
	added, err := s.AddClientSecret(ctx, "payments", "c-1", store.Secret{ID: "s4", Digest: digest("four"), Hint: "…our"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, sec := range added.Secrets {
		want := map[string]time.Time{"s1": grace, "s2": soon, "s3": {}, "s4": {}}[sec.ID]
		if !sec.ExpiresAt.Equal(want) {
			t.Errorf("after a plain add, secret %s expires %v, want %v", sec.ID, sec.ExpiresAt, want)
		}
	}
	if _, err := s.AddClientSecret(ctx, "payments", "nobody", store.Secret{ID: "x", Digest: digest("x")}, grace); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("secret for unknown client: %v, want ErrNotFound", err)
	}
}

func testDeleteClientSecretRevokesOne(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if _, err := s.CreateClient(ctx, sampleClient("payments", "c-1")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteClientSecret(ctx, "payments", "c-1", "s1"); err != nil {
		t.Fatalf("DeleteClientSecret: %v", err)
	}
	got, _ := s.GetClient(ctx, "payments", "c-1")
	if len(got.Secrets) != 1 || got.Secrets[0].ID != "s2" {
		t.Fatalf("secrets after revoking s1: %+v", got.Secrets)
	}
	if err := s.DeleteClientSecret(ctx, "payments", "c-1", "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second revoke: %v, want ErrNotFound", err)
	}
}

func testAuditListsNewestFirstAndPages(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 5 {
		if err := s.AppendAudit(ctx, store.AuditEntry{
			Actor: "c-admin", Action: "issuer.put", Resource: fmt.Sprintf("issuers/i-%d", i), Outcome: "success", Status: 200,
		}); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.ListAudit(ctx, store.Page{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 3 || first[0].Resource != "issuers/i-4" || first[2].Resource != "issuers/i-2" ||
		first[0].At.IsZero() || first[0].Actor != "c-admin" || first[0].Status != 200 || first[0].ID <= first[1].ID {
		t.Fatalf("first page = %+v", first)
	}
	rest, err := s.ListAudit(ctx, store.Page{After: fmt.Sprint(first[2].ID), Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(rest) != 2 || rest[0].Resource != "issuers/i-1" || rest[1].Resource != "issuers/i-0" {
		t.Fatalf("second page = %+v", rest)
	}
}

func testWatchReportsEveryKindOfChange(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan store.Change, 100)
	done := make(chan error, 1)
	go func() { done <- s.Watch(ctx, func(c store.Change) { changes <- c }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch returned %v after cancel", err)
		}
	}()
	expect := func(what string, want store.Change) {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case c := <-changes:
				if c == want {
					return
				}
			case <-deadline:
				t.Fatalf("no %s change %+v within 10s", what, want)
			}
		}
	}
	expect("initial", store.Change{Kind: store.ChangeAll})

	mustPutIssuer(t, s, sampleIssuer("payments"))
	expect("issuer", store.Change{Kind: store.ChangeIssuer, Issuer: "payments"})
	if _, err := s.CreateClient(ctx, sampleClient("payments", "c-1")); err != nil {
		t.Fatal(err)
	}
	expect("client create", store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "c-1"})
	if _, err := s.UpdateClient(ctx, "payments", "c-1", func(c *store.Client) error { c.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	expect("client disable", store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "c-1"})
	if err := s.DeleteClientSecret(ctx, "payments", "c-1", "s1"); err != nil {
		t.Fatal(err)
	}
	expect("secret revoke", store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "c-1"})
	if err := addKey(s, sampleKey("payments", "k1", store.KeyActive)); err != nil {
		t.Fatal(err)
	}
	expect("key", store.Change{Kind: store.ChangeKey, Issuer: "payments"})
	if err := s.DeleteClient(ctx, "payments", "c-1"); err != nil {
		t.Fatal(err)
	}
	expect("client delete", store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "c-1"})
	if err := s.DeleteIssuer(ctx, "payments", false, 0); err != nil {
		t.Fatal(err)
	}
	expect("issuer delete", store.Change{Kind: store.ChangeIssuer, Issuer: "payments"})
}

func testIssuerKeepsItsKeySchedule(t *testing.T, s store.Store) {
	iss := sampleIssuer("payments")
	iss.KeyRotationPeriod, iss.KeyPublishLead, iss.KeyRetirePeriod = 720*time.Hour, 11*time.Minute, 25*time.Hour
	mustPutIssuer(t, s, iss)
	got, _ := s.GetIssuer(context.Background(), "payments")
	if got.KeyRotationPeriod != 720*time.Hour || got.KeyPublishLead != 11*time.Minute || got.KeyRetirePeriod != 25*time.Hour {
		t.Fatalf("schedule = %v %v %v", got.KeyRotationPeriod, got.KeyPublishLead, got.KeyRetirePeriod)
	}
	iss.KeyPublishLead = 12 * time.Minute
	if _, result, _ := s.PutIssuer(context.Background(), iss, 0); result != store.Updated {
		t.Fatalf("changing the lead: %v, want Updated", result)
	}
}

func testKeyLifecycleRoundTrips(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	t0 := time.Now().UTC().Truncate(time.Second)
	old := sampleKey("payments", "k-old", store.KeyActive)
	old.ActivatedAt = t0
	pending := sampleKey("payments", "k-new", store.KeyPending)
	pending.ActivateAt = t0.Add(11 * time.Minute)
	for _, k := range []store.SigningKey{old, pending} {
		if err := addKey(s, k); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.ListSigningKeys(ctx, "payments")
	// Promotion: the old key retires and the pending one activates, in one
	// write.
	t1 := t0.Add(12 * time.Minute)
	after, err := s.UpdateSigningKeys(ctx, "payments", func(keys []store.SigningKey) ([]store.SigningKey, error) {
		for i := range keys {
			switch keys[i].ID {
			case "k-old":
				keys[i].State, keys[i].RetiredAt, keys[i].DeleteAt = store.KeyRetired, t1, t1.Add(24*time.Hour)
			case "k-new":
				keys[i].State, keys[i].ActivatedAt = store.KeyActive, t1
			}
		}
		return keys, nil
	})
	if err != nil {
		t.Fatalf("promote: %v", err)
	}
	byID := map[string]store.SigningKey{}
	for _, k := range after {
		byID[k.ID] = k
	}
	o, n := byID["k-old"], byID["k-new"]
	if o.State != store.KeyRetired || !o.RetiredAt.Equal(t1) || !o.DeleteAt.Equal(t1.Add(24*time.Hour)) || !o.ActivatedAt.Equal(t0) {
		t.Fatalf("retired key = %+v", o)
	}
	if n.State != store.KeyActive || !n.ActivatedAt.Equal(t1) || !n.ActivateAt.Equal(t0.Add(11*time.Minute)) || !n.CreatedAt.Equal(before[1].CreatedAt) {
		t.Fatalf("promoted key = %+v", n)
	}
	// Deletion is leaving a key out, even by editing the slice handed in.
	after, err = s.UpdateSigningKeys(ctx, "payments", func(keys []store.SigningKey) ([]store.SigningKey, error) {
		return slices.DeleteFunc(keys, func(k store.SigningKey) bool { return k.ID == "k-old" }), nil
	})
	if err != nil || len(after) != 1 || after[0].ID != "k-new" {
		t.Fatalf("after deleting k-old: %+v, %v", after, err)
	}
	if _, err := s.UpdateSigningKeys(ctx, "ghost", func(k []store.SigningKey) ([]store.SigningKey, error) { return k, nil }); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("keys of an unknown issuer: %v, want ErrNotFound", err)
	}
}

func testUpdateSigningKeysErrorChangesNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if err := addKey(s, sampleKey("payments", "k1", store.KeyActive)); err != nil {
		t.Fatal(err)
	}
	refuse := errors.New("refused")
	if _, err := s.UpdateSigningKeys(ctx, "payments", func([]store.SigningKey) ([]store.SigningKey, error) {
		return nil, refuse
	}); !errors.Is(err, refuse) {
		t.Fatalf("error = %v, want the caller's", err)
	}
	two := []store.SigningKey{sampleKey("payments", "k1", store.KeyActive), sampleKey("payments", "k2", store.KeyActive)}
	if _, err := s.UpdateSigningKeys(ctx, "payments", func([]store.SigningKey) ([]store.SigningKey, error) { return two, nil }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("two active keys: %v, want ErrConflict", err)
	}
	keys, _ := s.ListSigningKeys(ctx, "payments")
	if len(keys) != 1 || keys[0].ID != "k1" || keys[0].State != store.KeyActive {
		t.Fatalf("keys after refused updates = %+v", keys)
	}
}

func testConcurrentKeyUpdatesAreSerialized(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	// Each writer adds a key only if the issuer has fewer than one; run
	// together, exactly one may add.
	const writers = 6
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			_, err := s.UpdateSigningKeys(ctx, "payments", func(keys []store.SigningKey) ([]store.SigningKey, error) {
				if len(keys) > 0 {
					return keys, nil
				}
				return append(keys, sampleKey("payments", fmt.Sprintf("k%d", i), store.KeyActive)), nil
			})
			errs <- err
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("writer: %v", err)
		}
	}
	if keys, _ := s.ListSigningKeys(ctx, "payments"); len(keys) != 1 {
		t.Fatalf("%d keys; concurrent writers were not serialized", len(keys))
	}
}

func testTryLockIsExclusive(t *testing.T, s store.Store) {
	ctx := context.Background()
	unlock, lost, ok, err := s.TryLock(ctx, "rotation-test")
	if err != nil || !ok || lost == nil {
		t.Fatalf("first TryLock: ok=%v err=%v", ok, err)
	}
	if _, _, again, err := s.TryLock(ctx, "rotation-test"); err != nil || again {
		t.Fatalf("second TryLock while held: ok=%v err=%v", again, err)
	}
	otherUnlock, _, other, err := s.TryLock(ctx, "another-lock")
	if err != nil || !other {
		t.Fatalf("a different lock name: ok=%v err=%v", other, err)
	}
	otherUnlock()
	select {
	case <-lost:
		t.Fatal("a held lock reports itself lost")
	default:
	}
	unlock()
	unlock() // harmless twice
	relock, _, ok, err := s.TryLock(ctx, "rotation-test")
	if err != nil || !ok {
		t.Fatalf("TryLock after unlock: ok=%v err=%v", ok, err)
	}
	relock()
}

func testClientKeepsItsAssertionKeys(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	c := sampleClient("payments", "c-jwk")
	c.PublicJWK = []byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1"}`)
	if _, err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetClient(ctx, "payments", "c-jwk")
	var jwk map[string]string
	if err := json.Unmarshal(got.PublicJWK, &jwk); err != nil || jwk["kid"] != "k1" || got.JWKSURI != "" {
		t.Fatalf("public JWK = %s (%v), jwks uri %q", got.PublicJWK, err, got.JWKSURI)
	}
	updated, err := s.UpdateClient(ctx, "payments", "c-jwk", func(c *store.Client) error {
		c.PublicJWK, c.JWKSURI = nil, "https://keys.example.test/jwks.json"
		return nil
	})
	if err != nil || len(updated.PublicJWK) != 0 || updated.JWKSURI != "https://keys.example.test/jwks.json" {
		t.Fatalf("after switching to a JWKS URI: %+v, %v", updated, err)
	}
	listed, _ := s.ListClients(ctx, "payments", store.ClientQuery{})
	if len(listed) != 1 || listed[0].JWKSURI != "https://keys.example.test/jwks.json" {
		t.Fatalf("listing = %+v", listed)
	}
}

func testAssertionJTIsAreSingleUse(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	if err := s.RecordAssertion(ctx, "payments", "c-1", "jti-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAssertion(ctx, "payments", "c-1", "jti-1", now.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("replayed jti: %v, want ErrConflict", err)
	}
	// The same jti from another client, or under another issuer, is new.
	if err := s.RecordAssertion(ctx, "payments", "c-2", "jti-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAssertion(ctx, "billing", "c-1", "jti-1", now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordAssertion(ctx, "payments", "c-1", "jti-old", now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpiredAssertions(ctx, now)
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredAssertions = %d, %v; want 1", n, err)
	}
	if err := s.RecordAssertion(ctx, "payments", "c-1", "jti-1", now.Add(time.Minute)); !errors.Is(err, store.ErrConflict) {
		t.Fatal("cleanup forgot a live jti")
	}
}

func testIssuerKeepsItsURLStyleAndRegistrationPolicy(t *testing.T, s store.Store) {
	ctx := context.Background()
	iss := sampleIssuer("realm")
	iss.URLStyle, iss.AnonymousRegistration = store.URLStyleKeycloak, true
	mustPutIssuer(t, s, iss)
	got, err := s.GetIssuer(ctx, "realm")
	if err != nil || !got.Keycloak() || !got.AnonymousRegistration {
		t.Fatalf("GetIssuer = %+v, %v", got, err)
	}
	iss.AnonymousRegistration = false
	if _, result, err := s.PutIssuer(ctx, iss, 0); err != nil || result != store.Updated {
		t.Fatalf("a change of the registration policy: %v, %v", result, err)
	}
}

func testClientGetsKeycloakIDsAndIsFoundByThem(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("billing"))
	made, err := s.CreateClient(ctx, sampleClient("payments", "c-1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(made.InternalID) != 36 || len(made.ServiceAccountID) != 36 || made.InternalID == made.ServiceAccountID {
		t.Fatalf("ids made by the store: %q, %q", made.InternalID, made.ServiceAccountID)
	}
	kept := sampleClient("payments", "c-2")
	kept.InternalID, kept.ServiceAccountID = "0b7e9f3c-2c55-4d8e-9b61-1f3a2d4c5e6f", "5d1f6b2a-8c3e-4f7a-a9b0-c1d2e3f4a5b6"
	if _, err := s.CreateClient(ctx, kept); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		get   func() (store.Client, error)
		wants string
	}{
		{"by internal id", func() (store.Client, error) { return s.GetClientByInternalID(ctx, "payments", kept.InternalID) }, "c-2"},
		{"by service account", func() (store.Client, error) {
			return s.GetClientByServiceAccount(ctx, "payments", made.ServiceAccountID)
		}, "c-1"},
	} {
		got, err := tc.get()
		if err != nil || got.ID != tc.wants || len(got.Secrets) != 2 {
			t.Errorf("%s: %+v, %v", tc.name, got, err)
		}
	}
	if _, err := s.GetClientByInternalID(ctx, "billing", kept.InternalID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another issuer's internal id: %v", err)
	}
	clash := sampleClient("payments", "c-3")
	clash.InternalID = kept.InternalID
	if _, err := s.CreateClient(ctx, clash); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a second client with the same internal id: %v", err)
	}
}

func testClientKeepsOptionalScopesAndRegistrationToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	c := sampleClient("payments", "c-1")
	c.OptionalScopes, c.FullScopeAllowed, c.RegistrationTokenDigest = []string{"write"}, true, digest("rat-1")
	if _, err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetClient(ctx, "payments", "c-1")
	if err != nil || !slices.Equal(got.OptionalScopes, []string{"write"}) || !got.FullScopeAllowed || !bytes.Equal(got.RegistrationTokenDigest, digest("rat-1")) {
		t.Fatalf("GetClient = %+v, %v", got, err)
	}
	got, err = s.UpdateClient(ctx, "payments", "c-1", func(c *store.Client) error {
		c.OptionalScopes, c.FullScopeAllowed, c.RegistrationTokenDigest = nil, false, digest("rat-2")
		return nil
	})
	if err != nil || len(got.OptionalScopes) != 0 || got.FullScopeAllowed || !bytes.Equal(got.RegistrationTokenDigest, digest("rat-2")) {
		t.Fatalf("after update: %+v, %v", got, err)
	}
}

func testRolesAreDefinedOnClientsAndTheIssuer(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	if _, err := s.CreateClient(ctx, sampleClient("payments", "api")); err != nil {
		t.Fatal(err)
	}
	reader, err := s.CreateRole(ctx, store.Role{IssuerName: "payments", ClientID: "api", Name: "reader", Description: "reads"})
	if err != nil || reader.ID == "" {
		t.Fatalf("CreateRole: %+v, %v", reader, err)
	}
	kept, err := s.CreateRole(ctx, store.Role{IssuerName: "payments", ClientID: "api", ID: "6f1c2d3e-0000-4000-8000-000000000001", Name: "writer"})
	if err != nil || kept.ID != "6f1c2d3e-0000-4000-8000-000000000001" {
		t.Fatalf("CreateRole with an id: %+v, %v", kept, err)
	}
	if _, err := s.CreateRole(ctx, store.Role{IssuerName: "payments", Name: "auditor"}); err != nil {
		t.Fatalf("a realm role: %v", err)
	}
	for _, bad := range []struct {
		role store.Role
		want error
	}{
		{store.Role{IssuerName: "payments", ClientID: "api", Name: "reader"}, store.ErrConflict},
		{store.Role{IssuerName: "payments", ClientID: "nobody", Name: "x"}, store.ErrNotFound},
		{store.Role{IssuerName: "nowhere", Name: "x"}, store.ErrNotFound},
	} {
		if _, err := s.CreateRole(ctx, bad.role); !errors.Is(err, bad.want) {
			t.Errorf("CreateRole(%+v): %v, want %v", bad.role, err, bad.want)
		}
	}
	roles, err := s.ListRoles(ctx, "payments", "api")
	if err != nil || len(roles) != 2 || roles[0].Name != "reader" || roles[0].Description != "reads" || roles[1].Name != "writer" {
		t.Fatalf("ListRoles = %+v, %v", roles, err)
	}
	if realm, err := s.ListRoles(ctx, "payments", ""); err != nil || len(realm) != 1 || realm[0].Name != "auditor" {
		t.Fatalf("realm roles = %+v, %v", realm, err)
	}
	if _, err := s.ListRoles(ctx, "payments", "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("roles of an unknown client: %v", err)
	}
	if err := s.DeleteRole(ctx, "payments", "api", "writer"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRole(ctx, "payments", "api", "writer"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting it twice: %v", err)
	}
}

// rolesFixture is an API client with two roles, a realm role, and a
// consumer, in issuer "payments"; issuer "billing" has a role of its own.
func rolesFixture(t *testing.T, s store.Store) (reader, writer, realm, foreign store.Role) {
	t.Helper()
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("billing"))
	for _, c := range []store.Client{sampleClient("payments", "api"), sampleClient("payments", "consumer"), sampleClient("billing", "api")} {
		if _, err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	must := func(r store.Role) store.Role {
		t.Helper()
		made, err := s.CreateRole(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return made
	}
	return must(store.Role{IssuerName: "payments", ClientID: "api", Name: "reader"}),
		must(store.Role{IssuerName: "payments", ClientID: "api", Name: "writer"}),
		must(store.Role{IssuerName: "payments", Name: "auditor"}),
		must(store.Role{IssuerName: "billing", ClientID: "api", Name: "reader"})
}

func testRoleMappingsResolveAndStayWithinTheIssuer(t *testing.T, s store.Store) {
	ctx := context.Background()
	reader, writer, realm, foreign := rolesFixture(t, s)
	got, err := s.UpdateClient(ctx, "payments", "consumer", func(c *store.Client) error {
		c.RoleMappings = []store.RoleRef{{ID: writer.ID}, {ID: reader.ID}, {ID: realm.ID}, {ID: reader.ID}}
		c.ScopeMappings = []store.RoleRef{{ID: reader.ID}}
		return nil
	})
	want := []store.RoleRef{{ID: realm.ID, ClientID: "", Name: "auditor"}, {ID: reader.ID, ClientID: "api", Name: "reader"}, {ID: writer.ID, ClientID: "api", Name: "writer"}}
	if err != nil || !slices.Equal(got.RoleMappings, want) || !slices.Equal(got.ScopeMappings, want[1:2]) {
		t.Fatalf("mappings = %+v / %+v, %v; want %+v", got.RoleMappings, got.ScopeMappings, err, want)
	}
	for name, list := range map[string]func() ([]store.Client, error){
		"GetClient": func() ([]store.Client, error) {
			c, err := s.GetClient(ctx, "payments", "consumer")
			return []store.Client{c}, err
		},
		"ListClients": func() ([]store.Client, error) {
			return s.ListClients(ctx, "payments", store.ClientQuery{Name: ""})
		},
	} {
		clients, err := list()
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(clients, func(c store.Client) bool { return c.ID == "consumer" })
		if i < 0 || !slices.Equal(clients[i].RoleMappings, want) {
			t.Errorf("%s: %+v", name, clients)
		}
	}
	// A role of another issuer, or no role at all, cannot be mapped, and
	// the refusal changes nothing.
	for _, id := range []string{foreign.ID, "no-such-role"} {
		_, err := s.UpdateClient(ctx, "payments", "consumer", func(c *store.Client) error {
			c.RoleMappings = append(c.RoleMappings, store.RoleRef{ID: id})
			c.Name = "changed"
			return nil
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("mapping role %s: %v, want ErrNotFound", id, err)
		}
	}
	if c, _ := s.GetClient(ctx, "payments", "consumer"); c.Name == "changed" || len(c.RoleMappings) != 3 {
		t.Fatalf("a refused mapping changed the client: %+v", c)
	}
	withMappings := sampleClient("payments", "born-mapped")
	withMappings.RoleMappings = []store.RoleRef{{ID: reader.ID}}
	if made, err := s.CreateClient(ctx, withMappings); err != nil || len(made.RoleMappings) != 1 || made.RoleMappings[0].Name != "reader" {
		t.Fatalf("created with mappings: %+v, %v", made, err)
	}
}

func testDeletingARoleOrItsClientRemovesItsMappings(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reader, writer, _, _ := rolesFixture(t, s)
	if _, err := s.UpdateClient(ctx, "payments", "consumer", func(c *store.Client) error {
		c.RoleMappings = []store.RoleRef{{ID: reader.ID}, {ID: writer.ID}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	changes := make(chan store.Change, 100)
	go func() { _ = s.Watch(ctx, func(c store.Change) { changes <- c }) }()
	<-changes // the initial "all"
	if err := s.DeleteRole(ctx, "payments", "api", "writer"); err != nil {
		t.Fatal(err)
	}
	// The consumer's tokens change: every node must hear of it.
	deadline := time.After(10 * time.Second)
	for heard := false; !heard; {
		select {
		case c := <-changes:
			heard = c == store.Change{Kind: store.ChangeClient, Issuer: "payments", ClientID: "consumer"}
		case <-deadline:
			t.Fatal("no change of the consumer after its role was deleted")
		}
	}
	if c, _ := s.GetClient(ctx, "payments", "consumer"); len(c.RoleMappings) != 1 || c.RoleMappings[0].ID != reader.ID {
		t.Fatalf("after deleting a role: %+v", c.RoleMappings)
	}
	if err := s.DeleteClient(ctx, "payments", "api"); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.GetClient(ctx, "payments", "consumer"); len(c.RoleMappings) != 0 {
		t.Fatalf("after deleting the roles' client: %+v", c.RoleMappings)
	}
	if _, err := s.CreateClient(ctx, sampleClient("payments", "api")); err != nil {
		t.Fatal(err)
	}
	if roles, err := s.ListRoles(ctx, "payments", "api"); err != nil || len(roles) != 0 {
		t.Fatalf("a client re-created under the id inherited roles: %+v, %v", roles, err)
	}
}

func testInitialAccessTokensAreSpentOnlyBySuccessfulRegistrations(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustPutIssuer(t, s, sampleIssuer("payments"))
	mustPutIssuer(t, s, sampleIssuer("billing"))
	now := time.Now().UTC().Truncate(time.Second)
	two, err := s.CreateInitialAccessToken(ctx, store.InitialAccessToken{IssuerName: "payments", Digest: digest("iat-two"),
		ExpiresAt: now.Add(time.Hour), RemainingCount: 2})
	if err != nil || two.ID == "" || two.CreatedAt.IsZero() {
		t.Fatalf("CreateInitialAccessToken: %+v, %v", two, err)
	}
	if _, err := s.CreateInitialAccessToken(ctx, store.InitialAccessToken{IssuerName: "payments", Digest: digest("iat-old"),
		ExpiresAt: now.Add(-time.Second), RemainingCount: 5}); err != nil {
		t.Fatal(err)
	}
	register := func(id string, token string) error {
		_, err := s.RegisterClient(ctx, sampleClient("payments", id), digest(token), now)
		return err
	}
	if err := register("c-1", "iat-two"); err != nil {
		t.Fatal(err)
	}
	// A registration that fails (the id is taken) spends nothing.
	if err := register("c-1", "iat-two"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a taken id: %v", err)
	}
	if err := register("c-2", "iat-two"); err != nil {
		t.Fatalf("the second use: %v", err)
	}
	// The client remembers the token that registered it, for good.
	if c, err := s.GetClient(ctx, "payments", "c-2"); err != nil || c.RegisteredWith != two.ID {
		t.Fatalf("c-2 registered with %q, want %q (%v)", c.RegisteredWith, two.ID, err)
	}
	if c, err := s.UpdateClient(ctx, "payments", "c-2", func(c *store.Client) error { c.RegisteredWith = "forged"; return nil }); err != nil || c.RegisteredWith != two.ID {
		t.Fatalf("an update changed RegisteredWith to %q (%v)", c.RegisteredWith, err)
	}
	forged := sampleClient("payments", "c-forged")
	forged.RegisteredWith = two.ID
	if c, err := s.CreateClient(ctx, forged); err != nil || c.RegisteredWith != "" {
		t.Fatalf("CreateClient kept RegisteredWith %q (%v)", c.RegisteredWith, err)
	}
	for _, tc := range []struct{ id, token string }{{"c-3", "iat-two"}, {"c-4", "iat-old"}} {
		if err := register(tc.id, tc.token); !errors.Is(err, store.ErrPrecondition) {
			t.Errorf("%s with %s: %v, want ErrPrecondition", tc.id, tc.token, err)
		}
		if _, err := s.GetClient(ctx, "payments", tc.id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a refused registration created %s", tc.id)
		}
	}
	if _, err := s.RegisterClient(ctx, sampleClient("billing", "c-9"), digest("iat-two"), now); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another issuer's token: %v, want ErrNotFound", err)
	}
	tokens, err := s.ListInitialAccessTokens(ctx, "payments")
	if err != nil || len(tokens) != 2 || tokens[0].ID != two.ID || tokens[0].RemainingCount != 0 || !tokens[0].ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("ListInitialAccessTokens = %+v, %v", tokens, err)
	}
	if err := s.DeleteInitialAccessToken(ctx, "payments", two.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteInitialAccessToken(ctx, "payments", two.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting it twice: %v", err)
	}
	forever, err := s.CreateInitialAccessToken(ctx, store.InitialAccessToken{IssuerName: "payments", Digest: digest("iat-forever"), RemainingCount: 1})
	if err != nil || !forever.ExpiresAt.IsZero() {
		t.Fatalf("a token without expiry: %+v, %v", forever, err)
	}
	if err := register("c-5", "iat-forever"); err != nil {
		t.Fatalf("a token without expiry: %v", err)
	}
}

func testAuditKeepsTheActorsIssuer(t *testing.T, s store.Store) {
	ctx := context.Background()
	if err := s.AppendAudit(ctx, store.AuditEntry{Actor: "c-portal", ActorIssuer: "payments", Action: "client.create",
		Resource: "issuers/payments/clients/c-1", Outcome: "success", Status: 201}); err != nil {
		t.Fatal(err)
	}
	entries, err := s.ListAudit(ctx, store.Page{})
	if err != nil || len(entries) != 1 || entries[0].ActorIssuer != "payments" || entries[0].Actor != "c-portal" {
		t.Fatalf("ListAudit = %+v, %v", entries, err)
	}
}
