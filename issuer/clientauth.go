package issuer

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/ory/fosite"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionSkew forgives clocks that disagree a little about nbf and iat.
// An assertion's exp gets none: it must be ahead of this server's clock.
const assertionSkew = 30 * time.Second

// ValidateJWKSURI checks a client's jwks_uri against the fetch policy.
func (s *Server) ValidateJWKSURI(uri string) error { return s.jwks.validate(uri) }

// clientAuthFailure is an invalid_client with the reason, for the caller's
// error_description and the log. It never holds the assertion or a secret.
func clientAuthFailure(reason string) error {
	return fosite.ErrInvalidClient.WithHint(reason)
}

// errNoRequest would mean fosite authenticated a client outside serveToken.
var errNoRequest = errors.New("client authentication outside a token request")

// fositeAuthentication is the client-authentication strategy the server's
// fosite provider is composed with: it authenticates the request
// serveToken already read, which travels in the context.
func (s *Server) fositeAuthentication(ctx context.Context, _ *http.Request, _ url.Values) (fosite.Client, error) {
	req, ok := requestFrom(ctx)
	if !ok {
		return nil, errNoRequest
	}
	c, err := s.authenticate(ctx, req)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// authenticate is the issuer's client authentication: a signed JWT
// (RFC 7523) or a client secret, each only if the issuer accepts it.
func (s *Server) authenticate(ctx context.Context, req *request) (*fositeClient, error) {
	allowed := req.tenant.issuer.ClientAuthenticators
	switch req.credentials.method {
	case authNone:
		// RFC 6749 §5.2 counts a request without client authentication as
		// invalid_client.
		return nil, clientAuthFailure("Client authentication is required: HTTP Basic, client_secret_post, or a client assertion.")
	case authAssertion:
		return s.authenticateAssertion(ctx, req)
	}
	if !slices.Contains(allowed, credential.ClientSecret) {
		return nil, clientAuthFailure("This issuer accepts only signed-JWT client authentication (private_key_jwt).")
	}
	return s.authenticateSecret(ctx, req)
}

// errSecretRefused is every failed secret check alike: unknown client,
// disabled client, wrong or expired secret. It is made afresh, like every
// fosite error this package returns: fosite writes an error's description
// when it is read, so a shared value would race between requests.
func errSecretRefused() error {
	return clientAuthFailure("Client authentication failed: unknown client, disabled client, or wrong secret.")
}

func (s *Server) authenticateSecret(ctx context.Context, req *request) (*fositeClient, error) {
	iss := req.tenant.issuer
	// An id no client can have is refused before any lookup, so that made-up
	// ids of any length or bytes cost no query and no cache entry.
	if !credential.ValidClientID(req.credentials.clientID) {
		return nil, errSecretRefused()
	}
	c, err := s.client(ctx, iss.Name, req.credentials.clientID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errSecretRefused()
	}
	if err != nil {
		return nil, err
	}
	req.clientKnown = true
	now := s.cfg.Now()
	if !c.Enabled || !secretValid(c, req.credentials.secret, now) {
		return nil, errSecretRefused()
	}
	return newFositeClient(c, iss), nil
}

// secretValid reports whether secret is one of the client's secrets still
// valid at now. Every secret is compared, so the time taken does not tell
// which one matched.
func secretValid(c *store.Client, secret string, now time.Time) bool {
	ok := false
	for _, sec := range c.Secrets {
		if credential.SecretMatches(sec.Digest, secret) && sec.ValidAt(now) {
			ok = true
		}
	}
	return ok
}

// errUnverifiable is the answer to every assertion this server cannot
// verify for the client it names, whatever the reason: unknown client,
// disabled client, no usable registered key, or a signature that does not
// verify. Telling them apart would tell a stranger which client ids
// exist; the reason goes to the log.
func errUnverifiable() error {
	return clientAuthFailure("The client_assertion could not be verified with a key registered for the client it names.")
}

func (s *Server) authenticateAssertion(ctx context.Context, req *request) (*fositeClient, error) {
	form := req.credentials
	t := req.tenant
	if !credential.AcceptsAssertions(t.issuer.ClientAuthenticators) {
		return nil, clientAuthFailure("This issuer does not accept client assertions (private_key_jwt); authenticate with the client secret.")
	}
	if form.assertionType != jwtBearerAssertion {
		return nil, clientAuthFailure("client_assertion_type must be " + jwtBearerAssertion + ".")
	}
	tok, err := jwt.ParseSigned(form.assertion, credential.AssertionAlgorithms)
	if err != nil {
		return nil, clientAuthFailure("The client_assertion is not a JWT signed with an accepted algorithm (" +
			strings.Join(credential.AssertionAlgorithmNames(), ", ") + ").")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, clientAuthFailure("The client_assertion's claims are unreadable.")
	}
	clientID := unverified.Subject
	if form.clientID != "" && form.clientID != clientID {
		return nil, clientAuthFailure("client_id does not match the assertion's sub.")
	}
	if clientID == "" || unverified.Issuer != clientID {
		return nil, clientAuthFailure("The assertion's iss and sub must both be the client_id.")
	}
	req.credentials.clientID = clientID
	// The id was not known at admission: its limit is checked now.
	if wait, blocked := s.clientFailures.blocked(clientFailureKey(req)); blocked {
		return nil, &throttledError{wait: wait}
	}
	header := tok.Headers[0]
	// Every refusal below spends the time of a signature check, so that
	// unknown and known clients cannot be told apart by the clock.
	unverifiable := func(reason string) error {
		_ = tok.Claims(s.decoyKey(header.Algorithm), &jwt.Claims{})
		return req.refuse(errUnverifiable(), reason)
	}
	if !credential.ValidClientID(clientID) {
		return nil, unverifiable("no client can have that id")
	}
	c, err := s.client(ctx, t.issuer.Name, clientID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, unverifiable("unknown client")
	case err != nil:
		return nil, err
	}
	req.clientKnown = true
	if !c.Enabled {
		return nil, unverifiable("client is disabled")
	}
	candidates, reason := s.assertionKeys(ctx, t, c, header.KeyID)
	if reason != "" {
		return nil, unverifiable(reason)
	}
	var claims jwt.Claims
	verified := false
	for _, k := range candidates {
		if k.Algorithm != "" && k.Algorithm != header.Algorithm {
			continue
		}
		if tok.Claims(k.Key, &claims) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, req.refuse(errUnverifiable(), "the signature does not verify with the client's keys")
	}
	if err := s.checkAssertionClaims(t, clientID, claims); err != nil {
		return nil, err
	}
	// The id is kept as long as any node could still take the assertion:
	// until exp, plus the skew a node whose clock lags might allow.
	if err := s.store.RecordAssertion(ctx, t.issuer.Name, clientID, claims.ID, claims.Expiry.Time().Add(assertionSkew)); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, clientAuthFailure("This client_assertion's jti was already used; make a new assertion for every request.")
		}
		return nil, err
	}
	return newFositeClient(c, t.issuer), nil
}

