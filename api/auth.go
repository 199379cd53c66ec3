package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
	"github.com/gorilla/mux"
)

// The system issuer signs the admin API's own tokens: the portal backend and
// operators are client-credentials clients like any other.
const (
	SystemIssuer   = "system"
	AdminScope     = credential.SystemAdminScope
	systemAudience = "authz-admin"
)

// Actor is who makes an admin request: a client of the system issuer with
// authz:admin, which may do anything, or a client of an issuer holding
// that issuer's delegated-admin scopes, which may manage (or only view)
// that issuer's clients and nothing else.
type Actor struct {
	ClientID string
	Issuer   string
	// System is the server's own admin.
	System bool
	// Manage and View are a tenant admin's rights over its issuer's clients.
	Manage, View bool
}

// May reports whether the actor may act on issuer's clients: reading when
// write is false, changing when it is true.
func (a Actor) May(issuerName string, write bool) bool {
	if a.System {
		return true
	}
	return a.Issuer == issuerName && (a.Manage || (!write && a.View))
}

type actorKey struct{}

// WithActor records who makes a request, for authorization and the audit
// log.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns who made a request.
func ActorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// RealmManagement is the client whose roles make a Keycloak service
// account its realm's client admin: a realm moved from Keycloak keeps its
// portal's service account working without a new credential. No client
// may take it as its audience, which would file its own roles under it.
const RealmManagement = "realm-management"

// ErrNotAnAdmin is a valid token that grants no admin rights.
var ErrNotAnAdmin = errors.New("the token grants no admin rights")

// Authenticate finds the actor behind a bearer token: the system issuer's
// client with authz:admin, or a client of the token's issuer holding
// authz:manage-clients or authz:view-clients (or Keycloak's
// realm-management roles manage-clients, realm-admin or view-clients). An invalid token wraps
// credential.ErrInvalidToken; a valid one with no admin rights is
// ErrNotAnAdmin.
func (s *Server) Authenticate(ctx context.Context, raw string) (Actor, error) {
	name, ok := s.public.IssuerOf(raw)
	if !ok {
		return Actor{}, fmt.Errorf("%w: issued by no issuer of this server", credential.ErrInvalidToken)
	}
	claims, err := s.public.VerifyAccessToken(ctx, name, raw)
	if err != nil {
		return Actor{}, err
	}
	a := Actor{ClientID: claims.ClientID, Issuer: name}
	if name == SystemIssuer {
		if !claims.HasScope(AdminScope) {
			return a, ErrNotAnAdmin
		}
		a.System = true
		return a, nil
	}
	management := claims.ResourceAccess[RealmManagement].Roles
	a.Manage = claims.HasScope(credential.ManageClientsScope) || slices.Contains(management, "manage-clients") || slices.Contains(management, "realm-admin")
	a.View = claims.HasScope(credential.ViewClientsScope) || slices.Contains(management, "view-clients")
	if !a.Manage && !a.View {
		return a, ErrNotAnAdmin
	}
	return a, nil
}

// access is what a route needs: the system admin, or rights over the
// issuer in its path.
type access int

const (
	systemOnly access = iota
	tenantRead
	tenantWrite
)

