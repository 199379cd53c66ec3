package keycloak

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// Keycloak's names for the attributes and mappers this surface reads.
const (
	attrPublicKey     = "jwt.credential.public.key"
	attrCertificate   = "jwt.credential.certificate"
	attrKeyID         = "jwt.credential.kid"
	attrJWKSURL       = "jwks.url"
	attrUseJWKSURL    = "use.jwks.url"
	attrTokenLifespan = "access.token.lifespan"

	audienceMapper         = "oidc-audience-mapper"
	mapperCustomAudience   = "included.custom.audience"
	mapperClientAudience   = "included.client.audience"
	mapperAccessTokenClaim = "access.token.claim"

	authenticatorSecret = "client-secret"
	authenticatorJWT    = "client-jwt"

	protocolOIDC = "openid-connect"
)

// clientInput is a ClientRepresentation as callers send it: to the
// registration service, and to the admin API's update. Absent fields
// (nil) leave the client as it is, as Keycloak's update does; fields this
// server has no use for are ignored, as the portal's templates send many.
type clientInput struct {
	ClientID                  *string           `json:"clientId"`
	Name                      *string           `json:"name"`
	Enabled                   *bool             `json:"enabled"`
	ClientAuthenticatorType   *string           `json:"clientAuthenticatorType"`
	Secret                    *string           `json:"secret"`
	BearerOnly                *bool             `json:"bearerOnly"`
	PublicClient              *bool             `json:"publicClient"`
	StandardFlowEnabled       *bool             `json:"standardFlowEnabled"`
	ImplicitFlowEnabled       *bool             `json:"implicitFlowEnabled"`
	DirectAccessGrantsEnabled *bool             `json:"directAccessGrantsEnabled"`
	ServiceAccountsEnabled    *bool             `json:"serviceAccountsEnabled"`
	Protocol                  *string           `json:"protocol"`
	FullScopeAllowed          *bool             `json:"fullScopeAllowed"`
	Attributes                map[string]any    `json:"attributes"`
	ProtocolMappers           *[]protocolMapper `json:"protocolMappers"`
	DefaultClientScopes       *[]string         `json:"defaultClientScopes"`
	OptionalClientScopes      *[]string         `json:"optionalClientScopes"`
}

// protocolMapper is a ProtocolMapperRepresentation.
type protocolMapper struct {
	ID              string            `json:"id,omitempty"`
	Name            string            `json:"name"`
	Protocol        string            `json:"protocol"`
	ProtocolMapper  string            `json:"protocolMapper"`
	ConsentRequired bool              `json:"consentRequired"`
	Config          map[string]string `json:"config"`
}

// clientOutput is a ClientRepresentation as this server answers it. A
// secret is never in it: only its digest is kept.
type clientOutput struct {
	ID                        string            `json:"id"`
	ClientID                  string            `json:"clientId"`
	Name                      string            `json:"name"`
	Description               string            `json:"description"`
	SurrogateAuthRequired     bool              `json:"surrogateAuthRequired"`
	Enabled                   bool              `json:"enabled"`
	AlwaysDisplayInConsole    bool              `json:"alwaysDisplayInConsole"`
	ClientAuthenticatorType   string            `json:"clientAuthenticatorType"`
	RedirectURIs              []string          `json:"redirectUris"`
	WebOrigins                []string          `json:"webOrigins"`
	NotBefore                 int               `json:"notBefore"`
	BearerOnly                bool              `json:"bearerOnly"`
	ConsentRequired           bool              `json:"consentRequired"`
	StandardFlowEnabled       bool              `json:"standardFlowEnabled"`
	ImplicitFlowEnabled       bool              `json:"implicitFlowEnabled"`
	DirectAccessGrantsEnabled bool              `json:"directAccessGrantsEnabled"`
	ServiceAccountsEnabled    bool              `json:"serviceAccountsEnabled"`
	PublicClient              bool              `json:"publicClient"`
	FrontchannelLogout        bool              `json:"frontchannelLogout"`
	Protocol                  string            `json:"protocol"`
	Attributes                map[string]string `json:"attributes"`
	FullScopeAllowed          bool              `json:"fullScopeAllowed"`
	NodeReRegistrationTimeout int               `json:"nodeReRegistrationTimeout"`
	ProtocolMappers           []protocolMapper  `json:"protocolMappers"`
	DefaultClientScopes       []string          `json:"defaultClientScopes"`
	OptionalClientScopes      []string          `json:"optionalClientScopes"`
	Access                    map[string]bool   `json:"access,omitempty"`
	// Secret and RegistrationAccessToken are set only in the answer that
	// creates them.
	Secret                  string `json:"secret,omitempty"`
	RegistrationAccessToken string `json:"registrationAccessToken,omitempty"`
}

