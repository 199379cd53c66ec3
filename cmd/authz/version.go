package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time by `make build` and the Dockerfile:
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X main.buildDate=2026-12-02T16:00:00Z"
//
// A build without them (go install, go run) reads what the Go toolchain
// stamped into the binary instead.
var (
	version   string
	commit    string
	buildDate string
)

// build describes this binary: which release, from which commit, when,
// with which Go.
type build struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
}

// currentBuild is the stamped build, completed from the toolchain's build
// information where the stamp is missing.
func currentBuild() build {
	b := build{Version: version, Commit: commit, Date: buildDate, GoVersion: runtime.Version()}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" {
			b.Version = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && b.Commit == "":
				b.Commit = s.Value
			case s.Key == "vcs.time" && b.Date == "":
				b.Date = s.Value
			case s.Key == "vcs.modified" && s.Value == "true" && b.Commit != "" && version == "":
				b.Commit += "-dirty"
			}
		}
	}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	return b
}

func (b build) String() string {
	return fmt.Sprintf("authz %s (commit %s, built %s, %s)", b.Version, or(b.Commit, "unknown"), or(b.Date, "unknown"), b.GoVersion)
}

func or(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func (a *cli) versionCommand() *cobra.Command {
	var output *string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print this build's version, commit, build date and Go version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := a.printer(*output)
			if err != nil {
				return err
			}
			b := currentBuild()
			return out.print(result{value: b, text: b.String() + "\n"})
		},
	}
	output = outputFlag(cmd)
	return cmd
}
