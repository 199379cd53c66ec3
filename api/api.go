package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/route"
	"github.com/authz-dev/authz/store"
)

// Store is the part of the store the admin API uses.
type Store interface {
	PutIssuer(ctx context.Context, iss store.Issuer, ifRevision int64) (store.Issuer, store.PutResult, error)
	GetIssuer(ctx context.Context, name string) (store.Issuer, error)
	ListIssuers(ctx context.Context, page store.Page) ([]store.Issuer, error)
	DeleteIssuer(ctx context.Context, name string, cascade bool, ifRevision int64) error
	ListSigningKeys(ctx context.Context, issuerName string) ([]store.SigningKey, error)
	CreateClient(ctx context.Context, c store.Client) (store.Client, error)
	GetClient(ctx context.Context, issuerName, clientID string) (store.Client, error)
	ListClients(ctx context.Context, issuerName string, q store.ClientQuery) ([]store.Client, error)
	UpdateClient(ctx context.Context, issuerName, clientID string, update func(*store.Client) error) (store.Client, error)
	DeleteClient(ctx context.Context, issuerName, clientID string) error
	AddClientSecret(ctx context.Context, issuerName, clientID string, s store.Secret, retireOthersAt time.Time) (store.Client, error)
	DeleteClientSecret(ctx context.Context, issuerName, clientID, secretID string) error
	GetClientByInternalID(ctx context.Context, issuerName, internalID string) (store.Client, error)
	GetClientByServiceAccount(ctx context.Context, issuerName, serviceAccountID string) (store.Client, error)
	RegisterClient(ctx context.Context, c store.Client, initialAccessDigest []byte, now time.Time) (store.Client, error)
	CreateRole(ctx context.Context, r store.Role) (store.Role, error)
	ListRoles(ctx context.Context, issuerName, clientID string) ([]store.Role, error)
	DeleteRole(ctx context.Context, issuerName, clientID, name string) error
	CreateInitialAccessToken(ctx context.Context, t store.InitialAccessToken) (store.InitialAccessToken, error)
	ListInitialAccessTokens(ctx context.Context, issuerName string) ([]store.InitialAccessToken, error)
	DeleteInitialAccessToken(ctx context.Context, issuerName, id string) error
	ImportIssuer(ctx context.Context, imp store.IssuerImport, dryRun bool) ([]store.ImportItem, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	ListAudit(ctx context.Context, page store.Page) ([]store.AuditEntry, error)
}

// KeyManager moves issuers' signing keys through their lifecycle.
type KeyManager interface {
	Reconcile(ctx context.Context, issuerName string) (bool, error)
	RotateNow(ctx context.Context, issuerName string) error
	Revoke(ctx context.Context, issuerName, kid string) error
	// ImportKeys is the key step of an import (store.IssuerImport.Keys).
	ImportKeys(iss store.Issuer, imported []keys.ImportedKey) func([]store.SigningKey) ([]store.SigningKey, error)
	// ScheduleFor is an issuer's key schedule, whose JWKS max-age a
	// gateway's cache must not outlast.
	ScheduleFor(iss store.Issuer) keys.Schedule
}

// Public is what the admin API needs from the public side: issuer URLs and
// verification of the admins' own access tokens.
type Public interface {
	IssuerURL(iss store.Issuer) string
	TokenURL(iss store.Issuer) string
	JWKSURL(iss store.Issuer) string
	RegistrationURL(iss store.Issuer) string
	// IssuerOf names the issuer a token claims to come from, unverified.
	IssuerOf(raw string) (string, bool)
	VerifyAccessToken(ctx context.Context, issuerName, raw string) (credential.AccessClaims, error)
	ValidateJWKSURI(uri string) error
}

// Server serves the admin API.
type Server struct {
	store  Store
	keys   KeyManager
	public Public
	log    *slog.Logger
	now    func() time.Time
}

// New returns the admin API over st.
func New(st Store, km KeyManager, public Public, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{store: st, keys: km, public: public, log: log, now: time.Now}
}

// operation is one admin operation: what it needs, and whether it writes (and
// so is audited).
type operation struct {
	method, path, action string
	handler              http.HandlerFunc
	access               access
}

func (rt operation) writes() bool { return rt.method != http.MethodGet }

// Routes are the admin API's operations, for observers that report each
// from the start.
func (s *Server) Routes() []route.Known {
	known := []route.Known{{Method: http.MethodGet, Template: Prefix + "/openapi.yaml"}}
	for _, rt := range s.routes() {
		known = append(known, route.Known{Method: rt.method, Template: Prefix + rt.path})
	}
	return known
}

func (s *Server) routes() []operation {
	return []operation{
		{http.MethodGet, "/issuers", "issuer.list", s.listIssuers, systemOnly},
		{http.MethodPut, "/issuers/{name}", "issuer.put", s.putIssuer, systemOnly},
		{http.MethodGet, "/issuers/{name}", "issuer.get", s.getIssuer, tenantRead},
		{http.MethodDelete, "/issuers/{name}", "issuer.delete", s.deleteIssuer, systemOnly},
		{http.MethodGet, "/issuers/{name}/keys", "key.list", s.listKeys, systemOnly},
		{http.MethodGet, "/issuers/{name}/gateway-config", "gateway-config.get", s.gatewayConfig, tenantRead},
		{http.MethodPost, "/issuers/{name}/keys/rotate", "key.rotate", s.rotateKeys, systemOnly},
		{http.MethodPost, "/issuers/{name}/keys/{kid}/revoke", "key.revoke", s.revokeKey, systemOnly},
		{http.MethodGet, "/issuers/{name}/roles", "role.list", s.listRealmRoles, tenantRead},
		{http.MethodPost, "/issuers/{name}/roles", "role.create", s.createRealmRole, tenantWrite},
		{http.MethodDelete, "/issuers/{name}/roles/{role}", "role.delete", s.deleteRealmRole, tenantWrite},
		{http.MethodGet, "/issuers/{name}/initial-access-tokens", "initial-access-token.list", s.listInitialAccessTokens, tenantRead},
		{http.MethodPost, "/issuers/{name}/initial-access-tokens", "initial-access-token.create", s.createInitialAccessToken, tenantWrite},
		{http.MethodDelete, "/issuers/{name}/initial-access-tokens/{tokenId}", "initial-access-token.delete", s.deleteInitialAccessToken, tenantWrite},
		{http.MethodGet, "/issuers/{name}/clients", "client.list", s.listClients, tenantRead},
		{http.MethodPost, "/issuers/{name}/clients", "client.create", s.createClient, tenantWrite},
		{http.MethodGet, "/issuers/{name}/clients/{clientId}", "client.get", s.getClient, tenantRead},
		{http.MethodPatch, "/issuers/{name}/clients/{clientId}", "client.update", s.patchClient, tenantWrite},
		{http.MethodDelete, "/issuers/{name}/clients/{clientId}", "client.delete", s.deleteClient, tenantWrite},
		{http.MethodGet, "/issuers/{name}/clients/{clientId}/roles", "client.role.list", s.listClientRoles, tenantRead},
		{http.MethodPost, "/issuers/{name}/clients/{clientId}/roles", "client.role.create", s.createClientRole, tenantWrite},
		{http.MethodDelete, "/issuers/{name}/clients/{clientId}/roles/{role}", "client.role.delete", s.deleteClientRole, tenantWrite},
		{http.MethodPost, "/issuers/{name}/clients/{clientId}/keys", "client.key.generate", s.generateClientKey, tenantWrite},
		{http.MethodGet, "/issuers/{name}/clients/{clientId}/secrets", "secret.list", s.listSecrets, tenantRead},
		{http.MethodPost, "/issuers/{name}/clients/{clientId}/secrets", "secret.create", s.createSecret, tenantWrite},
		{http.MethodDelete, "/issuers/{name}/clients/{clientId}/secrets/{secretId}", "secret.delete", s.deleteSecret, tenantWrite},
		{http.MethodGet, "/audit", "audit.list", s.listAudit, systemOnly},
		{http.MethodPost, strings.TrimPrefix(ImportPath, Prefix), "import.keycloak", s.importKeycloak, systemOnly},
	}
}

// Prefix is where the admin API is mounted.
const Prefix = "/admin/v1"

// Handler routes the admin API. Every route but the OpenAPI document
// requires an admin bearer token.
func (s *Server) Handler() http.Handler {
	// Full paths on one router: gorilla/mux subrouters answer a method
	// mismatch with 404 instead of 405.
	r := mux.NewRouter()
	r.HandleFunc(Prefix+"/openapi.yaml", serveOpenAPI).Methods(http.MethodGet)
	for _, rt := range s.routes() {
		var h http.Handler = rt.handler
		if rt.writes() {
			h = s.Audited(rt.action, h)
		}
		r.Handle(Prefix+rt.path, s.authenticated(rt.access, h)).Methods(rt.method)
	}
	// Observers label each request by the template of the route it took.
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if t, err := mux.CurrentRoute(req).GetPathTemplate(); err == nil {
				route.Name(w, t)
			}
			next.ServeHTTP(w, req)
		})
	})
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusNotFound, "No such resource.")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeProblem(w, http.StatusMethodNotAllowed, "This resource does not support that method.")
	})
	return r
}

// writeStoreError answers a store error with the matching problem.
func (s *Server) writeStoreError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, http.StatusNotFound, fmt.Sprintf("%s does not exist.", what))
	case errors.Is(err, store.ErrPrecondition):
		writeProblem(w, http.StatusPreconditionFailed, fmt.Sprintf("%s has changed since you read it (If-Match does not match); read it again.", what))
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, http.StatusConflict, fmt.Sprintf("%s conflicts with existing records.", what))
	case errors.Is(err, store.ErrUnavailable):
		s.log.Warn("admin request failed: database unreachable", "resource", what)
		w.Header().Set("Retry-After", "5")
		writeProblem(w, http.StatusServiceUnavailable, "The database is unreachable; nothing was changed. Retry shortly.")
	default:
		s.log.Error("admin request failed", "resource", what, "err", err)
		writeProblem(w, http.StatusInternalServerError, "The server could not complete the request; see its log.")
	}
}
