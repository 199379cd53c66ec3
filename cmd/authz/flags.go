package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// errUsage marks an error already explained to the user by the flag set.
var errUsage = errors.New("usage error")

// settings defines flags whose defaults come from environment variables, so
// every setting works both ways and the help names both.
type settings struct {
	fs     *flag.FlagSet
	getenv func(string) string
	// envErrs holds malformed environment values, reported at parse time.
	envErrs []error
	// checks run after parsing, so that a command states its required
	// flags once instead of testing them by hand.
	checks []func() error
}

// Require makes a flag mandatory.
func (s *settings) Require(v *string, flags string) {
	s.checks = append(s.checks, func() error {
		if *v == "" {
			return fmt.Errorf("%s is required", flags)
		}
		return nil
	})
}

// Check adds a test that runs after parsing.
func (s *settings) Check(f func() error) { s.checks = append(s.checks, f) }

func (s *settings) afterParse() error {
	errs := slices.Clone(s.envErrs)
	for _, c := range s.checks {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

func newSettings(name string, getenv func(string) string, stderr io.Writer) *settings {
	fs := flag.NewFlagSet("authz "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &settings{fs: fs, getenv: getenv}
}

func (s *settings) String(name, env, def, help string) *string {
	if v := s.getenv(env); v != "" {
		def = v
	}
	return s.fs.String(name, def, help+" ["+env+"]")
}

func (s *settings) Duration(name, env string, def time.Duration, help string) *time.Duration {
	if v := s.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.envErrs = append(s.envErrs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = d
		}
	}
	return s.fs.Duration(name, def, help+" ["+env+"]")
}

func (s *settings) Int(name, env string, def int, help string) *int {
	if v := s.getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.envErrs = append(s.envErrs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = n
		}
	}
	return s.fs.Int(name, def, help+" ["+env+"]")
}

func (s *settings) Bool(name, env string, def bool, help string) *bool {
	if v := s.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.envErrs = append(s.envErrs, fmt.Errorf("%s: %w", env, err))
		} else {
			def = b
		}
	}
	return s.fs.Bool(name, def, help+" ["+env+"]")
}

// Parse parses args. It returns flag.ErrHelp for -h, errUsage after
// printing what is wrong, or the first malformed environment value.
func (s *settings) Parse(args []string) error {
	if err := s.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if s.fs.NArg() > 0 {
		fmt.Fprintf(s.fs.Output(), "unexpected arguments: %v\n", s.fs.Args())
		return errUsage
	}
	return s.afterParse()
}

// ParseWithName parses flags around at most one positional argument,
// wherever it stands (`get NAME -o json`, `get -o json NAME`).
func (s *settings) ParseWithName(args []string) (string, error) {
	var names []string
	for {
		if err := s.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return "", err
			}
			return "", errUsage
		}
		args = s.fs.Args()
		if len(args) == 0 {
			break
		}
		names, args = append(names, args[0]), args[1:]
	}
	if len(names) > 1 {
		fmt.Fprintf(s.fs.Output(), "unexpected arguments: %v\n", names[1:])
		return "", errUsage
	}
	name := ""
	if len(names) == 1 {
		name = names[0]
	}
	return name, s.afterParse()
}
