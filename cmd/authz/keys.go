package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
)

func (a *cli) keysCommand() *cobra.Command {
	var issuer string
	cmd := group(&cobra.Command{
		Use:   "keys",
		Short: "Show, rotate and revoke an issuer's signing keys; re-seal them under a new KEK",
	})
	verb := func(use, short string, args cobra.PositionalArgs, do func(ctx context.Context, s *session, args []string) ([]api.KeyResponse, error)) *cobra.Command {
		return a.issuerVerb(&issuer, "the issuer whose keys these are (required)", use, short, args,
			func(cmd *cobra.Command, s *session, args []string) (result, error) {
				keys, err := do(cmd.Context(), s, args)
				rows := [][]string{}
				for _, k := range keys {
					rows = append(rows, []string{k.KID, k.Algorithm, k.State, k.PublishedAt, k.ActivatedAt, k.RetiredAt, k.DeleteAt})
				}
				return result{value: keys, header: []string{"KID", "ALG", "STATE", "PUBLISHED", "ACTIVATED", "RETIRED", "DELETE AT"}, rows: rows}, err
			})
	}
	cmd.AddCommand(
		verb("list", "List the issuer's keys: state and dates, never private material", noArgs,
			func(ctx context.Context, s *session, _ []string) ([]api.KeyResponse, error) {
				return s.admin.ListKeys(ctx, issuer)
			}),
		verb("rotate", "Start a normal rotation: a new key is published now and signs after the publication lead", noArgs,
			func(ctx context.Context, s *session, _ []string) ([]api.KeyResponse, error) {
				return s.admin.RotateKeys(ctx, issuer)
			}),
		verb("revoke [--] KID", "Emergency: withdraw a key from every JWKS at once; a fresh key signs (-- before a kid starting with -)",
			exactArgs("KID"),
			func(ctx context.Context, s *session, args []string) ([]api.KeyResponse, error) {
				return s.admin.RevokeKey(ctx, issuer, args[0])
			}),
		a.rekeyCommand(),
	)
	return cmd
}

// rekeyCommand re-seals every private key under the first --kek. It works
// on the database directly: the admin API never handles key-encryption
// keys.
func (a *cli) rekeyCommand() *cobra.Command {
	return a.databaseCommand("rekey --database-url URL --kek NEW,OLD",
		"Re-seal every signing key under the first KEK (works on the database directly; safe to run again)",
		"; list the old KEKs after the new one",
		func(ctx context.Context, be *backend) error {
			n, err := be.keys.Rekey(ctx)
			if err != nil {
				return fmt.Errorf("after re-sealing %d keys: %w (run it again once fixed; finished keys are skipped)", n, err)
			}
			fmt.Fprintf(a.stdout, "Re-sealed %d signing keys under the first key-encryption key. Once every node runs with it first, the old ones can go.\n", n)
			return nil
		})
}
