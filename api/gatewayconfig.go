package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/authz-dev/authz/gateway"
)

// gatewayConfig writes the configuration with which a gateway admits only
// the issuer's tokens for its audience (or ?audience=), with one of the
// ?scope= and one of the ?role= (CLIENT:ROLE) given, in front of ?upstream=.
func (s *Server) gatewayConfig(w http.ResponseWriter, r *http.Request) {
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	facts := gateway.Issuer{
		Name:         iss.Name,
		IssuerURL:    s.public.IssuerURL(iss),
		DiscoveryURL: s.public.IssuerURL(iss) + "/.well-known/openid-configuration",
		JWKSURL:      s.public.JWKSURL(iss),
		Algorithm:    iss.SigningAlgorithm,
		Audience:     iss.Audience,
		JWKSMaxAge:   s.keys.ScheduleFor(iss).JWKSMaxAge(),
		Scopes:       iss.AvailableScopes,
	}
	if a := q.Get("audience"); a != "" {
		facts.Audience = a
	}
	req := gateway.Request{Kind: q.Get("gateway"), Upstream: q.Get("upstream"), Scopes: q["scope"]}
	for _, raw := range q["role"] {
		role, err := gateway.ParseRole(raw, facts.Audience)
		if err != nil {
			writeProblem(w, http.StatusBadRequest, upperFirst(err.Error())+".")
			return
		}
		req.Roles = append(req.Roles, role)
	}
	cfg, err := gateway.Render(facts, req)
	if errors.Is(err, gateway.ErrInvalid) {
		writeProblem(w, http.StatusBadRequest, upperFirst(strings.TrimPrefix(err.Error(), gateway.ErrInvalid.Error()+": "))+".")
		return
	}
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("The %s configuration of issuer %q", req.Kind, iss.Name), err)
		return
	}
	w.Header().Set("Content-Type", cfg.MediaType)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(cfg.Body)
}
