package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// cli is what every command reads and writes: the process's environment
// and streams, passed down so that tests can run the CLI in process.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// usageError is a mistake in how a command was called: exit code 2, and a
// pointer to the help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// run executes one command line and returns the process exit code: 0 on
// success (help included), 2 for a usage error, 1 for any other failure.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := app.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var usage usageError
	if errors.As(err, &usage) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
	return 1
}

func (a *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "authz",
		Short: "An OAuth2 client-credentials authorization server",
		Long: `authz is an OAuth2 client-credentials authorization server for API gateways:
consumers get signed JWTs from an issuer's token URL, and gateways verify
them against the issuer's published keys.

The same binary runs the server (serve, migrate, bootstrap, healthcheck) and
administers it over its admin API (login, then apply, issuers, clients, roles,
initial-access-tokens, keys, audit, import). Every flag shown with [$AUTHZ_...] can also be set in that
environment variable; the command line wins.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error { return a.applyEnvironment(cmd) },
	}
	// --version, as `authz version` says it.
	root.Version = currentBuild().Version
	root.SetVersionTemplate(currentBuild().String() + "\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.SuggestionsMinimumDistance = 2
	root.AddGroup(
		&cobra.Group{ID: "server", Title: "Running the server:"},
		&cobra.Group{ID: "admin", Title: "Administration, over the admin API:"},
	)
	for _, c := range []*cobra.Command{a.serveCommand(), a.migrateCommand(), a.bootstrapCommand(), a.healthcheckCommand()} {
		c.GroupID = "server"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{a.loginCommand(), a.applyCommand(), a.issuersCommand(), a.clientsCommand(),
		a.rolesCommand(), a.initialAccessCommand(), a.keysCommand(), a.auditCommand(), a.tokenCommand(), a.importCommand(), a.gatewayConfigCommand()} {
		c.GroupID = "admin"
		root.AddCommand(c)
	}
	root.AddCommand(a.versionCommand())
	return root
}

// Flag annotations that applyEnvironment acts on.
const (
	envAnnotation      = "authz_env"
	requiredAnnotation = "authz_required"
)

// bindEnv lets an environment variable stand in for a flag that is not
// given. Help names the variable but never shows its value, which may be a
// secret (a KEK, a client secret, a password in a database URL).
func bindEnv(flags *pflag.FlagSet, name, env string) {
	f := flags.Lookup(name)
	f.Usage += " [$" + env + "]"
	_ = flags.SetAnnotation(name, envAnnotation, []string{env})
}

// require makes a flag mandatory, satisfied by the flag or its variable.
func require(flags *pflag.FlagSet, names ...string) {
	for _, name := range names {
		_ = flags.SetAnnotation(name, requiredAnnotation, []string{"true"})
	}
}

// applyEnvironment fills flags not given on the command line from their
// environment variables, then checks the required ones. It runs before
// every command; errors never repeat a value.
func (a *cli) applyEnvironment(cmd *cobra.Command) error {
	var errs []error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		env := f.Annotations[envAnnotation]
		if f.Changed || len(env) == 0 {
			return
		}
		if v := a.getenv(env[0]); v != "" {
			if err := f.Value.Set(v); err != nil {
				errs = append(errs, fmt.Errorf("$%s is not a valid %s for --%s", env[0], f.Value.Type(), f.Name))
			}
		}
	})
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		// A group (`authz clients`) only shows help or names a verb: the
		// flags its verbs require are not needed yet.
		if cmd.HasSubCommands() || len(f.Annotations[requiredAnnotation]) == 0 || f.Value.String() != "" {
			return
		}
		if env := f.Annotations[envAnnotation]; len(env) > 0 {
			errs = append(errs, fmt.Errorf("--%s (or $%s) is required", f.Name, env[0]))
		} else {
			errs = append(errs, fmt.Errorf("--%s is required", f.Name))
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// group makes a command that holds verbs: alone it shows its help, and a
// word that is no verb is a usage error with suggestions, as at the top.
func group(cmd *cobra.Command) *cobra.Command {
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if suggestions := cmd.SuggestionsFor(args[0]); len(suggestions) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(suggestions, "\n\t")
		}
		return usageError{errors.New(msg)}
	}
	return cmd
}

// exactArgs wants n positional arguments, named in the message.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != len(names) {
			return usagef("want %s, got %d argument(s)", strings.Join(names, " "), len(args))
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		// Counted, not echoed: a misplaced argument may be a secret.
		return usagef("this command takes no arguments, got %d", len(args))
	}
	return nil
}
