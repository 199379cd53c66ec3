package keycloak

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// The client registration service: Keycloak's "default" provider, which
// takes Keycloak's ClientRepresentation, and its "openid-connect"
// provider, which takes RFC 7591 client metadata and serves RFC 7592's
// client configuration endpoint.

// registrationAuth is what authorized a registration call.
type registrationAuth int

const (
	// byAdmin is a bearer token of the issuer's (or the server's) admin.
	byAdmin registrationAuth = iota + 1
	// byInitialAccess is an initial access token: it registers clients,
	// and manages those it registered.
	byInitialAccess
	// byRegistrationAccess is the client's own registration access token.
	byRegistrationAccess
	// anonymous is no token, on an issuer that allows it.
	anonymous
)

func (s *Server) registrationRoutes() []operation {
	return []operation{
		{http.MethodPost, "/default", "registration.create", true, s.createDefault},
		{http.MethodGet, "/default/{clientId}", "", false, s.readDefault},
		{http.MethodPut, "/default/{clientId}", "registration.update", true, s.updateDefault},
		{http.MethodDelete, "/default/{clientId}", "registration.delete", true, s.deleteRegistration},
		{http.MethodPost, "/openid-connect", "registration.create", true, s.createOIDC},
		{http.MethodGet, "/openid-connect/{clientId}", "", false, s.readOIDC},
		{http.MethodPut, "/openid-connect/{clientId}", "registration.update", true, s.updateOIDC},
		{http.MethodDelete, "/openid-connect/{clientId}", "registration.delete", true, s.deleteRegistration},
	}
}

