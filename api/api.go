package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/issuer"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// Store is the part of the store the admin API writes and reads.
type Store interface {
	PutIssuer(ctx context.Context, iss store.Issuer) (store.Issuer, bool, error)
	GetIssuer(ctx context.Context, name string) (store.Issuer, error)
	CreateClient(ctx context.Context, c store.Client) (store.Client, error)
}

// KeyManager gives issuers their signing keys.
type KeyManager interface {
	EnsureActive(ctx context.Context, issuerName, alg string) error
}

// Endpoints tells the public URLs of an issuer.
type Endpoints interface {
	IssuerURL(issuerName string) string
	TokenURL(issuerName string) string
	JWKSURL(issuerName string) string
}

// Server serves the admin API.
type Server struct {
	store     Store
	keys      KeyManager
	endpoints Endpoints
	log       *slog.Logger
}

// New returns the admin API over st.
func New(st Store, km KeyManager, endpoints Endpoints, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{store: st, keys: km, endpoints: endpoints, log: log}
}

// Handler routes the admin API.
func (s *Server) Handler() http.Handler {
	r := mux.NewRouter()
	v1 := r.PathPrefix("/admin/v1").Subrouter()
	v1.HandleFunc("/issuers/{name}", s.putIssuer).Methods(http.MethodPut)
	v1.HandleFunc("/issuers/{name}", s.getIssuer).Methods(http.MethodGet)
	v1.HandleFunc("/issuers/{name}/clients", s.createClient).Methods(http.MethodPost)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusNotFound, "No such resource.")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusMethodNotAllowed, "This resource does not support that method.")
	})
	return r
}

// Limits on an issuer's token lifetime: long enough for a batch job, short
// enough that a leaked token soon dies.
const (
	minTokenLifetime     = time.Minute
	maxTokenLifetime     = 24 * time.Hour
	defaultTokenLifetime = 5 * time.Minute
)

var issuerNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{2,62}$`)

// scopeTokenPattern is RFC 6749 §3.3's scope-token.
var scopeTokenPattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)

// clientAuthenticatorClientSecret is the authenticator this version serves:
// client_secret_basic and client_secret_post.
const clientAuthenticatorClientSecret = "client-secret"

// authenticatorList accepts the portal's single clientAuthenticator string
// as well as a list.
type authenticatorList []string

func (l *authenticatorList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("clientAuthenticator must be a string or a list of strings")
	}
	*l = many
	return nil
}

type issuerRequest struct {
	Description         string            `json:"description"`
	AvailableScopes     []string          `json:"availableScopes"`
	Audience            string            `json:"audience"`
	TokenLifetime       *int64            `json:"tokenLifetime"`
	SigningAlgorithm    string            `json:"signingAlgorithm"`
	ClientAuthenticator authenticatorList `json:"clientAuthenticator"`
}

type issuerResponse struct {
	Name                string   `json:"name"`
	Description         string   `json:"description"`
	Flow                string   `json:"flow"`
	AvailableScopes     []string `json:"availableScopes"`
	Audience            string   `json:"audience"`
	TokenLifetime       int64    `json:"tokenLifetime"`
	SigningAlgorithm    string   `json:"signingAlgorithm"`
	ClientAuthenticator []string `json:"clientAuthenticator"`
	Issuer              string   `json:"issuer"`
	TokenEndpoint       string   `json:"token_endpoint"`
	JWKSURI             string   `json:"jwks_uri"`
	CreatedAt           string   `json:"createdAt"`
	UpdatedAt           string   `json:"updatedAt"`
}

func (s *Server) issuerResponse(iss store.Issuer) issuerResponse {
	return issuerResponse{
		Name:                iss.Name,
		Description:         iss.Description,
		Flow:                "client-credentials",
		AvailableScopes:     iss.AvailableScopes,
		Audience:            iss.Audience,
		TokenLifetime:       int64(iss.TokenLifetime / time.Second),
		SigningAlgorithm:    iss.SigningAlgorithm,
		ClientAuthenticator: iss.ClientAuthenticators,
		Issuer:              s.endpoints.IssuerURL(iss.Name),
		TokenEndpoint:       s.endpoints.TokenURL(iss.Name),
		JWKSURI:             s.endpoints.JWKSURL(iss.Name),
		CreatedAt:           iss.CreatedAt.UTC().Format(time.RFC3339),
		UpdatedAt:           iss.UpdatedAt.UTC().Format(time.RFC3339),
	}
}

func issuerETag(iss store.Issuer) string { return `"` + strconv.FormatInt(iss.Revision, 10) + `"` }

func validateIssuerName(name string) []FieldError {
	if issuerNamePattern.MatchString(name) {
		return nil
	}
	return []FieldError{{Field: "name", Reason: "must be 3 to 63 characters of lowercase letters, digits and '-', starting with a letter"}}
}

func validateScopes(field string, scopes []string) []FieldError {
	var errs []FieldError
	seen := map[string]bool{}
	for i, sc := range scopes {
		switch {
		case !scopeTokenPattern.MatchString(sc):
			errs = append(errs, FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q is not a valid scope token (RFC 6749 §3.3)", sc)})
		case seen[sc]:
			errs = append(errs, FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q is listed twice", sc)})
		}
		seen[sc] = true
	}
	return errs
}

func (r issuerRequest) toIssuer(name string) (store.Issuer, []FieldError) {
	errs := validateIssuerName(name)
	errs = append(errs, validateScopes("availableScopes", r.AvailableScopes)...)
	if r.Audience == "" {
		errs = append(errs, FieldError{Field: "audience", Reason: "is required: RFC 9068 tokens always carry aud"})
	}
	lifetime := defaultTokenLifetime
	if r.TokenLifetime != nil {
		lifetime = time.Duration(*r.TokenLifetime) * time.Second
		if lifetime < minTokenLifetime || lifetime > maxTokenLifetime {
			errs = append(errs, FieldError{Field: "tokenLifetime", Reason: fmt.Sprintf("must be between %d and %d seconds", int(minTokenLifetime/time.Second), int(maxTokenLifetime/time.Second))})
		}
	}
	alg := r.SigningAlgorithm
	if alg == "" {
		alg = keys.RS256
	}
	if alg != keys.RS256 {
		errs = append(errs, FieldError{Field: "signingAlgorithm", Reason: "must be RS256"})
	}
	authenticators := []string(r.ClientAuthenticator)
	if len(authenticators) == 0 {
		authenticators = []string{clientAuthenticatorClientSecret}
	}
	for i, a := range authenticators {
		if a != clientAuthenticatorClientSecret {
			errs = append(errs, FieldError{Field: fmt.Sprintf("clientAuthenticator[%d]", i), Reason: fmt.Sprintf("%q is not supported; use %q", a, clientAuthenticatorClientSecret)})
		}
	}
	return store.Issuer{
		Name:                 name,
		Description:          r.Description,
		AvailableScopes:      r.AvailableScopes,
		Audience:             r.Audience,
		TokenLifetime:        lifetime,
		SigningAlgorithm:     alg,
		ClientAuthenticators: slices.Compact(slices.Sorted(slices.Values(authenticators))),
	}, errs
}

func (s *Server) putIssuer(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	var req issuerRequest
	if !decodeBody(w, r, &req) {
		return
	}
	iss, errs := req.toIssuer(name)
	if len(errs) > 0 {
		writeProblem(w, http.StatusUnprocessableEntity, "The issuer is invalid.", errs...)
		return
	}
	stored, created, err := s.store.PutIssuer(r.Context(), iss)
	if err != nil {
		s.internalError(w, "put issuer", err)
		return
	}
	if err := s.keys.EnsureActive(r.Context(), stored.Name, stored.SigningAlgorithm); err != nil {
		s.internalError(w, "create signing key", err)
		return
	}
	s.log.Info("issuer saved", "issuer", stored.Name, "created", created, "revision", stored.Revision)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", r.URL.Path)
	}
	w.Header().Set("ETag", issuerETag(stored))
	writeJSON(w, status, s.issuerResponse(stored))
}

func (s *Server) getIssuer(w http.ResponseWriter, r *http.Request) {
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	w.Header().Set("ETag", issuerETag(iss))
	writeJSON(w, http.StatusOK, s.issuerResponse(iss))
}

// loadIssuer reads the issuer named in the path, answering 404 itself.
func (s *Server) loadIssuer(w http.ResponseWriter, r *http.Request) (store.Issuer, bool) {
	name := mux.Vars(r)["name"]
	iss, err := s.store.GetIssuer(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("Issuer %q does not exist.", name))
		return store.Issuer{}, false
	}
	if err != nil {
		s.internalError(w, "get issuer", err)
		return store.Issuer{}, false
	}
	return iss, true
}

type clientRequest struct {
	Name          string   `json:"name"`
	Scopes        []string `json:"scopes"`
	Audience      string   `json:"audience"`
	TokenLifetime *int64   `json:"tokenLifetime"`
}

type createdClientResponse struct {
	ClientID      string   `json:"client_id"`
	ClientSecret  string   `json:"client_secret"`
	Name          string   `json:"name"`
	Scopes        []string `json:"scopes"`
	Audience      string   `json:"audience"`
	TokenLifetime int64    `json:"tokenLifetime,omitempty"`
	Enabled       bool     `json:"enabled"`
	Issuer        string   `json:"issuer"`
	TokenEndpoint string   `json:"token_endpoint"`
}

// maxClientNameLength keeps display names to what a table can show.
const maxClientNameLength = 200

func (r clientRequest) toClient(iss store.Issuer) (store.Client, []FieldError) {
	var errs []FieldError
	if r.Name == "" || len(r.Name) > maxClientNameLength {
		errs = append(errs, FieldError{Field: "name", Reason: fmt.Sprintf("is required and at most %d bytes", maxClientNameLength)})
	}
	errs = append(errs, validateScopes("scopes", r.Scopes)...)
	var outside []string
	for _, sc := range r.Scopes {
		if !slices.Contains(iss.AvailableScopes, sc) {
			outside = append(outside, sc)
		}
	}
	if len(outside) > 0 {
		errs = append(errs, FieldError{Field: "scopes", Reason: fmt.Sprintf("not offered by issuer %q: %v", iss.Name, outside)})
	}
	audience := r.Audience
	if audience == "" {
		audience = iss.Audience
	}
	var lifetime time.Duration
	if r.TokenLifetime != nil {
		lifetime = time.Duration(*r.TokenLifetime) * time.Second
		if lifetime < minTokenLifetime || lifetime > maxTokenLifetime {
			errs = append(errs, FieldError{Field: "tokenLifetime", Reason: fmt.Sprintf("must be between %d and %d seconds", int(minTokenLifetime/time.Second), int(maxTokenLifetime/time.Second))})
		}
	}
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return store.Client{
		IssuerName:    iss.Name,
		ID:            newClientID(),
		Name:          r.Name,
		Scopes:        scopes,
		Audience:      audience,
		TokenLifetime: lifetime,
		Enabled:       true,
	}, errs
}

func (s *Server) createClient(w http.ResponseWriter, r *http.Request) {
	var req clientRequest
	if !decodeBody(w, r, &req) {
		return
	}
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	c, errs := req.toClient(iss)
	if len(errs) > 0 {
		writeProblem(w, http.StatusUnprocessableEntity, "The client is invalid.", errs...)
		return
	}
	secret, sec := issuer.NewClientSecret(time.Time{})
	c.Secrets = []store.Secret{sec}
	stored, err := s.store.CreateClient(r.Context(), c)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("Issuer %q does not exist.", iss.Name))
		return
	}
	if err != nil {
		s.internalError(w, "create client", err)
		return
	}
	s.log.Info("client created", "issuer", iss.Name, "client_id", stored.ID)
	w.Header().Set("Location", r.URL.Path+"/"+stored.ID)
	writeJSON(w, http.StatusCreated, createdClientResponse{
		ClientID:      stored.ID,
		ClientSecret:  secret,
		Name:          stored.Name,
		Scopes:        stored.Scopes,
		Audience:      stored.Audience,
		TokenLifetime: int64(stored.TokenLifetime / time.Second),
		Enabled:       stored.Enabled,
		Issuer:        s.endpoints.IssuerURL(iss.Name),
		TokenEndpoint: s.endpoints.TokenURL(iss.Name),
	})
}

func (s *Server) internalError(w http.ResponseWriter, what string, err error) {
	s.log.Error("admin request failed", "op", what, "err", err)
	writeProblem(w, http.StatusInternalServerError, "The server could not complete the request; see its log.")
}
