package keycloak

import (
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// Client scopes are, in Keycloak, issuer-level objects with ids; here they
// are the issuer's scope names. Their ids are derived from the issuer and
// the name, so they are stable across nodes and restarts without being
// stored, and one issuer's scope id means nothing to another.

// clientScope is a ClientScopeRepresentation.
type clientScope struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Description string            `json:"description,omitempty"`
	Protocol    string            `json:"protocol"`
	Attributes  map[string]string `json:"attributes"`
}

// clientScopeNames are the scopes an issuer's clients may hold: its own,
// the delegated-admin ones, and Keycloak's roles scope.
func clientScopeNames(iss store.Issuer) []string {
	names := append(slices.Clone(iss.AvailableScopes), credential.ReservedScopes()...)
	if iss.Keycloak() && !slices.Contains(names, credential.RolesScope) {
		names = append(names, credential.RolesScope)
	}
	return names
}

func clientScopeOf(iss store.Issuer, name string) clientScope {
	inToken := "true"
	if name == credential.RolesScope {
		inToken = "false"
	}
	return clientScope{
		ID:       derivedID("client scope", iss.Name, name),
		Name:     name,
		Protocol: protocolOIDC,
		Attributes: map[string]string{
			"include.in.token.scope":    inToken,
			"display.on.consent.screen": "false",
		},
	}
}

// clientScopes lists the issuer's client scopes.
func clientScopes(iss store.Issuer) []clientScope {
	names := clientScopeNames(iss)
	out := make([]clientScope, 0, len(names))
	for _, n := range names {
		out = append(out, clientScopeOf(iss, n))
	}
	return out
}

// scopeByID finds one of the issuer's client scopes by id.
func scopeByID(iss store.Issuer, id string) (clientScope, bool) {
	for _, sc := range clientScopes(iss) {
		if sc.ID == id {
			return sc, true
		}
	}
	return clientScope{}, false
}

// scopeList shows named scopes as the short representations Keycloak
// lists a client's scopes with.
func scopeList(iss store.Issuer, names []string) []map[string]string {
	out := make([]map[string]string, 0, len(names))
	for _, n := range names {
		out = append(out, map[string]string{"id": derivedID("client scope", iss.Name, n), "name": n})
	}
	return out
}

// derivedID is a UUID-shaped id that parts determine.
func derivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	b := h.Sum(nil)[:16]
	b[6] = b[6]&0x0f | 0x80 // version 8: made by the application
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
