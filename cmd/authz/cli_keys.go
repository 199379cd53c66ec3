package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/authz-dev/authz/keys"
)

type apiKey struct {
	KID         string `json:"kid"`
	Algorithm   string `json:"algorithm"`
	State       string `json:"state"`
	PublishedAt string `json:"publishedAt"`
	ActivateAt  string `json:"activateAt,omitempty"`
	ActivatedAt string `json:"activatedAt,omitempty"`
	RetiredAt   string `json:"retiredAt,omitempty"`
	DeleteAt    string `json:"deleteAt,omitempty"`
}

func runKeys(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: authz keys list|rotate --issuer NAME | revoke --issuer NAME KID | rekey --database-url URL --kek NEW,OLD")
		return errUsage
	}
	if args[0] == "rekey" {
		return runRekey(ctx, args[1:], getenv, stdout, stderr)
	}
	verb := args[0]
	set, format := cliCommand("keys "+verb, getenv, stderr)
	issuerName := set.String("issuer", "AUTHZ_ISSUER", "", "the issuer whose keys to manage (required)")
	kid, err := set.ParseWithName(args[1:])
	if err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	if *issuerName == "" {
		return errors.New("--issuer is required")
	}
	s, err := openAdminSession(getenv)
	if err != nil {
		return err
	}
	base := "/issuers/" + url.PathEscape(*issuerName) + "/keys"
	var list struct {
		Items []apiKey `json:"items"`
	}
	switch verb {
	case "list":
		err = s.call(ctx, http.MethodGet, base, nil, &list)
	case "rotate":
		err = s.call(ctx, http.MethodPost, base+"/rotate", nil, &list)
	case "revoke":
		if kid == "" {
			return errors.New("usage: authz keys revoke --issuer NAME KID")
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
	return output{w: stdout, format: *format}.table(list.Items,
		[]string{"KID", "ALG", "STATE", "PUBLISHED", "ACTIVATED", "RETIRED", "DELETE AT"}, rows)
}

// runRekey re-seals every private key under the first --kek. It works on
// the database directly: the admin API never handles key-encryption keys.
func runRekey(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	set := newSettings("keys rekey", getenv, stderr)
	databaseURL := set.String("database-url", "AUTHZ_DATABASE_URL", "", "PostgreSQL URL (required)")
	kek := set.String("kek", "AUTHZ_KEK", "", kekHelp+"; list the old KEKs after the new one (required)")
	if err := set.Parse(args); err != nil {
		return err
	}
	if *databaseURL == "" || *kek == "" {
		return errors.New("--database-url and --kek (or AUTHZ_DATABASE_URL and AUTHZ_KEK) are required")
	}
	be, err := openBackend(ctx, *databaseURL, *kek, keys.DefaultSchedule(5*time.Minute), newLogger(stderr, "text"))
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
