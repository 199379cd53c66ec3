package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api/client"
)

func (a *cli) tokenCommand() *cobra.Command {
	var issuerName, publicURL, tokenURL, clientID, clientSecret string
	var output *string
	var scopes []string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Get a token as a consumer does (client_credentials with client_secret_basic)",
		Long: `token runs the client-credentials grant against an issuer's token endpoint,
as any consumer would, and prints the answer. With --issuer, the endpoint
comes from the issuer's discovery document (at /issuers/NAME, or /realms/NAME
for a Keycloak-style issuer) under --public-url, else the public URL
'authz login' saved, else ` + defaultPublicURL + `.`,
		Example: `  authz token --issuer payments --client-id c-... --client-secret ... --scope read
  authz token --token-url https://auth.example.com/issuers/payments/token --client-id ... --client-secret ... -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := a.printer(*output)
			if err != nil {
				return err
			}
			if tokenURL == "" {
				if issuerName == "" {
					return usagef("--issuer (or --token-url) is required")
				}
				if publicURL == "" {
					publicURL = a.savedPublicURL()
				}
				if tokenURL, err = discoverTokenURL(cmd.Context(), publicURL, issuerName); err != nil {
					return err
				}
			}
			var requested []string
			for _, s := range scopes {
				requested = append(requested, strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })...)
			}
			tok, raw, err := client.RequestToken(cmd.Context(), httpClient(), tokenURL, clientID, clientSecret, requested)
			if err != nil {
				return err
			}
			if out.format == formatJSON {
				_, err := a.stdout.Write(append(raw, '\n'))
				return err
			}
			return out.print(result{value: tok, header: []string{"TOKEN TYPE", "EXPIRES IN", "SCOPE", "ACCESS TOKEN"},
				rows: [][]string{{tok.TokenType, (time.Duration(tok.ExpiresIn) * time.Second).String(), tok.Scope, tok.AccessToken}}})
		},
	}
	f := cmd.Flags()
	f.StringVar(&issuerName, "issuer", "", "the issuer's name")
	bindEnv(f, "issuer", "AUTHZ_ISSUER")
	f.StringVar(&publicURL, "public-url", "", "the server's public base URL (default: the one login saved, else "+defaultPublicURL+")")
	bindEnv(f, "public-url", "AUTHZ_PUBLIC_URL")
	f.StringVar(&tokenURL, "token-url", "", "the token endpoint, instead of --issuer and --public-url")
	f.StringVar(&clientID, "client-id", "", "the consumer's client id")
	bindEnv(f, "client-id", "AUTHZ_CLIENT_ID")
	f.StringVar(&clientSecret, "client-secret", "", "the consumer's client secret")
	bindEnv(f, "client-secret", "AUTHZ_CLIENT_SECRET")
	f.StringSliceVar(&scopes, "scope", nil, "scopes to request (repeat, or separate with commas or spaces)")
	require(f, "client-id", "client-secret")
	cmd.MarkFlagsMutuallyExclusive("token-url", "issuer")
	output = outputFlag(cmd)
	return cmd
}

// savedPublicURL is the public URL `authz login` kept, or the default.
func (a *cli) savedPublicURL() string {
	path, err := a.configPath()
	if err != nil {
		return defaultPublicURL
	}
	cfg, err := loadConfig(path)
	if err != nil || cfg.PublicURL == "" {
		return defaultPublicURL
	}
	return cfg.PublicURL
}

// discoverTokenURL finds an issuer's token endpoint in its discovery
// document, at either URL style.
func discoverTokenURL(ctx context.Context, publicURL, issuerName string) (string, error) {
	base := strings.TrimRight(publicURL, "/")
	for _, prefix := range []string{"/issuers/", "/realms/"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+prefix+url.PathEscape(issuerName)+"/.well-known/openid-configuration", nil)
		if err != nil {
			return "", err
		}
		resp, err := httpClient().Do(req)
		if err != nil {
			return "", fmt.Errorf("discover issuer %q: %w", issuerName, err)
		}
		var doc struct {
			TokenEndpoint string `json:"token_endpoint"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && err == nil && doc.TokenEndpoint != "" {
			return doc.TokenEndpoint, nil
		}
	}
	return "", fmt.Errorf("no issuer %q at %s (no discovery document under /issuers/ or /realms/)", issuerName, base)
}
