package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/authz-dev/authz/api"
)

// resourceDoc is one YAML document of `authz apply`: a CredentialIssuer or
// a Client, in the API Services Portal's vocabulary. Pointer fields tell
// "not given" from "empty".
type resourceDoc struct {
	Kind string `yaml:"kind"`

	// CredentialIssuer
	Name                string    `yaml:"name"`
	Description         string    `yaml:"description"`
	Flow                string    `yaml:"flow"`
	AvailableScopes     []string  `yaml:"availableScopes"`
	ClientRoles         []string  `yaml:"clientRoles"`
	Audience            *string   `yaml:"audience"`
	TokenLifetime       *int64    `yaml:"tokenLifetime"`
	SigningAlgorithm    string    `yaml:"signingAlgorithm"`
	ClientAuthenticator yaml.Node `yaml:"clientAuthenticator"`

	// Client (Name and Audience are shared)
	Issuer   string    `yaml:"issuer"`
	ClientID string    `yaml:"clientId"`
	Scopes   *[]string `yaml:"scopes"`
	Roles    *[]string `yaml:"roles"`
	Enabled  *bool     `yaml:"enabled"`
}

const (
	kindIssuer = "CredentialIssuer"
	kindClient = "Client"
)

// maxMappingKeys bounds every mapping in an apply file. A resource has 15
// fields and no nested mappings, so a longer mapping is wrong anyway.
const maxMappingKeys = 64

// checkMappings refuses, before the strict decode, what would make that
// decode blow up: yaml.v3 compares every mapping key with every other and
// records one error per equal pair, so n repeats of one key cost n² time
// and memory (50,000 lines of "x: 1" took 9 GiB). Here duplicates are found
// with a set and mapping sizes are bounded, so the decode that follows
// meets neither. Aliases are not followed: their anchors are checked where
// they are defined.
func checkMappings(data []byte) error {
	type key struct {
		kind  yaml.Kind
		value string
	}
	var check func(n *yaml.Node) error
	check = func(n *yaml.Node) error {
		if n.Kind == yaml.MappingNode {
			if len(n.Content)/2 > maxMappingKeys {
				return fmt.Errorf("line %d: a mapping with more than %d keys", n.Line, maxMappingKeys)
			}
			seen := make(map[key]int, len(n.Content)/2)
			for i := 0; i < len(n.Content); i += 2 {
				k := n.Content[i]
				if line, dup := seen[key{k.Kind, k.Value}]; dup {
					return fmt.Errorf("line %d: key %q already defined at line %d", k.Line, k.Value, line)
				}
				seen[key{k.Kind, k.Value}] = k.Line
			}
		}
		for _, c := range n.Content {
			if err := check(c); err != nil {
				return err
			}
		}
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 1; ; i++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err == nil {
			err = check(&doc)
		}
		if err != nil {
			return fmt.Errorf("document %d: %w", i, err)
		}
	}
}

// applyResult is what apply did to one resource.
type applyResult struct {
	Kind         string `json:"kind"`
	Name         string `json:"name"`
	Result       string `json:"result"` // created, updated or unchanged
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
}

// parseResources reads every document strictly: unknown fields, unknown
// kinds and missing names are errors, found before anything is applied.
func parseResources(data []byte) ([]resourceDoc, error) {
	if err := checkMappings(data); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var docs []resourceDoc
	for i := 1; ; i++ {
		var d resourceDoc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if d.Kind == "" && d.Name == "" {
			continue // an empty document between separators
		}
		switch d.Kind {
		case kindIssuer:
			if d.Flow != "" && d.Flow != "client-credentials" {
				return nil, fmt.Errorf("document %d: flow %q is not supported; use client-credentials", i, d.Flow)
			}
			if d.Issuer != "" || d.ClientID != "" || d.Scopes != nil || d.Roles != nil || d.Enabled != nil {
				return nil, fmt.Errorf("document %d: a CredentialIssuer has no issuer, clientId, scopes, roles or enabled", i)
			}
		case kindClient:
			if d.Issuer == "" {
				return nil, fmt.Errorf("document %d: a Client needs issuer", i)
			}
			if d.Description != "" || d.Flow != "" || d.AvailableScopes != nil || d.ClientRoles != nil ||
				d.SigningAlgorithm != "" || !d.ClientAuthenticator.IsZero() {
				return nil, fmt.Errorf("document %d: that field belongs to a CredentialIssuer, not a Client", i)
			}
		default:
			return nil, fmt.Errorf("document %d: kind must be %s or %s, not %q", i, kindIssuer, kindClient, d.Kind)
		}
		if d.Name == "" {
			return nil, fmt.Errorf("document %d: %s needs a name", i, d.Kind)
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, errors.New("no resources in the file")
	}
	return docs, nil
}

func runApply(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	set, format := cliCommand("apply", getenv, stderr)
	file := set.fs.String("f", "", "YAML file of CredentialIssuer and Client documents ('-' for standard input)")
	set.Require(file, "-f FILE")
	if err := set.Parse(args); err != nil {
		return err
	}
	var data []byte
	var err error
	if *file == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(*file)
	}
	if err != nil {
		return err
	}
	docs, err := parseResources(data)
	if err != nil {
		return fmt.Errorf("%s: %w (nothing was applied)", *file, err)
	}
	s, err := openAdminSession(getenv)
	if err != nil {
		return err
	}
	var results []applyResult
	for _, d := range docs {
		var r applyResult
		if d.Kind == kindIssuer {
			r, err = applyIssuer(ctx, s, d)
		} else {
			r, err = applyClient(ctx, s, d)
		}
		if err != nil {
			_ = printApplied(output{w: stdout, format: *format}, results)
			return fmt.Errorf("%s %s: %w", d.Kind, d.Name, err)
		}
		results = append(results, r)
	}
	return printApplied(output{w: stdout, format: *format}, results)
}

