package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
	"github.com/authz-dev/authz/store/postgres/pgtest"
)

// TestSeedIssuersMakesWorkingTenants: seeded issuers hold keys the server's
// KEK opens, and their clients are spread over them with the shared secret.
func TestSeedIssuersMakesWorkingTenants(t *testing.T) {
	ctx := context.Background()
	databaseURL := pgtest.NewDatabase(t)
	if err := postgres.Migrate(ctx, databaseURL); err != nil {
		t.Fatal(err)
	}
	kek := make([]byte, keys.KEKSize)
	_, _ = rand.Read(kek)
	var out, errs bytes.Buffer
	err := run(ctx, []string{"seed", "--database-url", databaseURL, "--issuers", "40", "--count", "200", "--prefix", "c-",
		"--secret", "seeded-secret", "--scope", "read", "--kek", base64.StdEncoding.EncodeToString(kek)}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	if !strings.Contains(out.String(), "seeded 40 issuers") || !strings.Contains(out.String(), "seeded 200 clients over 40 issuer(s)") {
		t.Errorf("seed printed %q", out.String())
	}

	st, err := postgres.Open(ctx, databaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sealer, _ := keys.NewSealer(kek)
	m := keys.NewManager(st, sealer, keys.NewKeyring(0), keys.DefaultSchedule(5*time.Minute), nil)
	if err := m.CheckKEKs(ctx); err != nil {
		t.Fatalf("the server's KEK does not open the seeded keys: %v", err)
	}
	for _, name := range []string{"t-000001", "t-000040"} {
		if _, err := m.Active(ctx, name); err != nil {
			t.Errorf("issuer %s has no active key: %v", name, err)
		}
		if _, err := m.JWKS(ctx, name); err != nil {
			t.Errorf("issuer %s publishes no JWKS: %v", name, err)
		}
	}
	// The bulk load skipped the triggers that schedule each issuer's keys:
	// every seeded issuer must still be due for the rotator's first look.
	due, err := st.ListKeysDue(ctx, time.Now(), store.DueCursor{}, 0)
	if err != nil || len(due) != 40 {
		t.Errorf("%d seeded issuers are due for the rotator (%v), want 40", len(due), err)
	}
	// Client i belongs to issuer i mod 40.
	c, err := st.GetClient(ctx, "t-000002", "c-000002")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Secrets) != 1 || !credential.SecretMatches(c.Secrets[0].Digest, "seeded-secret") || len(c.Scopes) != 1 {
		t.Errorf("seeded client = %+v", c)
	}
	page, err := st.ListClients(ctx, "t-000040", store.ClientQuery{})
	if err != nil || len(page) != 5 {
		t.Errorf("issuer t-000040 has %d clients (%v), want 5", len(page), err)
	}
}
