package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/credential"
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
	AppendAudit(ctx context.Context, e store.AuditEntry) error
	ListAudit(ctx context.Context, page store.Page) ([]store.AuditEntry, error)
}

// KeyManager moves issuers' signing keys through their lifecycle.
type KeyManager interface {
	Reconcile(ctx context.Context, issuerName string) (bool, error)
	RotateNow(ctx context.Context, issuerName string) error
	Revoke(ctx context.Context, issuerName, kid string) error
}

// Public is what the admin API needs from the public side: issuer URLs and
// verification of the admin's own access tokens.
type Public interface {
	IssuerURL(issuerName string) string
	TokenURL(issuerName string) string
	JWKSURL(issuerName string) string
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

// route is one admin operation. Writes are audited.
type route struct {
	method, path, action string
	handler              http.HandlerFunc
	write                bool
}

func (s *Server) routes() []route {
	return []route{
		{http.MethodGet, "/issuers", "issuer.list", s.listIssuers, false},
		{http.MethodPut, "/issuers/{name}", "issuer.put", s.putIssuer, true},
		{http.MethodGet, "/issuers/{name}", "issuer.get", s.getIssuer, false},
		{http.MethodDelete, "/issuers/{name}", "issuer.delete", s.deleteIssuer, true},
		{http.MethodGet, "/issuers/{name}/keys", "key.list", s.listKeys, false},
		{http.MethodPost, "/issuers/{name}/keys/rotate", "key.rotate", s.rotateKeys, true},
		{http.MethodPost, "/issuers/{name}/keys/{kid}/revoke", "key.revoke", s.revokeKey, true},
		{http.MethodGet, "/issuers/{name}/clients", "client.list", s.listClients, false},
		{http.MethodPost, "/issuers/{name}/clients", "client.create", s.createClient, true},
		{http.MethodGet, "/issuers/{name}/clients/{clientId}", "client.get", s.getClient, false},
		{http.MethodPatch, "/issuers/{name}/clients/{clientId}", "client.update", s.patchClient, true},
		{http.MethodDelete, "/issuers/{name}/clients/{clientId}", "client.delete", s.deleteClient, true},
		{http.MethodPost, "/issuers/{name}/clients/{clientId}/keys", "client.key.generate", s.generateClientKey, true},
		{http.MethodGet, "/issuers/{name}/clients/{clientId}/secrets", "secret.list", s.listSecrets, false},
		{http.MethodPost, "/issuers/{name}/clients/{clientId}/secrets", "secret.create", s.createSecret, true},
		{http.MethodDelete, "/issuers/{name}/clients/{clientId}/secrets/{secretId}", "secret.delete", s.deleteSecret, true},
		{http.MethodGet, "/audit", "audit.list", s.listAudit, false},
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
		if rt.write {
			h = s.audited(rt.action, h)
		}
		r.Handle(Prefix+rt.path, s.authenticated(h)).Methods(rt.method)
	}
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
