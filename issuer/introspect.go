package issuer

import (
	"errors"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/authz-dev/authz/credential"
)

// introspection is an RFC 7662 answer about an active token.
type introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Subject   string   `json:"sub,omitempty"`
	Audience  []string `json:"aud,omitempty"`
	Issuer    string   `json:"iss,omitempty"`
	Expiry    int64    `json:"exp,omitempty"`
	IssuedAt  int64    `json:"iat,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
}

// serveIntrospection tells an authenticated client of the issuer whether a
// token is active: signed by a key the issuer still publishes, unexpired,
// from this issuer, for a client that is still enabled.
func (s *Server) serveIntrospection(w http.ResponseWriter, r *http.Request, style string) {
	ctx := r.Context()
	req, ok := s.admit(w, r, "introspection", style)
	if !ok {
		return
	}
	t := req.tenant
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(attribute.String("authz.issuer", t.issuer.Name))
	caller, err := s.authenticate(ctx, req)
	if err != nil {
		s.writeTokenError(w, r, req, nil, err)
		span.SetAttributes(attribute.String("authz.outcome", req.refusal))
		return
	}
	span.SetAttributes(attribute.String("authz.client_id", caller.GetID()))
	// The issuer and its keys are promoted with the token, if it is valid:
	// one request counts as one use.
	s.clients.promote(clientKey{t.issuer.Name, caller.GetID()})
	raw := strings.TrimSpace(r.PostForm.Get("token"))
	if raw == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The token parameter is missing.")
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	claims, err := s.VerifyAccessToken(ctx, t.issuer.Name, raw)
	if errors.Is(err, credential.ErrInvalidToken) {
		s.cfg.Logger.InfoContext(ctx, "introspection: inactive token", "issuer", t.issuer.Name, "caller", caller.GetID(), "reason", err.Error())
		writeJSON(w, introspection{Active: false})
		span.SetAttributes(attribute.Bool("authz.active", false))
		return
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(ctx, "introspection failed", "issuer", t.issuer.Name, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The token could not be checked; retry shortly.")
		return
	}
	span.SetAttributes(attribute.Bool("authz.active", true))
	writeJSON(w, introspection{
		Active: true, Scope: claims.Scope, ClientID: claims.ClientID, Subject: claims.Subject,
		Audience: claims.Audience, Issuer: claims.Issuer, Expiry: claims.Expiry, IssuedAt: claims.IssuedAt,
		TokenType: "Bearer",
	})
}
