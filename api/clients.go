package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// ClientResponse is a client as the admin API shows it; never its secrets.
type ClientResponse struct {
	ClientID         string          `json:"clientId"`
	InternalID       string          `json:"internalId"`
	ServiceAccountID string          `json:"serviceAccountId"`
	JWK              json.RawMessage `json:"jwk,omitempty"`
	JWKSURI          string          `json:"jwksUri,omitempty"`
	Issuer           string          `json:"issuer"`
	Name             string          `json:"name"`
	Scopes           []string        `json:"scopes"`
	OptionalScopes   []string        `json:"optionalScopes"`
	Roles            []string        `json:"roles"`
	RoleMappings     []RoleName      `json:"roleMappings"`
	ScopeMappings    []RoleName      `json:"scopeMappings"`
	FullScopeAllowed bool            `json:"fullScopeAllowed"`
	Audience         string          `json:"audience"`
	TokenLifetime    int64           `json:"tokenLifetime"`
	Enabled          bool            `json:"enabled"`
	TokenEndpoint    string          `json:"tokenEndpoint"`
	CreatedAt        string          `json:"createdAt"`
	UpdatedAt        string          `json:"updatedAt"`
}

// CreatedClientResponse is the only answer that carries a client's secret.
type CreatedClientResponse struct {
	ClientResponse
	ClientSecret string `json:"clientSecret"`
}

func roleNames(refs []store.RoleRef) []RoleName {
	out := []RoleName{}
	for _, r := range refs {
		out = append(out, RoleName{Client: r.ClientID, Role: r.Name})
	}
	return out
}

func (s *Server) clientResponse(iss store.Issuer, c store.Client) ClientResponse {
	return ClientResponse{
		ClientID:         c.ID,
		InternalID:       c.InternalID,
		ServiceAccountID: c.ServiceAccountID,
		Issuer:           s.public.IssuerURL(iss),
		Name:             c.Name,
		Scopes:           nonNil(c.Scopes),
		OptionalScopes:   nonNil(c.OptionalScopes),
		Roles:            nonNil(c.Roles),
		RoleMappings:     roleNames(c.RoleMappings),
		ScopeMappings:    roleNames(c.ScopeMappings),
		FullScopeAllowed: c.FullScopeAllowed,
		Audience:         c.Audience,
		TokenLifetime:    int64(c.TokenLifetime / time.Second),
		Enabled:          c.Enabled,
		TokenEndpoint:    s.public.TokenURL(iss),
		CreatedAt:        c.CreatedAt.UTC().Format(time.RFC3339),
		UpdatedAt:        c.UpdatedAt.UTC().Format(time.RFC3339),
		JWK:              json.RawMessage(c.PublicJWK),
		JWKSURI:          c.JWKSURI,
	}
}

// CreateClientRequest is the body of POST /issuers/{name}/clients. A client
// id is generated unless given; the audience is the issuer's unless given;
// full scope is allowed unless refused.
type CreateClientRequest struct {
	ClientID         string          `json:"clientId,omitempty"`
	Name             string          `json:"name"`
	Scopes           []string        `json:"scopes,omitempty"`
	OptionalScopes   []string        `json:"optionalScopes,omitempty"`
	Roles            []string        `json:"roles,omitempty"`
	RoleMappings     []RoleName      `json:"roleMappings,omitempty"`
	ScopeMappings    []RoleName      `json:"scopeMappings,omitempty"`
	FullScopeAllowed *bool           `json:"fullScopeAllowed,omitempty"`
	Audience         string          `json:"audience,omitempty"`
	TokenLifetime    *int64          `json:"tokenLifetime,omitempty"`
	Enabled          *bool           `json:"enabled,omitempty"`
	JWK              json.RawMessage `json:"jwk,omitempty"`
	JWKSURI          *string         `json:"jwksUri,omitempty"`
}

