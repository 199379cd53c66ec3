package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
	"github.com/authz-dev/authz/keys"
)

// clientsCommands share the issuer they work on.
type clientsCommands struct {
	*cli
	issuer string
}

func (a *cli) clientsCommand() *cobra.Command {
	c := &clientsCommands{cli: a}
	cmd := group(&cobra.Command{
		Use:     "clients",
		Aliases: []string{"client"},
		Short:   "Register and manage an issuer's clients, their secrets and keys",
		Example: `  authz clients create --issuer payments --name "billing batch" --scopes read --roles viewer
  authz clients rotate-secret --issuer payments CLIENT_ID --grace 24h
  authz clients list --issuer payments -o yaml > clients.yaml`,
	})
	pf := cmd.PersistentFlags()
	pf.StringVar(&c.issuer, "issuer", "", "the issuer the clients belong to (required)")
	bindEnv(pf, "issuer", "AUTHZ_ISSUER")
	require(pf, "issuer")
	_ = cmd.RegisterFlagCompletionFunc("issuer", func(cmd *cobra.Command, _ []string, s string) ([]string, cobra.ShellCompDirective) {
		return a.completeIssuers(cmd, nil, s)
	})
	cmd.AddCommand(c.create(), c.list(), c.get(), c.setEnabled(true), c.setEnabled(false), c.remove(),
		c.rotateSecret(), c.secrets(), c.revokeSecret(), c.setJWK(), c.setJWKSURI(), c.generateKey())
	return cmd
}

var clientHeader = []string{"CLIENT ID", "NAME", "STATE", "SCOPES", "ROLES", "AUTHENTICATION"}

func (c *clientsCommands) result(value any, clients ...api.ClientResponse) result {
	r := result{value: value, resources: []resourceDoc{}, header: clientHeader, rows: [][]string{}}
	for _, cl := range clients {
		state := "enabled"
		if !cl.Enabled {
			state = "disabled"
		}
		auth := "secret"
		switch {
		case len(cl.JWK) > 0:
			auth = "jwk"
		case cl.JWKSURI != "":
			auth = "jwks-uri"
		}
		r.rows = append(r.rows, []string{cl.ClientID, cl.Name, state, strings.Join(cl.Scopes, ","), strings.Join(cl.Roles, ","), auth})
		r.resources = append(r.resources, clientDoc(c.issuer, cl))
	}
	return r
}

func (c *clientsCommands) create() *cobra.Command {
	var req api.CreateClientRequest
	var lifetime time.Duration
	var roleMappings, scopeMappings []string
	var fullScope bool
	var output *string
	cmd := &cobra.Command{
		Use:   "create --name NAME",
		Short: "Register a client; its secret is printed once",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, s, err := c.adminCall(*output)
			if err != nil {
				return err
			}
			if lifetime > 0 {
				seconds := int64(lifetime / time.Second)
				req.TokenLifetime = &seconds
			}
			if req.RoleMappings, err = parseRoleNames("--role-mapping", roleMappings); err != nil {
				return err
			}
			if req.ScopeMappings, err = parseRoleNames("--scope-mapping", scopeMappings); err != nil {
				return err
			}
			if cmd.Flags().Changed("full-scope-allowed") {
				req.FullScopeAllowed = &fullScope
			}
			created, err := s.admin.CreateClient(cmd.Context(), c.issuer, req)
			if err != nil {
				return err
			}
			return out.print(result{value: created, resources: []resourceDoc{clientDoc(c.issuer, created.ClientResponse)},
				text: fmt.Sprintf("Created client %s. Its secret is shown only now:\n  client_id:     %s\n  client_secret: %s\n  token URL:     %s\n",
					created.Name, created.ClientID, created.ClientSecret, created.TokenEndpoint)})
		},
	}
	f := cmd.Flags()
	f.StringVar(&req.Name, "name", "", "display name (required)")
	f.StringVar(&req.ClientID, "client-id", "", "choose the client id instead of having one generated")
	f.StringSliceVar(&req.Scopes, "scopes", nil, "scopes the client may request, among the issuer's")
	f.StringSliceVar(&req.Roles, "roles", nil, "roles the client's tokens carry, among the issuer's")
	f.StringVar(&req.Audience, "audience", "", "audience of the client's tokens (default: the issuer's)")
	f.DurationVar(&lifetime, "token-lifetime", 0, "lifetime of the client's tokens (default: the issuer's)")
	f.StringSliceVar(&req.OptionalScopes, "optional-scopes", nil, "scopes granted only when requested (--scopes are granted always)")
	f.StringSliceVar(&roleMappings, "role-mapping", nil, "a role its tokens carry: CLIENT/ROLE for a role a client defines, ROLE for the issuer's own (repeatable)")
	f.StringSliceVar(&scopeMappings, "scope-mapping", nil, "with --full-scope-allowed=false, a mapped role its tokens may carry: CLIENT/ROLE or ROLE")
	f.BoolVar(&fullScope, "full-scope-allowed", true, "its tokens carry every mapped role (false: only those in --scope-mapping)")
	require(f, "name")
	output = outputFlag(cmd)
	return cmd
}

