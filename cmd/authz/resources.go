package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"

	"github.com/authz-dev/authz/api"
)

// resourceDoc is one YAML document of `authz apply`: a CredentialIssuer or
// a Client, in the API Services Portal's vocabulary. `-o yaml` prints the
// same documents, so what one prints the other takes back. Pointer fields
// tell "not given" from "empty"; times are in seconds.
type resourceDoc struct {
	Kind string `yaml:"kind"`

	// CredentialIssuer
	Name                string     `yaml:"name"`
	Description         string     `yaml:"description,omitempty"`
	Flow                string     `yaml:"flow,omitempty"`
	AvailableScopes     []string   `yaml:"availableScopes,omitempty"`
	ClientRoles         []string   `yaml:"clientRoles,omitempty"`
	Audience            *string    `yaml:"audience,omitempty"`
	TokenLifetime       *int64     `yaml:"tokenLifetime,omitempty"`
	SigningAlgorithm    string     `yaml:"signingAlgorithm,omitempty"`
	ClientAuthenticator stringList `yaml:"clientAuthenticator,omitempty"`
	KeyRotationPeriod   int64      `yaml:"keyRotationPeriod,omitempty"`
	KeyPublishLead      int64      `yaml:"keyPublishLead,omitempty"`
	KeyRetirePeriod     int64      `yaml:"keyRetirePeriod,omitempty"`
	// URLStyle "keycloak" serves the issuer as a Keycloak realm;
	// AnonymousRegistration opens its registration service to anyone.
	URLStyle              string `yaml:"urlStyle,omitempty"`
	AnonymousRegistration bool   `yaml:"anonymousRegistration,omitempty"`

	// Client (Name, Audience and TokenLifetime are shared)
	Issuer         string    `yaml:"issuer,omitempty"`
	ClientID       string    `yaml:"clientId,omitempty"`
	Scopes         *[]string `yaml:"scopes,omitempty"`
	OptionalScopes *[]string `yaml:"optionalScopes,omitempty"`
	Roles          *[]string `yaml:"roles,omitempty"`
	Enabled        *bool     `yaml:"enabled,omitempty"`
	JWKSURI        string    `yaml:"jwksUri,omitempty"`
	JWK            yamlJSON  `yaml:"jwk,omitempty"`
	// DefinedRoles are the roles the client defines (an API's roles, which
	// other clients are given); RoleMappings the roles its own tokens
	// carry, limited to ScopeMappings unless FullScopeAllowed.
	DefinedRoles     *[]string       `yaml:"definedRoles,omitempty"`
	RoleMappings     *[]api.RoleName `yaml:"roleMappings,omitempty"`
	ScopeMappings    *[]api.RoleName `yaml:"scopeMappings,omitempty"`
	FullScopeAllowed *bool           `yaml:"fullScopeAllowed,omitempty"`
}

const (
	kindIssuer = "CredentialIssuer"
	kindClient = "Client"
)

// stringList reads one string or a list, as the portal writes
// clientAuthenticator, and writes a list.
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var one string
		if err := n.Decode(&one); err != nil {
			return err
		}
		*l = stringList{one}
		return nil
	}
	var many []string
	if err := n.Decode(&many); err != nil {
		return err
	}
	*l = many
	return nil
}

// yamlJSON is a JSON object written as a YAML mapping, such as a JWK.
type yamlJSON json.RawMessage

func (j *yamlJSON) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a mapping is needed here", n.Line)
	}
	var v map[string]any
	if err := n.Decode(&v); err != nil {
		return err
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*j = raw
	return nil
}

func (j yamlJSON) MarshalYAML() (any, error) {
	var v map[string]any
	if err := json.Unmarshal(j, &v); err != nil {
		return nil, err
	}
	return v, nil
}

func (j yamlJSON) IsZero() bool { return len(j) == 0 }

// maxMappingKeys bounds every mapping in an apply file. A resource has 22
// fields and a JWK a dozen, so a longer mapping is wrong anyway.
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
		if err := d.check(); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, errors.New("no resources in the file")
	}
	return docs, nil
}

