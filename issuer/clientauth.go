package issuer

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
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

	"github.com/authz-dev/authz/store"
)

// Client authenticators an issuer may accept, in the API Services Portal's
// names.
const (
	AuthClientSecret = "client-secret"
	AuthClientJWT    = "client-jwt"
	AuthClientJWKS   = "client-jwt-jwks-url"
)

// Authenticators lists every client authenticator.
func Authenticators() []string { return []string{AuthClientSecret, AuthClientJWT, AuthClientJWKS} }

const jwtBearerAssertion = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionAlgorithms are the signatures a client assertion may carry:
// asymmetric only, so no "none" and no HMAC keyed with a public key.
var assertionAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512, jose.ES256, jose.ES384, jose.EdDSA,
}

func assertionAlgorithmNames() []string {
	names := make([]string, len(assertionAlgorithms))
	for i, a := range assertionAlgorithms {
		names[i] = string(a)
	}
	return names
}

// Bounds on a client assertion's times.
const (
	// maxAssertionLifetime is how far ahead exp may be: an assertion is
	// made for one request, not to be kept.
	maxAssertionLifetime = 5 * time.Minute
	// assertionSkew forgives clocks that disagree a little.
	assertionSkew = 30 * time.Second
)

// ValidateClientJWK checks a client's public key for private_key_jwt and
// returns it normalized, with a kid (its RFC 7638 thumbprint when it had
// none). It accepts RSA of at least 2048 bits, EC P-256 and P-384, and
// Ed25519.
func ValidateClientJWK(raw []byte) ([]byte, error) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, fmt.Errorf("is not a JSON Web Key: %v", err)
	}
	if !jwk.IsPublic() {
		return nil, errors.New("must be a public key: never send a private key")
	}
	if jwk.Use != "" && jwk.Use != "sig" {
		return nil, errors.New(`use must be "sig"`)
	}
	switch k := jwk.Key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA keys must have at least 2048 bits, not %d", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, errors.New("EC keys must be on P-256 or P-384")
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("key type %T is not accepted; use RSA, EC or Ed25519", jwk.Key)
	}
	if jwk.Algorithm != "" && !slices.Contains(assertionAlgorithmNames(), jwk.Algorithm) {
		return nil, fmt.Errorf("alg %q is not accepted for client assertions", jwk.Algorithm)
	}
	if jwk.KeyID == "" {
		thumb, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, err
		}
		jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	}
	return jwk.MarshalJSON()
}

// ValidateJWKSURI checks a client's jwks_uri against the fetch policy.
func (s *Server) ValidateJWKSURI(uri string) error { return s.jwks.validate(uri) }

// clientAuthFailure is an invalid_client with the reason, for the caller's
// error_description and the log. It never holds the assertion or a secret.
func clientAuthFailure(reason string) error {
	return fosite.ErrInvalidClient.WithHint(reason)
}

// authenticateClient is the issuer's client authentication: a signed JWT
// (RFC 7523) when the request carries one, else a client secret, each only
// if the issuer accepts it.
func (s *Server) authenticateClient(ctx context.Context, t *tenant, secretAuth fosite.ClientAuthenticationStrategy, r *http.Request, form url.Values) (fosite.Client, error) {
	allowed := t.issuer.ClientAuthenticators
	assertionType := form.Get("client_assertion_type")
	_, _, basic := r.BasicAuth()
	if !basic && form.Get("client_id") == "" && assertionType == "" && form.Get("client_assertion") == "" {
		// RFC 6749 §5.2 counts a request without client authentication as
		// invalid_client.
		return nil, clientAuthFailure("Client authentication is required: HTTP Basic, client_secret_post, or a client assertion.")
	}
	if assertionType == "" && form.Get("client_assertion") == "" {
		if !slices.Contains(allowed, AuthClientSecret) {
			return nil, clientAuthFailure("This issuer accepts only signed-JWT client authentication (private_key_jwt).")
		}
		return secretAuth(ctx, r, form)
	}
	if assertionType != jwtBearerAssertion {
		return nil, clientAuthFailure("client_assertion_type must be " + jwtBearerAssertion + ".")
	}
	if basic || form.Get("client_secret") != "" {
		return nil, clientAuthFailure("Use one client authentication method, not a secret and an assertion.")
	}
	return s.authenticateAssertion(ctx, t, form)
}

