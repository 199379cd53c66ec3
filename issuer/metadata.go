package issuer

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/authz-dev/authz/store"
)

// document is a response body rendered once, with its ETag.
type document struct {
	body []byte
	etag string
}

func newDocument(v any) (document, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return document{}, err
	}
	sum := sha256.Sum256(body)
	return document{body: body, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`}, nil
}

// authMethods maps the issuer's client authenticators to RFC 8414 names.
func authMethods(authenticators []string) []string {
	out := []string{}
	if slices.Contains(authenticators, AuthClientSecret) {
		out = append(out, "client_secret_basic", "client_secret_post")
	}
	if slices.Contains(authenticators, AuthClientJWT) || slices.Contains(authenticators, AuthClientJWKS) {
		out = append(out, "private_key_jwt")
	}
	return out
}

func (s *Server) renderMetadata(iss store.Issuer) (document, error) {
	scopes := iss.AvailableScopes
	if scopes == nil {
		scopes = []string{}
	}
	methods := authMethods(iss.ClientAuthenticators)
	meta := map[string]any{
		"issuer":                                s.IssuerURL(iss.Name),
		"token_endpoint":                        s.TokenURL(iss.Name),
		"jwks_uri":                              s.JWKSURL(iss.Name),
		"introspection_endpoint":                s.IssuerURL(iss.Name) + "/introspect",
		"grant_types_supported":                 []string{grantClientCredentials},
		"token_endpoint_auth_methods_supported": methods,
		"introspection_endpoint_auth_methods_supported": methods,
		"scopes_supported": scopes,
		// No authorization endpoint: this server runs no redirect flow.
		"response_types_supported": []string{},
	}
	if slices.Contains(methods, "private_key_jwt") {
		meta["token_endpoint_auth_signing_alg_values_supported"] = assertionAlgorithmNames()
		meta["introspection_endpoint_auth_signing_alg_values_supported"] = assertionAlgorithmNames()
	}
	doc, err := newDocument(meta)
	if err != nil {
		return document{}, fmt.Errorf("render metadata of issuer %q: %w", iss.Name, err)
	}
	return doc, nil
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	t, err := s.tenantFor(r.Context(), r.PathValue("name"))
	if errors.Is(err, store.ErrNotFound) {
		writeJSONError(w, http.StatusNotFound, "not_found", "No such issuer.")
		return
	}
	if err != nil {
		s.cfg.Logger.Error("load issuer", "err", err)
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The issuer could not be loaded; retry shortly.")
		return
	}
	serveDocument(w, r, t.metadata.body, t.metadata.etag, s.cfg.MetadataMaxAge)
}

func (s *Server) serveJWKS(w http.ResponseWriter, r *http.Request) {
	jwks, ok := s.keys.JWKS(r.PathValue("name"))
	if !ok {
		writeJSONError(w, http.StatusNotFound, "not_found", "No such issuer.")
		return
	}
	serveDocument(w, r, jwks.Body, jwks.ETag, jwks.MaxAge)
}

// serveDocument answers GET and HEAD with a precomputed body, honouring
// If-None-Match.
func serveDocument(w http.ResponseWriter, r *http.Request, body []byte, etag string, maxAge time.Duration) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "Use GET.")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", maxAgeHeader(maxAge))
	h.Set("ETag", etag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
