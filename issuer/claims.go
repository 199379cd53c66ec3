package issuer

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"maps"
	"slices"
	"strings"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// accessClaims is the claim set of one token: RFC 9068's on a native
// issuer, and what Keycloak puts in a service account's token on a
// Keycloak-style one, so that applications reading either see no change.
func accessClaims(iss store.Issuer, issuerURL string, c *store.Client, session *tokenSession, scopes, audience []string) credential.AccessClaims {
	claims := credential.AccessClaims{
		Issuer:          issuerURL,
		Expiry:          session.expiresAt.Unix(),
		IssuedAt:        session.issuedAt.Unix(),
		ID:              newTokenID(c),
		AuthorizedParty: c.ID,
		ClientID:        c.ID,
	}
	realm, resource := roleClaims(c)
	if !iss.Keycloak() {
		// RFC 9068 §2.2: sub and client_id name the client; azp is what
		// the gateway plugin matches against its consumer.
		claims.Subject = c.ID
		claims.NotBefore = claims.IssuedAt
		claims.Scope = strings.Join(scopes, " ")
		claims.Audience = credential.Audience(audience)
		if claims.Audience == nil {
			claims.Audience = credential.Audience{}
		}
		claims.RealmAccess, claims.ResourceAccess = realm, resource
		return claims
	}
	claims.Subject = c.ServiceAccountID
	claims.Type = "Bearer"
	claims.AuthenticationClass = "1"
	claims.ClientHost, claims.ClientAddress = session.clientAddress, session.clientAddress
	if slices.Contains(scopes, emailScope) {
		claims.EmailVerified = new(bool)
	}
	claims.PreferredUsername = credential.ServiceAccountUsername(c.ID)
	claims.Scope = strings.Join(slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == credential.RolesScope }), " ")
	claims.RealmAccess, claims.ResourceAccess, claims.Audience = keycloakEntitlements(c, realm, resource)
	return claims
}

// emailScope is Keycloak's client scope whose mappers put email_verified
// in every token of a service account.
const emailScope = "email"

// keycloakEntitlements are the roles and audiences of a Keycloak-style
// token: the roles in scope, and, as Keycloak's audience resolver does,
// every other client whose roles the token carries. Unlike Keycloak, the
// roles do not wait for its "roles" client scope: the portal registers
// clients with no default scopes and still expects the roles it maps (and
// scope-maps) under resource_access, which is what gateways enforce.
func keycloakEntitlements(c *store.Client, realm *credential.Roles, resource map[string]credential.Roles) (*credential.Roles, map[string]credential.Roles, credential.Audience) {
	var audience credential.Audience
	if c.Audience != "" {
		audience = append(audience, c.Audience)
	}
	for _, client := range slices.Sorted(maps.Keys(resource)) {
		if client != c.ID && !slices.Contains(audience, client) {
			audience = append(audience, client)
		}
	}
	return realm, resource, audience
}

// A token id is 12 random bytes and a 4-byte tag of the client's
// incarnation (its internal id, which a client created again under the
// same id does not share), so that verification can tell a token of a
// deleted client from one of its successor even within one second.
const (
	tokenIDRandom = 12
	tokenIDTag    = 4
)

func newTokenID(c *store.Client) string {
	var id [tokenIDRandom + tokenIDTag]byte
	_, _ = rand.Read(id[:tokenIDRandom])
	tag := incarnationTag(c)
	copy(id[tokenIDRandom:], tag[:])
	return base64.RawURLEncoding.EncodeToString(id[:])
}

func incarnationTag(c *store.Client) [tokenIDTag]byte {
	sum := sha256.Sum256([]byte("authz client incarnation\x00" + c.InternalID))
	return [tokenIDTag]byte(sum[:tokenIDTag])
}

// sameIncarnation reports whether a token id this server made belongs to
// the client as it is now. Ids of another shape (Keycloak's, before a
// migration) are not judged by it.
func sameIncarnation(tokenID string, c *store.Client) bool {
	raw, err := base64.RawURLEncoding.DecodeString(tokenID)
	if err != nil || len(raw) != tokenIDRandom+tokenIDTag {
		return true
	}
	tag := incarnationTag(c)
	return bytes.Equal(raw[tokenIDRandom:], tag[:])
}

// roleClaims gathers the roles a client's tokens carry: the roles mapped
// to its service account (only those in its scope mappings unless full
// scope is allowed), realm roles apart, and the roles of the native model,
// under the client's audience.
func roleClaims(c *store.Client) (*credential.Roles, map[string]credential.Roles) {
	var realm *credential.Roles
	var resource map[string]credential.Roles
	add := func(client, role string) {
		if client == "" {
			if realm == nil {
				realm = &credential.Roles{}
			}
			realm.Roles = append(realm.Roles, role)
			return
		}
		if resource == nil {
			resource = map[string]credential.Roles{}
		}
		r := resource[client]
		if !slices.Contains(r.Roles, role) {
			r.Roles = append(r.Roles, role)
		}
		resource[client] = r
	}
	for _, role := range c.Roles {
		add(c.Audience, role)
	}
	for _, m := range c.RoleMappings {
		if c.FullScopeAllowed || slices.ContainsFunc(c.ScopeMappings, func(s store.RoleRef) bool { return s.ID == m.ID }) {
			add(m.ClientID, m.Name)
		}
	}
	return realm, resource
}
