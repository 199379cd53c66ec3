package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/authz-dev/authz/api"
)

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: authz keys list|rotate --issuer NAME | revoke --issuer NAME [--] KID | rekey --database-url URL --kek NEW,OLD\n"+
			"(a kid may start with '-': put -- before it)")
		return errUsage
	}
	if args[0] == "rekey" {
		return runRekey(ctx, args[1:], getenv, stdout, stderr)
	}
	verb := args[0]
	s, issuerName, kid, outFor, err := issuerCommand("keys "+verb, args[1:], getenv, stderr, func(*settings) {})
	if err != nil {
		return err
	}
	base := "/issuers/" + url.PathEscape(issuerName) + "/keys"
	var list api.ListResponse[api.KeyResponse]
	switch verb {
	case "list":
		err = s.call(ctx, http.MethodGet, base, nil, &list)
	case "rotate":
		err = s.call(ctx, http.MethodPost, base+"/rotate", nil, &list)
	case "revoke":
		if kid == "" {
			return errors.New("usage: authz keys revoke --issuer NAME [--] KID (-- before a kid that starts with -)")
		}
		err = s.call(ctx, http.MethodPost, base+"/"+url.PathEscape(kid)+"/revoke", nil, &list)
	default:
		return fmt.Errorf("unknown keys command %q: use list, rotate, revoke or rekey", verb)
	}
	if err != nil {
		return err
	}
	var rows [][]string
	for _, k := range list.Items {
		rows = append(rows, []string{k.KID, k.Algorithm, k.State, k.PublishedAt, k.ActivatedAt, k.RetiredAt, k.DeleteAt})
	}
	return outFor(stdout).table(list.Items,
		[]string{"KID", "ALG", "STATE", "PUBLISHED", "ACTIVATED", "RETIRED", "DELETE AT"}, rows)
}

// runRekey re-seals every private key under the first --kek. It works on
// the database directly: the admin API never handles key-encryption keys.
func runRekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	set := newSettings("keys rekey", getenv, stderr)
	database := databaseSettings(set, "; list the old KEKs after the new one")
	if err := set.Parse(args); err != nil {
		return err
	}
	be, err := database.open(ctx, stderr)
	if err != nil {
		return err
	}
	defer be.close()
	n, err := be.keys.Rekey(ctx)
	if err != nil {
		return fmt.Errorf("after re-sealing %d keys: %w (run it again once fixed; finished keys are skipped)", n, err)
	}
	fmt.Fprintf(stdout, "Re-sealed %d signing keys under the first key-encryption key. Once every node runs with it first, the old ones can go.\n", n)
	return nil
}
