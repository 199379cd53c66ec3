// Package keycloak serves the part of Keycloak's HTTP surface that an API
// services portal uses to manage an identity provider's clients: the
// client registration service (Keycloak's own representation and RFC
// 7591/7592) and a subset of the admin REST API, so that a portal written
// for Keycloak manages authz's issuers unmodified. It translates
// Keycloak's shapes into this server's records and runs the admin API's
// operations on them; it keeps no state of its own.
package keycloak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/route"
	"github.com/authz-dev/authz/store"
)

// Operations is what this surface needs of the admin API: who a token's
// holder is, the checked operations on clients and roles, the audit log,
// and the records.
type Operations interface {
	Authenticate(ctx context.Context, raw string) (api.Actor, error)
	Audited(action string, next http.Handler) http.Handler
	CreateClient(ctx context.Context, iss store.Issuer, c store.Client, chosenSecret string, initialAccess []byte) (store.Client, string, error)
	UpdateClient(ctx context.Context, iss store.Issuer, clientID string, change func(*store.Client) error) (store.Client, error)
	AddClientSecret(ctx context.Context, issuerName, clientID string, grace *time.Duration) (credential.Secret, store.Client, error)
	CreateRole(ctx context.Context, r store.Role) (store.Role, error)
	CheckAssertionKey(jwk json.RawMessage, jwksURI, field string) (json.RawMessage, error)
	Store() api.Store
	Now() time.Time
}

// Public is what this surface needs of the public side: issuer URLs, and
// the token endpoint's throttle of failing callers.
type Public interface {
	IssuerURL(iss store.Issuer) string
	AdmitCaller(w http.ResponseWriter, r *http.Request) (string, bool)
	CallerFailed(source string)
}

// Server serves the Keycloak-compatible surface.
type Server struct {
	ops    Operations
	public Public
	log    *slog.Logger
}

// New returns the surface over the admin API's operations.
func New(ops Operations, public Public, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{ops: ops, public: public, log: log}
}

// Around serves this surface on its paths of the public listener, and
// public (the issuers' endpoints) everywhere else.
func (s *Server) Around(public http.Handler) http.Handler {
	m := http.NewServeMux()
	own := s.Handler()
	for _, path := range []string{
		"/realms/{realm}/clients-registrations/",
		"/issuers/{realm}/clients-registrations/",
		"/admin/realms/",
	} {
		m.Handle(path, own)
	}
	m.Handle("/", public)
	return m
}

// maxBodyBytes bounds a representation: a client with a certificate and a
// few mappers is a few kilobytes.
const maxBodyBytes = 64 << 10

// Handler routes the registration service and the admin subset. Paths
// are matched with or without a trailing slash, since Keycloak's admin
// client sends list calls with one.
func (s *Server) Handler() http.Handler {
	m := http.NewServeMux()
	for _, mt := range s.mounts() {
		pattern := mt.template
		if mt.method != "" {
			pattern = mt.method + " " + mt.template
		}
		m.Handle(pattern, route.Named(mt.template, mt.handler))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
			r.URL.Path = strings.TrimRight(p, "/")
			r.URL.RawPath = ""
		}
		source, ok := s.public.AdmitCaller(w, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		m.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sourceKey{}, source)))
	})
}

type sourceKey struct{}

// failed spends a failure of the request's caller: a refused credential.
func (s *Server) failed(r *http.Request) {
	if source, ok := r.Context().Value(sourceKey{}).(string); ok {
		s.public.CallerFailed(source)
	}
}

// mount is where Handler serves a call of the surface; a mount without a
// method answers every method under its template.
type mount struct {
	method, template string
	handler          http.Handler
}

