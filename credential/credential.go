// Package credential holds what makes a credential valid, in one place for
// every side that issues, stores or checks one: client secrets, the public
// keys clients sign assertions with and their thumbprint kids, the names of
// the client authenticators, and the claims of an access token. It imports
// nothing else from this module.
package credential

import "slices"

// Client authenticators an issuer may accept, in the API Services Portal's
// names.
const (
	// ClientSecret is client_secret_basic and client_secret_post.
	ClientSecret = "client-secret"
	// ClientJWT is RFC 7523 private_key_jwt with a registered public key.
	ClientJWT = "client-jwt"
	// ClientJWKSURL is private_key_jwt with keys fetched from the client's
	// jwks_uri.
	ClientJWKSURL = "client-jwt-jwks-url"
)

// Authenticators lists every client authenticator.
func Authenticators() []string { return []string{ClientSecret, ClientJWT, ClientJWKSURL} }

// Scopes with a meaning of their own on every issuer.
const (
	// ManageClientsScope makes a client of an issuer that issuer's
	// delegated admin: it may register and manage the issuer's clients,
	// and nothing of any other issuer. ViewClientsScope may only read them.
	ManageClientsScope = "authz:manage-clients"
	// SystemAdminScope makes a client of the system issuer the server's
	// admin.
	SystemAdminScope = "authz:admin"
	ViewClientsScope = "authz:view-clients"
	// RolesScope is Keycloak's built-in client scope for roles. Keycloak-
	// style issuers offer it so that representations naming it are
	// accepted, but tokens carry their roles with or without it, and it
	// never appears in the scope claim.
	RolesScope = "roles"
)

// ReservedScopes are the scopes every issuer offers besides its own.
func ReservedScopes() []string { return []string{ManageClientsScope, ViewClientsScope} }

// AcceptsAssertions reports whether a list of authenticators admits a signed
// client assertion of any kind.
func AcceptsAssertions(authenticators []string) bool {
	return slices.Contains(authenticators, ClientJWT) || slices.Contains(authenticators, ClientJWKSURL)
}
