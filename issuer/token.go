package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/route"
	"github.com/authz-dev/authz/store"
)

// grantClientCredentials is the only grant this server runs.
const grantClientCredentials = "client_credentials"

// serveToken runs the client-credentials grant: RFC 6749 §4.4, answered with
// an RFC 9068 JWT access token.
func (s *Server) serveToken(rw http.ResponseWriter, r *http.Request, style string) {
	w := route.NewStatusWriter(rw)
	// Only names of issuers that exist become metric labels: the path is the
	// caller's to choose.
	label := "unknown"
	start := time.Now()
	var req *request
	defer func() {
		s.cfg.Metrics.TokenRequest(label, w.Status, time.Since(start))
		traceToken(r.Context(), label, req, w.Status)
	}()
	var ok bool
	req, ok = s.admit(w, r, "token", style)
	if req != nil {
		label = req.tenant.issuer.Name
	}
	if !ok {
		return
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case grantClientCredentials:
	case "":
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The grant_type parameter is missing.")
		return
	default:
		writeJSONError(w, http.StatusBadRequest, "unsupported_grant_type", "This server supports only grant_type=client_credentials.")
		return
	}

	t := req.tenant
	ctx := withRequest(r.Context(), req)
	// iat, nbf and exp all follow from this one reading of the clock, so
	// they agree to the second and expires_in is the exact lifetime.
	now := s.cfg.Now().UTC().Truncate(time.Second)
	session := &tokenSession{tenant: t, issuedAt: now}
	if t.issuer.Keycloak() {
		// Only an address: a hop that is none names no one.
		if addr, err := netip.ParseAddr(req.address); err == nil {
			session.clientAddress = addr.String()
		}
	}
	ar, err := s.provider.NewAccessRequest(ctx, r, session)
	if err != nil {
		s.writeTokenError(w, r, req, ar, err)
		return
	}
	client := ar.GetClient().(*fositeClient)
	grantRequested(ar, client, t.issuer.Keycloak())
	lifetime := client.lifetime(t.issuer)
	session.subject, session.expiresAt = client.GetID(), now.Add(lifetime)

	resp, err := s.provider.NewAccessResponse(ctx, ar)
	if err != nil {
		s.writeTokenError(w, r, req, ar, err)
		return
	}
	s.promote(t.issuer.Name, client.GetID())
	scope := strings.Join(ar.GetGrantedScopes(), " ")
	// Successes are counted, not logged: a log line per token would cost
	// more than the token. Refusals are logged.
	s.cfg.Logger.DebugContext(ctx, "token issued", "issuer", t.issuer.Name, "client_id", client.GetID(), "scope", scope)
	writeTokenResponse(w, credential.TokenResponse{AccessToken: resp.GetAccessToken(), TokenType: "Bearer",
		ExpiresIn: int64(lifetime / time.Second), Scope: scope})
}

// traceToken tells the request's span, when one records, what became of
// the request: the issuer (a name that exists, or "unknown"), the client
// (by id once known to be one, by a digest before) and the outcome.
func traceToken(ctx context.Context, issuer string, req *request, status int) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	outcome := "issued"
	switch {
	case status == http.StatusOK:
	case req != nil && req.refusal != "":
		outcome = req.refusal
	default:
		outcome = "refused_" + strconv.Itoa(status)
	}
	attrs := []attribute.KeyValue{attribute.String("authz.issuer", issuer), attribute.String("authz.outcome", outcome)}
	if req != nil {
		if client := req.clientAttr(); client.Key != "" {
			attrs = append(attrs, attribute.String("authz."+client.Key, client.Value.String()))
		}
	}
	span.SetAttributes(attrs...)
}

func writeTokenResponse(w http.ResponseWriter, resp credential.TokenResponse) {
	body, err := json.Marshal(resp)
	if err != nil {
		writeJSONError(w, http.StatusInternalServerError, "server_error", "The response could not be encoded.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_, _ = w.Write(body)
}

// grantRequested grants what fosite has already checked against the
// client's allow-lists. A native issuer grants what the request asked for,
// or the client's default scopes when it asked for nothing; a
// Keycloak-style issuer grants the default scopes always and the optional
// ones asked for, as Keycloak does.
func grantRequested(req fosite.AccessRequester, client *fositeClient, keycloak bool) {
	scopes := req.GetRequestedScopes()
	if keycloak {
		scopes = append(slices.Clone(client.defaults), scopes...)
	} else if len(scopes) == 0 {
		scopes = client.defaults
	}
	for _, sc := range scopes {
		if !slices.Contains(req.GetGrantedScopes(), sc) {
			req.GrantScope(sc)
		}
	}
	audience := req.GetRequestedAudience()
	if len(audience) == 0 {
		audience = client.GetAudience()
	}
	for _, a := range audience {
		req.GrantAudience(a)
	}
}

// writeTokenError answers with fosite's RFC 6749 §5.2 error and logs why,
// without any credential.
func (s *Server) writeTokenError(w http.ResponseWriter, r *http.Request, req *request, ar fosite.AccessRequester, err error) {
	t := req.tenant
	var throttled *throttledError
	if errors.As(err, &throttled) {
		req.refusal = "throttled"
		s.refuseThrottled(w, r, throttled.wait, "client", slog.String("issuer", t.issuer.Name), req.clientAttr(), slog.String("source", req.source))
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		// Past the staleness window, or a client never cached: say so
		// rather than blame the client's credentials.
		req.refusal = "temporarily_unavailable"
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelWarn, "token request failed: database unreachable",
			slog.String("issuer", t.issuer.Name), req.clientAttr())
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			"The authorization server cannot reach its database; retry shortly.")
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	req.refusal = rfc.ErrorField
	attrs := []slog.Attr{slog.String("issuer", t.issuer.Name), slog.String("error", rfc.ErrorField),
		slog.String("reason", rfc.GetDescription()), req.clientAttr()}
	if req.detail != "" {
		attrs = append(attrs, slog.String("detail", req.detail))
	}
	// fosite's debug text can quote the request (a malformed credential's
	// escape sequence, say), so only server errors, which never stem from
	// the caller's input alone, carry it into the log.
	if rfc.CodeField >= http.StatusInternalServerError {
		if rfc.DebugField != "" {
			attrs = append(attrs, slog.String("debug", rfc.DebugField))
		}
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelError, "token request failed", append(attrs, slog.Any("err", err))...)
	} else {
		s.cfg.Logger.LogAttrs(r.Context(), slog.LevelInfo, "token request refused", attrs...)
	}
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
		s.recordAuthFailure(req)
		// RFC 6749 §5.2: a 401 names the scheme the client should use.
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.IssuerURL(t.issuer)+`"`)
	}
	s.provider.WriteAccessError(r.Context(), w, ar, err)
}

// writeJSONError writes an RFC 6749 §5.2 error for failures found before
// fosite runs.
func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	writeJSON(w, map[string]string{"error": code, "error_description": description})
}

func writeJSON(w http.ResponseWriter, v any) {
	_ = json.NewEncoder(w).Encode(v)
}
