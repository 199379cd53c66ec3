package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/keys"
)

func runBootstrap(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	set := newSettings("bootstrap", getenv, stderr)
	database := databaseSettings(set, "")
	publicURL := set.String("public-url", "AUTHZ_PUBLIC_URL", "http://localhost:8080", "the server's public base URL, to print the token URL")
	if err := set.Parse(args); err != nil {
		return err
	}
	be, err := database.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer be.close()
	admin, err := api.Bootstrap(ctx, be.store, be.keys)
	if err != nil {
		return err
	}
	tokenURL := strings.TrimRight(*publicURL, "/") + "/issuers/" + api.SystemIssuer + "/token"
	fmt.Fprintf(stdout, `Created the first admin client. Its secret is shown only now: keep it safe.

  client_id:     %s
  client_secret: %s
  token URL:     %s

Log in with:
  authz login --client-id %s --client-secret '<the secret above>'
`, admin.ClientID, admin.ClientSecret, tokenURL, admin.ClientID)
	return nil
}

// databaseFlags are the --database-url and --kek of the commands that work
// on the database directly rather than through the admin API.
type databaseFlags struct{ url, kek *string }

func databaseSettings(set *settings, kekNote string) databaseFlags {
	f := databaseFlags{
		url: set.String("database-url", "AUTHZ_DATABASE_URL", "", "PostgreSQL URL (required)"),
		kek: set.String("kek", "AUTHZ_KEK", "", kekHelp+kekNote+" (required)"),
	}
	set.Require(f.url, "--database-url (or AUTHZ_DATABASE_URL)")
	set.Require(f.kek, "--kek (or AUTHZ_KEK)")
	return f
}

// open migrates and opens the database. These commands create at most a
// first key, so the key schedule is irrelevant to them.
func (f databaseFlags) open(ctx context.Context, stderr io.Writer) (*backend, error) {
	return openBackend(ctx, *f.url, *f.kek, keys.DefaultSchedule(5*time.Minute), newLogger(stderr, "text"))
}