// registrationError answers in the shape RFC 7591 §3.2.2 gives and
// Keycloak's registration service uses.
func registrationError(w http.ResponseWriter, status int, code, description string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error=%q`, code))
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// registration admits a registration call: it finds the issuer and
// decides whether the request's credential allows the call, then runs it
// (audited, if it writes) with the actor known.
func (s *Server) registration(urlStyle string, rt operation) http.Handler {
	var run http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.handler(w, r, r.Context().Value(callKey{}).(*call))
	})
	if rt.write {
		run = s.ops.Audited(rt.action, run)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iss, err := s.issuerFor(r.Context(), r.PathValue("realm"), urlStyle)
		switch {
		case errors.Is(err, store.ErrNotFound):
			s.failed(r)
			registrationError(w, http.StatusNotFound, "not_found", "No such realm.")
			return
		case err != nil:
			s.storeFault(w, r, err, func(status int, message string) { registrationError(w, status, "server_error", message) })
			return
		}
		c, ok := s.authorizeRegistration(w, r, iss, rt)
		if !ok {
			return
		}
		ctx := api.WithActor(r.Context(), c.actor)
		run.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, c)))
	})
}

type callKey struct{}

// anonymousRegistrationCost is how many of the caller's failures (see
// --auth-failures-per-address) an anonymous registration spends: with the
// default 600 a minute, 60 registrations a minute per address.
const anonymousRegistrationCost = 10

// sameClient re-checks, inside a write, that the client is still the one a
// registration access token or initial access token was checked against:
// not one deleted and made again under its id since, and (for a
// registration access token) not one whose token changed meanwhile.
func (c *call) sameClient(cl *store.Client) error {
	if c.subject == nil {
		return nil
	}
	if cl.InternalID != c.subject.InternalID ||
		(c.registration == byRegistrationAccess && !bytes.Equal(cl.RegistrationTokenDigest, c.subject.RegistrationTokenDigest)) {
		return errCredentialOutdated
	}
	return nil
}

// errCredentialOutdated is a credential checked against a client that
// changed before the write.
var errCredentialOutdated = errors.New("the client changed since the token was checked")

// authorizeRegistration decides who is calling and whether they may. A
// refusal is answered, and costs the caller one of its failures.
func (s *Server) authorizeRegistration(w http.ResponseWriter, r *http.Request, iss store.Issuer, rt operation) (*call, bool) {
	c := &call{issuer: iss}
	creating := rt.method == http.MethodPost
	clientID := r.PathValue("clientId")
	refuse := func(status int, code, description string) (*call, bool) {
		s.failed(r)
		registrationError(w, status, code, description)
		return nil, false
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		if creating && iss.AnonymousRegistration {
			// Registering costs no credential, so it costs the caller part of
			// its failure budget instead: a stranger cannot fill the store.
			for range anonymousRegistrationCost {
				s.failed(r)
			}
			c.registration, c.actor = anonymous, api.Actor{ClientID: "anonymous", Issuer: iss.Name}
			return c, true
		}
		return refuse(http.StatusUnauthorized, "invalid_token", "A bearer token is required: an initial access token, a registration access token, or an admin's access token.")
	}
	token, ok := api.BearerToken(header)
	if !ok {
		return refuse(http.StatusUnauthorized, "invalid_token", "The Authorization header must carry a Bearer token.")
	}
	switch {
	case strings.HasPrefix(token, credential.InitialAccessPrefix):
		t, err := s.initialAccessToken(r.Context(), iss, token)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return refuse(http.StatusUnauthorized, "invalid_token", "The initial access token is not valid for this realm.")
		case errors.Is(err, store.ErrPrecondition):
			return refuse(http.StatusUnauthorized, "invalid_token", "The initial access token has expired.")
		case err != nil:
			s.storeFault(w, r, err, func(status int, message string) { registrationError(w, status, "server_error", message) })
			return nil, false
		}
		if !creating {
			// An initial access token goes on managing the clients it
			// registered (the portal's "iat" mode updates and deletes with
			// it), and nothing else.
			existing, err := s.ops.Store().GetClient(r.Context(), iss.Name, clientID)
			if err != nil || existing.RegisteredWith != t.ID {
				return refuse(http.StatusUnauthorized, "invalid_token", "This initial access token did not register that client.")
			}
			c.subject = &existing
		}
		c.registration = byInitialAccess
		c.actor = api.Actor{ClientID: "initial-access-token:" + t.ID, Issuer: iss.Name}
		return c, true
	case strings.HasPrefix(token, credential.RegistrationAccessPrefix):
		if creating {
			return refuse(http.StatusUnauthorized, "invalid_token", "A registration access token manages its own client; it cannot register another.")
		}
		existing, err := s.ops.Store().GetClient(r.Context(), iss.Name, clientID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			s.storeFault(w, r, err, func(status int, message string) { registrationError(w, status, "server_error", message) })
			return nil, false
		}
		// RFC 7592 §2: an unknown client and a wrong token are the same
		// refusal, so the answer tells nothing about which ids exist.
		if err != nil || len(existing.RegistrationTokenDigest) == 0 ||
			subtle.ConstantTimeCompare(existing.RegistrationTokenDigest, credential.SecretDigest(token)) != 1 {
			return refuse(http.StatusUnauthorized, "invalid_token", "The registration access token is not valid for this client (it changes on every update).")
		}
		c.registration, c.subject = byRegistrationAccess, &existing
		c.actor = api.Actor{ClientID: existing.ID, Issuer: iss.Name}
		return c, true
	default:
		actor, err := s.ops.Authenticate(r.Context(), token)
		switch {
		case errors.Is(err, credential.ErrInvalidToken), errors.Is(err, api.ErrNotAnAdmin):
			s.log.InfoContext(r.Context(), "registration token refused", "issuer", iss.Name, "reason", err.Error())
			return refuse(http.StatusUnauthorized, "invalid_token", "The bearer token is invalid, expired, or grants no right to manage clients.")
		case err != nil:
			s.storeFault(w, r, err, func(status int, message string) { registrationError(w, status, "server_error", message) })
			return nil, false
		case !actor.May(iss.Name, rt.write):
			return refuse(http.StatusForbidden, "insufficient_scope", fmt.Sprintf("Client %q of issuer %q may not manage the clients of realm %q.", actor.ClientID, actor.Issuer, iss.Name))
		}
		c.registration, c.actor = byAdmin, actor
		return c, true
	}
}

// initialAccessToken finds the issuer's unexpired initial access token
// with that value. Its uses are counted when a registration spends it.
func (s *Server) initialAccessToken(ctx context.Context, iss store.Issuer, token string) (store.InitialAccessToken, error) {
	tokens, err := s.ops.Store().ListInitialAccessTokens(ctx, iss.Name)
	if err != nil {
		return store.InitialAccessToken{}, err
	}
	digest := credential.SecretDigest(token)
	for _, t := range tokens {
		if subtle.ConstantTimeCompare(t.Digest, digest) == 1 {
			if !t.ExpiresAt.IsZero() && !s.ops.Now().Before(t.ExpiresAt) {
				return store.InitialAccessToken{}, store.ErrPrecondition
			}
			return t, nil
		}
	}
	return store.InitialAccessToken{}, store.ErrNotFound
}

// rules are what the caller may set through a representation.
func (c *call) rules() representationRules {
	return representationRules{issuer: c.issuer, by: c.registration}
}

// register stores a new client: with a registration access token, and
// spending the initial access token that authorized it, if one did.
func (s *Server) register(w http.ResponseWriter, r *http.Request, c *call, client store.Client, chosenSecret string,
	answer func(stored store.Client, secret, registrationToken string)) {
	rat := credential.NewOpaqueToken(credential.RegistrationAccessPrefix)
	client.RegistrationTokenDigest = credential.SecretDigest(rat)
	var initialAccess []byte
	if c.registration == byInitialAccess {
		token, _ := api.BearerToken(r.Header.Get("Authorization"))
		initialAccess = credential.SecretDigest(token)
	}
	stored, secret, err := s.ops.CreateClient(r.Context(), c.issuer, client, chosenSecret, initialAccess)
	var invalid api.FieldErrors
	switch {
	case errors.As(err, &invalid):
		registrationError(w, http.StatusBadRequest, "invalid_client_metadata", invalid.Error())
	case errors.Is(err, store.ErrConflict):
		registrationError(w, http.StatusConflict, "invalid_client_metadata", fmt.Sprintf("Client Identifier %q is in use.", client.ID))
	case errors.Is(err, store.ErrPrecondition), errors.Is(err, store.ErrNotFound) && initialAccess != nil:
		// Spent or expired between authorization and the write.
		s.failed(r)
		registrationError(w, http.StatusUnauthorized, "invalid_token", "The initial access token is expired or used up.")
	case err != nil:
		s.storeFault(w, r, err, func(status int, message string) { registrationError(w, status, "server_error", message) })
	default:
		answer(stored, secret, rat)
	}
}

// updateRegistration applies change to the client the path names, and,
// when the client's own registration access token authorized it, replaces
// that token, as Keycloak does; the new one is returned.
func (s *Server) updateRegistration(w http.ResponseWriter, r *http.Request, c *call, change func(*store.Client) error,
	answer func(stored store.Client, registrationToken string)) {
	var rat string
	if c.registration == byRegistrationAccess {
		rat = credential.NewOpaqueToken(credential.RegistrationAccessPrefix)
	}
	clientID := r.PathValue("clientId")
	stored, err := s.ops.UpdateClient(r.Context(), c.issuer, clientID, func(cl *store.Client) error {
		if err := c.sameClient(cl); err != nil {
			return err
		}
		if err := change(cl); err != nil {
			return err
		}
		if rat != "" {
			cl.RegistrationTokenDigest = credential.SecretDigest(rat)
		}
		return nil
	})
	if s.refusedRegistrationWrite(w, r, clientID, err) {
		return
	}
	answer(stored, rat)
}

// refusedRegistrationWrite answers a failed write of a registration, and
// reports whether there was one.
func (s *Server) refusedRegistrationWrite(w http.ResponseWriter, r *http.Request, clientID string, err error) bool {
	var invalid api.FieldErrors
	var bad *invalidInput
	switch {
	case err == nil:
		return false
	case errors.As(err, &bad):
		registrationError(w, http.StatusBadRequest, "invalid_client_metadata", bad.reason)
	case errors.As(err, &invalid):
		registrationError(w, http.StatusBadRequest, "invalid_client_metadata", invalid.Error())
	case errors.Is(err, errCredentialOutdated):
		s.failed(r)
		registrationError(w, http.StatusUnauthorized, "invalid_token", "The token is no longer valid for this client.")
	case errors.Is(err, store.ErrNotFound):
		registrationError(w, http.StatusNotFound, "invalid_client", fmt.Sprintf("No client %q in this realm.", clientID))
	default:
		s.storeFault(w, r, err, func(status int, message string) { registrationError(w, status, "server_error", message) })
	}
	return true
}

// loadClient reads the client a registration path names.
func (s *Server) loadClient(w http.ResponseWriter, r *http.Request, c *call) (store.Client, bool) {
	clientID := r.PathValue("clientId")
	client, err := s.ops.Store().GetClient(r.Context(), c.issuer.Name, clientID)
	return client, !s.refusedRegistrationWrite(w, r, clientID, err)
}

func (s *Server) deleteRegistration(w http.ResponseWriter, r *http.Request, c *call) {
	clientID := r.PathValue("clientId")
	// A last check, as close to the delete as the store allows without a
	// conditional delete: the client is still the one the token names.
	err := c.recheck(r.Context(), s.ops.Store(), clientID)
	if err == nil {
		err = s.ops.Store().DeleteClient(r.Context(), c.issuer.Name, clientID)
	}
	if s.refusedRegistrationWrite(w, r, clientID, err) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// recheck reads the client again and applies sameClient.
func (c *call) recheck(ctx context.Context, st api.Store, clientID string) error {
	if c.subject == nil {
		return nil
	}
	current, err := st.GetClient(ctx, c.issuer.Name, clientID)
	if err != nil {
		return err
	}
	return c.sameClient(&current)
}

// The default provider: Keycloak's ClientRepresentation.

// newRegisteredClient is a client before a representation is applied:
// enabled, with full scope, and the issuer's audience, as Keycloak's
// defaults would have it, and an id of its own unless the representation
// names one.
func newRegisteredClient(iss store.Issuer) store.Client {
	return store.Client{IssuerName: iss.Name, ID: api.NewClientID(), Enabled: true, FullScopeAllowed: true, Audience: iss.Audience}
}

func (s *Server) createDefault(w http.ResponseWriter, r *http.Request, c *call) {
	var in clientInput
	if err := readBody(r, &in); err != nil {
		s.refusedRegistrationWrite(w, r, "", err)
		return
	}
	client := newRegisteredClient(c.issuer)
	chosen, err := in.applyTo(&client, c.rules(), true)
	if err == nil {
		err = s.checkAuthentication(c.issuer, &client)
	}
	if s.refusedRegistrationWrite(w, r, "", err) {
		return
	}
	s.register(w, r, c, client, chosen, func(stored store.Client, secret, rat string) {
		out := representation(stored, nil)
		if out.ClientAuthenticatorType == authenticatorSecret {
			out.Secret = secret
		}
		out.RegistrationAccessToken = rat
		writeJSON(w, http.StatusCreated, out)
	})
}

func (s *Server) readDefault(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.loadClient(w, r, c)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, representation(client, nil))
}

func (s *Server) updateDefault(w http.ResponseWriter, r *http.Request, c *call) {
	var in clientInput
	if err := readBody(r, &in); err != nil {
		s.refusedRegistrationWrite(w, r, "", err)
		return
	}
	s.updateRegistration(w, r, c, func(cl *store.Client) error {
		if _, err := in.applyTo(cl, c.rules(), false); err != nil {
			return err
		}
		return s.checkAuthentication(c.issuer, cl)
	}, func(stored store.Client, rat string) {
		out := representation(stored, nil)
		out.RegistrationAccessToken = rat
		writeJSON(w, http.StatusOK, out)
	})
}

// checkAuthentication refuses a client that would authenticate in a way
// its issuer does not accept, and applies the admin API's rules to its
// assertion key.
func (s *Server) checkAuthentication(iss store.Issuer, c *store.Client) error {
	method := credential.ClientSecret
	switch {
	case c.JWKSURI != "":
		method = credential.ClientJWKSURL
	case len(c.PublicJWK) > 0:
		method = credential.ClientJWT
	}
	if !slices.Contains(iss.ClientAuthenticators, method) {
		return invalidf("realm %q does not accept %s client authentication (it accepts %s)", iss.Name, method, strings.Join(iss.ClientAuthenticators, ", "))
	}
	if method == credential.ClientSecret {
		return nil
	}
	normalized, err := s.ops.CheckAssertionKey(c.PublicJWK, c.JWKSURI, attrJWKSURL)
	if err == nil && len(c.PublicJWK) > 0 {
		c.PublicJWK = normalized
	}
	return err
}

// registrationClientURI is where RFC 7592 manages a client.
func (s *Server) registrationClientURI(iss store.Issuer, clientID string) string {
	return s.public.IssuerURL(iss) + "/clients-registrations/openid-connect/" + url.PathEscape(clientID)
}
