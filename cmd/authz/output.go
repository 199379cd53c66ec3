package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Output formats of the admin commands.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// outputFlag adds -o to a command and returns where its value lands.
func outputFlag(cmd *cobra.Command) *string {
	format := cmd.Flags().StringP("output", "o", formatTable, "output format: table, json or yaml")
	bindEnv(cmd.Flags(), "output", "AUTHZ_OUTPUT")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{formatTable, formatJSON, formatYAML}, cobra.ShellCompDirectiveNoFileComp))
	return format
}

// printer prints one command's result in the chosen format.
type printer struct {
	w      io.Writer
	format string
}

func (a *cli) printer(format string) (printer, error) {
	switch format {
	case formatTable, formatJSON, formatYAML:
		return printer{w: a.stdout, format: format}, nil
	}
	return printer{}, usagef("--output must be table, json or yaml, not %q", format)
}

// result describes what to print: the value for json (and for yaml when no
// resources are given), resource documents for yaml, which `authz apply`
// takes back as input, and the table.
type result struct {
	value     any
	resources []resourceDoc
	header    []string
	rows      [][]string
	// text, when set, replaces the table: a message for people.
	text string
}

func (p printer) print(r result) error {
	switch p.format {
	case formatJSON:
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(r.value)
	case formatYAML:
		if r.resources != nil {
			return writeResources(p.w, r.resources)
		}
		return writeYAML(p.w, r.value)
	}
	if r.text != "" {
		_, err := io.WriteString(p.w, r.text)
		return err
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(r.header, "\t"))
	for _, row := range r.rows {
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// writeYAML prints v as YAML with its JSON field names, the names the API
// and its documentation use.
func writeYAML(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return err
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(generic); err != nil {
		return err
	}
	return enc.Close()
}

// writeResources prints apply documents, separated by ---.
func writeResources(w io.Writer, docs []resourceDoc) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return err
		}
	}
	return enc.Close()
}