// writeClientError answers a refused client operation.
func (s *Server) writeClientError(w http.ResponseWriter, iss store.Issuer, clientID, verb string, err error) {
	var invalid FieldErrors
	switch {
	case errors.As(err, &invalid):
		writeProblem(w, http.StatusUnprocessableEntity, fmt.Sprintf("The client is invalid%s.", verb), invalid...)
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, http.StatusConflict, fmt.Sprintf("Client %q already exists under issuer %q.", clientID, iss.Name),
			FieldError{Field: "clientId", Reason: "is taken"})
	default:
		s.writeStoreError(w, fmt.Sprintf("Client %q of issuer %q", clientID, iss.Name), err)
	}
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	var req CreateClientRequest
	if !decodeBody(w, r, &req) {
		return
	}
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	c := store.Client{
		ID:               req.ClientID,
		Name:             req.Name,
		Scopes:           req.Scopes,
		OptionalScopes:   req.OptionalScopes,
		Roles:            req.Roles,
		Audience:         req.Audience,
		Enabled:          req.Enabled == nil || *req.Enabled,
		FullScopeAllowed: req.FullScopeAllowed == nil || *req.FullScopeAllowed,
	}
	if c.Audience == "" {
		c.Audience = iss.Audience
	}
	lifetime, lifetimeErrs := validateLifetime(req.TokenLifetime)
	c.TokenLifetime = lifetime
	errs := FieldErrors(lifetimeErrs)
	if err := s.requestedKeysAndMappings(r.Context(), iss, &c, req.JWK, req.JWKSURI, &req.RoleMappings, &req.ScopeMappings); err != nil {
		var fe FieldErrors
		if !errors.As(err, &fe) {
			s.writeClientError(w, iss, c.ID, "", err)
			return
		}
		errs = append(errs, fe...)
	}
	if len(errs) > 0 {
		if c.ID == "" {
			c.ID = NewClientID()
		}
		s.writeClientError(w, iss, c.ID, "", append(errs, checkNewClient(c, iss)...))
		return
	}
	if dryRun(r) {
		s.answerCreateDryRun(w, r, iss, c)
		return
	}
	stored, secret, err := s.CreateClient(r.Context(), iss, c, "", nil)
	if err != nil {
		s.writeClientError(w, iss, c.ID, "", err)
		return
	}
	w.Header().Set("Location", r.URL.Path+"/"+stored.ID)
	writeJSON(w, http.StatusCreated, CreatedClientResponse{ClientResponse: s.clientResponse(iss, stored), ClientSecret: secret})
}

// answerCreateDryRun says whether the client would be created.
func (s *Server) answerCreateDryRun(w http.ResponseWriter, r *http.Request, iss store.Issuer, c store.Client) {
	c.IssuerName = iss.Name
	if c.ID == "" {
		c.ID = NewClientID()
	}
	if errs := checkNewClient(c, iss); len(errs) > 0 {
		s.writeClientError(w, iss, c.ID, "", errs)
		return
	}
	_, err := s.store.GetClient(r.Context(), iss.Name, c.ID)
	switch {
	case err == nil:
		s.writeClientError(w, iss, c.ID, "", store.ErrConflict)
	case errors.Is(err, store.ErrNotFound):
		writeJSON(w, http.StatusOK, DryRunResponse{Result: ResultCreated})
	default:
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", iss.Name), err)
	}
}

