package issuer

import (
	"fmt"
	"net/http"
	"slices"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/document"
	"github.com/authz-dev/authz/store"
)

// authMethods maps the issuer's client authenticators to RFC 8414 names.
func authMethods(authenticators []string) []string {
	out := []string{}
	if slices.Contains(authenticators, credential.ClientSecret) {
		out = append(out, "client_secret_basic", "client_secret_post")
	}
	if credential.AcceptsAssertions(authenticators) {
		out = append(out, "private_key_jwt")
	}
	return out
}

func (s *Server) renderMetadata(iss store.Issuer) (*document.Document, error) {
	scopes := iss.AvailableScopes
	if scopes == nil {
		scopes = []string{}
	}
	methods := authMethods(iss.ClientAuthenticators)
	meta := map[string]any{
		"issuer":                                s.IssuerURL(iss),
		"token_endpoint":                        s.TokenURL(iss),
		"jwks_uri":                              s.JWKSURL(iss),
		"introspection_endpoint":                s.IntrospectionURL(iss),
		"registration_endpoint":                 s.RegistrationURL(iss),
		"grant_types_supported":                 []string{grantClientCredentials},
		"token_endpoint_auth_methods_supported": methods,
		"introspection_endpoint_auth_methods_supported": methods,
		"scopes_supported": scopes,
		// No authorization endpoint: this server runs no redirect flow.
		"response_types_supported": []string{},
	}
	if slices.Contains(methods, "private_key_jwt") {
		meta["token_endpoint_auth_signing_alg_values_supported"] = credential.AssertionAlgorithmNames()
		meta["introspection_endpoint_auth_signing_alg_values_supported"] = credential.AssertionAlgorithmNames()
	}
	doc, err := document.New(meta, s.cfg.MetadataMaxAge)
	if err != nil {
		return nil, fmt.Errorf("render metadata of issuer %q: %w", iss.Name, err)
	}
	return doc, nil
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request, style string) {
	_, caller := s.cfg.Identify(r)
	t, ok := s.knownTenant(w, r, caller, style, nil)
	if !ok {
		return
	}
	t.metadata.ServeHTTP(w, r)
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request, style string) {
	_, caller := s.cfg.Identify(r)
	t, ok := s.knownTenant(w, r, caller, style, nil)
	if !ok {
		return
	}
	jwks, err := s.keys.JWKS(r.Context(), t.issuer.Name)
	if err != nil {
		s.cfg.Logger.Error("load an issuer's keys", "issuer", t.issuer.Name, "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The issuer's keys cannot be loaded now; retry shortly.")
		return
	}
	jwks.ServeHTTP(w, r)
}
