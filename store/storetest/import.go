package storetest

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/authz-dev/authz/store"
)

// realmImport is an issuer as an import carries it over: a realm role, a
// role on a resource client that holds roles only, and a consumer mapped
// to both with a secret of its own, and a key.
func realmImport(secret string) store.IssuerImport {
	iss := sampleIssuer("imported")
	iss.URLStyle = store.URLStyleKeycloak
	consumer := store.Client{
		ID: "consumer", InternalID: "8e1c5ee4-internal", ServiceAccountID: "2f9a5b7c-account",
		Name: "consumer", Scopes: []string{"read"}, Enabled: true, FullScopeAllowed: true,
		Secrets:      []store.Secret{{ID: "from-import-" + secret, Digest: digest(secret), Hint: secret[len(secret)-4:]}},
		RoleMappings: []store.RoleRef{{ClientID: "orders-api", Name: "reader"}, {Name: "offline_access"}},
	}
	return store.IssuerImport{
		Issuer: iss,
		Roles: []store.Role{
			{ClientID: "orders-api", Name: "reader", Description: "reads orders"},
			{Name: "offline_access"},
		},
		Clients: []store.Client{
			{ID: "orders-api", Name: "orders API", FullScopeAllowed: true},
			consumer,
		},
		Keys: func(current []store.SigningKey) ([]store.SigningKey, error) {
			if slices.ContainsFunc(current, func(k store.SigningKey) bool { return k.ID == "kc-kid" }) {
				return current, nil
			}
			return append(current, sampleKey("imported", "kc-kid", store.KeyActive)), nil
		},
	}
}

func results(items []store.ImportItem) map[string]store.PutResult {
	out := map[string]store.PutResult{}
	for _, it := range items {
		out[it.Kind+" "+it.Name] = it.Result
	}
	return out
}

func testImportIssuerCreatesThenChangesNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	items, err := s.ImportIssuer(ctx, realmImport("first-secret-value"), false)
	if err != nil {
		t.Fatalf("ImportIssuer: %v", err)
	}
	want := map[string]store.PutResult{
		"issuer imported": store.Created, "role orders-api/reader": store.Created, "role /offline_access": store.Created,
		"client orders-api": store.Created, "client consumer": store.Created, "key kc-kid": store.Created,
	}
	if got := results(items); !maps.Equal(got, want) {
		t.Fatalf("first import did %v, want %v", got, want)
	}
	c, err := s.GetClient(ctx, "imported", "consumer")
	if err != nil {
		t.Fatal(err)
	}
	if c.InternalID != "8e1c5ee4-internal" || c.ServiceAccountID != "2f9a5b7c-account" {
		t.Errorf("ids %q, %q: the import's were not kept", c.InternalID, c.ServiceAccountID)
	}
	if len(c.Secrets) != 1 || !slices.Equal(c.Secrets[0].Digest, digest("first-secret-value")) {
		t.Errorf("secrets %+v, want the imported digest", c.Secrets)
	}
	var mapped []string
	for _, m := range c.RoleMappings {
		if m.ID == "" {
			t.Errorf("mapping %+v has no role id", m)
		}
		mapped = append(mapped, m.ClientID+"/"+m.Name)
	}
	slices.Sort(mapped)
	if !slices.Equal(mapped, []string{"/offline_access", "orders-api/reader"}) {
		t.Errorf("mappings %v", mapped)
	}
	if keys, _ := s.ListSigningKeys(ctx, "imported"); len(keys) != 1 || keys[0].State != store.KeyActive {
		t.Errorf("keys %+v, want the imported active key", keys)
	}

	// The same file again: a fresh secret id, the same digest.
	items, err = s.ImportIssuer(ctx, realmImport("first-secret-value"), false)
	if err != nil {
		t.Fatalf("second ImportIssuer: %v", err)
	}
	for _, it := range items {
		if it.Result != store.Unchanged {
			t.Errorf("second import: %s %s %v %v, want unchanged", it.Kind, it.Name, it.Result, it.Changed)
		}
	}
	if again, _ := s.GetClient(ctx, "imported", "consumer"); len(again.Secrets) != 1 {
		t.Errorf("second import left %d secrets, want 1", len(again.Secrets))
	}
}

func testImportIssuerUpdatesWhatChanged(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.ImportIssuer(ctx, realmImport("first-secret-value"), false); err != nil {
		t.Fatal(err)
	}
	imp := realmImport("second-secret-value")
	imp.Clients[1].Name = "consumer, renamed"
	imp.Clients[1].RoleMappings = imp.Clients[1].RoleMappings[:1]
	imp.Roles[0].Description = "reads every order"
	items, err := s.ImportIssuer(ctx, imp, false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, it := range items {
		if it.Result == store.Updated {
			got[it.Kind+" "+it.Name] = it.Changed
		}
	}
	if !slices.Equal(got["client consumer"], []string{"Name", "RoleMappings", "Secrets"}) || !slices.Equal(got["role orders-api/reader"], []string{"Description"}) || len(got) != 2 {
		t.Errorf("updates %v", got)
	}
	c, _ := s.GetClient(ctx, "imported", "consumer")
	// The file's secrets are the client's: Keycloak regenerated it.
	if c.Name != "consumer, renamed" || len(c.RoleMappings) != 1 || len(c.Secrets) != 1 || !slices.Equal(c.Secrets[0].Digest, digest("second-secret-value")) {
		t.Errorf("client after update: name %q, %d mappings, %d secrets (only the file's)", c.Name, len(c.RoleMappings), len(c.Secrets))
	}
}

func testImportIssuerDryRunAndFailuresChangeNothing(t *testing.T, s store.Store) {
	ctx := context.Background()
	items, err := s.ImportIssuer(ctx, realmImport("first-secret-value"), true)
	if err != nil || len(items) != 6 {
		t.Fatalf("dry run: %d items, %v", len(items), err)
	}
	if _, err := s.GetIssuer(ctx, "imported"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a dry run GetIssuer says %v, want not found", err)
	}

	failures := map[string]func(*store.IssuerImport){
		"a mapping to a role nobody has": func(imp *store.IssuerImport) {
			imp.Clients[1].RoleMappings = append(imp.Clients[1].RoleMappings, store.RoleRef{ClientID: "orders-api", Name: "writer"})
		},
		"the key step failing": func(imp *store.IssuerImport) {
			imp.Keys = func([]store.SigningKey) ([]store.SigningKey, error) { return nil, errors.New("cannot seal") }
		},
		"two clients with one internal id": func(imp *store.IssuerImport) {
			imp.Clients[0].InternalID = imp.Clients[1].InternalID
		},
	}
	for name, breakIt := range failures {
		imp := realmImport("first-secret-value")
		breakIt(&imp)
		if _, err := s.ImportIssuer(ctx, imp, false); err == nil {
			t.Errorf("%s: import succeeded", name)
		}
		if _, err := s.GetIssuer(ctx, "imported"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: the issuer was written (%v)", name, err)
		}
		if roles, _ := s.ListRoles(ctx, "imported", ""); len(roles) > 0 {
			t.Errorf("%s: roles were written", name)
		}
	}
}
