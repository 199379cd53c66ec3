package credential

import (
	"regexp"
	"strings"
)

// issuerNamePattern is what an issuer may be called: it is a path segment
// of every URL the issuer serves.
var issuerNamePattern = regexp.MustCompile(`^[a-z][a-z0-9-]{2,62}$`)

// ValidIssuerName reports whether name can name an issuer.
func ValidIssuerName(name string) bool { return issuerNamePattern.MatchString(name) }

// maxClientIDLength bounds a client id, which travels in every token and
// keys caches and throttles.
const maxClientIDLength = 255

// ValidClientID reports whether id can name a client: 1 to 255 printable
// ASCII characters other than space, double quote and backslash. Ids
// chosen through the admin API follow a stricter rule; this one also admits
// what Keycloak allows, for clients registered the Keycloak way. A request
// naming any other id names no client, and is refused before anything is
// looked up.
func ValidClientID(id string) bool {
	if len(id) == 0 || len(id) > maxClientIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// ServiceAccountUsername is the user name of a client's service account,
// as Keycloak names it: the preferred_username of its tokens on
// Keycloak-style issuers.
func ServiceAccountUsername(clientID string) string {
	return "service-account-" + strings.ToLower(clientID)
}
