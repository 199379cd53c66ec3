package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
)

// runSeed loads --count clients of one issuer, ids <prefix>000001 on, all
// with one secret, so that `run --clients` can spread load over them. With
// --issuers it first creates that many issuers, each with a sealed signing
// key, and spreads the clients over them.
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("authz-bench seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	databaseURL := fs.String("database-url", "", "PostgreSQL URL of the server's database (required)")
	issuerName := fs.String("issuer", "", "existing issuer to add clients to (required without --issuers)")
	count := fs.Int("count", 1000, "how many clients (0 with --issuers: none)")
	prefix := fs.String("prefix", "bench-", "client id prefix")
	secret := fs.String("secret", "", "the secret every seeded client shares (required)")
	scopes := fs.String("scope", "", "a scope every seeded client may request")
	issuers := fs.Int("issuers", 0, "create this many issuers, <issuer-prefix>000001 on, and spread the clients over them round-robin")
	issuerPrefix := fs.String("issuer-prefix", "t-", "with --issuers: the issuers' name prefix")
	alg := fs.String("alg", keys.ES256, "with --issuers: their signing algorithm (ES256 or EdDSA for many: an RSA key takes ~60 ms to make)")
	kek := fs.String("kek", "", "with --issuers: the server's key-encryption key, base64 of 32 bytes (default $AUTHZ_KEK)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *issuers < 0 || *issuers > 1_000_000 {
		return errors.New("--issuers is 0 to 1000000")
	}
	if *databaseURL == "" || *secret == "" || *count < 0 || *count > 10_000_000 || (*issuers == 0 && (*issuerName == "" || *count < 1)) {
		return errors.New("--database-url, --secret and --issuer (or --issuers) are required, and --count is 1 to 10000000")
	}
	st, err := postgres.Open(ctx, *databaseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	var scopeList []string
	if *scopes != "" {
		scopeList = []string{*scopes}
	}
	start := time.Now()
	var names []string
	var audience string
	if *issuers > 0 {
		if *kek == "" {
			*kek = os.Getenv("AUTHZ_KEK")
		}
		if names, err = seedIssuers(ctx, st, *issuers, *issuerPrefix, *alg, *kek, scopeList); err != nil {
			return err
		}
		audience = "https://api.example.test"
		fmt.Fprintf(stdout, "seeded %d issuers (%s) in %s\n", *issuers, *alg, time.Since(start).Truncate(time.Millisecond))
	} else {
		iss, err := st.GetIssuer(ctx, *issuerName)
		if err != nil {
			return err
		}
		names, audience = []string{iss.Name}, iss.Audience
	}
	if *count == 0 {
		return nil
	}
	start = time.Now()
	sec := credential.StoredSecret(*secret)
	err = st.ImportClients(ctx, *count, func(i int) store.Client {
		id := fmt.Sprintf("%s%06d", *prefix, i+1)
		return store.Client{IssuerName: names[i%len(names)], ID: id, Name: "bench " + id, Scopes: scopeList, Audience: audience, Enabled: true,
			Secrets: []store.Secret{{ID: "s1", Digest: sec.Digest, Hint: sec.Hint}}}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d clients over %d issuer(s) in %s\n", *count, len(names), time.Since(start).Truncate(time.Millisecond))
	return nil
}

// seedIssuers creates n issuers, each with one active signing key sealed
// under kek, generated on every core.
func seedIssuers(ctx context.Context, st *postgres.Store, n int, prefix, alg, kek string, scopes []string) ([]string, error) {
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(kek))
	if err != nil || len(raw) != keys.KEKSize {
		return nil, errors.New("--kek (or $AUTHZ_KEK) must be the server's key-encryption key: base64 of 32 bytes")
	}
	sealer, err := keys.NewSealer(raw)
	if err != nil {
		return nil, err
	}
	m := keys.NewManager(st, sealer, keys.NewKeyring(0), keys.DefaultSchedule(5*time.Minute), nil)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%06d", prefix, i+1)
	}
	sealed, err := m.NewFirstKeys(names, alg, time.Now())
	if err != nil {
		return nil, err
	}
	err = st.ImportIssuers(ctx, n, func(i int) (store.Issuer, []store.SigningKey) {
		return store.Issuer{Name: names[i], AvailableScopes: scopes, Audience: "https://api.example.test", TokenLifetime: 5 * time.Minute,
			SigningAlgorithm: alg, ClientAuthenticators: []string{credential.ClientSecret}}, []store.SigningKey{sealed[i]}
	})
	return names, err
}
