package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
)

// applyResult is what apply did, or with --dry-run would do, to one
// resource.
type applyResult struct {
	Kind         string   `json:"kind"`
	Name         string   `json:"name"`
	Result       string   `json:"result"` // created, updated or unchanged
	Changes      []string `json:"changes,omitempty"`
	Note         string   `json:"note,omitempty"`
	ClientID     string   `json:"clientId,omitempty"`
	ClientSecret string   `json:"clientSecret,omitempty"`
}

func (a *cli) applyCommand() *cobra.Command {
	var file string
	var dryRun bool
	var output *string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update CredentialIssuer and Client documents from YAML",
		Long: `apply makes the server hold what a YAML file describes: CredentialIssuer and
Client documents, in the API Services Portal's vocabulary, separated by ---.
It is idempotent: each resource is reported created, updated (with the
fields that changed) or unchanged. A new client's secret is printed once.

The whole file is checked before anything is sent: unknown fields or kinds,
repeated keys and oversized mappings are refused. With --dry-run the server
validates every document and says what it would do, and nothing changes.
'authz issuers get NAME -o yaml' and 'authz clients list -o yaml' print
documents that apply takes back.`,
		Example: `  authz apply -f payments.yaml
  authz apply -f payments.yaml --dry-run
  authz issuers get payments -o yaml | authz apply -f -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := a.printer(*output)
			if err != nil {
				return err
			}
			var data []byte
			if file == "-" {
				data, err = io.ReadAll(a.stdin)
			} else {
				data, err = os.ReadFile(file)
			}
			if err != nil {
				return err
			}
			docs, err := parseResources(data)
			if err != nil {
				return fmt.Errorf("%s: %w (nothing was applied)", file, err)
			}
			s, err := a.openSession()
			if err != nil {
				return err
			}
			results := []applyResult{}
			run := applyRun{admin: s.admin, dryRun: dryRun, newIssuers: map[string]bool{}}
			for _, d := range docs {
				r, err := run.apply(cmd.Context(), d)
				if err != nil {
					_ = out.print(appliedResult(results, dryRun))
					return fmt.Errorf("%s %s: %w", d.Kind, d.Name, err)
				}
				results = append(results, r)
			}
			return out.print(appliedResult(results, dryRun))
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "YAML file of CredentialIssuer and Client documents ('-' for standard input)")
	f.BoolVar(&dryRun, "dry-run", false, "validate every document on the server and print what would change, changing nothing")
	require(f, "file")
	output = outputFlag(cmd)
	return cmd
}

func appliedResult(results []applyResult, dryRun bool) result {
	var b strings.Builder
	for _, r := range results {
		verb := r.Result
		if dryRun {
			verb = "would be " + verb
		}
		fmt.Fprintf(&b, "%s/%s %s", r.Kind, r.Name, verb)
		if len(r.Changes) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(r.Changes, ", "))
		}
		if r.Note != "" {
			fmt.Fprintf(&b, "; %s", r.Note)
		}
		b.WriteString("\n")
		if r.ClientSecret != "" {
			fmt.Fprintf(&b, "  client_id:     %s\n  client_secret: %s (shown only now)\n", r.ClientID, r.ClientSecret)
		}
	}
	return result{value: results, text: b.String()}
}

// applyRun is one run of apply over a file's documents.
type applyRun struct {
	admin  *client.Client
	dryRun bool
	// newIssuers are the issuers a dry run would create: their clients
	// cannot be checked by the server before they exist.
	newIssuers map[string]bool
}

// apply brings one resource to what its document says. It asks the server
// what the write would do first, so that it reports exactly what changed
// and writes only when something does.
func (run applyRun) apply(ctx context.Context, d resourceDoc) (applyResult, error) {
	if d.Kind == kindIssuer {
		return run.applyIssuer(ctx, d)
	}
	if run.newIssuers[d.Issuer] {
		return applyResult{Kind: kindClient, Name: d.Issuer + "/" + d.Name, Result: api.ResultCreated,
			Note: "checked by the server once its issuer exists"}, nil
	}
	return applyClient(ctx, run.admin, d, run.dryRun)
}

func (run applyRun) applyIssuer(ctx context.Context, d resourceDoc) (applyResult, error) {
	req := d.issuerRequest()
	plan, err := run.admin.DryRunPutIssuer(ctx, d.Name, req)
	if err != nil {
		return applyResult{}, err
	}
	r := applyResult{Kind: kindIssuer, Name: d.Name, Result: plan.Result, Changes: plan.Changes}
	if run.dryRun && plan.Result == api.ResultCreated {
		run.newIssuers[d.Name] = true
	}
	if run.dryRun || plan.Result == api.ResultUnchanged {
		return r, nil
	}
	_, err = run.admin.PutIssuer(ctx, d.Name, req, 0)
	return r, err
}

// findClient locates the client a document means: by clientId when given,
// else by its exact name within the issuer.
func findClient(ctx context.Context, admin *client.Client, d resourceDoc) (*api.ClientResponse, error) {
	if d.ClientID != "" {
		c, err := admin.GetClient(ctx, d.Issuer, d.ClientID)
		if client.IsNotFound(err) {
			return nil, nil
		}
		return &c, err
	}
	candidates, err := admin.ListClients(ctx, d.Issuer, client.ClientFilter{Name: d.Name})
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

func applyClient(ctx context.Context, admin *client.Client, d resourceDoc, dryRun bool) (applyResult, error) {
	r := applyResult{Kind: kindClient, Name: d.Issuer + "/" + d.Name}
	current, err := findClient(ctx, admin, d)
	if err != nil {
		return r, err
	}
	if current == nil {
		return createClient(ctx, admin, d, dryRun)
	}
	r.ClientID = current.ClientID
	create, remove, err := definedRolesDiff(ctx, admin, d, current.ClientID)
	if err != nil {
		return r, err
	}
	patch := api.PatchClientRequest{Name: &d.Name, Scopes: d.Scopes, OptionalScopes: d.OptionalScopes, Roles: d.Roles, Audience: d.Audience,
		Enabled: d.Enabled, TokenLifetime: d.TokenLifetime, RoleMappings: d.RoleMappings, ScopeMappings: d.ScopeMappings,
		FullScopeAllowed: d.FullScopeAllowed}
	if d.JWK != nil {
		patch.JWK = json.RawMessage(d.JWK)
	}
	if d.JWKSURI != "" {
		patch.JWKSURI = &d.JWKSURI
	}
	rolesChange := len(create) > 0 || len(remove) > 0
	if dryRun && len(create) > 0 {
		// The mappings may name roles that do not exist until applied.
		patch.RoleMappings, patch.ScopeMappings = nil, nil
	}
	if !dryRun && rolesChange {
		if err := changeDefinedRoles(ctx, admin, d.Issuer, current.ClientID, create, remove); err != nil {
			return r, err
		}
	}
	plan, err := admin.DryRunPatchClient(ctx, d.Issuer, current.ClientID, patch)
	if err != nil {
		return r, err
	}
	r.Result, r.Changes = plan.Result, plan.Changes
	if rolesChange {
		r.Result, r.Changes = api.ResultUpdated, append(r.Changes, "DefinedRoles")
	}
	if dryRun || plan.Result == api.ResultUnchanged {
		return r, nil
	}
	_, err = admin.PatchClient(ctx, d.Issuer, current.ClientID, patch)
	return r, err
}

// createClient creates the client a document describes, then the roles it
// defines, then, when they may name those roles, its mappings.
func createClient(ctx context.Context, admin *client.Client, d resourceDoc, dryRun bool) (applyResult, error) {
	r := applyResult{Kind: kindClient, Name: d.Issuer + "/" + d.Name, Result: api.ResultCreated}
	req := api.CreateClientRequest{ClientID: d.ClientID, Name: d.Name, Enabled: d.Enabled, TokenLifetime: d.TokenLifetime,
		JWK: json.RawMessage(d.JWK), FullScopeAllowed: d.FullScopeAllowed}
	for from, to := range map[*[]string]*[]string{d.Scopes: &req.Scopes, d.OptionalScopes: &req.OptionalScopes, d.Roles: &req.Roles} {
		if from != nil {
			*to = *from
		}
	}
	if d.Audience != nil {
		req.Audience = *d.Audience
	}
	if d.JWKSURI != "" {
		req.JWKSURI = &d.JWKSURI
	}
	mappingsLater := d.DefinedRoles != nil && len(*d.DefinedRoles) > 0
	if !mappingsLater {
		req.RoleMappings, req.ScopeMappings = deref(d.RoleMappings), deref(d.ScopeMappings)
	}
	if dryRun {
		_, err := admin.DryRunCreateClient(ctx, d.Issuer, req)
		return r, err
	}
	created, err := admin.CreateClient(ctx, d.Issuer, req)
	if err != nil {
		return r, err
	}
	r.ClientID, r.ClientSecret = created.ClientID, created.ClientSecret
	if !mappingsLater {
		return r, nil
	}
	if err := changeDefinedRoles(ctx, admin, d.Issuer, created.ClientID, *d.DefinedRoles, nil); err != nil {
		return r, err
	}
	if d.RoleMappings != nil || d.ScopeMappings != nil {
		_, err = admin.PatchClient(ctx, d.Issuer, created.ClientID, api.PatchClientRequest{RoleMappings: d.RoleMappings, ScopeMappings: d.ScopeMappings})
	}
	return r, err
}

func deref[T any](p *[]T) []T {
	if p == nil {
		return nil
	}
	return *p
}

// definedRolesDiff says which of the roles a document defines on its
// client are to be created, and which the client defines that it leaves
// out are to be deleted; nothing when the document does not say.
func definedRolesDiff(ctx context.Context, admin *client.Client, d resourceDoc, clientID string) (create, remove []string, err error) {
	if d.DefinedRoles == nil {
		return nil, nil, nil
	}
	existing, err := admin.ListRoles(ctx, d.Issuer, clientID)
	if err != nil {
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, role := range existing {
		have[role.Name] = true
		if !slices.Contains(*d.DefinedRoles, role.Name) {
			remove = append(remove, role.Name)
		}
	}
	for _, name := range *d.DefinedRoles {
		if !have[name] {
			create = append(create, name)
		}
	}
	return create, remove, nil
}

func changeDefinedRoles(ctx context.Context, admin *client.Client, issuer, clientID string, create, remove []string) error {
	for _, name := range create {
		if _, err := admin.CreateRole(ctx, issuer, clientID, api.CreateRoleRequest{Name: name}); err != nil {
			return fmt.Errorf("define role %q: %w", name, err)
		}
	}
	for _, name := range remove {
		if err := admin.DeleteRole(ctx, issuer, clientID, name); err != nil {
			return fmt.Errorf("delete role %q: %w", name, err)
		}
	}
	return nil
}