func (c *clientsCommands) list() *cobra.Command {
	var filter client.ClientFilter
	var enabled string
	var output *string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the issuer's clients",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, s, err := c.adminCall(*output)
			if err != nil {
				return err
			}
			if enabled != "" {
				v, err := strconv.ParseBool(enabled)
				if err != nil {
					return usagef("--enabled must be true or false")
				}
				filter.Enabled = &v
			}
			clients, err := s.admin.ListClients(cmd.Context(), c.issuer, filter)
			if err != nil {
				return err
			}
			return out.print(c.result(clients, clients...))
		},
	}
	cmd.Flags().StringVar(&filter.Name, "name", "", "keep clients whose name contains this, ignoring case")
	cmd.Flags().StringVar(&enabled, "enabled", "", "keep enabled (true) or disabled (false) clients")
	output = outputFlag(cmd)
	return cmd
}

// oneClient is a verb on one client: `authz clients VERB --issuer NAME CLIENT_ID`.
func (c *clientsCommands) oneClient(use, short string, extraArgs []string, do func(cmd *cobra.Command, s *session, id string, args []string) (result, error)) *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(append([]string{"CLIENT_ID"}, extraArgs...)...),
		RunE: func(cmd *cobra.Command, args []string) error {
			out, s, err := c.adminCall(*output)
			if err != nil {
				return err
			}
			r, err := do(cmd, s, args[0], args[1:])
			if err != nil {
				return err
			}
			return out.print(r)
		},
	}
	output = outputFlag(cmd)
	return cmd
}

func (c *clientsCommands) get() *cobra.Command {
	return c.oneClient("get CLIENT_ID", "Show one client (never its secrets)", nil,
		func(cmd *cobra.Command, s *session, id string, _ []string) (result, error) {
			cl, err := s.admin.GetClient(cmd.Context(), c.issuer, id)
			return c.result(cl, cl), err
		})
}

func (c *clientsCommands) patch(use, short string, req func() (api.PatchClientRequest, error)) *cobra.Command {
	return c.oneClient(use, short, nil, func(cmd *cobra.Command, s *session, id string, _ []string) (result, error) {
		patch, err := req()
		if err != nil {
			return result{}, err
		}
		cl, err := s.admin.PatchClient(cmd.Context(), c.issuer, id, patch)
		return c.result(cl, cl), err
	})
}

func (c *clientsCommands) setEnabled(enabled bool) *cobra.Command {
	use, short := "disable CLIENT_ID", "Disable a client: every node refuses it within a second"
	if enabled {
		use, short = "enable CLIENT_ID", "Enable a client again"
	}
	return c.patch(use, short, func() (api.PatchClientRequest, error) {
		return api.PatchClientRequest{Enabled: &enabled}, nil
	})
}

func (c *clientsCommands) setJWK() *cobra.Command {
	var file string
	cmd := c.patch("set-jwk CLIENT_ID --jwk-file FILE", "Register the client's public JWK for client-jwt authentication", func() (api.PatchClientRequest, error) {
		raw, err := os.ReadFile(file)
		if err != nil {
			return api.PatchClientRequest{}, fmt.Errorf("--jwk-file: %w", err)
		}
		return api.PatchClientRequest{JWK: json.RawMessage(raw)}, nil
	})
	cmd.Flags().StringVar(&file, "jwk-file", "", "file holding the client's public JWK (required)")
	require(cmd.Flags(), "jwk-file")
	return cmd
}

