package api

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base32"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// clientIDPattern keeps caller-chosen ids to URL-safe unreserved characters,
// safe in paths, Basic credentials and JWT claims.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{2,127}$`)

// maxClientNameLength keeps display names to what a table can show.
const maxClientNameLength = 200

// maxSecretGrace bounds how long a rotated-out secret may live on.
const maxSecretGrace = 30 * 24 * time.Hour

// newClientID makes an unguessable client id: 80 random bits in lowercase
// base32.
func newClientID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "c-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// ClientResponse is a client as the admin API shows it; never its secrets.
type ClientResponse struct {
	ClientID      string          `json:"client_id"`
	JWK           json.RawMessage `json:"jwk,omitempty"`
	JWKSURI       string          `json:"jwksUri,omitempty"`
	Issuer        string          `json:"issuer"`
	Name          string          `json:"name"`
	Scopes        []string        `json:"scopes"`
	Roles         []string        `json:"roles"`
	Audience      string          `json:"audience"`
	TokenLifetime int64           `json:"tokenLifetime"`
	Enabled       bool            `json:"enabled"`
	TokenEndpoint string          `json:"token_endpoint"`
	CreatedAt     string          `json:"createdAt"`
	UpdatedAt     string          `json:"updatedAt"`
}

// CreatedClientResponse is the only answer that carries a client's secret.
type CreatedClientResponse struct {
	ClientResponse
	ClientSecret string `json:"client_secret"`
}

func (s *Server) clientResponse(c store.Client) ClientResponse {
	return ClientResponse{
		ClientID:      c.ID,
		Issuer:        s.public.IssuerURL(c.IssuerName),
		Name:          c.Name,
		Scopes:        c.Scopes,
		Roles:         c.Roles,
		Audience:      c.Audience,
		TokenLifetime: int64(c.TokenLifetime / time.Second),
		Enabled:       c.Enabled,
		TokenEndpoint: s.public.TokenURL(c.IssuerName),
		CreatedAt:     c.CreatedAt.UTC().Format(time.RFC3339),
		UpdatedAt:     c.UpdatedAt.UTC().Format(time.RFC3339),
		JWK:           json.RawMessage(c.PublicJWK),
		JWKSURI:       c.JWKSURI,
	}
}

// applyAssertionKey sets a client's public JWK or JWKS URI from a request;
// the two are exclusive, so setting one clears the other. A JSON null JWK or
// an empty URI removes it.
func (s *Server) applyAssertionKey(c *store.Client, jwk json.RawMessage, jwksURI *string) []FieldError {
	setJWK := len(jwk) > 0 && string(jwk) != "null"
	setURI := jwksURI != nil && *jwksURI != ""
	if setJWK && setURI {
		return []FieldError{{Field: "jwk", Reason: "give a jwk or a jwksUri, not both"}}
	}
	switch {
	case setJWK:
		normalized, err := credential.ValidateClientJWK(jwk)
		if err != nil {
			return []FieldError{{Field: "jwk", Reason: err.Error()}}
		}
		c.PublicJWK, c.JWKSURI = normalized, ""
	case string(jwk) == "null":
		c.PublicJWK = nil
	}
	switch {
	case setURI:
		if err := s.public.ValidateJWKSURI(*jwksURI); err != nil {
			return []FieldError{{Field: "jwksUri", Reason: err.Error()}}
		}
		c.JWKSURI, c.PublicJWK = *jwksURI, nil
	case jwksURI != nil:
		c.JWKSURI = ""
	}
	return nil
}

// notOffered lists the values the issuer does not offer.
func notOffered(values, offered []string) []string {
	var out []string
	for _, v := range values {
		if !slices.Contains(offered, v) {
			out = append(out, v)
		}
	}
	return out
}

