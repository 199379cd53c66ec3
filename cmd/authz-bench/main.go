// Command authz-bench measures a running authz server against the physical
// limits of the machine it runs on.
//
//	authz-bench run   --token-url URL --client-id ID --client-secret S [--compare] ...
//	authz-bench seed  --database-url URL --issuer NAME --count N --secret S
//
// It sends traffic to loopback addresses only, with bounded workers and
// duration, and stops by itself.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `authz-bench: load and compare an authz server on this machine

  authz-bench run [flags]    drive the token (or JWKS) endpoint; --compare adds a
                             trivial-handler baseline and raw signing, and prints ratios
  authz-bench seed [flags]   insert many clients into PostgreSQL with COPY

Run 'authz-bench <command> -h' for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "authz-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("no command")
	}
	switch args[0] {
	case "run":
		return runLoad(ctx, args[1:], stdout, stderr)
	case "seed":
		return runSeed(ctx, args[1:], stdout, stderr)
	case trivialServerCommand:
		return serveTrivial(ctx, stdout)
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