// requestedKeysAndMappings sets a client's assertion key and role and
// scope mappings from a request: nil pointers and absent keys leave them.
// A JWK and a JWKS URI are exclusive, so setting one clears the other; a
// JSON null JWK or an empty URI removes it.
func (s *Server) requestedKeysAndMappings(ctx context.Context, iss store.Issuer, c *store.Client, jwk json.RawMessage, jwksURI *string,
	roleMappings, scopeMappings *[]RoleName) error {
	var errs FieldErrors
	collect := func(err error) error {
		var fe FieldErrors
		if errors.As(err, &fe) {
			errs = append(errs, fe...)
			return nil
		}
		return err
	}
	setJWK := len(jwk) > 0 && string(jwk) != "null"
	switch {
	case setJWK && jwksURI != nil && *jwksURI != "":
		errs = append(errs, FieldError{Field: "jwk", Reason: "give a jwk or a jwksUri, not both"})
	case setJWK:
		normalized, err := s.CheckAssertionKey(jwk, "", "jwk")
		if err := collect(err); err != nil {
			return err
		}
		c.PublicJWK, c.JWKSURI = normalized, ""
	case string(jwk) == "null":
		c.PublicJWK = nil
	}
	if jwksURI != nil && !setJWK {
		_, err := s.CheckAssertionKey(nil, *jwksURI, "jwksUri")
		if err := collect(err); err != nil {
			return err
		}
		c.JWKSURI = *jwksURI
		if *jwksURI != "" {
			c.PublicJWK = nil
		}
	}
	for field, names := range map[string]*[]RoleName{"roleMappings": roleMappings, "scopeMappings": scopeMappings} {
		if names == nil || *names == nil {
			continue
		}
		refs, err := s.ResolveRoles(ctx, iss.Name, *names, field)
		if err := collect(err); err != nil {
			return err
		}
		if field == "roleMappings" {
			c.RoleMappings = refs
		} else {
			c.ScopeMappings = refs
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["clientId"]
	c, err := s.store.GetClient(r.Context(), iss.Name, id)
	if err != nil {
		s.writeClientError(w, iss, id, "", err)
		return
	}
	writeJSON(w, http.StatusOK, s.clientResponse(iss, c))
}

func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	p, ok := readPage(w, r)
	if !ok {
		return
	}
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	q := store.ClientQuery{Page: p.plusOne(), Name: r.URL.Query().Get("name")}
	switch v := r.URL.Query().Get("enabled"); v {
	case "":
	case "true", "false":
		enabled := v == "true"
		q.Enabled = &enabled
	default:
		writeProblem(w, http.StatusBadRequest, "The enabled filter is not valid.", FieldError{Field: "enabled", Reason: "must be true or false"})
		return
	}
	clients, err := s.store.ListClients(r.Context(), iss.Name, q)
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("The clients of issuer %q", iss.Name), err)
		return
	}
	clients, next := cut(p, clients, func(c store.Client) string { return c.ID })
	items := make([]ClientResponse, 0, len(clients))
	for _, c := range clients {
		items = append(items, s.clientResponse(iss, c))
	}
	writeJSON(w, http.StatusOK, ListResponse[ClientResponse]{Items: items, NextCursor: next})
}

// PatchClientRequest is the body of PATCH /issuers/{name}/clients/{id}: it
// changes only the fields present. tokenLifetime 0 removes the client's own
// lifetime, so the issuer's applies again; a jwk of JSON null or an empty
// jwksUri removes it; mappings are replaced whole.
type PatchClientRequest struct {
	Name             *string         `json:"name,omitempty"`
	Scopes           *[]string       `json:"scopes,omitempty"`
	OptionalScopes   *[]string       `json:"optionalScopes,omitempty"`
	Roles            *[]string       `json:"roles,omitempty"`
	RoleMappings     *[]RoleName     `json:"roleMappings,omitempty"`
	ScopeMappings    *[]RoleName     `json:"scopeMappings,omitempty"`
	FullScopeAllowed *bool           `json:"fullScopeAllowed,omitempty"`
	Audience         *string         `json:"audience,omitempty"`
	TokenLifetime    *int64          `json:"tokenLifetime,omitempty"`
	Enabled          *bool           `json:"enabled,omitempty"`
	JWK              json.RawMessage `json:"jwk,omitempty"`
	JWKSURI          *string         `json:"jwksUri,omitempty"`
}