// assertionKeys returns the keys that may have signed a client's
// assertion, honouring which authenticators the issuer accepts, or why
// there are none.
func (s *Server) assertionKeys(ctx context.Context, t *tenant, c *store.Client, kid string) ([]jose.JSONWebKey, string) {
	allowed := t.issuer.ClientAuthenticators
	switch {
	case len(c.PublicJWK) > 0:
		if !slices.Contains(allowed, credential.ClientJWT) {
			return nil, "the issuer does not accept client-jwt authentication"
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(c.PublicJWK); err != nil {
			return nil, "the client's registered JWK is unreadable: " + err.Error()
		}
		if kid != "" && jwk.KeyID != "" && kid != jwk.KeyID {
			return nil, fmt.Sprintf("kid %q is not the client's registered key", kid)
		}
		return []jose.JSONWebKey{jwk}, ""
	case c.JWKSURI != "":
		if !slices.Contains(allowed, credential.ClientJWKSURL) {
			return nil, "the issuer does not accept client-jwt-jwks-url authentication"
		}
		keys, err := s.jwks.keys(ctx, c.JWKSURI, kid)
		if err != nil {
			return nil, err.Error()
		}
		return keys, ""
	default:
		return nil, "the client has no registered key"
	}
}

// checkAssertionClaims applies RFC 7523 §3 with bounded times.
func (s *Server) checkAssertionClaims(t *tenant, clientID string, c jwt.Claims) error {
	now := s.cfg.Now()
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return clientAuthFailure("The assertion's iss and sub must both be the client_id.")
	case !c.Audience.Contains(s.TokenURL(t.issuer)) && !c.Audience.Contains(s.IssuerURL(t.issuer)):
		return clientAuthFailure("The assertion's aud must contain this issuer's token endpoint or issuer URL.")
	case c.Expiry == nil:
		return clientAuthFailure("The assertion has no exp.")
	case !now.Before(c.Expiry.Time()):
		return clientAuthFailure("The assertion has expired.")
	case c.Expiry.Time().After(now.Add(s.cfg.MaxAssertionLifetime + assertionSkew)):
		return clientAuthFailure(fmt.Sprintf("The assertion's exp is more than %s ahead.", s.cfg.MaxAssertionLifetime))
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionSkew)):
		return clientAuthFailure("The assertion is not valid yet (nbf).")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionSkew)):
		return clientAuthFailure("The assertion was issued in the future (iat).")
	case c.ID == "":
		return clientAuthFailure("The assertion has no jti.")
	}
	return nil
}

// decoyKey is a public key of the kind alg verifies with, that verifies
// nothing: refusals of assertions check a signature against it, so that they
// take as long as a real check.
func (s *Server) decoyKey(alg string) any {
	d := s.decoys()
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		return &d.rsa.PublicKey
	case alg == string(jose.ES384):
		return &d.p384.PublicKey
	case strings.HasPrefix(alg, "ES"):
		return &d.p256.PublicKey
	default:
		return d.ed25519.Public()
	}
}

type decoyKeys struct {
	rsa     *rsa.PrivateKey
	p256    *ecdsa.PrivateKey
	p384    *ecdsa.PrivateKey
	ed25519 ed25519.PrivateKey
}

// makeDecoys makes the decoy keys; the server does so once, on the first
// refusal, since an RSA key takes a moment.
func makeDecoys() decoyKeys {
	var d decoyKeys
	d.rsa, _ = rsa.GenerateKey(rand.Reader, 2048)
	d.p256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d.p384, _ = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, d.ed25519, _ = ed25519.GenerateKey(rand.Reader)
	return d
}
