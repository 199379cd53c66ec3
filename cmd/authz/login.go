package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
)

// defaultPublicURL is where a server started with the README's command
// answers.
const defaultPublicURL = "http://localhost:8080"

func (a *cli) loginCommand() *cobra.Command {
	var cfg cliConfig
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Keep an admin client's credentials for the commands that follow",
		Long: `login checks an admin client's credentials against the server and keeps them,
with the server's admin and public URLs, in ~/.config/authz/config.json
(or $AUTHZ_CONFIG), readable by you alone. Later commands renew the admin
token from them and reuse the URLs.`,
		Example: `  authz login --client-id c-... --client-secret ...
  authz login --admin-url https://authz-admin.internal --public-url https://auth.example.com --client-id ... --client-secret ...`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.AdminURL = strings.TrimRight(cfg.AdminURL, "/")
			cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
			if cfg.TokenURL == "" {
				cfg.TokenURL = cfg.PublicURL + "/issuers/" + api.SystemIssuer + "/token"
			}
			path, err := a.configPath()
			if err != nil {
				return err
			}
			tokens := &client.ClientCredentials{TokenURL: cfg.TokenURL, ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, HTTP: httpClient()}
			// Prove the token opens the admin API before calling it a login.
			if _, err := client.New(cfg.AdminURL, tokens, httpClient()).ListAudit(cmd.Context(), 1); err != nil {
				return fmt.Errorf("the admin API at %s refused: %w", cfg.AdminURL, err)
			}
			if err := saveConfig(path, cfg); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Logged in to %s as %s (credentials in %s).\n", cfg.AdminURL, cfg.ClientID, path)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.AdminURL, "admin-url", "http://127.0.0.1:8081", "the admin API's base URL")
	bindEnv(f, "admin-url", "AUTHZ_ADMIN_URL")
	f.StringVar(&cfg.PublicURL, "public-url", defaultPublicURL, "the server's public base URL, where token URLs are")
	bindEnv(f, "public-url", "AUTHZ_PUBLIC_URL")
	f.StringVar(&cfg.TokenURL, "token-url", "", "the system issuer's token endpoint (default <public-url>/issuers/system/token)")
	f.StringVar(&cfg.ClientID, "client-id", "", "the admin client's id (from `authz bootstrap`)")
	bindEnv(f, "client-id", "AUTHZ_CLIENT_ID")
	f.StringVar(&cfg.ClientSecret, "client-secret", "", "the admin client's secret")
	bindEnv(f, "client-secret", "AUTHZ_CLIENT_SECRET")
	require(f, "client-id", "client-secret")
	return cmd
}