// invalidInput is a representation this server refuses, with the reason.
type invalidInput struct{ reason string }

func (e *invalidInput) Error() string { return e.reason }

func invalidf(format string, args ...any) error {
	return &invalidInput{reason: fmt.Sprintf(format, args...)}
}

// representationRules are what a caller may set through a representation:
// an admin anything; an initial access token (issued by an admin to one
// party, such as a portal in iat mode) anything but admin rights; a
// client's own registration access token, and an anonymous registrant,
// only what does not widen the client's reach (no new scopes, audience,
// lifetime or full scope; a registration access token cannot switch its
// client back on), as Keycloak's registration policies hold them back.
type representationRules struct {
	issuer store.Issuer
	by     registrationAuth
}

// checkChange refuses what the caller may not change between before and
// after.
func (rules representationRules) checkChange(before, after *store.Client, creating bool) error {
	if rules.by != byAdmin {
		for _, reserved := range adminOnlyScopes() {
			if slices.Contains(heldScopes(after), reserved) && !slices.Contains(heldScopes(before), reserved) {
				return invalidf("scope %q gives admin rights: only an admin may grant it", reserved)
			}
		}
	}
	if rules.by != byRegistrationAccess && rules.by != anonymous {
		return nil
	}
	if creating {
		// An anonymous client starts at the issuer's defaults, and without
		// full scope, as Keycloak's anonymous policy has it.
		switch {
		case after.Audience != rules.issuer.Audience && after.Audience != "":
			return invalidf("an anonymous registration takes the realm's audience (or none); an admin sets another")
		case after.TokenLifetime != 0:
			return invalidf("an anonymous registration takes the realm's token lifespan; an admin sets another")
		}
		after.FullScopeAllowed = false
		return nil
	}
	switch {
	case after.Enabled && !before.Enabled:
		return invalidf("a registration access token cannot enable its client: an admin disabled it, or it awaits one")
	case after.Audience != before.Audience:
		return invalidf("a registration access token cannot change its client's audience; an admin can")
	case after.TokenLifetime != before.TokenLifetime:
		return invalidf("a registration access token cannot change its client's token lifespan; an admin can")
	case after.FullScopeAllowed && !before.FullScopeAllowed:
		return invalidf("a registration access token cannot widen its client to full scope; an admin can")
	}
	for _, sc := range heldScopes(after) {
		if !slices.Contains(heldScopes(before), sc) {
			return invalidf("a registration access token cannot add scope %q to its client; an admin can", sc)
		}
	}
	return nil
}

// adminOnlyScopes are the scopes that give admin rights: the delegated
// ones of any issuer, and the server's own.
func adminOnlyScopes() []string {
	return append(credential.ReservedScopes(), credential.SystemAdminScope)
}