// authenticated admits bearer tokens of admins with the access a route
// needs: the system issuer's with authz:admin anywhere, a tenant admin's on
// its own issuer's client routes.
func (s *Server) authenticated(need access, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="authz-admin"`)
			writeProblem(w, http.StatusUnauthorized, "A bearer token is required: the system issuer's, or a delegated admin's of the issuer.")
			return
		}
		a, err := s.Authenticate(r.Context(), raw)
		switch {
		case errors.Is(err, credential.ErrInvalidToken):
			s.log.InfoContext(r.Context(), "admin token refused", "reason", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="authz-admin", error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, "The bearer token is invalid, expired, or its client is disabled.")
			return
		case errors.Is(err, ErrNotAnAdmin) && a.Issuer == SystemIssuer:
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="authz-admin", error="insufficient_scope", scope=%q`, AdminScope))
			writeProblem(w, http.StatusForbidden, fmt.Sprintf("The token lacks scope %q.", AdminScope))
			return
		case errors.Is(err, ErrNotAnAdmin):
			// Another issuer's token without delegated rights is no admin
			// credential at all.
			w.Header().Set("WWW-Authenticate", `Bearer realm="authz-admin", error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, "The bearer token grants no admin rights.")
			return
		case err != nil:
			s.writeStoreError(w, "The token's client", err)
			return
		}
		if !allowed(a, need, mux.Vars(r)["name"]) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="authz-admin", error="insufficient_scope"`)
			writeProblem(w, http.StatusForbidden, fmt.Sprintf("Client %q of issuer %q may not make this call.", a.ClientID, a.Issuer))
			return
		}
		next.ServeHTTP(w, r.WithContext(WithActor(r.Context(), a)))
	})
}

// allowed reports whether a may make a call that needs need on issuerName.
func allowed(a Actor, need access, issuerName string) bool {
	switch {
	case a.System:
		return true
	case need == systemOnly || issuerName == "":
		return false
	default:
		return a.May(issuerName, need == tenantWrite)
	}
}

// bearerToken reads an Authorization: Bearer credential. The scheme is
// case-insensitive (RFC 9110 §11.1): the portal sends "bearer".
func bearerToken(r *http.Request) (string, bool) {
	return BearerToken(r.Header.Get("Authorization"))
}

// BearerToken reads the token of an Authorization header value with the
// Bearer scheme, in any case.
func BearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// RequireAdmin guards a handler outside the API, such as the profiler, with
// the system admin's authentication.
func (s *Server) RequireAdmin(h http.Handler) http.Handler { return s.authenticated(systemOnly, h) }

// BootstrapResult is the first admin client's credentials, shown once.
type BootstrapResult struct {
	ClientID     string
	ClientSecret string
}

// ErrAlreadyBootstrapped is returned by Bootstrap when the system issuer
// already has clients.
var ErrAlreadyBootstrapped = errors.New("the system issuer already has clients; create further admin clients through the admin API")

// Bootstrap creates the system issuer, if missing, and a first admin client.
func Bootstrap(ctx context.Context, st Store, km KeyManager) (BootstrapResult, error) {
	iss, err := st.GetIssuer(ctx, SystemIssuer)
	if errors.Is(err, store.ErrNotFound) {
		iss, _, err = st.PutIssuer(ctx, store.Issuer{
			Name:                 SystemIssuer,
			Description:          "authz administration",
			AvailableScopes:      []string{AdminScope},
			Audience:             systemAudience,
			TokenLifetime:        time.Hour,
			SigningAlgorithm:     "RS256",
			ClientAuthenticators: []string{credential.ClientSecret},
		}, 0)
	}
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("create the system issuer: %w", err)
	}
	if _, err := km.Reconcile(ctx, iss.Name); err != nil {
		return BootstrapResult{}, fmt.Errorf("create the system issuer's key: %w", err)
	}
	existing, err := st.ListClients(ctx, SystemIssuer, store.ClientQuery{Page: store.Page{Limit: 1}})
	if err != nil {
		return BootstrapResult{}, err
	}
	if len(existing) > 0 {
		return BootstrapResult{}, ErrAlreadyBootstrapped
	}
	secret := credential.NewSecret()
	c, err := st.CreateClient(ctx, store.Client{
		IssuerName: SystemIssuer,
		ID:         NewClientID(),
		Name:       "bootstrap admin",
		Scopes:     []string{AdminScope},
		Audience:   systemAudience,
		Enabled:    true,
		Secrets:    []store.Secret{storedSecret(secret, time.Time{})},
	})
	if err != nil {
		return BootstrapResult{}, fmt.Errorf("create the first admin client: %w", err)
	}
	return BootstrapResult{ClientID: c.ID, ClientSecret: secret.Value}, nil
}
