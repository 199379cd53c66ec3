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

	"github.com/ory/fosite"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// request is one form POST to an issuer's token or introspection endpoint,
// read once on arrival: the issuer it is for, where it comes from, and the
// client credentials it presents. Everything after admission (throttling,
// client authentication, fosite, error answers and logs) reads it from here
// instead of deriving it again.
type request struct {
	tenant *tenant
	// address is where the request came from; source is the caller it
	// counts as, the throttle's key (an IPv6 caller is its /64).
	address, source string
	// credentials are what the caller presented to authenticate.
	credentials credentials
	// clientKnown is set once the claimed client id is found to name a
	// client of the issuer; until then logs carry only a digest of it,
	// which might be a secret typed in the wrong field.
	clientKnown bool
	// refusal is the OAuth error the request was refused with, for its
	// trace.
	refusal string
	// detail is why a refusal was made, for the log only, when the caller
	// is told less.
	detail string
}

// refuse returns err, keeping detail for the log.
func (req *request) refuse(err error, detail string) error {
	req.detail = detail
	return err
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

// Refusals of credentials that cannot be taken at all: RFC 6749
// invalid_request, since no client was (yet) authenticated or refused.
// Each is made afresh: fosite fills in an error's description when it is
// read, so one shared value would be written by concurrent requests.
func errBadCredentials() error {
	return fosite.ErrInvalidRequest.WithHint("The client credentials in the Authorization header could not be read.")
}

func errTwoMethods() error {
	return fosite.ErrInvalidRequest.WithHint("Use one client authentication method (RFC 6749 §2.3): HTTP Basic, client_secret_post or a client assertion, not two.")
}

func errTwoClientIDs() error {
	return fosite.ErrInvalidRequest.WithHint("The client_id parameter names another client than the Authorization header.")
}

// readCredentials reads the client authentication of a parsed form.
func readCredentials(r *http.Request) (credentials, error) {
	form := r.PostForm
	c := credentials{clientID: form.Get("client_id")}
	user, pass, basic := r.BasicAuth()
	assertion := form.Get("client_assertion_type") != "" || form.Get("client_assertion") != ""
	if (basic && (assertion || form.Has("client_secret"))) || (assertion && form.Has("client_secret")) {
		return c, errTwoMethods()
	}
	switch {
	case assertion:
		c.method, c.assertion, c.assertionType = authAssertion, form.Get("client_assertion"), form.Get("client_assertion_type")
	case basic:
		id, errID := url.QueryUnescape(user)
		secret, errSecret := url.QueryUnescape(pass)
		if errors.Join(errID, errSecret) != nil {
			return c, errBadCredentials()
		}
		if c.clientID != "" && c.clientID != id {
			return c, errTwoClientIDs()
		}
		c.method, c.clientID, c.secret = authBasic, id, secret
	case c.clientID != "":
		c.method, c.secret = authPost, form.Get("client_secret")
	}
	return c, nil
}

// admit admits a POST of an RFC 6749 form to one of an issuer's endpoints.
// It answers every refusal itself, a throttled caller's included, and
// returns the request once the issuer is known, admitted or not.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, endpoint, style string) (*request, bool) {
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
	address, source := s.cfg.Identify(r)
	// Parsed before the issuer is known, so that a cold issuer's load can
	// read the client named with it; refused, if malformed, after.
	creds, credsErr := readCredentials(r)
	t, ok := s.knownTenant(w, r, source, style, func() string {
		return s.clientToReadWithIssuer(r, endpoint, source, creds, credsErr)
	})
	if !ok {
		return nil, false
	}
	req := &request{tenant: t, address: address, source: source}
	if name, repeated := repeatedParameter(r.PostForm); repeated {
		s.writeTokenError(w, r, req, nil, fosite.ErrInvalidRequest.WithHintf("The %s parameter is repeated; RFC 6749 §3.2 allows each parameter once.", name))
		return req, false
	}
	if req.credentials = creds; credsErr != nil {
		s.writeTokenError(w, r, req, nil, credsErr)
		return req, false
	}
	if s.refuseIfThrottled(w, r, req) {
		return req, false
	}
	return req, true
}

// clientToReadWithIssuer names the client a cold issuer's load may read in
// the same round trip: that of a request which will look it up next, being
// well formed and from a caller not throttled for it. Any other request
// names none, so that one refused before client authentication reads and
// caches no client, as before. It runs only on a load: a warm issuer's
// token pays none of these checks twice.
func (s *Server) clientToReadWithIssuer(r *http.Request, endpoint, source string, c credentials, err error) string {
	if err != nil || !credential.ValidClientID(c.clientID) {
		return ""
	}
	if _, repeated := repeatedParameter(r.PostForm); repeated {
		return ""
	}
	if endpoint == "token" && r.PostForm.Get("grant_type") != grantClientCredentials {
		return ""
	}
	if _, blocked := s.clientFailures.blocked(clientFailureKeyOf(r.PathValue("name"), c.clientID, source)); blocked {
		return ""
	}
	return c.clientID
}

// knownTenant returns the protocol state of the issuer in the request's
// path, served in the route's URL style, answering every refusal itself.
// Names that name no issuer count as failures of the caller's address, and
// an address past its limit is refused before the name is looked up, so
// made-up names cannot make every request a database query.
func (s *Server) knownTenant(w http.ResponseWriter, r *http.Request, source, style string, clientID func() string) (*tenant, bool) {
	if s.refuseThrottledAddress(w, r, source) {
		return nil, false
	}
	name := r.PathValue("name")
	// A name no issuer can have is not looked up: it would cost a query,
	// and PostgreSQL refuses some bytes outright.
	t, err := (*tenant)(nil), error(store.ErrNotFound)
	if credential.ValidIssuerName(name) {
		t, err = s.tenantFor(r.Context(), name, clientID)
	}
	if err == nil && t.issuer.URLStyle != style {
		err = store.ErrNotFound
	}
	if errors.Is(err, store.ErrNotFound) {
		s.addressFailures.fail(source)
		writeJSONError(w, http.StatusNotFound, "invalid_request", "No such issuer.")
		return nil, false
	}
	if err != nil {
		s.cfg.Logger.ErrorContext(r.Context(), "load issuer", "issuer", name, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The issuer could not be loaded; retry shortly.")
		return nil, false
	}
	return t, true
}

// repeatedParameter names a parameter the form holds more than once.
func repeatedParameter(form url.Values) (string, bool) {
	for name, values := range form {
		if len(values) > 1 {
			return name, true
		}
	}
	return "", false
}

// peerAddress is the caller's IP address as the connection shows it.
func peerAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
