package issuer

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ory/fosite"

	"github.com/authz-dev/authz/store"
)

// grantClientCredentials is the only grant this server runs.
const grantClientCredentials = "client_credentials"

// serveToken runs the client-credentials grant: RFC 6749 §4.4, answered with
// an RFC 9068 JWT access token.
func (s *Server) serveToken(rw http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	// Only names of issuers that exist become metric labels: the path is the
	// caller's to choose.
	label := "unknown"
	start := time.Now()
	defer func() { s.cfg.Metrics.TokenRequest(label, w.status, time.Since(start)) }()
	t, ok := s.formRequest(w, r, "token")
	if t != nil {
		label = t.issuer.Name
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

	now := s.cfg.Now().UTC().Truncate(time.Second)
	session := &tokenSession{issuedAt: now}
	req, err := t.provider.NewAccessRequest(ctx, r, session)
	if err != nil {
		s.writeTokenError(w, r, t, req, err)
		return
	}
	client := req.GetClient().(*fositeClient)
	grantRequested(req, client)
	session.subject = client.GetID()

	// exp follows from the same instant as iat and nbf, so the three agree
	// to the second and expires_in is the exact lifetime.
	lifetime := fosite.GetEffectiveLifespan(client, fosite.GrantTypeClientCredentials, fosite.AccessToken, t.issuer.TokenLifetime)
	session.SetExpiresAt(fosite.AccessToken, now.Add(lifetime))

	resp, err := t.provider.NewAccessResponse(ctx, req)
	if err != nil {
		s.writeTokenError(w, r, t, req, err)
		return
	}
	scope := strings.Join(req.GetGrantedScopes(), " ")
	// Successes are counted, not logged: a log line per token would cost
	// more than the token. Refusals are logged.
	s.cfg.Logger.DebugContext(ctx, "token issued", "issuer", t.issuer.Name, "client_id", client.GetID(), "scope", scope)
	writeTokenResponse(w, tokenResponse{AccessToken: resp.GetAccessToken(), TokenType: "Bearer",
		ExpiresIn: int64(lifetime / time.Second), Scope: scope})
}

// statusWriter remembers the status an answer carried.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

// tokenResponse is RFC 6749 §5.1's successful answer.
type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int64  `json:"expires_in"`
	Scope       string `json:"scope,omitempty"`
}

func writeTokenResponse(w http.ResponseWriter, resp tokenResponse) {
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

// formRequest admits a POST of an RFC 6749 form to one of an issuer's
// endpoints and returns the issuer's protocol state, once the issuer is
// known, whether the request is admitted or not. It answers every refusal
// itself, a throttled caller's included.
func (s *Server) formRequest(w http.ResponseWriter, r *http.Request, endpoint string) (*tenant, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "The "+endpoint+" endpoint accepts only POST.")
		return nil, false
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request body must be application/x-www-form-urlencoded.")
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes)
	if err := r.ParseForm(); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "The request body is not a valid form.")
		return nil, false
	}
	name := r.PathValue("name")
	t, err := s.tenantFor(r.Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, "invalid_request", "No such issuer.")
		return nil, false
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "load issuer", "issuer", name, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The issuer could not be loaded; retry shortly.")
		return nil, false
	}
	if s.refuseIfThrottled(w, r, t.issuer.Name) {
		return t, false
	}
	return t, true
}

// grantRequested grants what the request asked for, which fosite has
// already checked against the client's allow-lists, or everything the client
// may have when it asked for nothing.
func grantRequested(req fosite.AccessRequester, client *fositeClient) {
	scopes := req.GetRequestedScopes()
	if len(scopes) == 0 {
		scopes = client.GetScopes()
	}
	for _, sc := range scopes {
		req.GrantScope(sc)
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
func (s *Server) writeTokenError(w http.ResponseWriter, r *http.Request, t *tenant, req fosite.AccessRequester, err error) {
	if errors.Is(err, store.ErrUnavailable) {
		// Past the staleness window, or a client never cached: say so
		// rather than blame the client's credentials.
		s.cfg.Logger.WarnContext(r.Context(), "token request failed: database unreachable", "issuer", t.issuer.Name, "client_id", clientIDOf(r))
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable",
			"The authorization server cannot reach its database; retry shortly.")
		return
	}
	rfc := fosite.ErrorToRFC6749Error(err)
	attrs := []any{"issuer", t.issuer.Name, "error", rfc.ErrorField, "reason", rfc.GetDescription()}
	// fosite's debug text can quote the request (a malformed credential's
	// escape sequence, say), so only server errors, which never stem from
	// the caller's input alone, carry it into the log.
	if rfc.DebugField != "" && rfc.CodeField >= http.StatusInternalServerError {
		attrs = append(attrs, "detail", rfc.DebugField)
	}
	if id := clientIDOf(r); id != "" {
		attrs = append(attrs, "client_id", id)
	}
	if rfc.CodeField >= http.StatusInternalServerError {
		s.cfg.Logger.ErrorContext(r.Context(), "token request failed", append(attrs, "err", err)...)
	} else {
		s.cfg.Logger.InfoContext(r.Context(), "token request refused", attrs...)
	}
	if rfc.ErrorField == fosite.ErrInvalidClient.ErrorField {
		s.recordAuthFailure(r, t.issuer.Name)
		// RFC 6749 §5.2: a 401 names the scheme the client should use.
		w.Header().Set("WWW-Authenticate", `Basic realm="`+s.IssuerURL(t.issuer.Name)+`"`)
	}
	t.provider.WriteAccessError(r.Context(), w, req, err)
}

// clientIDOf names the client a request claims to be, for logs only.
func clientIDOf(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		return id
	}
	return r.PostForm.Get("client_id")
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

// maxAgeHeader renders a Cache-Control value for public documents.
func maxAgeHeader(d time.Duration) string {
	return "public, max-age=" + strconv.Itoa(int(d/time.Second))
}