// applyTo sets the fields in holds on c; creating says whether c is new.
// It checks what a representation can get wrong; the issuer's rules on
// the result are checked by the operation that stores it.
func (in clientInput) applyTo(c *store.Client, rules representationRules, creating bool) (chosenSecret string, err error) {
	if err := in.refuseOtherFlows(); err != nil {
		return "", err
	}
	before := *c
	before.Scopes, before.OptionalScopes = slices.Clone(c.Scopes), slices.Clone(c.OptionalScopes)
	if in.ClientID != nil && !creating && *in.ClientID != c.ID {
		return "", invalidf("clientId cannot change (it is %q)", c.ID)
	}
	if in.ClientID != nil && creating && *in.ClientID != "" {
		c.ID = *in.ClientID
	}
	if in.Secret != nil && *in.Secret != "" {
		if !creating {
			return "", invalidf("a secret cannot be set on an existing client: POST .../client-secret gives it a new one")
		}
		chosenSecret = *in.Secret
	}
	if in.Name != nil {
		c.Name = strings.TrimSpace(*in.Name)
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if in.Enabled != nil {
		c.Enabled = *in.Enabled
	}
	if in.FullScopeAllowed != nil {
		c.FullScopeAllowed = *in.FullScopeAllowed
	}
	if err := in.applyKeys(c); err != nil {
		return "", err
	}
	if err := in.applyLifespan(c); err != nil {
		return "", err
	}
	if in.ProtocolMappers != nil {
		audience, err := audienceOf(*in.ProtocolMappers)
		if err != nil {
			return "", err
		}
		c.Audience = audience
	}
	offered := clientScopeNames(rules.issuer)
	if in.DefaultClientScopes != nil {
		c.Scopes = knownScopes(*in.DefaultClientScopes, offered)
	}
	if in.OptionalClientScopes != nil {
		c.OptionalScopes = knownScopes(*in.OptionalClientScopes, offered)
	}
	c.OptionalScopes = slices.DeleteFunc(c.OptionalScopes, func(s string) bool { return slices.Contains(c.Scopes, s) })
	return chosenSecret, rules.checkChange(&before, c, creating)
}

// heldScopes are all the scopes a client holds, default and optional.
func heldScopes(c *store.Client) []string {
	return append(slices.Clone(c.Scopes), c.OptionalScopes...)
}

// refuseOtherFlows refuses clients of any grant but client_credentials.
func (in clientInput) refuseOtherFlows() error {
	for _, flag := range []struct {
		name string
		set  *bool
		want bool
	}{
		{"bearerOnly", in.BearerOnly, false},
		{"publicClient", in.PublicClient, false},
		{"standardFlowEnabled", in.StandardFlowEnabled, false},
		{"implicitFlowEnabled", in.ImplicitFlowEnabled, false},
		{"directAccessGrantsEnabled", in.DirectAccessGrantsEnabled, false},
		{"serviceAccountsEnabled", in.ServiceAccountsEnabled, true},
	} {
		if flag.set != nil && *flag.set != flag.want {
			return invalidf("%s must be %t: this server issues tokens to confidential clients with the client_credentials grant only", flag.name, flag.want)
		}
	}
	if in.Protocol != nil && *in.Protocol != "" && *in.Protocol != protocolOIDC {
		return invalidf("protocol must be %q, not %q", protocolOIDC, *in.Protocol)
	}
	if in.ClientAuthenticatorType != nil {
		switch *in.ClientAuthenticatorType {
		case "", authenticatorSecret, authenticatorJWT:
		default:
			return invalidf("clientAuthenticatorType must be %q or %q, not %q", authenticatorSecret, authenticatorJWT, *in.ClientAuthenticatorType)
		}
	}
	return nil
}

// attribute reads a string attribute; Keycloak keeps every attribute as a
// string, but callers send booleans and numbers too.
func (in clientInput) attribute(name string) (string, bool) {
	v, ok := in.Attributes[name]
	if !ok || v == nil {
		return "", false
	}
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	default:
		return "", false
	}
}

// applyKeys sets the client's assertion key from Keycloak's attributes: a
// JWKS URL when use.jwks.url is true, else a public key or certificate.
// A client-secret client has neither.
func (in clientInput) applyKeys(c *store.Client) error {
	if in.ClientAuthenticatorType != nil && *in.ClientAuthenticatorType == authenticatorSecret {
		c.PublicJWK, c.JWKSURI = nil, ""
		return nil
	}
	if use, ok := in.attribute(attrUseJWKSURL); ok && use == "true" {
		url, _ := in.attribute(attrJWKSURL)
		if url == "" {
			return invalidf("attribute %s is true but %s is empty", attrUseJWKSURL, attrJWKSURL)
		}
		c.PublicJWK, c.JWKSURI = nil, url
		return nil
	}
	material, ok := in.attribute(attrPublicKey)
	if !ok || material == "" {
		material, ok = in.attribute(attrCertificate)
	}
	if ok && material != "" {
		jwk, err := credential.KeycloakClientJWK(material)
		if err != nil {
			return invalidf("%s: %v", attrPublicKey, err)
		}
		c.PublicJWK, c.JWKSURI = jwk, ""
		return nil
	}
	if in.ClientAuthenticatorType != nil && *in.ClientAuthenticatorType == authenticatorJWT && len(c.PublicJWK) == 0 && c.JWKSURI == "" {
		return invalidf("a client-jwt client needs attribute %s (a PEM public key or certificate) or %s with %s=true", attrPublicKey, attrJWKSURL, attrUseJWKSURL)
	}
	return nil
}

// publicKeyAttribute is a JWK as Keycloak's attribute: base64 DER, no
// armour.
func publicKeyAttribute(jwk []byte) (value, kid string) {
	var key jose.JSONWebKey
	if key.UnmarshalJSON(jwk) != nil {
		return "", ""
	}
	der, err := x509.MarshalPKIXPublicKey(key.Key)
	if err != nil {
		return "", ""
	}
	return base64.StdEncoding.EncodeToString(der), key.KeyID
}

// maxLifespan bounds access.token.lifespan: a day, as the admin API does.
const maxLifespan = 24 * time.Hour

