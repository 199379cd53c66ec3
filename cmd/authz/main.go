// Command authz is an OAuth2 client-credentials authorization server.
//
//	authz serve        run the server
//	authz migrate      apply database migrations and exit
//	authz bootstrap    create the system issuer and the first admin client
//	authz login, apply, issuers, clients, token: administration over the admin API
//	authz healthcheck  probe a running server's /healthz (for containers)
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
