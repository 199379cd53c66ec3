package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
)

func (a *cli) importCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Move issuers from another server to authz",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(a.importKeycloakCommand())
	return cmd
}

func (a *cli) importKeycloakCommand() *cobra.Command {
	var file string
	var opts client.ImportOptions
	var output *string
	cmd := &cobra.Command{
		Use:   "keycloak -f REALM-EXPORT.json",
		Short: "Move a Keycloak realm: consumers keep their secrets, gateways their keys",
		Long: `import keycloak makes one Keycloak-style issuer of a realm export (the JSON
'kc.sh export' writes), in one transaction: its client-credentials clients
with their secrets as they are (only digests are kept), their keys or JWKS
URLs, ids and service-account ids, the roles mapped to their service
accounts, and the realm's signing keys sealed under the kids Keycloak
published. The highest-priority active key signs; the others stay published
until the retire period ends, so that tokens Keycloak signed keep verifying.

Each record is reported created, updated or unchanged; what the export holds
that authz leaves out (browser clients, users, flows, mappers it does not
run, symmetric keys) is listed with the reason. An issuer that exists is
changed only with --update: the file's clients then take the file's
settings and secrets (a secret Keycloak regenerated replaces the old one),
and a new signing key is published first and signs after the publication
lead. Importing the same file again changes nothing. A file that cannot be
imported whole imports nothing. --dry-run reports and changes nothing.`,
		Example: `  authz import keycloak -f realm-export.json --dry-run
  authz import keycloak -f realm-export.json
  authz import keycloak -f realm-export-later.json --update`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var data []byte
			var err error
			if file == "-" {
				data, err = io.ReadAll(io.LimitReader(a.stdin, api.MaxImportBytes+1))
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			out, s, err := a.adminCall(*output)
			if err != nil {
				return err
			}
			resp, err := s.admin.ImportKeycloak(cmd.Context(), data, opts)
			if err != nil {
				return err
			}
			for _, w := range resp.Warnings {
				fmt.Fprintln(a.stderr, "warning:", w)
			}
			return out.print(importResult(resp))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "the realm export ('-' for standard input)")
	f.StringVar(&opts.Issuer, "issuer", "", "name of the issuer (default: the realm's name, which keeps iss as Keycloak wrote it)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "report what would be created, updated and skipped, changing nothing")
	f.BoolVar(&opts.Update, "update", false, "bring an issuer that exists (an earlier import) in line with the file: its clients' settings, secrets and roles")
	require(f, "file")
	output = outputFlag(cmd)
	return cmd
}

func importResult(resp api.ImportResponse) result {
	verb := func(r string) string {
		if resp.DryRun {
			return "would be " + r
		}
		return r
	}
	rows := [][]string{}
	for _, it := range resp.Items {
		detail := strings.Join(it.Changes, ", ")
		if it.Detail != "" {
			detail = strings.TrimPrefix(detail+", "+it.Detail, ", ")
		}
		rows = append(rows, []string{it.Kind, it.Name, verb(it.Result), detail})
	}
	for _, sk := range resp.Skipped {
		rows = append(rows, []string{sk.Kind, sk.Name, verb("skipped"), sk.Reason})
	}
	sum := resp.Summary
	rows = append(rows, []string{"", "", "", ""},
		[]string{"total", resp.IssuerURL, verb(fmt.Sprintf("%d created, %d updated, %d unchanged, %d skipped", sum.Created, sum.Updated, sum.Unchanged, sum.Skipped)), ""})
	return result{value: resp, header: []string{"KIND", "NAME", "RESULT", "DETAIL"}, rows: rows}
}
