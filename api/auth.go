package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// The system issuer signs the admin API's own tokens: the portal backend and
// operators are client-credentials clients like any other.
const (
	SystemIssuer   = "system"
	AdminScope     = "authz:admin"
	systemAudience = "authz-admin"
)

type actorKey struct{}

// actor returns the admin client that made the request.
func actor(ctx context.Context) string {
	id, _ := ctx.Value(actorKey{}).(string)
	return id
}

// authenticated admits only bearer tokens of the system issuer that carry
// the admin scope.
func (s *Server) authenticated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="authz-admin"`)
			writeProblem(w, http.StatusUnauthorized, "A bearer token from the system issuer is required.")
			return
		}
		claims, err := s.public.VerifyAccessToken(r.Context(), SystemIssuer, raw)
		if errors.Is(err, credential.ErrInvalidToken) {
			s.log.InfoContext(r.Context(), "admin token refused", "reason", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer realm="authz-admin", error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, "The bearer token is invalid, expired, or its client is disabled.")
			return
		}
		if err != nil {
			s.writeStoreError(w, "The token's client", err)
			return
		}
		if !claims.HasScope(AdminScope) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="authz-admin", error="insufficient_scope", scope=%q`, AdminScope))
			writeProblem(w, http.StatusForbidden, fmt.Sprintf("The token lacks scope %q.", AdminScope))
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, claims.ClientID)))
	})
}

// bearerToken reads an Authorization: Bearer credential. The scheme is
// case-insensitive (RFC 9110 §11.1): the portal sends "bearer".
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	return token, ok && strings.EqualFold(scheme, "Bearer") && token != ""
}

// RequireAdmin guards a handler outside the API, such as the profiler, with
// the same admin authentication.
func (s *Server) RequireAdmin(h http.Handler) http.Handler { return s.authenticated(h) }

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
		ID:         newClientID(),
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