// mounts are the surface's calls under both URL styles, and the catch-alls
// that answer 501 for the rest of Keycloak's paths.
func (s *Server) mounts() []mount {
	var all []mount
	for _, style := range []struct{ prefix, urlStyle string }{
		{"/realms/{realm}", store.URLStyleKeycloak},
		{"/issuers/{realm}", store.URLStyleNative},
	} {
		for _, rt := range s.registrationRoutes() {
			all = append(all, mount{rt.method, style.prefix + "/clients-registrations" + rt.path, s.registration(style.urlStyle, rt)})
		}
		all = append(all, mount{"", style.prefix + "/clients-registrations/{rest...}", notImplemented("client registration")})
	}
	for _, rt := range s.adminRoutes() {
		all = append(all, mount{rt.method, "/admin/realms/{realm}" + rt.path, s.admin(rt)})
	}
	for _, rest := range []string{"/admin/realms/{realm}/{rest...}", "/admin/realms/{realm}", "/admin/realms/"} {
		all = append(all, mount{"", rest, notImplemented("Keycloak admin")})
	}
	return all
}

// Routes are the surface's calls, for observers that report each from the
// start.
func (s *Server) Routes() []route.Known {
	var known []route.Known
	for _, mt := range s.mounts() {
		if mt.method != "" {
			known = append(known, route.Known{Method: mt.method, Template: mt.template})
		}
	}
	return known
}

// operation is one call of the surface.
type operation struct {
	method, path string
	// action names the call in the audit log; writes are audited.
	action  string
	write   bool
	handler func(w http.ResponseWriter, r *http.Request, call *call)
}

// call is what a handler knows of its request once it is admitted.
type call struct {
	issuer store.Issuer
	actor  api.Actor
	// registration is how a registration call was authorized.
	registration registrationAuth
	// subject is the client a registration access token or an initial
	// access token was checked against, for sameClient.
	subject *store.Client
}

// maxEchoedPath bounds how much of an unknown path an answer repeats.
const maxEchoedPath = 200

// notImplemented answers calls outside the subset with 501 and a problem
// that names the call, so that an operator sees at once what is missing.
func notImplemented(surface string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if len(path) > maxEchoedPath {
			path = path[:maxEchoedPath] + "…"
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotImplemented)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"type":   "about:blank",
			"title":  http.StatusText(http.StatusNotImplemented),
			"status": http.StatusNotImplemented,
			"detail": fmt.Sprintf("%s %s is not among the %s calls this server answers (see the README's Keycloak compatibility section).", r.Method, path, surface),
		})
	})
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readBody reads a request's representation.
func readBody(r *http.Request, v any) error {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return invalidf("the body is larger than %d bytes", maxBodyBytes)
	case err != nil:
		return invalidf("the body could not be read")
	case len(body) == 0:
		return invalidf("a JSON body is required")
	}
	return decodeJSON(body, v)
}

// issuerFor loads the issuer a path names, if it is served in urlStyle.
func (s *Server) issuerFor(ctx context.Context, name, urlStyle string) (store.Issuer, error) {
	if !credential.ValidIssuerName(name) || name == api.SystemIssuer {
		// The system issuer's clients are the server's admins: only an
		// admin registers them, through the admin API.
		return store.Issuer{}, store.ErrNotFound
	}
	iss, err := s.ops.Store().GetIssuer(ctx, name)
	if err != nil {
		return store.Issuer{}, err
	}
	if iss.URLStyle != urlStyle {
		return store.Issuer{}, store.ErrNotFound
	}
	return iss, nil
}

// storeFault answers an error of the store that is not the caller's.
func (s *Server) storeFault(w http.ResponseWriter, r *http.Request, err error, answer func(status int, message string)) {
	if errors.Is(err, store.ErrUnavailable) {
		w.Header().Set("Retry-After", "5")
		answer(http.StatusServiceUnavailable, "The database is unreachable; nothing was changed. Retry shortly.")
		return
	}
	s.log.ErrorContext(r.Context(), "keycloak call failed", "path", r.URL.Path, "err", err)
	answer(http.StatusInternalServerError, "The server could not complete the request; see its log.")
}