func (s *Server) patchClient(w http.ResponseWriter, r *http.Request) {
	var req PatchClientRequest
	if !decodeBody(w, r, &req) {
		return
	}
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	id := mux.Vars(r)["clientId"]
	emptyAsNil := func(p *[]RoleName) *[]RoleName {
		if p != nil && *p == nil {
			return &[]RoleName{}
		}
		return p
	}
	var mappings store.Client
	if err := s.requestedKeysAndMappings(r.Context(), iss, &mappings, nil, nil, emptyAsNil(req.RoleMappings), emptyAsNil(req.ScopeMappings)); err != nil {
		s.writeClientError(w, iss, id, "", err)
		return
	}
	patch := func(c *store.Client) error {
		var errs FieldErrors
		setStrings := func(dst *[]string, src *[]string) {
			if src != nil {
				*dst = nonNil(*src)
			}
		}
		if req.Name != nil {
			c.Name = *req.Name
		}
		setStrings(&c.Scopes, req.Scopes)
		setStrings(&c.OptionalScopes, req.OptionalScopes)
		setStrings(&c.Roles, req.Roles)
		if req.RoleMappings != nil {
			c.RoleMappings = mappings.RoleMappings
		}
		if req.ScopeMappings != nil {
			c.ScopeMappings = mappings.ScopeMappings
		}
		if req.FullScopeAllowed != nil {
			c.FullScopeAllowed = *req.FullScopeAllowed
		}
		if req.Audience != nil {
			c.Audience = *req.Audience
		}
		if req.TokenLifetime != nil {
			if *req.TokenLifetime == 0 {
				c.TokenLifetime = 0
			} else {
				var lifetimeErrs []FieldError
				c.TokenLifetime, lifetimeErrs = validateLifetime(req.TokenLifetime)
				errs = append(errs, lifetimeErrs...)
			}
		}
		if req.Enabled != nil {
			c.Enabled = *req.Enabled
		}
		if err := s.requestedKeysAndMappings(r.Context(), iss, c, req.JWK, req.JWKSURI, nil, nil); err != nil {
			var fe FieldErrors
			if !errors.As(err, &fe) {
				return err
			}
			errs = append(errs, fe...)
		}
		if len(errs) > 0 {
			return errs
		}
		return nil
	}
	if dryRun(r) {
		changes, err := s.DryRunUpdateClient(r.Context(), iss, id, patch)
		if err != nil {
			s.writeClientError(w, iss, id, " after the change", err)
			return
		}
		writeJSON(w, http.StatusOK, dryRunResult(clientFields, changes))
		return
	}
	updated, err := s.UpdateClient(r.Context(), iss, id, patch)
	if err != nil {
		s.writeClientError(w, iss, id, " after the change", err)
		return
	}
	writeJSON(w, http.StatusOK, s.clientResponse(iss, updated))
}