func printApplied(out output, results []applyResult) error {
	if out.format == "json" {
		return out.json(results)
	}
	for _, r := range results {
		fmt.Fprintf(out.w, "%s/%s %s\n", r.Kind, r.Name, r.Result)
		if r.ClientSecret != "" {
			fmt.Fprintf(out.w, "  client_id:     %s\n  client_secret: %s (shown only now)\n", r.ClientID, r.ClientSecret)
		}
	}
	return nil
}

func applyIssuer(ctx context.Context, s *adminSession, d resourceDoc) (applyResult, error) {
	path := "/issuers/" + url.PathEscape(d.Name)
	var before api.IssuerResponse
	err := s.call(ctx, http.MethodGet, path, nil, &before)
	if err != nil && !isStatus(err, http.StatusNotFound) {
		return applyResult{}, err
	}
	body := map[string]any{"description": d.Description, "availableScopes": nonNilList(d.AvailableScopes),
		"clientRoles": nonNilList(d.ClientRoles)}
	if d.Audience != nil {
		body["audience"] = *d.Audience
	}
	if d.TokenLifetime != nil {
		body["tokenLifetime"] = *d.TokenLifetime
	}
	if d.SigningAlgorithm != "" {
		body["signingAlgorithm"] = d.SigningAlgorithm
	}
	if !d.ClientAuthenticator.IsZero() {
		var v any
		if err := d.ClientAuthenticator.Decode(&v); err != nil {
			return applyResult{}, err
		}
		body["clientAuthenticator"] = v
	}
	var after api.IssuerResponse
	if err := s.call(ctx, http.MethodPut, path, body, &after); err != nil {
		return applyResult{}, err
	}
	result := "updated"
	switch {
	case before.Revision == 0:
		result = "created"
	case before.Revision == after.Revision:
		result = "unchanged"
	}
	return applyResult{Kind: kindIssuer, Name: d.Name, Result: result}, nil
}

// findClient locates the client a document means: by clientId when given,
// else by its exact name within the issuer.
func findClient(ctx context.Context, s *adminSession, d resourceDoc) (*api.ClientResponse, error) {
	base := "/issuers/" + url.PathEscape(d.Issuer) + "/clients"
	if d.ClientID != "" {
		var c api.ClientResponse
		err := s.call(ctx, http.MethodGet, base+"/"+url.PathEscape(d.ClientID), nil, &c)
		if isStatus(err, http.StatusNotFound) {
			return nil, nil
		}
		return &c, err
	}
	candidates, err := listAll[api.ClientResponse](ctx, s, base+"?name="+url.QueryEscape(d.Name))
	if err != nil {
		return nil, err
	}
	var exact []api.ClientResponse
	for _, c := range candidates {
		if c.Name == d.Name {
			exact = append(exact, c)
		}
	}
	switch len(exact) {
	case 0:
		return nil, nil
	case 1:
		return &exact[0], nil
	default:
		return nil, fmt.Errorf("%d clients of issuer %q are named %q; give clientId to say which", len(exact), d.Issuer, d.Name)
	}
}

func applyClient(ctx context.Context, s *adminSession, d resourceDoc) (applyResult, error) {
	base := "/issuers/" + url.PathEscape(d.Issuer) + "/clients"
	name := d.Issuer + "/" + d.Name
	current, err := findClient(ctx, s, d)
	if err != nil {
		return applyResult{}, err
	}
	if current == nil {
		body := map[string]any{"name": d.Name}
		if d.ClientID != "" {
			body["clientId"] = d.ClientID
		}
		if d.Scopes != nil {
			body["scopes"] = nonNilList(*d.Scopes)
		}
		if d.Roles != nil {
			body["roles"] = nonNilList(*d.Roles)
		}
		if d.Audience != nil {
			body["audience"] = *d.Audience
		}
		if d.TokenLifetime != nil && *d.TokenLifetime != 0 {
			body["tokenLifetime"] = *d.TokenLifetime
		}
		if d.Enabled != nil {
			body["enabled"] = *d.Enabled
		}
		var c api.CreatedClientResponse
		if err := s.call(ctx, http.MethodPost, base, body, &c); err != nil {
			return applyResult{}, err
		}
		return applyResult{Kind: kindClient, Name: name, Result: "created", ClientID: c.ClientID, ClientSecret: c.ClientSecret}, nil
	}
	patch := map[string]any{}
	if d.Name != current.Name {
		patch["name"] = d.Name
	}
	if d.Scopes != nil && !sameSet(*d.Scopes, current.Scopes) {
		patch["scopes"] = nonNilList(*d.Scopes)
	}
	if d.Roles != nil && !sameSet(*d.Roles, current.Roles) {
		patch["roles"] = nonNilList(*d.Roles)
	}
	if d.Audience != nil && *d.Audience != current.Audience {
		patch["audience"] = *d.Audience
	}
	if d.TokenLifetime != nil && *d.TokenLifetime != current.TokenLifetime {
		patch["tokenLifetime"] = *d.TokenLifetime
	}
	if d.Enabled != nil && *d.Enabled != current.Enabled {
		patch["enabled"] = *d.Enabled
	}
	if len(patch) == 0 {
		return applyResult{Kind: kindClient, Name: name, Result: "unchanged", ClientID: current.ClientID}, nil
	}
	if err := s.call(ctx, http.MethodPatch, base+"/"+url.PathEscape(current.ClientID), patch, nil); err != nil {
		return applyResult{}, err
	}
	return applyResult{Kind: kindClient, Name: name, Result: "updated", ClientID: current.ClientID}, nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func nonNilList(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
