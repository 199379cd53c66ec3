package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
)

func (a *cli) issuersCommand() *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "issuers",
		Aliases: []string{"issuer"},
		Short:   "List, read and delete CredentialIssuers (create and change them with apply)",
	})
	cmd.AddCommand(a.issuersList(), a.issuersGet(), a.issuersDelete())
	return cmd
}

var issuerHeader = []string{"NAME", "AUDIENCE", "SCOPES", "LIFETIME", "ALG", "ISSUER URL"}

func issuerRows(issuers ...api.IssuerResponse) [][]string {
	rows := [][]string{}
	for _, i := range issuers {
		rows = append(rows, []string{i.Name, i.Audience, strings.Join(i.AvailableScopes, ","),
			(time.Duration(i.TokenLifetime) * time.Second).String(), i.SigningAlgorithm, i.Issuer})
	}
	return rows
}

// issuerResult prints issuers; as YAML, the documents apply takes back,
// leaving out the system issuer from listings, since bootstrap owns it and
// apply may not change it.
func issuerResult(value any, listing bool, issuers ...api.IssuerResponse) result {
	docs := []resourceDoc{}
	for _, i := range issuers {
		if !listing || i.Name != api.SystemIssuer {
			docs = append(docs, issuerDoc(i))
		}
	}
	return result{value: value, resources: docs, header: issuerHeader, rows: issuerRows(issuers...)}
}

func (a *cli) issuersList() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every issuer",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, s, err := a.adminCall(*output)
			if err != nil {
				return err
			}
			issuers, err := s.admin.ListIssuers(cmd.Context())
			if err != nil {
				return err
			}
			return out.print(issuerResult(issuers, true, issuers...))
		},
	}
	output = outputFlag(cmd)
	return cmd
}

func (a *cli) issuersGet() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:               "get NAME",
		Short:             "Show one issuer",
		Example:           "  authz issuers get payments -o yaml > payments.yaml",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeIssuers,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, s, err := a.adminCall(*output)
			if err != nil {
				return err
			}
			iss, err := s.admin.GetIssuer(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return out.print(issuerResult(iss, false, iss))
		},
	}
	output = outputFlag(cmd)
	return cmd
}

func (a *cli) issuersDelete() *cobra.Command {
	var cascade bool
	var output *string
	cmd := &cobra.Command{
		Use:               "delete NAME",
		Short:             "Delete an issuer and its keys (--cascade: its clients too)",
		Args:              exactArgs("NAME"),
		ValidArgsFunction: a.completeIssuers,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, s, err := a.adminCall(*output)
			if err != nil {
				return err
			}
			if err := s.admin.DeleteIssuer(cmd.Context(), args[0], cascade); err != nil {
				return err
			}
			return out.print(deleted(args[0]))
		},
	}
	cmd.Flags().BoolVar(&cascade, "cascade", false, "delete the issuer's clients too")
	output = outputFlag(cmd)
	return cmd
}

// deleted reports the deletion of name.
func deleted(name string) result {
	return result{value: map[string]string{"deleted": name}, header: []string{"DELETED"}, rows: [][]string{{name}}}
}

// adminCall prepares an admin command: its printer and the session.
func (a *cli) adminCall(format string) (printer, *session, error) {
	out, err := a.printer(format)
	if err != nil {
		return out, nil, err
	}
	s, err := a.openSession()
	return out, s, err
}

// issuerFlag gives a verb the --issuer it works on ($AUTHZ_ISSUER), with
// completion of the server's issuer names.
func (a *cli) issuerFlag(cmd *cobra.Command, issuer *string, help string) {
	cmd.Flags().StringVar(issuer, "issuer", "", help)
	bindEnv(cmd.Flags(), "issuer", "AUTHZ_ISSUER")
	require(cmd.Flags(), "issuer")
	_ = cmd.RegisterFlagCompletionFunc("issuer", func(cmd *cobra.Command, _ []string, s string) ([]string, cobra.ShellCompDirective) {
		return a.completeIssuers(cmd, nil, s)
	})
}

// issuerVerb is a command on one issuer's records:
// `authz NOUN VERB --issuer NAME [ARGS]`.
func (a *cli) issuerVerb(issuer *string, issuerHelp, use, short string, args cobra.PositionalArgs,
	do func(cmd *cobra.Command, s *session, args []string) (result, error)) *cobra.Command {
	var output *string
	c := &cobra.Command{
		Use: use, Short: short, Args: args,
		RunE: func(cmd *cobra.Command, args []string) error {
			out, s, err := a.adminCall(*output)
			if err != nil {
				return err
			}
			r, err := do(cmd, s, args)
			if err != nil {
				return err
			}
			return out.print(r)
		},
	}
	a.issuerFlag(c, issuer, issuerHelp)
	output = outputFlag(c)
	return c
}

// completeIssuers offers the server's issuer names to shell completion.
func (a *cli) completeIssuers(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	s, err := a.openSession()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	issuers, err := s.admin.ListIssuers(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(issuers))
	for _, i := range issuers {
		names = append(names, i.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
