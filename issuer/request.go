package issuer

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/ory/fosite"

	"github.com/authz-dev/authz/store"
)

// request is one form POST to an issuer's token or introspection endpoint,
// read once on arrival: the issuer it is for, where it comes from, and the
// client credentials it presents. Everything after admission (throttling,
// client authentication, fosite, error answers and logs) reads it from here
// instead of deriving it again.
type request struct {
	tenant *tenant
	// source is the caller's address, the throttle's key.
	source string
	// credentials are what the caller presented to authenticate.
	credentials credentials
	// clientKnown is set once the claimed client id is found to name a
	// client of the issuer; until then logs carry only a digest of it,
	// which might be a secret typed in the wrong field.
	clientKnown bool
}

// authMethod is how a request authenticates its client.
type authMethod int

const (
	authNone authMethod = iota
	authBasic
	authPost
	authAssertion
)

// credentials are the client authentication a request presents.
type credentials struct {
	method authMethod
	// clientID is the claimed client id, form-decoded for Basic (RFC 6749
	// §2.3.1); for an assertion it is the client_id parameter, if any, until
	// the assertion names its sub.
	clientID  string
	secret    string
	assertion string
	// assertionType is client_assertion_type as sent.
	assertionType string
	// alsoSecret is set when an assertion comes with a secret as well.
	alsoSecret bool
}

type requestKey struct{}

// withRequest carries a request to fosite's client-authentication hook.
func withRequest(ctx context.Context, req *request) context.Context {
	return context.WithValue(ctx, requestKey{}, req)
}

func requestFrom(ctx context.Context) (*request, bool) {
	req, ok := ctx.Value(requestKey{}).(*request)
	return req, ok
}

// clientAttr names the client a request claims to be, for logs: the id once
// it is known to name a client, else a short digest of it.
func (req *request) clientAttr() slog.Attr {
	id := req.credentials.clientID
	switch {
	case id == "":
		return slog.Attr{}
	case req.clientKnown:
		return slog.String("client_id", id)
	default:
		sum := sha256.Sum256([]byte(id))
		return slog.String("client_ref", hex.EncodeToString(sum[:4]))
	}
}

// errBadCredentials is an RFC 6749 invalid_request for credentials that
// cannot be read at all.
var errBadCredentials = fosite.ErrInvalidRequest.WithHint("The client credentials in the Authorization header could not be read.")

// readCredentials reads the client authentication of a parsed form.
func readCredentials(r *http.Request) (credentials, error) {
	form := r.PostForm
	c := credentials{clientID: form.Get("client_id")}
	user, pass, basic := r.BasicAuth()
	if form.Get("client_assertion_type") != "" || form.Get("client_assertion") != "" {
		c.method, c.assertion, c.assertionType = authAssertion, form.Get("client_assertion"), form.Get("client_assertion_type")
		c.alsoSecret = basic || form.Get("client_secret") != ""
		return c, nil
	}
	if basic {
		id, errID := url.QueryUnescape(user)
		secret, errSecret := url.QueryUnescape(pass)
		if errors.Join(errID, errSecret) != nil {
			return c, errBadCredentials
		}
		c.method, c.clientID, c.secret = authBasic, id, secret
		return c, nil
	}
	if c.clientID != "" {
		c.method, c.secret = authPost, form.Get("client_secret")
	}
	return c, nil
}

// admit admits a POST of an RFC 6749 form to one of an issuer's endpoints.
// It answers every refusal itself, a throttled caller's included, and
// returns the request once the issuer is known, admitted or not.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, endpoint string) (*request, bool) {
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
	req := &request{tenant: t, source: sourceAddress(r)}
	if req.credentials, err = readCredentials(r); err != nil {
		s.writeTokenError(w, r, req, nil, err)
		return req, false
	}
	if s.refuseIfThrottled(w, r, req) {
		return req, false
	}
	return req, true
}

// sourceAddress is the caller's IP address. Behind a proxy it is the
// proxy's: X-Forwarded-For is not trusted, because any caller can set it.
func sourceAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return strings.TrimSpace(host)
}
