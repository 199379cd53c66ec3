package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
)

// runSeed loads --count clients of one issuer, ids <prefix>000001 on, all
// with one secret, so that `run --clients` can spread load over them.
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("authz-bench seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	databaseURL := fs.String("database-url", "", "PostgreSQL URL of the server's database (required)")
	issuerName := fs.String("issuer", "", "existing issuer to add clients to (required)")
	count := fs.Int("count", 1000, "how many clients")
	prefix := fs.String("prefix", "bench-", "client id prefix")
	secret := fs.String("secret", "", "the secret every seeded client shares (required)")
	scopes := fs.String("scope", "", "a scope every seeded client may request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *databaseURL == "" || *issuerName == "" || *secret == "" || *count < 1 || *count > 10_000_000 {
		return errors.New("--database-url, --issuer and --secret are required, and --count is 1 to 10000000")
	}
	st, err := postgres.Open(ctx, *databaseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	iss, err := st.GetIssuer(ctx, *issuerName)
	if err != nil {
		return err
	}
	sec := credential.StoredSecret(*secret)
	var scopeList []string
	if *scopes != "" {
		scopeList = []string{*scopes}
	}
	start := time.Now()
	err = st.ImportClients(ctx, *count, func(i int) store.Client {
		id := fmt.Sprintf("%s%06d", *prefix, i+1)
		return store.Client{IssuerName: iss.Name, ID: id, Name: "bench " + id, Scopes: scopeList, Audience: iss.Audience, Enabled: true,
			Secrets: []store.Secret{{ID: "s1", Digest: sec.Digest, Hint: sec.Hint}}}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seeded %d clients of issuer %s in %s\n", *count, iss.Name, time.Since(start).Truncate(time.Millisecond))
	return nil
}
