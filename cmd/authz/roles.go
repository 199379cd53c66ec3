package main

import (
	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
)

// rolesCommand manages the roles a client defines (an API's roles, which
// other clients' service accounts are given) and the issuer's own roles.
func (a *cli) rolesCommand() *cobra.Command {
	var issuer, clientID string
	cmd := group(&cobra.Command{
		Use:   "roles",
		Short: "Define the roles of a resource client (--client) or of the issuer itself",
		Example: `  authz roles create --issuer gateway --client orders-api reader
  authz roles list --issuer gateway --client orders-api
  authz clients create --issuer gateway --name billing --role-mapping orders-api/reader`,
	})
	verb := func(use, short string, args cobra.PositionalArgs, do func(cmd *cobra.Command, s *session, args []string) (result, error)) *cobra.Command {
		c := a.issuerVerb(&issuer, "the issuer the roles belong to (required)", use, short, args, do)
		c.Flags().StringVar(&clientID, "client", "", "the client that defines the roles (default: the issuer's own roles)")
		return c
	}
	rows := func(roles ...api.RoleResponse) result {
		r := result{value: roles, header: []string{"ROLE", "CLIENT", "ID", "DESCRIPTION"}, rows: [][]string{}}
		for _, role := range roles {
			r.rows = append(r.rows, []string{role.Name, role.Client, role.ID, role.Description})
		}
		return r
	}
	var description string
	create := verb("create NAME", "Define a role", exactArgs("NAME"), func(cmd *cobra.Command, s *session, args []string) (result, error) {
		role, err := s.admin.CreateRole(cmd.Context(), issuer, clientID, api.CreateRoleRequest{Name: args[0], Description: description})
		return rows(role), err
	})
	create.Flags().StringVar(&description, "description", "", "what the role allows")
	cmd.AddCommand(
		verb("list", "List the roles defined", noArgs, func(cmd *cobra.Command, s *session, _ []string) (result, error) {
			roles, err := s.admin.ListRoles(cmd.Context(), issuer, clientID)
			return rows(roles...), err
		}),
		create,
		verb("delete NAME", "Delete a role and every mapping to it", exactArgs("NAME"), func(cmd *cobra.Command, s *session, args []string) (result, error) {
			return deleted(args[0]), s.admin.DeleteRole(cmd.Context(), issuer, clientID, args[0])
		}),
	)
	return cmd
}