func (s *Server) authenticateAssertion(ctx context.Context, t *tenant, form url.Values) (fosite.Client, error) {
	raw := form.Get("client_assertion")
	tok, err := jwt.ParseSigned(raw, assertionAlgorithms)
	if err != nil {
		return nil, clientAuthFailure("The client_assertion is not a JWT signed with an accepted algorithm (" +
			strings.Join(assertionAlgorithmNames(), ", ") + ").")
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return nil, clientAuthFailure("The client_assertion's claims are unreadable.")
	}
	clientID := unverified.Subject
	if id := form.Get("client_id"); id != "" && id != clientID {
		return nil, clientAuthFailure("client_id does not match the assertion's sub.")
	}
	if clientID == "" || unverified.Issuer != clientID {
		return nil, clientAuthFailure("The assertion's iss and sub must both be the client_id.")
	}
	c, err := s.client(ctx, t.issuer.Name, clientID)
	if err != nil || !c.Enabled {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, clientAuthFailure("Unknown or disabled client.")
	}
	header := tok.Headers[0]
	candidates, err := s.assertionKeys(ctx, t, c, header.KeyID)
	if err != nil {
		return nil, err
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
		return nil, clientAuthFailure("The client_assertion's signature does not verify with the client's registered key.")
	}
	if err := s.checkAssertionClaims(t, clientID, claims); err != nil {
		return nil, err
	}
	if err := s.store.RecordAssertion(ctx, t.issuer.Name, clientID, claims.ID, claims.Expiry.Time()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, clientAuthFailure("This client_assertion's jti was already used; make a new assertion for every request.")
		}
		return nil, err
	}
	return newFositeClient(c, t.issuer, s.cfg.Now()), nil
}

// assertionKeys returns the keys that may have signed a client's
// assertion, honouring which authenticators the issuer accepts.
func (s *Server) assertionKeys(ctx context.Context, t *tenant, c *store.Client, kid string) ([]jose.JSONWebKey, error) {
	allowed := t.issuer.ClientAuthenticators
	switch {
	case len(c.PublicJWK) > 0:
		if !slices.Contains(allowed, AuthClientJWT) {
			return nil, clientAuthFailure("This issuer does not accept client-jwt authentication.")
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(c.PublicJWK); err != nil {
			return nil, fmt.Errorf("client %q has an unreadable JWK: %w", c.ID, err)
		}
		if kid != "" && jwk.KeyID != "" && kid != jwk.KeyID {
			return nil, clientAuthFailure(fmt.Sprintf("The assertion's kid %q is not the client's registered key.", kid))
		}
		return []jose.JSONWebKey{jwk}, nil
	case c.JWKSURI != "":
		if !slices.Contains(allowed, AuthClientJWKS) {
			return nil, clientAuthFailure("This issuer does not accept client-jwt-jwks-url authentication.")
		}
		keys, err := s.jwks.keys(ctx, c.JWKSURI, kid)
		if err != nil {
			return nil, clientAuthFailure(err.Error() + ".")
		}
		return keys, nil
	default:
		return nil, clientAuthFailure("The client has no registered key for signed-JWT authentication.")
	}
}

// checkAssertionClaims applies RFC 7523 §3 with bounded times.
func (s *Server) checkAssertionClaims(t *tenant, clientID string, c jwt.Claims) error {
	now := s.cfg.Now()
	switch {
	case c.Issuer != clientID || c.Subject != clientID:
		return clientAuthFailure("The assertion's iss and sub must both be the client_id.")
	case !c.Audience.Contains(s.TokenURL(t.issuer.Name)) && !c.Audience.Contains(s.IssuerURL(t.issuer.Name)):
		return clientAuthFailure("The assertion's aud must contain this issuer's token endpoint or issuer URL.")
	case c.Expiry == nil:
		return clientAuthFailure("The assertion has no exp.")
	case !now.Before(c.Expiry.Time().Add(assertionSkew)):
		return clientAuthFailure("The assertion has expired.")
	case c.Expiry.Time().After(now.Add(maxAssertionLifetime + assertionSkew)):
		return clientAuthFailure(fmt.Sprintf("The assertion's exp is more than %s ahead.", maxAssertionLifetime))
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(assertionSkew)):
		return clientAuthFailure("The assertion is not valid yet (nbf).")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(assertionSkew)):
		return clientAuthFailure("The assertion was issued in the future (iat).")
	case c.ID == "":
		return clientAuthFailure("The assertion has no jti.")
	}
	return nil
}