func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	if err := s.store.DeleteClient(r.Context(), vars["name"], vars["clientId"]); err != nil {
		s.writeStoreError(w, fmt.Sprintf("Client %q of issuer %q", vars["clientId"], vars["name"]), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// SecretResponse describes a client secret by id and hint, never the secret.
type SecretResponse struct {
	ID        string `json:"id"`
	Hint      string `json:"hint"`
	CreatedAt string `json:"createdAt"`
	ExpiresAt string `json:"expiresAt,omitempty"`
	Expired   bool   `json:"expired"`
}

// CreatedSecret is the only answer that carries a new secret.
type CreatedSecret struct {
	SecretResponse
	ClientSecret string `json:"clientSecret"`
}

func (s *Server) secretResponse(sec store.Secret) SecretResponse {
	out := SecretResponse{ID: sec.ID, Hint: sec.Hint, CreatedAt: sec.CreatedAt.UTC().Format(time.RFC3339), Expired: !sec.ValidAt(s.now())}
	if !sec.ExpiresAt.IsZero() {
		out.ExpiresAt = sec.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return out
}

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	c, err := s.store.GetClient(r.Context(), vars["name"], vars["clientId"])
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Client %q of issuer %q", vars["clientId"], vars["name"]), err)
		return
	}
	items := make([]SecretResponse, 0, len(c.Secrets))
	for _, sec := range c.Secrets {
		items = append(items, s.secretResponse(sec))
	}
	writeJSON(w, http.StatusOK, ListResponse[SecretResponse]{Items: items})
}

// CreateSecretRequest is the body of POST .../secrets.
type CreateSecretRequest struct {
	// GraceSeconds, when present, is how long the client's other secrets
	// stay valid; 0 revokes them now. Absent, they are left as they are.
	GraceSeconds *int64 `json:"graceSeconds,omitempty"`
}

func (s *Server) createSecret(w http.ResponseWriter, r *http.Request) {
	var req CreateSecretRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	vars := mux.Vars(r)
	var grace *time.Duration
	if req.GraceSeconds != nil {
		d := time.Duration(*req.GraceSeconds) * time.Second
		grace = &d
	}
	secret, c, err := s.AddClientSecret(r.Context(), vars["name"], vars["clientId"], grace)
	var invalid FieldErrors
	if errors.As(err, &invalid) {
		writeProblem(w, http.StatusUnprocessableEntity, "The grace period is invalid.", invalid...)
		return
	}
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Client %q of issuer %q", vars["clientId"], vars["name"]), err)
		return
	}
	i := slices.IndexFunc(c.Secrets, func(x store.Secret) bool { return x.ID == secret.ID })
	w.Header().Set("Location", r.URL.Path+"/"+secret.ID)
	writeJSON(w, http.StatusCreated, CreatedSecret{SecretResponse: s.secretResponse(c.Secrets[i]), ClientSecret: secret.Value})
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	if err := s.store.DeleteClientSecret(r.Context(), vars["name"], vars["clientId"], vars["secretId"]); err != nil {
		s.writeStoreError(w, fmt.Sprintf("Secret %q of client %q", vars["secretId"], vars["clientId"]), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// GenerateKeyRequest is the body of POST .../keys: the key's algorithm,
// RS256 unless given.
type GenerateKeyRequest struct {
	Algorithm string `json:"algorithm,omitempty"`
}

// GeneratedKey is the only answer that carries a client's private key; the
// server keeps just the public half.
type GeneratedKey struct {
	KID           string          `json:"kid"`
	Algorithm     string          `json:"algorithm"`
	PublicJWK     json.RawMessage `json:"publicJwk"`
	PrivateJWK    json.RawMessage `json:"privateJwk"`
	PrivateKeyPEM string          `json:"privateKeyPem"`
}

// generateClientKey makes a key pair for a client, as the API Services
// Portal does for its consumers: the public key is registered, the private
// key is returned once and forgotten.
func (s *Server) generateClientKey(w http.ResponseWriter, r *http.Request) {
	var req GenerateKeyRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	if req.Algorithm == "" {
		req.Algorithm = keys.RS256
	}
	if !keys.SupportedAlgorithm(req.Algorithm) {
		writeProblem(w, http.StatusUnprocessableEntity, "The algorithm is not supported.",
			FieldError{Field: "algorithm", Reason: "must be one of " + strings.Join(keys.Algorithms(), ", ")})
		return
	}
	priv, err := keys.Generate(req.Algorithm)
	if err != nil {
		s.writeStoreError(w, "The key", err)
		return
	}
	kid, err := credential.ThumbprintKID(priv)
	if err != nil {
		s.writeStoreError(w, "The key", err)
		return
	}
	privJWK := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: req.Algorithm, Use: "sig"}
	pubJWK := privJWK.Public()
	pubJSON, _ := pubJWK.MarshalJSON()
	privJSON, _ := privJWK.MarshalJSON()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		s.writeStoreError(w, "The key", err)
		return
	}
	vars := mux.Vars(r)
	_, err = s.store.UpdateClient(r.Context(), vars["name"], vars["clientId"], func(c *store.Client) error {
		c.PublicJWK, c.JWKSURI = pubJSON, ""
		return nil
	})
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Client %q of issuer %q", vars["clientId"], vars["name"]), err)
		return
	}
	writeJSON(w, http.StatusCreated, GeneratedKey{
		KID: privJWK.KeyID, Algorithm: req.Algorithm, PublicJWK: pubJSON, PrivateJWK: privJSON,
		PrivateKeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
	})
}

// storedSecret is what the store keeps of a secret: never its value.
func storedSecret(sec credential.Secret, expiresAt time.Time) store.Secret {
	return store.Secret{ID: sec.ID, Digest: sec.Digest, Hint: sec.Hint, ExpiresAt: expiresAt}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// clientFields names the client's settings as the API spells them.
var clientFields = map[string]string{
	"Name": "name", "Scopes": "scopes", "Roles": "roles", "Audience": "audience", "TokenLifetime": "tokenLifetime",
	"Enabled": "enabled", "PublicJWK": "jwk", "JWKSURI": "jwksUri", "OptionalScopes": "optionalScopes",
	"FullScopeAllowed": "fullScopeAllowed", "RoleMappings": "roleMappings", "ScopeMappings": "scopeMappings",
}