// validateClient checks a client's settings against its issuer.
func validateClient(c store.Client, iss store.Issuer) []FieldError {
	var errs []FieldError
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > maxClientNameLength {
		errs = append(errs, FieldError{Field: "name", Reason: fmt.Sprintf("is required and at most %d bytes", maxClientNameLength)})
	}
	errs = append(errs, validateTokens("scopes", c.Scopes, "scope")...)
	errs = append(errs, validateTokens("roles", c.Roles, "role")...)
	if bad := notOffered(c.Scopes, iss.AvailableScopes); len(bad) > 0 {
		errs = append(errs, FieldError{Field: "scopes", Reason: fmt.Sprintf("not in issuer %q's availableScopes: %s", iss.Name, strings.Join(bad, ", "))})
	}
	if bad := notOffered(c.Roles, iss.ClientRoles); len(bad) > 0 {
		errs = append(errs, FieldError{Field: "roles", Reason: fmt.Sprintf("not in issuer %q's clientRoles: %s", iss.Name, strings.Join(bad, ", "))})
	}
	if c.Audience == "" {
		errs = append(errs, FieldError{Field: "audience", Reason: "must not be empty"})
	}
	return errs
}

// CreateClientRequest is the body of POST /issuers/{name}/clients. A client
// id is generated unless given; the audience is the issuer's unless given.
type CreateClientRequest struct {
	ClientID      string          `json:"clientId,omitempty"`
	Name          string          `json:"name"`
	Scopes        []string        `json:"scopes,omitempty"`
	Roles         []string        `json:"roles,omitempty"`
	Audience      string          `json:"audience,omitempty"`
	TokenLifetime *int64          `json:"tokenLifetime,omitempty"`
	Enabled       *bool           `json:"enabled,omitempty"`
	JWK           json.RawMessage `json:"jwk,omitempty"`
	JWKSURI       *string         `json:"jwksUri,omitempty"`
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
		IssuerName: iss.Name,
		ID:         req.ClientID,
		Name:       req.Name,
		Scopes:     nonNil(req.Scopes),
		Roles:      nonNil(req.Roles),
		Audience:   req.Audience,
		Enabled:    req.Enabled == nil || *req.Enabled,
	}
	var errs []FieldError
	if c.ID == "" {
		c.ID = newClientID()
	} else if !clientIDPattern.MatchString(c.ID) {
		errs = append(errs, FieldError{Field: "clientId", Reason: "must be 3 to 128 letters, digits and . _ ~ -, starting with a letter or digit"})
	}
	if c.Audience == "" {
		c.Audience = iss.Audience
	}
	var lifetimeErrs []FieldError
	c.TokenLifetime, lifetimeErrs = validateLifetime(req.TokenLifetime)
	errs = append(append(errs, lifetimeErrs...), validateClient(c, iss)...)
	errs = append(errs, s.applyAssertionKey(&c, req.JWK, req.JWKSURI)...)
	if len(errs) > 0 {
		writeProblem(w, http.StatusUnprocessableEntity, "The client is invalid.", errs...)
		return
	}
	if dryRun(r) {
		_, err := s.store.GetClient(r.Context(), iss.Name, c.ID)
		switch {
		case err == nil:
			writeProblem(w, http.StatusConflict, fmt.Sprintf("Client %q already exists under issuer %q.", c.ID, iss.Name),
				FieldError{Field: "clientId", Reason: "is taken"})
		case errors.Is(err, store.ErrNotFound):
			writeJSON(w, http.StatusOK, DryRunResponse{Result: ResultCreated})
		default:
			s.writeStoreError(w, fmt.Sprintf("Issuer %q", iss.Name), err)
		}
		return
	}
	secret := credential.NewSecret()
	c.Secrets = []store.Secret{storedSecret(secret, time.Time{})}
	stored, err := s.store.CreateClient(r.Context(), c)
	if errors.Is(err, store.ErrConflict) {
		writeProblem(w, http.StatusConflict, fmt.Sprintf("Client %q already exists under issuer %q.", c.ID, iss.Name),
			FieldError{Field: "clientId", Reason: "is taken"})
		return
	}
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", iss.Name), err)
		return
	}
	w.Header().Set("Location", r.URL.Path+"/"+stored.ID)
	writeJSON(w, http.StatusCreated, CreatedClientResponse{ClientResponse: s.clientResponse(stored), ClientSecret: secret.Value})
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	c, err := s.store.GetClient(r.Context(), vars["name"], vars["clientId"])
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Client %q of issuer %q", vars["clientId"], vars["name"]), err)
		return
	}
	writeJSON(w, http.StatusOK, s.clientResponse(c))
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
		items = append(items, s.clientResponse(c))
	}
	writeJSON(w, http.StatusOK, ListResponse[ClientResponse]{Items: items, NextCursor: next})
}

