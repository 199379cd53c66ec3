package main

import (
	"log/slog"

	"github.com/authz-dev/authz/store/postgres"
	"github.com/spf13/cobra"
)

func (a *cli) migrateCommand() *cobra.Command {
	var databaseURL string
	cmd := &cobra.Command{
		Use:   "migrate --database-url URL",
		Short: "Apply the database migrations, then exit (serve also does, under the same lock)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := postgres.Migrate(cmd.Context(), databaseURL); err != nil {
				return err
			}
			newLogger(a.stderr, "text", slog.LevelInfo).Info("migrations applied")
			return nil
		},
	}
	cmd.Flags().StringVar(&databaseURL, "database-url", "", "PostgreSQL URL (postgres://user@host:5432/db)")
	bindEnv(cmd.Flags(), "database-url", "AUTHZ_DATABASE_URL")
	require(cmd.Flags(), "database-url")
	return cmd
}