func (c *clientsCommands) setJWKSURI() *cobra.Command {
	var uri string
	cmd := c.patch("set-jwks-uri CLIENT_ID --jwks-uri URL", "Register the client's key-set URL for client-jwt-jwks-url authentication", func() (api.PatchClientRequest, error) {
		return api.PatchClientRequest{JWKSURI: &uri}, nil
	})
	cmd.Flags().StringVar(&uri, "jwks-uri", "", "https URL of the client's key set (required)")
	require(cmd.Flags(), "jwks-uri")
	return cmd
}

func (c *clientsCommands) remove() *cobra.Command {
	return c.oneClient("delete CLIENT_ID", "Delete a client", nil, func(cmd *cobra.Command, s *session, id string, _ []string) (result, error) {
		return deleted(id), s.admin.DeleteClient(cmd.Context(), c.issuer, id)
	})
}

func (c *clientsCommands) rotateSecret() *cobra.Command {
	var grace time.Duration
	cmd := c.oneClient("rotate-secret CLIENT_ID", "Give a client a new secret, printed once; the old ones stay valid for --grace", nil,
		func(cmd *cobra.Command, s *session, id string, _ []string) (result, error) {
			seconds := int64(grace / time.Second)
			sec, err := s.admin.AddSecret(cmd.Context(), c.issuer, id, api.CreateSecretRequest{GraceSeconds: &seconds})
			return result{
				value: map[string]string{"clientId": id, "secretId": sec.ID, "clientSecret": sec.ClientSecret},
				text: fmt.Sprintf("New secret for %s (shown only now; old secrets stay valid for %s):\n  client_secret: %s\n",
					id, grace, sec.ClientSecret),
			}, err
		})
	cmd.Flags().DurationVar(&grace, "grace", 24*time.Hour, "how long the old secrets stay valid (0 revokes them now)")
	return cmd
}

func (c *clientsCommands) secrets() *cobra.Command {
	return c.oneClient("secrets CLIENT_ID", "List a client's secrets by id and hint (never the secrets)", nil,
		func(cmd *cobra.Command, s *session, id string, _ []string) (result, error) {
			list, err := s.admin.ListSecrets(cmd.Context(), c.issuer, id)
			rows := [][]string{}
			for _, sec := range list {
				state := "valid"
				if sec.Expired {
					state = "expired"
				}
				rows = append(rows, []string{sec.ID, "…" + sec.Hint, state, sec.CreatedAt, sec.ExpiresAt})
			}
			return result{value: list, header: []string{"SECRET ID", "HINT", "STATE", "CREATED", "EXPIRES"}, rows: rows}, err
		})
}

func (c *clientsCommands) revokeSecret() *cobra.Command {
	return c.oneClient("revoke-secret CLIENT_ID SECRET_ID", "Revoke one of a client's secrets at once", []string{"SECRET_ID"},
		func(cmd *cobra.Command, s *session, id string, args []string) (result, error) {
			return deleted(args[0]), s.admin.DeleteSecret(cmd.Context(), c.issuer, id, args[0])
		})
}

func (c *clientsCommands) generateKey() *cobra.Command {
	var algorithm string
	cmd := c.oneClient("generate-key CLIENT_ID", "Make a key pair for client-jwt: the public key is registered, the private key printed once", nil,
		func(cmd *cobra.Command, s *session, id string, _ []string) (result, error) {
			key, err := s.admin.GenerateClientKey(cmd.Context(), c.issuer, id, api.GenerateKeyRequest{Algorithm: algorithm})
			return result{value: key, text: fmt.Sprintf("Registered a new %s public key (kid %s) for %s. Its private key is shown only now:\n%s",
				key.Algorithm, key.KID, id, key.PrivateKeyPEM)}, err
		})
	cmd.Flags().StringVar(&algorithm, "algorithm", keys.RS256, "the key's algorithm: "+strings.Join(keys.Algorithms(), ", "))
	return cmd
}

// parseRoleNames reads CLIENT/ROLE (a role a client defines) or ROLE (the
// issuer's own) values of a flag.
func parseRoleNames(flag string, values []string) ([]api.RoleName, error) {
	var out []api.RoleName
	for _, v := range values {
		client, role, scoped := strings.Cut(v, "/")
		if !scoped {
			client, role = "", v
		}
		if role == "" || strings.Contains(role, "/") {
			return nil, usagef("%s wants CLIENT/ROLE or ROLE", flag)
		}
		out = append(out, api.RoleName{Client: client, Role: role})
	}
	return out, nil
}
