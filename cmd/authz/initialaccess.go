package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
)

// initialAccessCommand manages the tokens that let a party (such as a
// portal in "iat" mode) register clients through an issuer's registration
// service.
func (a *cli) initialAccessCommand() *cobra.Command {
	var issuer string
	cmd := group(&cobra.Command{
		Use:     "initial-access-tokens",
		Aliases: []string{"iat"},
		Short:   "Issue and revoke the tokens that register clients through an issuer's registration service",
		Example: `  authz initial-access-tokens create --issuer gateway --expires-in 720h --count 100
  authz initial-access-tokens list --issuer gateway`,
	})
	verb := func(use, short string, args cobra.PositionalArgs, do func(cmd *cobra.Command, s *session, args []string) (result, error)) *cobra.Command {
		return a.issuerVerb(&issuer, "the issuer the tokens register clients of (required)", use, short, args, do)
	}
	header := []string{"ID", "CREATED", "EXPIRES", "USES LEFT"}
	var expiresIn time.Duration
	var count int
	create := verb("create", "Issue a token; it is printed once", noArgs, func(cmd *cobra.Command, s *session, _ []string) (result, error) {
		req := api.CreateInitialAccessTokenRequest{ExpiresIn: int64(expiresIn / time.Second), Count: &count}
		t, err := s.admin.CreateInitialAccessToken(cmd.Context(), issuer, req)
		return result{value: t, header: header,
			text: fmt.Sprintf("Created initial access token %s (%d uses, expires %s). It is shown only now:\n  %s\n",
				t.ID, t.RemainingCount, orNever(t.ExpiresAt), t.Token)}, err
	})
	create.Flags().DurationVar(&expiresIn, "expires-in", 0, "how long the token is valid (0: until revoked)")
	create.Flags().IntVar(&count, "count", 1, "how many registrations it allows")
	cmd.AddCommand(
		create,
		verb("list", "List the issuer's tokens: ids, expiry and uses left, never the tokens", noArgs, func(cmd *cobra.Command, s *session, _ []string) (result, error) {
			tokens, err := s.admin.ListInitialAccessTokens(cmd.Context(), issuer)
			r := result{value: tokens, header: header, rows: [][]string{}}
			for _, t := range tokens {
				r.rows = append(r.rows, []string{t.ID, t.CreatedAt, orNever(t.ExpiresAt), strconv.Itoa(t.RemainingCount)})
			}
			return r, err
		}),
		verb("delete ID", "Revoke a token", exactArgs("ID"), func(cmd *cobra.Command, s *session, args []string) (result, error) {
			return deleted(args[0]), s.admin.DeleteInitialAccessToken(cmd.Context(), issuer, args[0])
		}),
	)
	return cmd
}

func orNever(at string) string {
	if at == "" {
		return "never"
	}
	return at
}
