package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/keys"
)

func runBootstrap(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	set := newSettings("bootstrap", getenv, stderr)
	databaseURL := set.String("database-url", "AUTHZ_DATABASE_URL", "", "PostgreSQL URL (required)")
	kek := set.String("kek", "AUTHZ_KEK", "", kekHelp+" (required)")
	publicURL := set.String("public-url", "AUTHZ_PUBLIC_URL", "http://localhost:8080", "the server's public base URL, to print the token URL")
	if err := set.Parse(args); err != nil {
		return err
	}
	if *databaseURL == "" || *kek == "" {
		return errors.New("--database-url and --kek (or AUTHZ_DATABASE_URL and AUTHZ_KEK) are required")
	}
	be, err := openBackend(ctx, *databaseURL, *kek, keys.DefaultSchedule(5*time.Minute), newLogger(stderr, "text"))
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
