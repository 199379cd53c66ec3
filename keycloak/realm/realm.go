// Package realm reads a Keycloak realm export (a RealmRepresentation, as
// `kc.sh export` writes it) and translates what a client-credentials
// server can carry over into authz's records: one Keycloak-style issuer,
// its client-credentials clients with their secrets as they are (only
// digests are kept), their keys or key-set URLs, the roles mapped to their
// service accounts, and the realm's signing keys under the kids Keycloak
// published. What it cannot carry over is named, with the reason.
package realm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Representation is the part of Keycloak's RealmRepresentation an import
// reads; the rest is counted in Skipped where it matters.
type Representation struct {
	ID                          string                    `json:"id"`
	Realm                       string                    `json:"realm"`
	DisplayName                 string                    `json:"displayName"`
	AccessTokenLifespan         int64                     `json:"accessTokenLifespan"`
	DefaultSignatureAlgorithm   string                    `json:"defaultSignatureAlgorithm"`
	Roles                       *Roles                    `json:"roles"`
	Clients                     []Client                  `json:"clients"`
	Users                       []User                    `json:"users"`
	ClientScopes                []ClientScope             `json:"clientScopes"`
	DefaultDefaultClientScopes  []string                  `json:"defaultDefaultClientScopes"`
	DefaultOptionalClientScopes []string                  `json:"defaultOptionalClientScopes"`
	ScopeMappings               []ScopeMapping            `json:"scopeMappings"`
	ClientScopeMappings         map[string][]ScopeMapping `json:"clientScopeMappings"`
	Components                  map[string][]Component    `json:"components"`
	Groups                      []json.RawMessage         `json:"groups"`
	IdentityProviders           []json.RawMessage         `json:"identityProviders"`
	AuthenticationFlows         []json.RawMessage         `json:"authenticationFlows"`
}

// Roles are a realm's roles: its own, and each client's by client id.
type Roles struct {
	Realm  []Role            `json:"realm"`
	Client map[string][]Role `json:"client"`
}

// Role is a RoleRepresentation.
type Role struct {
	ID          string      `json:"id"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Composite   bool        `json:"composite"`
	Composites  *Composites `json:"composites"`
}

// Composites are the roles a composite role contains.
type Composites struct {
	Realm  []string            `json:"realm"`
	Client map[string][]string `json:"client"`
}

// Client is a ClientRepresentation.
type Client struct {
	ID                           string            `json:"id"`
	ClientID                     string            `json:"clientId"`
	Name                         string            `json:"name"`
	Enabled                      *bool             `json:"enabled"`
	ClientAuthenticatorType      string            `json:"clientAuthenticatorType"`
	Secret                       string            `json:"secret"`
	BearerOnly                   bool              `json:"bearerOnly"`
	PublicClient                 bool              `json:"publicClient"`
	ServiceAccountsEnabled       bool              `json:"serviceAccountsEnabled"`
	Protocol                     string            `json:"protocol"`
	FullScopeAllowed             *bool             `json:"fullScopeAllowed"`
	Attributes                   map[string]string `json:"attributes"`
	ProtocolMappers              []ProtocolMapper  `json:"protocolMappers"`
	DefaultClientScopes          []string          `json:"defaultClientScopes"`
	OptionalClientScopes         []string          `json:"optionalClientScopes"`
	AuthorizationServicesEnabled bool              `json:"authorizationServicesEnabled"`
}

// ProtocolMapper is a ProtocolMapperRepresentation.
type ProtocolMapper struct {
	ID              string            `json:"id,omitempty"`
	Name            string            `json:"name"`
	Protocol        string            `json:"protocol"`
	ProtocolMapper  string            `json:"protocolMapper"`
	ConsentRequired bool              `json:"consentRequired"`
	Config          map[string]string `json:"config"`
}

// User is a UserRepresentation; the import reads service accounts only.
type User struct {
	ID                     string              `json:"id"`
	Username               string              `json:"username"`
	ServiceAccountClientID string              `json:"serviceAccountClientId"`
	RealmRoles             []string            `json:"realmRoles"`
	ClientRoles            map[string][]string `json:"clientRoles"`
}

// ClientScope is a ClientScopeRepresentation.
type ClientScope struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Protocol   string            `json:"protocol"`
	Attributes map[string]string `json:"attributes"`
}

// ScopeMapping lets a client (or client scope) carry roles in its tokens
// when it does not have full scope.
type ScopeMapping struct {
	Client      string   `json:"client"`
	ClientScope string   `json:"clientScope"`
	Roles       []string `json:"roles"`
}

// Component is a ComponentRepresentation, such as a key provider.
type Component struct {
	ID         string              `json:"id"`
	Name       string              `json:"name"`
	ProviderID string              `json:"providerId"`
	Config     map[string][]string `json:"config"`
}

// config reads a component setting, which Keycloak keeps as a list.
func (c Component) config(name string) string {
	if v := c.Config[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Parse reads a realm export. Its errors say where the document went
// wrong without quoting it, since it holds secrets and private keys.
func Parse(r io.Reader) (Representation, error) {
	var rep Representation
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return Representation{}, fmt.Errorf("the file is not a Keycloak realm export: %s", jsonReason(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Representation{}, errors.New("the file is not a Keycloak realm export: it goes on after the realm")
	}
	if strings.TrimSpace(rep.Realm) == "" {
		return Representation{}, errors.New(`the file is not a Keycloak realm export: it has no "realm" name`)
	}
	return rep, nil
}

// jsonReason says where a JSON document went wrong, without echoing it.
func jsonReason(err error) string {
	var syntax *json.SyntaxError
	var typed *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "it ends too early (truncated?)"
	case errors.As(err, &syntax):
		return fmt.Sprintf("malformed JSON at byte %d", syntax.Offset)
	case errors.As(err, &typed):
		return fmt.Sprintf("field %q must be %s, not a JSON %s", typed.Field, typed.Type, typed.Value)
	default:
		return "malformed JSON"
	}
}

// ParseBytes is Parse over a document in memory.
func ParseBytes(b []byte) (Representation, error) { return Parse(bytes.NewReader(b)) }
