package main

import (
	"strconv"

	"github.com/spf13/cobra"
)

func (a *cli) auditCommand() *cobra.Command {
	var limit int
	var output *string
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit log of admin writes, newest first",
		Long: `audit shows who changed what through the admin API: the acting client,
the action, the resource, when, and how it ended. Dry runs change nothing
and are not recorded.`,
		Example: "  authz audit --limit 20\n  authz audit -o json --limit 0   # every entry",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, s, err := a.adminCall(*output)
			if err != nil {
				return err
			}
			entries, err := s.admin.ListAudit(cmd.Context(), limit)
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, e := range entries {
				rows = append(rows, []string{e.At, e.Actor, e.Action, e.Resource, e.Outcome, strconv.Itoa(e.Status)})
			}
			return out.print(result{value: entries, header: []string{"AT", "ACTOR", "ACTION", "RESOURCE", "OUTCOME", "STATUS"}, rows: rows})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 50, "how many entries to show; 0 shows all")
	output = outputFlag(cmd)
	return cmd
}
