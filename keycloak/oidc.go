package keycloak

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/store"
)

// RFC 7591 client metadata, the subset that means something for a
// client-credentials client; other members are ignored.
type oidcMetadata struct {
	ClientID                string          `json:"client_id,omitempty"`
	ClientName              *string         `json:"client_name,omitempty"`
	GrantTypes              []string        `json:"grant_types,omitempty"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
}

// oidcAnswer is the client information response (RFC 7591 §3.2.1, RFC
// 7592 §3).
type oidcAnswer struct {
	ClientID                string          `json:"client_id"`
	ClientSecret            string          `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64           `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64          `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string          `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string          `json:"registration_client_uri"`
	ClientName              string          `json:"client_name"`
	GrantTypes              []string        `json:"grant_types"`
	ResponseTypes           []string        `json:"response_types"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
}

// Token endpoint authentication methods (RFC 7591 §2).
const (
	authSecretBasic   = "client_secret_basic"
	authSecretPost    = "client_secret_post"
	authPrivateKeyJWT = "private_key_jwt"
)

// applyTo sets the metadata on c. RFC 7592 §2.2 makes an update replace
// every field, so absent fields take their defaults here too.
func (m oidcMetadata) applyTo(c *store.Client, rules representationRules, creating bool) error {
	before := *c
	before.Scopes, before.OptionalScopes = slices.Clone(c.Scopes), slices.Clone(c.OptionalScopes)
	grants := m.GrantTypes
	if grants == nil {
		// RFC 7591 would default to authorization_code, which this server
		// does not have; it substitutes its only grant, and says so in
		// the answer.
		grants = []string{"client_credentials"}
	}
	if !slices.Equal(grants, []string{"client_credentials"}) {
		return invalidf("grant_types must be [\"client_credentials\"]: this server has no other grant (got %q)", grants)
	}
	c.Name = c.ID
	if m.ClientName != nil && strings.TrimSpace(*m.ClientName) != "" {
		c.Name = strings.TrimSpace(*m.ClientName)
	}
	switch m.TokenEndpointAuthMethod {
	case "", authSecretBasic, authSecretPost:
		if len(m.JWKS) > 0 || m.JWKSURI != "" {
			return invalidf("jwks and jwks_uri go with token_endpoint_auth_method private_key_jwt")
		}
		c.PublicJWK, c.JWKSURI = nil, ""
	case authPrivateKeyJWT:
		switch {
		case len(m.JWKS) > 0 && m.JWKSURI != "":
			return invalidf("give jwks or jwks_uri, not both (RFC 7591 §2)")
		case m.JWKSURI != "":
			c.PublicJWK, c.JWKSURI = nil, m.JWKSURI
		case len(m.JWKS) > 0:
			key, err := singleKey(m.JWKS)
			if err != nil {
				return err
			}
			c.PublicJWK, c.JWKSURI = key, ""
		default:
			return invalidf("private_key_jwt needs jwks or jwks_uri")
		}
	default:
		return invalidf("token_endpoint_auth_method must be %s, %s or %s, not %q", authSecretBasic, authSecretPost, authPrivateKeyJWT, m.TokenEndpointAuthMethod)
	}
	c.Scopes = knownScopes(strings.Fields(m.Scope), clientScopeNames(rules.issuer))
	c.OptionalScopes = slices.DeleteFunc(c.OptionalScopes, func(s string) bool { return slices.Contains(c.Scopes, s) })
	return rules.checkChange(&before, c, creating)
}

// singleKey reads the one key of a client's JWK set.
func singleKey(raw json.RawMessage) ([]byte, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, invalidf("jwks must be a JWK set: %s", jsonReason(err))
	}
	if len(set.Keys) != 1 {
		return nil, invalidf("jwks must hold exactly one key, not %d: publish more behind a jwks_uri", len(set.Keys))
	}
	return set.Keys[0], nil
}

// oidcAnswerOf shows a client as RFC 7591 client information.
func (s *Server) oidcAnswerOf(iss store.Issuer, c store.Client) oidcAnswer {
	a := oidcAnswer{
		ClientID:                c.ID,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		RegistrationClientURI:   s.registrationClientURI(iss, c.ID),
		ClientName:              c.Name,
		GrantTypes:              []string{"client_credentials"},
		ResponseTypes:           []string{},
		TokenEndpointAuthMethod: authSecretBasic,
		JWKSURI:                 c.JWKSURI,
		Scope:                   strings.Join(c.Scopes, " "),
	}
	switch {
	case c.JWKSURI != "":
		a.TokenEndpointAuthMethod = authPrivateKeyJWT
	case len(c.PublicJWK) > 0:
		a.TokenEndpointAuthMethod = authPrivateKeyJWT
		var key jose.JSONWebKey
		if key.UnmarshalJSON(c.PublicJWK) == nil {
			a.JWKS, _ = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key}})
		}
	}
	return a
}

func (s *Server) createOIDC(w http.ResponseWriter, r *http.Request, c *call) {
	var m oidcMetadata
	if err := readBody(r, &m); err != nil {
		s.refusedRegistrationWrite(w, r, "", err)
		return
	}
	client := newRegisteredClient(c.issuer)
	if m.ClientID != "" {
		client.ID = m.ClientID
	}
	err := m.applyTo(&client, c.rules(), true)
	if err == nil {
		err = s.checkAuthentication(c.issuer, &client)
	}
	if s.refusedRegistrationWrite(w, r, "", err) {
		return
	}
	s.register(w, r, c, client, "", func(stored store.Client, secret, rat string) {
		a := s.oidcAnswerOf(c.issuer, stored)
		if a.TokenEndpointAuthMethod != authPrivateKeyJWT {
			a.ClientSecret = secret
			never := int64(0)
			a.ClientSecretExpiresAt = &never
		}
		a.RegistrationAccessToken = rat
		writeJSON(w, http.StatusCreated, a)
	})
}

func (s *Server) readOIDC(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.loadClient(w, r, c)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, s.oidcAnswerOf(c.issuer, client))
}

func (s *Server) updateOIDC(w http.ResponseWriter, r *http.Request, c *call) {
	var m oidcMetadata
	if err := readBody(r, &m); err != nil {
		s.refusedRegistrationWrite(w, r, "", err)
		return
	}
	clientID := r.PathValue("clientId")
	if m.ClientID != clientID {
		// RFC 7592 §2.2: the body's client_id must match the client.
		s.refusedRegistrationWrite(w, r, clientID, invalidf("client_id must be %q, the client this URI manages", clientID))
		return
	}
	s.updateRegistration(w, r, c, func(cl *store.Client) error {
		if err := m.applyTo(cl, c.rules(), false); err != nil {
			return err
		}
		return s.checkAuthentication(c.issuer, cl)
	}, func(stored store.Client, rat string) {
		a := s.oidcAnswerOf(c.issuer, stored)
		a.RegistrationAccessToken = rat
		writeJSON(w, http.StatusOK, a)
	})
}