// PatchClientRequest is the body of PATCH /issuers/{name}/clients/{id}: it
// changes only the fields present. tokenLifetime 0 removes the client's own
// lifetime, so the issuer's applies again; a jwk of JSON null or an empty
// jwksUri removes it.
type PatchClientRequest struct {
	Name          *string         `json:"name,omitempty"`
	Scopes        *[]string       `json:"scopes,omitempty"`
	Roles         *[]string       `json:"roles,omitempty"`
	Audience      *string         `json:"audience,omitempty"`
	TokenLifetime *int64          `json:"tokenLifetime,omitempty"`
	Enabled       *bool           `json:"enabled,omitempty"`
	JWK           json.RawMessage `json:"jwk,omitempty"`
	JWKSURI       *string         `json:"jwksUri,omitempty"`
}

// errInvalidPatch carries field errors out of the store's update callback.
type errInvalidPatch []FieldError

func (e errInvalidPatch) Error() string { return "invalid client patch" }

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
	patch := func(c *store.Client) error {
		var errs []FieldError
		if req.Name != nil {
			c.Name = *req.Name
		}
		if req.Scopes != nil {
			c.Scopes = nonNil(*req.Scopes)
		}
		if req.Roles != nil {
			c.Roles = nonNil(*req.Roles)
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
		errs = append(errs, s.applyAssertionKey(c, req.JWK, req.JWKSURI)...)
		if errs = append(errs, validateClient(*c, iss)...); len(errs) > 0 {
			return errInvalidPatch(errs)
		}
		return nil
	}
	var updated store.Client
	var err error
	if dryRun(r) {
		var before store.Client
		if before, err = s.store.GetClient(r.Context(), iss.Name, id); err == nil {
			updated = before
			updated.Scopes, updated.Roles = slices.Clone(before.Scopes), slices.Clone(before.Roles)
			err = patch(&updated)
		}
		if err == nil {
			writeJSON(w, http.StatusOK, dryRunResult(clientFields, before.ChangedSettings(updated)))
			return
		}
	} else {
		updated, err = s.store.UpdateClient(r.Context(), iss.Name, id, patch)
	}
	var invalid errInvalidPatch
	if errors.As(err, &invalid) {
		writeProblem(w, http.StatusUnprocessableEntity, "The change would make the client invalid.", invalid...)
		return
	}
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Client %q of issuer %q", id, iss.Name), err)
		return
	}
	writeJSON(w, http.StatusOK, s.clientResponse(updated))
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
	ClientSecret string `json:"client_secret"`
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
	var retireOthersAt time.Time
	if req.GraceSeconds != nil {
		grace := time.Duration(*req.GraceSeconds) * time.Second
		if grace < 0 || grace > maxSecretGrace {
			writeProblem(w, http.StatusUnprocessableEntity, "The grace period is invalid.",
				FieldError{Field: "graceSeconds", Reason: fmt.Sprintf("must be from 0 to %d seconds", int(maxSecretGrace/time.Second))})
			return
		}
		retireOthersAt = s.now().Add(grace)
	}
	secret := credential.NewSecret()
	c, err := s.store.AddClientSecret(r.Context(), vars["name"], vars["clientId"], storedSecret(secret, time.Time{}), retireOthersAt)
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
	"Enabled": "enabled", "PublicJWK": "jwk", "JWKSURI": "jwksUri",
}
