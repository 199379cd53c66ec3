package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/authz-dev/authz/api"
	"github.com/spf13/cobra"
)

func (a *cli) bootstrapCommand() *cobra.Command {
	var publicURL string
	cmd := a.databaseCommand("bootstrap --database-url URL --kek KEK",
		"Create the system issuer and a first admin client; print its secret once", "",
		func(ctx context.Context, be *backend) error {
			admin, err := api.Bootstrap(ctx, be.store, be.keys)
			if err != nil {
				return err
			}
			publicURL = strings.TrimRight(publicURL, "/")
			fmt.Fprintf(a.stdout, `Created the first admin client. Its secret is shown only now: keep it safe.

  client_id:     %s
  client_secret: %s
  token URL:     %s/issuers/%s/token

Log in with:
  authz login --public-url %s --client-id %s --client-secret '<the secret above>'
`, admin.ClientID, admin.ClientSecret, publicURL, api.SystemIssuer, publicURL, admin.ClientID)
			return nil
		})
	cmd.Flags().StringVar(&publicURL, "public-url", defaultPublicURL, "the server's public base URL, to print the token URL")
	bindEnv(cmd.Flags(), "public-url", "AUTHZ_PUBLIC_URL")
	return cmd
}