// check refuses fields of the other kind and missing names.
func (d resourceDoc) check() error {
	switch d.Kind {
	case kindIssuer:
		if d.Flow != "" && d.Flow != "client-credentials" {
			return fmt.Errorf("flow %q is not supported; use client-credentials", d.Flow)
		}
		if d.Issuer != "" || d.ClientID != "" || d.Scopes != nil || d.OptionalScopes != nil || d.Roles != nil || d.Enabled != nil ||
			d.JWKSURI != "" || d.JWK != nil || d.DefinedRoles != nil || d.RoleMappings != nil || d.ScopeMappings != nil || d.FullScopeAllowed != nil {
			return errors.New("that field belongs to a Client, not a CredentialIssuer")
		}
	case kindClient:
		if d.Issuer == "" {
			return errors.New("a Client needs issuer")
		}
		if d.Description != "" || d.Flow != "" || d.AvailableScopes != nil || d.ClientRoles != nil || d.SigningAlgorithm != "" ||
			d.ClientAuthenticator != nil || d.KeyRotationPeriod != 0 || d.KeyPublishLead != 0 || d.KeyRetirePeriod != 0 ||
			d.URLStyle != "" || d.AnonymousRegistration {
			return errors.New("that field belongs to a CredentialIssuer, not a Client")
		}
		if d.JWKSURI != "" && d.JWK != nil {
			return errors.New("a Client has a jwk or a jwksUri, not both")
		}
	default:
		return fmt.Errorf("kind must be %s or %s, not %q", kindIssuer, kindClient, d.Kind)
	}
	if d.Name == "" {
		return fmt.Errorf("%s needs a name", d.Kind)
	}
	return nil
}

// issuerRequest is the admin API request a CredentialIssuer document
// stands for.
func (d resourceDoc) issuerRequest() api.IssuerRequest {
	req := api.IssuerRequest{
		Description:           d.Description,
		AvailableScopes:       d.AvailableScopes,
		ClientRoles:           d.ClientRoles,
		TokenLifetime:         d.TokenLifetime,
		SigningAlgorithm:      d.SigningAlgorithm,
		ClientAuthenticator:   api.AuthenticatorList(d.ClientAuthenticator),
		KeyRotationPeriod:     d.KeyRotationPeriod,
		KeyPublishLead:        d.KeyPublishLead,
		KeyRetirePeriod:       d.KeyRetirePeriod,
		URLStyle:              d.URLStyle,
		AnonymousRegistration: d.AnonymousRegistration,
	}
	if d.Audience != nil {
		req.Audience = *d.Audience
	}
	return req
}

// issuerDoc is the document that describes an issuer.
func issuerDoc(iss api.IssuerResponse) resourceDoc {
	return resourceDoc{
		Kind: kindIssuer, Name: iss.Name, Description: iss.Description, Flow: iss.Flow,
		AvailableScopes: iss.AvailableScopes, ClientRoles: iss.ClientRoles, Audience: &iss.Audience,
		TokenLifetime: &iss.TokenLifetime, SigningAlgorithm: iss.SigningAlgorithm,
		ClientAuthenticator: stringList(iss.ClientAuthenticator), KeyRotationPeriod: iss.KeyRotationPeriod,
		KeyPublishLead: iss.KeyPublishLead, KeyRetirePeriod: iss.KeyRetirePeriod,
		URLStyle: iss.URLStyle, AnonymousRegistration: iss.AnonymousRegistration,
	}
}

// clientDoc is the document that describes a client of issuerName. It
// leaves out the roles the client defines ('authz roles list' shows them),
// so applying it back leaves them alone.
func clientDoc(issuerName string, c api.ClientResponse) resourceDoc {
	d := resourceDoc{
		Kind: kindClient, Issuer: issuerName, ClientID: c.ClientID, Name: c.Name, Scopes: &c.Scopes, Roles: &c.Roles,
		Audience: &c.Audience, Enabled: &c.Enabled, JWKSURI: c.JWKSURI, JWK: yamlJSON(c.JWK),
		FullScopeAllowed: &c.FullScopeAllowed,
	}
	if len(c.OptionalScopes) > 0 {
		d.OptionalScopes = &c.OptionalScopes
	}
	if len(c.RoleMappings) > 0 {
		d.RoleMappings = &c.RoleMappings
	}
	if len(c.ScopeMappings) > 0 {
		d.ScopeMappings = &c.ScopeMappings
	}
	if c.TokenLifetime != 0 {
		d.TokenLifetime = &c.TokenLifetime
	}
	return d
}