func (in clientInput) applyLifespan(c *store.Client) error {
	v, ok := in.attribute(attrTokenLifespan)
	if !ok {
		return nil
	}
	if v == "" || v == "-1" {
		c.TokenLifetime = 0
		return nil
	}
	seconds, err := strconv.Atoi(v)
	if err != nil || seconds < 1 || time.Duration(seconds)*time.Second > maxLifespan {
		return invalidf("attribute %s must be a number of seconds from 1 to %d", attrTokenLifespan, int(maxLifespan/time.Second))
	}
	c.TokenLifetime = time.Duration(seconds) * time.Second
	return nil
}

// audienceOf reads the client's audience from its audience mappers. A
// client has one audience here; mappers of other kinds are Keycloak
// features this server does not have, and are refused rather than
// silently dropped, since they would change tokens.
func audienceOf(mappers []protocolMapper) (string, error) {
	audience := ""
	for _, m := range mappers {
		if m.ProtocolMapper != audienceMapper {
			return "", invalidf("protocol mapper %q (%s) is not supported: only %s", m.Name, m.ProtocolMapper, audienceMapper)
		}
		if m.Config[mapperAccessTokenClaim] == "false" {
			continue
		}
		value := m.Config[mapperCustomAudience]
		if value == "" {
			value = m.Config[mapperClientAudience]
		}
		if value == "" {
			return "", invalidf("audience mapper %q names no audience", m.Name)
		}
		if audience != "" && audience != value {
			return "", invalidf("a client has one audience here; the mappers name %q and %q", audience, value)
		}
		audience = value
	}
	return audience, nil
}

// audienceMappers shows a client's audience as the mapper that sets it.
func audienceMappers(c store.Client) []protocolMapper {
	if c.Audience == "" {
		return []protocolMapper{}
	}
	return []protocolMapper{{
		ID:             derivedID("audience mapper", c.IssuerName, c.InternalID),
		Name:           "audience",
		Protocol:       protocolOIDC,
		ProtocolMapper: audienceMapper,
		Config: map[string]string{
			mapperCustomAudience:   c.Audience,
			mapperAccessTokenClaim: "true",
			"id.token.claim":       "false",
		},
	}}
}

// knownScopes keeps the names the issuer offers, as Keycloak ignores a
// reference to a client scope it does not have (realms carry many, such
// as profile and email, that mean nothing to a service account).
func knownScopes(names, offered []string) []string {
	out := []string{}
	for _, n := range names {
		if slices.Contains(offered, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// representation shows a client as Keycloak would.
func representation(c store.Client, access map[string]bool) clientOutput {
	out := clientOutput{
		ID:                        c.InternalID,
		ClientID:                  c.ID,
		Name:                      c.Name,
		Enabled:                   c.Enabled,
		ClientAuthenticatorType:   authenticatorSecret,
		RedirectURIs:              []string{},
		WebOrigins:                []string{},
		ServiceAccountsEnabled:    true,
		Protocol:                  protocolOIDC,
		NodeReRegistrationTimeout: -1,
		Attributes:                map[string]string{},
		FullScopeAllowed:          c.FullScopeAllowed,
		ProtocolMappers:           audienceMappers(c),
		DefaultClientScopes:       append([]string{}, c.Scopes...),
		OptionalClientScopes:      append([]string{}, c.OptionalScopes...),
		Access:                    access,
	}
	switch {
	case c.JWKSURI != "":
		out.ClientAuthenticatorType = authenticatorJWT
		out.Attributes[attrJWKSURL] = c.JWKSURI
		out.Attributes[attrUseJWKSURL] = "true"
	case len(c.PublicJWK) > 0:
		out.ClientAuthenticatorType = authenticatorJWT
		out.Attributes[attrPublicKey], out.Attributes[attrKeyID] = publicKeyAttribute(c.PublicJWK)
		out.Attributes[attrUseJWKSURL] = "false"
	}
	if c.TokenLifetime > 0 {
		out.Attributes[attrTokenLifespan] = strconv.Itoa(int(c.TokenLifetime / time.Second))
	}
	return out
}

// decodeJSON reads a JSON body into v, saying what is wrong with it.
func decodeJSON(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return invalidf("the body is not a valid representation: %v", jsonReason(err))
	}
	return nil
}

// jsonReason says where a JSON document went wrong, without echoing it.
func jsonReason(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return fmt.Sprintf("malformed JSON at byte %d", e.Offset)
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("field %q must be %s, not a JSON %s", e.Field, e.Type, e.Value)
	default:
		return "malformed JSON"
	}
}
