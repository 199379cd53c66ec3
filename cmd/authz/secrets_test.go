package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestNoCommandPrintsASecretFromTheEnvironment replays the review's
// finding: environment values became flag defaults, which usage text
// prints, so `AUTHZ_KEK=… authz serve --publc-addr :1` wrote the KEK and
// the database password to the container log. Every command is run with
// secrets in the environment, asked for help, given a bad flag, and (for
// those that reach a database) pointed at one that refuses.
func TestNoCommandPrintsASecretFromTheEnvironment(t *testing.T) {
	t.Parallel()
	const (
		kek      = "c2VjcmV0LWtlay12YWx1ZS0wMTIzNDU2Nzg5YWJjZGVmZ2g="
		password = "pw-6b1f0e97d3"
		secret   = "client-secret-4c7a9e21b8"
	)
	secrets := []string{kek, password, secret}
	c := newInProcess(t)
	for k, v := range map[string]string{
		"AUTHZ_KEK":           kek,
		"AUTHZ_DATABASE_URL":  "postgres://authz:" + password + "@127.0.0.1:1/authz?connect_timeout=2",
		"AUTHZ_CLIENT_SECRET": secret,
		"AUTHZ_CLIENT_ID":     "c-admin",
	} {
		c.env[k] = v
	}
	var paths, leaves [][]string
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		path := strings.Fields(cmd.CommandPath())[1:]
		paths = append(paths, path)
		if !cmd.HasSubCommands() {
			leaves = append(leaves, path)
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk((&cli{getenv: func(string) string { return "" }}).rootCommand())
	check := func(args []string) {
		t.Helper()
		_, out, errOut := c.exec(args...)
		for _, s := range secrets {
			if strings.Contains(out+errOut, s) {
				t.Errorf("authz %s printed a secret from the environment:\n%s%s", strings.Join(args, " "), out, errOut)
			}
		}
	}
	for _, path := range paths {
		check(append(slices.Clone(path), "--help"))
		check(append(slices.Clone(path), "--publc-addr", ":1"))
		check(append(slices.Clone(path), "--bogus"))
	}
	// A secret pasted where no argument belongs is refused unread.
	for _, path := range leaves {
		check(append(slices.Clone(path), secret, secret, secret, secret))
	}
	// Commands that reach the database fail on it without naming the
	// password.
	for _, args := range [][]string{{"migrate"}, {"bootstrap"}, {"keys", "rekey"}, {"serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--public-url", "https://auth.example.test"}} {
		code, out, errOut := c.exec(args...)
		if code == 0 {
			t.Errorf("authz %s succeeded against a closed port:\n%s%s", strings.Join(args, " "), out, errOut)
		}
		check(args)
	}
	// The bad flags' usage errors were checked above; the help names the
	// variables without their values.
	if out := c.ok("serve", "--help"); !strings.Contains(out, "[$AUTHZ_KEK]") || !strings.Contains(out, "[$AUTHZ_DATABASE_URL]") {
		t.Errorf("serve --help does not name the variables:\n%s", out)
	}
}
