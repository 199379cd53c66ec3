package main

import (
	"net/http"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api/client"
	"github.com/authz-dev/authz/gateway"
)

func (a *cli) gatewayConfigCommand() *cobra.Command {
	var issuer string
	var req client.GatewayConfigRequest
	cmd := &cobra.Command{
		Use:   "gateway-config --issuer NAME --gateway KIND",
		Short: "Print the configuration with which a gateway admits only an issuer's tokens",
		Long: `gateway-config prints a ready-to-use configuration with which an API gateway
admits only tokens of one issuer, for its audience, with one of the given
scopes and one of the given roles:

  kong-jwt-keycloak  Kong's jwt-keycloak plugin, as the API services portal wires it (decK YAML)
  envoy              a listener with the jwt_authn and RBAC filters, and its clusters (YAML)
  apache             mod_auth_openidc as an OAuth 2.0 resource server, with ProxyPass
  krakend            an endpoint with KrakenD's JWT validator (JSON)

Comments in each say which of authz's guarantees it keeps and what is left
for you to decide. A role is CLIENT:ROLE (resource_access.CLIENT.roles), or
ROLE of the audience's client. An unknown issuer or gateway, or a scope the
issuer does not offer, exits 2 and prints nothing on standard output.`,
		Example: `  authz gateway-config --issuer payments --gateway apache --upstream http://127.0.0.1:9000 --scope read > payments.conf
  authz gateway-config --issuer gateway --gateway kong-jwt-keycloak --role orders-api:read
  authz gateway-config --issuer payments --gateway envoy --upstream https://orders.internal:8443 | envoy --mode validate -c /dev/stdin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := a.openSession()
			if err != nil {
				return err
			}
			body, err := s.admin.GatewayConfig(cmd.Context(), issuer, req)
			if client.HasStatus(err, http.StatusBadRequest) || client.IsNotFound(err) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			_, err = a.stdout.Write(body)
			return err
		},
	}
	f := cmd.Flags()
	a.issuerFlag(cmd, &issuer, "the issuer whose tokens the gateway admits")
	f.StringVar(&req.Gateway, "gateway", "", "the gateway: "+strings.Join(gateway.Kinds(), ", "))
	f.StringVar(&req.Upstream, "upstream", "", "the API's URL behind the gateway (default http://127.0.0.1:8000)")
	f.StringVar(&req.Audience, "audience", "", "the audience tokens must carry (default: the issuer's)")
	f.StringArrayVar(&req.Scopes, "scope", nil, "a scope that admits a token (repeat: any of them)")
	f.StringArrayVar(&req.Roles, "role", nil, "a role that admits a token, CLIENT:ROLE or ROLE (repeat: any of them)")
	require(f, "gateway")
	_ = cmd.RegisterFlagCompletionFunc("gateway", cobra.FixedCompletions(gateway.Kinds(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
