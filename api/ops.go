package api

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// The operations on clients and roles that every admin transport shares:
// this API, and the Keycloak-compatible surface, which translates
// Keycloak's shapes into the same records and calls the same operations.
// Each checks the issuer's rules; a refusal of the input is FieldErrors,
// and the store's errors pass through.

// FieldErrors refuses invalid input, naming each field at fault.
type FieldErrors []FieldError

func (e FieldErrors) Error() string {
	parts := make([]string, len(e))
	for i, f := range e {
		parts[i] = f.Field + ": " + f.Reason
	}
	return strings.Join(parts, "; ")
}

// clientIDPattern keeps caller-chosen ids to URL-safe unreserved characters,
// safe in paths, Basic credentials and JWT claims.
var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]{2,127}$`)

// maxClientNameLength keeps display names to what a table can show.
const maxClientNameLength = 200

// Bounds of a secret chosen by the caller (the portal sends its own, a
// UUID; Keycloak makes 32 characters): long enough that a SHA-256 digest is
// no easier to reverse than to guess.
const (
	minChosenSecretLength = 16
	maxChosenSecretLength = 512
)

// newClientID makes an unguessable client id: 80 random bits in lowercase
// base32.
func NewClientID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "c-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// offeredScopes are the scopes an issuer's clients may hold: its own, the
// reserved delegated-admin ones, and on Keycloak-style issuers Keycloak's
// roles scope.
func offeredScopes(iss store.Issuer) []string {
	out := append(slices.Clone(iss.AvailableScopes), credential.ReservedScopes()...)
	if iss.Keycloak() {
		out = append(out, credential.RolesScope)
	}
	return out
}

// checkNewClient applies the issuer's rules to a client about to be
// created: its settings, and the id it chooses.
func checkNewClient(c store.Client, iss store.Issuer) FieldErrors {
	var errs FieldErrors
	if !clientIDPattern.MatchString(c.ID) {
		errs = append(errs, FieldError{Field: "clientId", Reason: "must be 3 to 128 letters, digits and . _ ~ -, starting with a letter or digit"})
	}
	return append(errs, checkClient(c, iss)...)
}

// checkClient applies the issuer's rules to a client's settings. Its id
// is not judged: it cannot change, and a client carried over from
// Keycloak may keep one this server would not let a new client choose.
func checkClient(c store.Client, iss store.Issuer) FieldErrors {
	var errs FieldErrors
	if strings.TrimSpace(c.Name) == "" || len(c.Name) > maxClientNameLength {
		errs = append(errs, FieldError{Field: "name", Reason: fmt.Sprintf("is required and at most %d bytes", maxClientNameLength)})
	}
	if hasControl(c.Name) {
		errs = append(errs, FieldError{Field: "name", Reason: "must not hold control characters (a terminal would act on them)"})
	}
	if c.Audience == RealmManagement {
		errs = append(errs, FieldError{Field: "audience", Reason: fmt.Sprintf("%q is reserved: its roles make admins, and come only from role mappings", RealmManagement)})
	}
	errs = append(errs, validateTokens("scopes", c.Scopes, "scope")...)
	errs = append(errs, validateTokens("optionalScopes", c.OptionalScopes, "scope")...)
	errs = append(errs, validateTokens("roles", c.Roles, "role")...)
	offered := offeredScopes(iss)
	for _, field := range []struct {
		name   string
		values []string
	}{{"scopes", c.Scopes}, {"optionalScopes", c.OptionalScopes}} {
		if bad := notOffered(field.values, offered); len(bad) > 0 {
			errs = append(errs, FieldError{Field: field.name, Reason: fmt.Sprintf("not offered by issuer %q: %s", iss.Name, strings.Join(bad, ", "))})
		}
	}
	if both := slices.DeleteFunc(slices.Clone(c.OptionalScopes), func(sc string) bool { return !slices.Contains(c.Scopes, sc) }); len(both) > 0 {
		errs = append(errs, FieldError{Field: "optionalScopes", Reason: "already default scopes: " + strings.Join(both, ", ")})
	}
	if bad := notOffered(c.Roles, iss.ClientRoles); len(bad) > 0 {
		errs = append(errs, FieldError{Field: "roles", Reason: fmt.Sprintf("not in issuer %q's clientRoles: %s", iss.Name, strings.Join(bad, ", "))})
	}
	// Keycloak clients need no audience: their tokens name the clients
	// whose roles they carry.
	if c.Audience == "" && !iss.Keycloak() {
		errs = append(errs, FieldError{Field: "audience", Reason: "must not be empty"})
	}
	if len(c.PublicJWK) > 0 && c.JWKSURI != "" {
		errs = append(errs, FieldError{Field: "jwk", Reason: "give a jwk or a jwksUri, not both"})
	}
	return errs
}

// hasControl reports whether s holds a control character.
func hasControl(s string) bool { return strings.IndexFunc(s, unicode.IsControl) >= 0 }

// notOffered lists the values the issuer does not offer.
func notOffered(values, offered []string) []string {
	var out []string
	for _, v := range values {
		if !slices.Contains(offered, v) {
			out = append(out, v)
		}
	}
	return out
}

// CheckAssertionKey validates a client's public JWK or JWKS URI and
// returns the JWK normalized; field names the input for errors.
func (s *Server) CheckAssertionKey(jwk json.RawMessage, jwksURI, field string) (json.RawMessage, error) {
	if len(jwk) > 0 {
		normalized, err := credential.ValidateClientJWK(jwk)
		if err != nil {
			return nil, FieldErrors{{Field: field, Reason: err.Error()}}
		}
		return normalized, nil
	}
	if jwksURI != "" {
		if err := s.public.ValidateJWKSURI(jwksURI); err != nil {
			return nil, FieldErrors{{Field: field, Reason: err.Error()}}
		}
	}
	return nil, nil
}

// CreateClient checks c against its issuer's rules and stores it with a
// secret: chosenSecret when given, else a new one. With an initial access
// token's digest, it spends one of that token's uses in the same write. It
// returns the stored client and the secret, to be shown once.
func (s *Server) CreateClient(ctx context.Context, iss store.Issuer, c store.Client, chosenSecret string, initialAccess []byte) (store.Client, string, error) {
	c.IssuerName = iss.Name
	if c.ID == "" {
		c.ID = NewClientID()
	}
	errs := checkNewClient(c, iss)
	secret := credential.NewSecret()
	if chosenSecret != "" {
		if n := len(chosenSecret); n < minChosenSecretLength || n > maxChosenSecretLength {
			errs = append(errs, FieldError{Field: "secret", Reason: fmt.Sprintf("must be %d to %d characters", minChosenSecretLength, maxChosenSecretLength)})
		}
		secret = credential.StoredSecret(chosenSecret)
	}
	if len(errs) > 0 {
		return store.Client{}, "", errs
	}
	c.Secrets = []store.Secret{storedSecret(secret, time.Time{})}
	stored, err := s.store.RegisterClient(ctx, c, initialAccess, s.now())
	if err != nil {
		return store.Client{}, "", err
	}
	return stored, secret.Value, nil
}

// UpdateClient applies change to a client, checks the result against its
// issuer's rules, and stores it, all atomically.
func (s *Server) UpdateClient(ctx context.Context, iss store.Issuer, clientID string, change func(*store.Client) error) (store.Client, error) {
	return s.store.UpdateClient(ctx, iss.Name, clientID, func(c *store.Client) error {
		if err := change(c); err != nil {
			return err
		}
		if errs := checkClient(*c, iss); len(errs) > 0 {
			return errs
		}
		return nil
	})
}

// DryRunUpdateClient says what UpdateClient would change, writing nothing.
func (s *Server) DryRunUpdateClient(ctx context.Context, iss store.Issuer, clientID string, change func(*store.Client) error) ([]string, error) {
	before, err := s.store.GetClient(ctx, iss.Name, clientID)
	if err != nil {
		return nil, err
	}
	after := before
	after.Scopes, after.OptionalScopes, after.Roles = slices.Clone(before.Scopes), slices.Clone(before.OptionalScopes), slices.Clone(before.Roles)
	after.RoleMappings, after.ScopeMappings = slices.Clone(before.RoleMappings), slices.Clone(before.ScopeMappings)
	if err := change(&after); err != nil {
		return nil, err
	}
	if errs := checkClient(after, iss); len(errs) > 0 {
		return nil, errs
	}
	return before.ChangedSettings(after), nil
}

// AddClientSecret gives a client a new secret; grace, when set, bounds how
// long its other secrets stay valid (0 revokes them now).
func (s *Server) AddClientSecret(ctx context.Context, issuerName, clientID string, grace *time.Duration) (credential.Secret, store.Client, error) {
	var retireOthersAt time.Time
	if grace != nil {
		if *grace < 0 || *grace > maxSecretGrace {
			return credential.Secret{}, store.Client{}, FieldErrors{{Field: "graceSeconds",
				Reason: fmt.Sprintf("must be from 0 to %d seconds", int(maxSecretGrace/time.Second))}}
		}
		retireOthersAt = s.now().Add(*grace)
	}
	secret := credential.NewSecret()
	c, err := s.store.AddClientSecret(ctx, issuerName, clientID, storedSecret(secret, time.Time{}), retireOthersAt)
	return secret, c, err
}

// maxSecretGrace bounds how long a rotated-out secret may live on.
const maxSecretGrace = 30 * 24 * time.Hour

// RoleName names a role: of a client, or of the issuer when Client is
// empty.
type RoleName struct {
	Client string `json:"client,omitempty" yaml:"client,omitempty"`
	Role   string `json:"role" yaml:"role"`
}

// ResolveRoles turns role names into references to the issuer's roles;
// field names the input for errors.
func (s *Server) ResolveRoles(ctx context.Context, issuerName string, names []RoleName, field string) ([]store.RoleRef, error) {
	byClient := map[string][]store.Role{}
	var refs []store.RoleRef
	var errs FieldErrors
	for i, n := range names {
		roles, ok := byClient[n.Client]
		if !ok {
			var err error
			roles, err = s.store.ListRoles(ctx, issuerName, n.Client)
			if errors.Is(err, store.ErrNotFound) {
				errs = append(errs, FieldError{Field: fmt.Sprintf("%s[%d].client", field, i), Reason: fmt.Sprintf("no client %q", n.Client)})
				continue
			}
			if err != nil {
				return nil, err
			}
			byClient[n.Client] = roles
		}
		j := slices.IndexFunc(roles, func(r store.Role) bool { return r.Name == n.Role })
		if j < 0 {
			where := "the issuer"
			if n.Client != "" {
				where = "client " + n.Client
			}
			errs = append(errs, FieldError{Field: fmt.Sprintf("%s[%d].role", field, i), Reason: fmt.Sprintf("%s has no role %q", where, n.Role)})
			continue
		}
		refs = append(refs, store.RoleRef{ID: roles[j].ID, ClientID: n.Client, Name: n.Role})
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return refs, nil
}

// CreateRole defines a role on a client, or on the issuer.
func (s *Server) CreateRole(ctx context.Context, r store.Role) (store.Role, error) {
	if errs := validateTokens("name", []string{r.Name}, "role"); len(errs) > 0 {
		return store.Role{}, FieldErrors(errs)
	}
	if len(r.Description) > maxClientNameLength || hasControl(r.Description) {
		return store.Role{}, FieldErrors{{Field: "description", Reason: fmt.Sprintf("is at most %d bytes, without control characters", maxClientNameLength)}}
	}
	return s.store.CreateRole(ctx, r)
}

// Store gives the transports the records the operations keep.
func (s *Server) Store() Store { return s.store }

// Now is the admin side's clock.
func (s *Server) Now() time.Time { return s.now() }
