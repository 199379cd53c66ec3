package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/authz-dev/authz/store/postgres"
)

const usage = `authz: an OAuth2 client-credentials authorization server

Usage:
  authz serve [flags]        run the server (no database URL: in-memory development mode)
  authz migrate [flags]      apply database migrations, then exit
  authz bootstrap [flags]    create the system issuer and a first admin client; print its secret once
  authz healthcheck [flags]  exit 0 when a running server answers /healthz

Administration, over the admin API:
  authz login --client-id ID --client-secret S   store admin credentials for the commands below
  authz apply -f FILE.yaml                      create or update CredentialIssuer and Client documents
  authz issuers list | get NAME | delete NAME [--cascade]
  authz clients create|list|get|disable|enable|delete|rotate-secret --issuer NAME [CLIENT_ID]
  authz clients set-jwk|set-jwks-uri|generate-key --issuer NAME CLIENT_ID   signed-JWT client authentication
  authz keys list|rotate --issuer NAME | revoke --issuer NAME KID
  authz token --issuer NAME --client-id ID --client-secret S [--scope ...]   a consumer's token request

Key-encryption keys, on the database directly:
  authz keys rekey --database-url URL --kek NEW,OLD   re-seal every private key under NEW

Admin commands print a table; -o json prints JSON for scripts.

Run 'authz <command> -h' for the flags of a command. Every flag can also be
set through the environment variable shown in its help.
`

// run executes one command and returns the process exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(ctx, args[1:], getenv, stdout, stderr)
	case "migrate":
		err = runMigrate(ctx, args[1:], getenv, stderr)
	case "bootstrap":
		err = runBootstrap(ctx, args[1:], getenv, stdout, stderr)
	case "login":
		err = runLogin(ctx, args[1:], getenv, stdout, stderr)
	case "apply":
		err = runApply(ctx, args[1:], getenv, stdin, stdout, stderr)
	case "issuers":
		err = runIssuers(ctx, args[1:], getenv, stdout, stderr)
	case "clients":
		err = runClients(ctx, args[1:], getenv, stdout, stderr)
	case "token":
		err = runToken(ctx, args[1:], getenv, stdout, stderr)
	case "keys":
		err = runKeys(ctx, args[1:], getenv, stdout, stderr)
	case "healthcheck":
		err = runHealthcheck(ctx, args[1:], getenv, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "authz: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	default:
		fmt.Fprintf(stderr, "authz %s: %v\n", args[0], err)
		return 1
	}
}

func runMigrate(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	set := newSettings("migrate", getenv, stderr)
	databaseURL := set.String("database-url", "AUTHZ_DATABASE_URL", "", "PostgreSQL URL (postgres://user@host:5432/db)")
	if err := set.Parse(args); err != nil {
		return err
	}
	if *databaseURL == "" {
		return fmt.Errorf("--database-url (or AUTHZ_DATABASE_URL) is required")
	}
	if err := postgres.Migrate(ctx, *databaseURL); err != nil {
		return err
	}
	newLogger(stderr, "text").Info("migrations applied")
	return nil
}

func runHealthcheck(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	set := newSettings("healthcheck", getenv, stderr)
	url := set.String("url", "AUTHZ_HEALTHCHECK_URL", "", "health endpoint to probe (default http://127.0.0.1:8080/healthz, https:// when --tls-cert is set)")
	certFile := set.String("tls-cert", "AUTHZ_TLS_CERT", "", "the server's own certificate: probe over https and accept only this certificate")
	if err := set.Parse(args); err != nil {
		return err
	}
	client := &http.Client{Timeout: 3 * time.Second}
	if *certFile != "" {
		pinned, err := pinnedTLS(*certFile)
		if err != nil {
			return err
		}
		client.Transport = &http.Transport{TLSClientConfig: pinned}
	}
	target := *url
	if target == "" {
		target = "http://127.0.0.1:8080/healthz"
		if *certFile != "" {
			target = "https://127.0.0.1:8080/healthz"
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", target, resp.Status)
	}
	return nil
}

// pinnedTLS accepts exactly the server certificate in certFile. The probe
// runs beside the server and dials it by loopback address, which the
// certificate seldom names, so name and chain checks would refuse a
// correct server; the certificate itself is the stronger check.
func pinnedTLS(certFile string) (*tls.Config, error) {
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("read TLS certificate: %w", err)
	}
	leaf, _ := pem.Decode(pemBytes)
	if leaf == nil || leaf.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s holds no PEM certificate", certFile)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // replaced by the pin below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, leaf.Bytes) {
				return fmt.Errorf("the server does not present the certificate in %s", certFile)
			}
			return nil
		},
	}, nil
}

func newLogger(w io.Writer, format string) *slog.Logger {
	return newLeveledLogger(w, format, slog.LevelInfo)
}

func newLeveledLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(requestIDHandler{slog.NewJSONHandler(w, opts)})
	}
	return slog.New(requestIDHandler{slog.NewTextHandler(w, opts)})
}
