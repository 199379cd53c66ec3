package realm

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// Options are an operator's choices for one import.
type Options struct {
	// Issuer names the issuer; empty takes the realm's name, which keeps
	// the iss of every token as Keycloak wrote it.
	Issuer string
	// Now judges the expiry of rotated secrets.
	Now time.Time
}

// Skip is something the export holds that the import leaves out, and why.
type Skip struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Plan is what an import writes, and what it leaves out. Import.Keys is
// left to the caller, who seals Keys under its key-encryption key.
type Plan struct {
	Import   store.IssuerImport
	Keys     []keys.ImportedKey
	Skipped  []Skip
	Warnings []string
}

// Keycloak's names for what the import reads.
const (
	attrPublicKey          = "jwt.credential.public.key"
	attrCertificate        = "jwt.credential.certificate"
	attrJWKSURL            = "jwks.url"
	attrUseJWKSURL         = "use.jwks.url"
	attrTokenLifespan      = "access.token.lifespan"
	attrSecretExpiry       = "client.secret.expiration.time"
	attrRotatedSecret      = "client.secret.rotated"
	attrRotatedExpiry      = "client.secret.rotated.expiration.time"
	attrIncludeInScope     = "include.in.token.scope"
	keyProviderType        = "org.keycloak.keys.KeyProvider"
	protocolOIDC           = "openid-connect"
	audienceMapperType     = "oidc-audience-mapper"
	sessionNoteMapperType  = "oidc-usersessionmodel-note-mapper"
	maskedSecret           = "**********"
	defaultRealmLifespan   = 300 * time.Second
	maxLifespan            = 24 * time.Hour
	maxSecretLength        = 512
	shortSecretLength      = 16
	authenticatorSecret    = "client-secret"
	authenticatorJWT       = "client-jwt"
	authenticatorSecretJWT = "client-secret-jwt"
	maxNameLength          = 200
	// maxMappings bounds the role mappings composites may expand into:
	// a few roles nested under one composite mapped to every service
	// account would otherwise multiply into billions of rows.
	maxMappings     = 1_000_000
	realmManagement = "realm-management"
)

// roleKey names a role in a realm: its client's id ("" for a realm role)
// and its name.
type roleKey struct{ client, name string }

func (k roleKey) String() string {
	if k.client == "" {
		return "realm role " + k.name
	}
	return fmt.Sprintf("role %s of client %s", k.name, k.client)
}

// translation carries one Translate call's state.
type translation struct {
	rep        Representation
	opts       Options
	plan       Plan
	issuer     store.Issuer
	roles      map[roleKey]Role
	accounts   map[string]User // service-account users by client id
	composites map[roleKey][]roleKey
}

// Translate turns a realm export into an import. It refuses, importing
// nothing, what it cannot carry over without breaking a consumer or a
// gateway: a secret it cannot store, a key it cannot read or sign with,
// a client id it cannot hold. What no consumer or gateway depends on
// (browser clients, users, flows) is skipped with the reason.
func Translate(rep Representation, opts Options) (Plan, error) {
	tr := &translation{rep: rep, opts: opts, roles: map[roleKey]Role{}, accounts: map[string]User{}, composites: map[roleKey][]roleKey{}}
	if err := tr.translateIssuer(); err != nil {
		return Plan{}, err
	}
	tr.indexRoles()
	tr.indexUsers()
	clients, err := tr.translateClients()
	if err != nil {
		return Plan{}, err
	}
	if err := tr.translateKeys(); err != nil {
		return Plan{}, err
	}
	tr.skipTheRest()
	tr.plan.Import.Issuer = tr.issuer
	tr.plan.Import.Clients = clients
	tr.plan.Import.Roles = tr.importedRoles(clients)
	return tr.plan, nil
}

func (tr *translation) skip(kind, name, reason string, args ...any) {
	tr.plan.Skipped = append(tr.plan.Skipped, Skip{Kind: kind, Name: name, Reason: fmt.Sprintf(reason, args...)})
}

func (tr *translation) warn(format string, args ...any) {
	tr.plan.Warnings = append(tr.plan.Warnings, fmt.Sprintf(format, args...))
}

func (tr *translation) translateIssuer() error {
	rep := tr.rep
	name := tr.opts.Issuer
	if name == "" {
		name = rep.Realm
	}
	if !credential.ValidIssuerName(name) {
		return fmt.Errorf("%q cannot name an issuer (3 to 63 lowercase letters, digits and '-', starting with a letter): pass another name with --issuer, and know that tokens will then carry another iss", name)
	}
	if name != rep.Realm {
		tr.warn("the issuer is named %q, not %q as the realm: iss changes to .../realms/%s, so gateways must be told the new issuer", name, rep.Realm, name)
	}
	alg := cmp.Or(rep.DefaultSignatureAlgorithm, keys.RS256)
	if !keys.SupportedAlgorithm(alg) {
		return fmt.Errorf("the realm signs with %s; this server signs with %s", alg, strings.Join(keys.Algorithms(), ", "))
	}
	lifetime := defaultRealmLifespan
	if rep.AccessTokenLifespan > 0 {
		lifetime = time.Duration(rep.AccessTokenLifespan) * time.Second
	}
	if lifetime > maxLifespan {
		return fmt.Errorf("accessTokenLifespan is %d s; this server issues tokens for at most a day", rep.AccessTokenLifespan)
	}
	tr.issuer = store.Issuer{
		Name:                 name,
		Description:          cmp.Or(rep.DisplayName, "Keycloak realm "+rep.Realm),
		AvailableScopes:      tr.scopes(),
		Audience:             rep.Realm,
		TokenLifetime:        lifetime,
		SigningAlgorithm:     alg,
		ClientAuthenticators: credential.Authenticators(),
		URLStyle:             store.URLStyleKeycloak,
	}
	slices.Sort(tr.issuer.ClientAuthenticators)
	return nil
}

// scopes are the realm's OpenID Connect client scopes that appear in a
// token's scope claim; the others (roles, web-origins, acr, basic) only
// add claims, which a Keycloak-style issuer writes on its own.
func (tr *translation) scopes() []string {
	var out []string
	for _, sc := range tr.rep.ClientScopes {
		switch {
		case sc.Protocol != "" && sc.Protocol != protocolOIDC:
			tr.skip("client scope", sc.Name, "protocol %s: authz speaks OpenID Connect only", sc.Protocol)
		case sc.Attributes[attrIncludeInScope] == "false":
			tr.skip("client scope", sc.Name, "not in the scope claim (include.in.token.scope is false); the claims it adds are written by authz itself where it has them")
		case !validToken(sc.Name):
			tr.skip("client scope", sc.Name, "not a scope token (RFC 6749 §3.3)")
		default:
			out = append(out, sc.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// validToken reports whether s can be a scope or role token.
func validToken(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func (tr *translation) indexRoles() {
	if tr.rep.Roles == nil {
		return
	}
	add := func(key roleKey, r Role) {
		tr.roles[key] = r
		if r.Composites == nil {
			return
		}
		for _, name := range r.Composites.Realm {
			tr.composites[key] = append(tr.composites[key], roleKey{"", name})
		}
		for client, names := range r.Composites.Client {
			for _, name := range names {
				tr.composites[key] = append(tr.composites[key], roleKey{client, name})
			}
		}
	}
	for _, r := range tr.rep.Roles.Realm {
		add(roleKey{"", r.Name}, r)
	}
	for client, roles := range tr.rep.Roles.Client {
		for _, r := range roles {
			add(roleKey{client, r.Name}, r)
		}
	}
}

func (tr *translation) indexUsers() {
	people := 0
	for _, u := range tr.rep.Users {
		if u.ServiceAccountClientID == "" {
			people++
			continue
		}
		tr.accounts[u.ServiceAccountClientID] = u
	}
	if people > 0 {
		tr.skip("users", strconv.Itoa(people), "authz has no users, only clients; the service accounts of clients are carried over with them")
	}
}

// effective expands roles through their composites, as Keycloak does when
// it writes a token, naming roles the export lacks.
func (tr *translation) effective(start []roleKey) (roles []roleKey, missing []roleKey) {
	seen := map[roleKey]bool{}
	queue := slices.Clone(start)
	for len(queue) > 0 {
		k := queue[0]
		queue = queue[1:]
		if seen[k] {
			continue
		}
		seen[k] = true
		if _, ok := tr.roles[k]; !ok {
			missing = append(missing, k)
			continue
		}
		roles = append(roles, k)
		queue = append(queue, tr.composites[k]...)
	}
	sortRoles(roles)
	return roles, missing
}

func sortRoles(roles []roleKey) {
	slices.SortFunc(roles, func(a, b roleKey) int { return cmp.Or(cmp.Compare(a.client, b.client), cmp.Compare(a.name, b.name)) })
}

// isServiceAccountClient reports whether a client can use the
// client_credentials grant.
func isServiceAccountClient(c Client) bool {
	return c.ServiceAccountsEnabled && !c.PublicClient && !c.BearerOnly
}

func (tr *translation) translateClients() ([]store.Client, error) {
	var out []store.Client
	mapped := map[string]bool{} // clients whose roles some service account holds
	seen := map[string]bool{}
	for _, kc := range tr.rep.Clients {
		if seen[kc.ClientID] {
			return nil, fmt.Errorf("client id %q appears twice", kc.ClientID)
		}
		seen[kc.ClientID] = true
		if !holdableClientID(kc.ClientID) {
			return nil, fmt.Errorf("client id %q: authz cannot hold it (1 to 255 printable ASCII characters, no spaces, quotes, backslashes or slashes)", kc.ClientID)
		}
	}
	total := 0
	for _, kc := range tr.rep.Clients {
		switch {
		case kc.Protocol != "" && kc.Protocol != protocolOIDC:
			tr.skip("client", kc.ClientID, "protocol %s: authz speaks OpenID Connect only", kc.Protocol)
			continue
		case !isServiceAccountClient(kc):
			continue // a role holder at most; decided once every mapping is known
		}
		c, ok, err := tr.translateClient(kc)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w", kc.ClientID, err)
		}
		if !ok {
			continue
		}
		for _, m := range slices.Concat(c.RoleMappings, c.ScopeMappings) {
			mapped[m.ClientID] = true
		}
		if total += len(c.RoleMappings) + len(c.ScopeMappings); total > maxMappings {
			return nil, fmt.Errorf("its composite roles expand into more than %d role mappings", maxMappings)
		}
		out = append(out, c)
	}
	imported := map[string]bool{}
	for _, c := range out {
		imported[c.ID] = true
	}
	for _, kc := range tr.rep.Clients {
		if imported[kc.ClientID] || (kc.Protocol != "" && kc.Protocol != protocolOIDC) {
			continue
		}
		if !mapped[kc.ClientID] {
			tr.skip("client", kc.ClientID, "%s: authz serves the client_credentials grant only, and no service account holds its roles", browserReason(kc))
			continue
		}
		// Its roles are in consumers' tokens, so it comes along to hold
		// them, with no way to get a token of its own.
		out = append(out, store.Client{ID: kc.ClientID, InternalID: kc.ID, Name: displayName(kc), FullScopeAllowed: true})
		tr.warn("client %q (%s) is imported disabled and without credentials, to hold the roles service accounts have of it", kc.ClientID, browserReason(kc))
	}
	slices.SortFunc(out, func(a, b store.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// holdableClientID reports whether a client id can be carried over: one
// that names no client in a request, or no path segment, cannot.
func holdableClientID(id string) bool {
	return credential.ValidClientID(id) && !strings.Contains(id, "/")
}

// displayName is a client's name as authz shows it: trimmed, without
// control characters (a terminal would act on them), and bounded.
func displayName(kc Client) string {
	name := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(kc.Name))
	for len(name) > maxNameLength {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	return cmp.Or(name, kc.ClientID)
}

func browserReason(kc Client) string {
	switch {
	case kc.BearerOnly:
		return "bearer-only"
	case kc.PublicClient:
		return "a public (browser) client"
	default:
		return "no service account"
	}
}

// translateClient carries over one client-credentials client; ok is false
// when it is skipped (with the reason recorded).
func (tr *translation) translateClient(kc Client) (store.Client, bool, error) {
	c := store.Client{
		ID:               kc.ClientID,
		InternalID:       kc.ID,
		Name:             displayName(kc),
		Enabled:          kc.Enabled == nil || *kc.Enabled,
		FullScopeAllowed: kc.FullScopeAllowed == nil || *kc.FullScopeAllowed,
	}
	switch kc.ClientAuthenticatorType {
	case "", authenticatorSecret:
		secrets, err := tr.secrets(kc)
		if err != nil {
			return store.Client{}, false, err
		}
		c.Secrets = secrets
	case authenticatorJWT:
		if ok, err := tr.assertionKey(kc, &c); err != nil || !ok {
			return store.Client{}, false, err
		}
	default:
		tr.skip("client", kc.ClientID, "client authenticator %s is not one authz has (client-secret, client-jwt): its consumers would need new credentials", kc.ClientAuthenticatorType)
		return store.Client{}, false, nil
	}
	if v := kc.Attributes[attrTokenLifespan]; v != "" && v != "-1" {
		seconds, err := strconv.ParseInt(v, 10, 64)
		if err != nil || seconds < 1 || time.Duration(seconds)*time.Second > maxLifespan {
			return store.Client{}, false, fmt.Errorf("attribute %s must be a number of seconds from 1 to %d", attrTokenLifespan, int(maxLifespan/time.Second))
		}
		c.TokenLifetime = time.Duration(seconds) * time.Second
	}
	c.Audience = tr.mappers(kc)
	c.Scopes = keep(kc.DefaultClientScopes, tr.issuer.AvailableScopes, nil)
	c.OptionalScopes = keep(kc.OptionalClientScopes, tr.issuer.AvailableScopes, c.Scopes)
	if kc.AuthorizationServicesEnabled {
		tr.skip("authorization services", kc.ClientID, "authz has no UMA or policy evaluation; the client itself is imported")
	}
	account, ok := tr.accounts[kc.ClientID]
	if !ok {
		tr.warn("client %q has no service-account user in the export: its tokens get a new sub", kc.ClientID)
	}
	c.ServiceAccountID = account.ID
	direct := make([]roleKey, 0, len(account.RealmRoles))
	for _, name := range account.RealmRoles {
		direct = append(direct, roleKey{"", name})
	}
	for client, names := range account.ClientRoles {
		for _, name := range names {
			direct = append(direct, roleKey{client, name})
		}
	}
	c.RoleMappings = tr.refs(kc.ClientID, "mapped to the service account of", direct)
	if !c.FullScopeAllowed {
		// A client's own roles are always in its scope, as in Keycloak.
		own := tr.scopeMappings(kc.ClientID)
		for k := range tr.roles {
			if k.client == kc.ClientID {
				own = append(own, k)
			}
		}
		c.ScopeMappings = tr.refs(kc.ClientID, "in the scope of", own)
	}
	return c, true, nil
}

// refs turns roles into mappings, composites expanded; roles the export
// lacks are warned about and left out.
func (tr *translation) refs(clientID, relation string, direct []roleKey) []store.RoleRef {
	roles, missing := tr.effective(direct)
	for _, k := range missing {
		tr.warn("%s, %s client %q, is not in the export's roles: left out", k, relation, clientID)
	}
	out := make([]store.RoleRef, 0, len(roles))
	for _, k := range roles {
		out = append(out, store.RoleRef{ClientID: k.client, Name: k.name})
	}
	return out
}

// scopeMappings are the roles a client without full scope may put in its
// tokens: realm roles of scopeMappings, client roles of
// clientScopeMappings.
func (tr *translation) scopeMappings(clientID string) []roleKey {
	var out []roleKey
	for _, m := range tr.rep.ScopeMappings {
		if m.Client == clientID {
			for _, name := range m.Roles {
				out = append(out, roleKey{"", name})
			}
		}
	}
	for container, mappings := range tr.rep.ClientScopeMappings {
		for _, m := range mappings {
			if m.Client == clientID {
				for _, name := range m.Roles {
					out = append(out, roleKey{container, name})
				}
			}
		}
	}
	return out
}

// keep filters names to those offered and not excluded, in order, once.
func keep(names, offered, excluded []string) []string {
	out := []string{}
	for _, n := range names {
		if slices.Contains(offered, n) && !slices.Contains(excluded, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// secrets carries over a client's secret as it is, and the previous one
// where Keycloak's secret rotation still honours it.
func (tr *translation) secrets(kc Client) ([]store.Secret, error) {
	if err := storableSecret("secret", kc.Secret); err != nil {
		return nil, err
	}
	if len(kc.Secret) < shortSecretLength {
		tr.warn("client %q has a secret of %d characters: it is carried over, but rotate it (authz makes 43)", kc.ClientID, len(kc.Secret))
	}
	current := stored(kc.Secret)
	if at, ok := epoch(kc.Attributes[attrSecretExpiry]); ok {
		current.ExpiresAt = at
	}
	out := []store.Secret{current}
	rotated := kc.Attributes[attrRotatedSecret]
	if rotated == "" {
		return out, nil
	}
	until, ok := epoch(kc.Attributes[attrRotatedExpiry])
	if ok && !until.After(tr.opts.Now) {
		return out, nil
	}
	if err := storableSecret("rotated secret", rotated); err != nil {
		return nil, err
	}
	previous := stored(rotated)
	if ok {
		previous.ExpiresAt = until
	}
	return append(out, previous), nil
}

// stored is what is kept of a secret: its digest and hint, never itself.
func stored(value string) store.Secret {
	s := credential.StoredSecret(value)
	return store.Secret{ID: s.ID, Digest: s.Digest, Hint: s.Hint}
}

// storableSecret refuses what is not a secret but a stand-in for one.
func storableSecret(what, value string) error {
	switch {
	case value == "":
		return fmt.Errorf("its %s is empty: a client-secret client needs one", what)
	case value == maskedSecret:
		return fmt.Errorf("its %s is masked (%s), as the admin console's partial export writes it: export the realm with `kc.sh export`, which keeps secrets", what, maskedSecret)
	case strings.HasPrefix(value, "${") && strings.HasSuffix(value, "}"):
		return fmt.Errorf("its %s is a vault reference, not the secret: resolve it before the import", what)
	case len(value) > maxSecretLength:
		return fmt.Errorf("its %s is longer than %d bytes", what, maxSecretLength)
	}
	return nil
}

// epoch reads Keycloak's seconds-since-the-epoch attributes.
func epoch(v string) (time.Time, bool) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return time.Time{}, false
	}
	return time.Unix(n, 0).UTC(), true
}

// assertionKey carries over a client-jwt client's key: its JWKS URL, or
// its registered public key or certificate under Keycloak's kid.
func (tr *translation) assertionKey(kc Client, c *store.Client) (bool, error) {
	if kc.Attributes[attrUseJWKSURL] == "true" {
		if kc.Attributes[attrJWKSURL] == "" {
			return false, fmt.Errorf("attribute %s is true but %s is empty", attrUseJWKSURL, attrJWKSURL)
		}
		c.JWKSURI = kc.Attributes[attrJWKSURL]
		return true, nil
	}
	material := cmp.Or(kc.Attributes[attrCertificate], kc.Attributes[attrPublicKey])
	if material == "" {
		tr.skip("client", kc.ClientID, "client-jwt with no key, certificate or JWKS URL: it cannot authenticate in Keycloak either")
		return false, nil
	}
	jwk, err := credential.KeycloakClientJWK(material)
	if err != nil {
		return false, fmt.Errorf("its key: %v", err)
	}
	c.PublicJWK = jwk
	return true, nil
}

// mappers reads the client's audience mapper and names what authz does
// not run.
func (tr *translation) mappers(kc Client) string {
	audience := ""
	for _, m := range kc.ProtocolMappers {
		switch {
		case m.ProtocolMapper == audienceMapperType && m.Config["access.token.claim"] != "false":
			value := cmp.Or(m.Config["included.custom.audience"], m.Config["included.client.audience"])
			if value == realmManagement {
				tr.skip("protocol mapper", kc.ClientID+"/"+m.Name, "the audience %s is reserved here: its roles make admins, and reach tokens only through role mappings", realmManagement)
				continue
			}
			if audience == "" && value != "" {
				audience = value
				continue
			}
			tr.skip("protocol mapper", kc.ClientID+"/"+m.Name, "a second audience (%s): an authz client has one; it keeps %s", value, audience)
		case m.ProtocolMapper == sessionNoteMapperType && slices.Contains([]string{"clientId", "client_id", "clientHost", "clientAddress"}, m.Config["user.session.note"]):
			// Keycloak's service-account claims, which a Keycloak-style
			// issuer always writes.
			if claim := m.Config["claim.name"]; claim == "clientId" {
				tr.warn("client %q: its %q mapper writes the claim clientId (Keycloak before 25); authz writes client_id, as Keycloak 25 and later do", kc.ClientID, m.Name)
			}
		default:
			tr.skip("protocol mapper", kc.ClientID+"/"+m.Name, "%s: authz does not run protocol mappers, so its claim is not written", m.ProtocolMapper)
		}
	}
	return audience
}

// importedRoles are the realm's roles, and the roles of the clients that
// come along.
func (tr *translation) importedRoles(clients []store.Client) []store.Role {
	imported := map[string]bool{"": true}
	for _, c := range clients {
		imported[c.ID] = true
	}
	var out []store.Role
	var left []string
	for k, r := range tr.roles {
		if !imported[k.client] {
			left = append(left, k.client)
			continue
		}
		out = append(out, store.Role{ClientID: k.client, Name: k.name, Description: r.Description})
	}
	slices.Sort(left)
	for _, client := range slices.Compact(left) {
		tr.skip("client roles", client, "their client is not imported and no service account holds them")
	}
	slices.SortFunc(out, func(a, b store.Role) int {
		return cmp.Or(cmp.Compare(a.ClientID, b.ClientID), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// translateKeys reads the realm's signing keys: RSA, EC and EdDSA key
// providers, under the kid Keycloak published.
func (tr *translation) translateKeys() error {
	providers := slices.Clone(tr.rep.Components[keyProviderType])
	slices.SortFunc(providers, func(a, b Component) int { return cmp.Compare(a.Name, b.Name) })
	for _, comp := range providers {
		k, ok, err := tr.translateKey(comp)
		if err != nil {
			return fmt.Errorf("key provider %q (%s): %w", comp.Name, comp.ProviderID, err)
		}
		if !ok {
			continue
		}
		if slices.ContainsFunc(tr.plan.Keys, func(o keys.ImportedKey) bool { return o.KID == k.KID }) {
			return fmt.Errorf("key provider %q (%s): kid %q names another key of the realm too", comp.Name, comp.ProviderID, k.KID)
		}
		tr.plan.Keys = append(tr.plan.Keys, k)
	}
	active := slices.ContainsFunc(tr.plan.Keys, func(k keys.ImportedKey) bool { return k.Active && k.Algorithm == tr.issuer.SigningAlgorithm })
	if !active {
		tr.warn("no active %s key is carried over: authz makes a new one, which gateways must fetch before they can verify its tokens", tr.issuer.SigningAlgorithm)
	}
	return nil
}

func (tr *translation) translateKey(comp Component) (keys.ImportedKey, bool, error) {
	var material, alg string
	switch comp.ProviderID {
	case "rsa-generated", "rsa":
		if strings.EqualFold(comp.config("keyUse"), "enc") {
			tr.skip("key", comp.Name, "an encryption key: authz signs tokens and encrypts none")
			return keys.ImportedKey{}, false, nil
		}
		material, alg = comp.config("privateKey"), cmp.Or(comp.config("algorithm"), keys.RS256)
	case "ecdsa-generated":
		material = comp.config("ecdsaPrivateKey")
		switch curve := comp.config("ecdsaEllipticCurveKey"); curve {
		case "", "P-256":
			alg = keys.ES256
		default:
			alg = "ES on " + curve
		}
	case "eddsa-generated":
		material = comp.config("eddsaPrivateKey")
		if curve := comp.config("eddsaEllipticCurveKey"); curve != "" && curve != "Ed25519" {
			alg = "EdDSA on " + curve
		} else {
			alg = keys.EdDSA
		}
	case "rsa-enc-generated", "ecdh-generated":
		tr.skip("key", comp.Name, "an encryption key: authz signs tokens and encrypts none")
		return keys.ImportedKey{}, false, nil
	case "hmac-generated", "hmac-generated-hs512", "aes-generated":
		tr.skip("key", comp.Name, "a symmetric key: Keycloak uses it for its own tokens (refresh, actions), which gateways never verify")
		return keys.ImportedKey{}, false, nil
	case "java-keystore":
		return keys.ImportedKey{}, false, fmt.Errorf("its key is in a keystore file outside the export: convert it to an \"rsa\" provider in Keycloak first, so that its kid moves with it")
	default:
		return keys.ImportedKey{}, false, fmt.Errorf("unknown key provider type %q", comp.ProviderID)
	}
	if comp.config("enabled") == "false" {
		tr.skip("key", comp.Name, "disabled: Keycloak neither signs with it nor publishes it")
		return keys.ImportedKey{}, false, nil
	}
	if !keys.SupportedAlgorithm(alg) {
		return keys.ImportedKey{}, false, fmt.Errorf("algorithm %s: this server signs with %s", alg, strings.Join(keys.Algorithms(), ", "))
	}
	if material == "" {
		return keys.ImportedKey{}, false, fmt.Errorf("it has no private key")
	}
	priv, err := credential.KeycloakPrivateKey(material)
	if err != nil {
		return keys.ImportedKey{}, false, fmt.Errorf("its private key %v", err)
	}
	if err := fitsAlgorithm(priv.Public(), alg); err != nil {
		return keys.ImportedKey{}, false, err
	}
	kid, err := credential.KeycloakKID(priv)
	if err != nil {
		return keys.ImportedKey{}, false, err
	}
	if cert := comp.config("certificate"); cert != "" {
		pub, err := credential.KeycloakPublicKey(cert)
		if err != nil {
			return keys.ImportedKey{}, false, fmt.Errorf("its certificate %v", err)
		}
		if certKID, _ := credential.KeycloakKID(pub); certKID != kid {
			return keys.ImportedKey{}, false, fmt.Errorf("its certificate is for another key than its private key")
		}
	}
	if own := comp.config("kid"); own != "" {
		if !validToken(own) || strings.Contains(own, "/") {
			return keys.ImportedKey{}, false, fmt.Errorf("its kid is not one a JWKS and the admin API can carry (printable ASCII, no spaces, quotes, backslashes or slashes, at most 128)")
		}
		kid = own
	}
	priority, _ := strconv.ParseInt(comp.config("priority"), 10, 64)
	return keys.ImportedKey{KID: kid, Algorithm: alg, Private: priv, Active: comp.config("active") != "false", Priority: priority}, true, nil
}

// fitsAlgorithm checks that a key is of the type its algorithm signs with.
func fitsAlgorithm(pub any, alg string) error {
	var ok bool
	switch alg {
	case keys.RS256, keys.PS256:
		k, isRSA := pub.(*rsa.PublicKey)
		ok = isRSA && k.N.BitLen() >= 2048
	case keys.ES256:
		k, isEC := pub.(*ecdsa.PublicKey)
		ok = isEC && k.Curve == elliptic.P256()
	case keys.EdDSA:
		_, ok = pub.(ed25519.PublicKey)
	}
	if !ok {
		return fmt.Errorf("a %T cannot sign %s here (RSA of 2048 bits or more, P-256, Ed25519)", pub, alg)
	}
	return nil
}

// skipTheRest names the parts of a realm that have no place here.
func (tr *translation) skipTheRest() {
	for _, part := range []struct {
		name  string
		count int
		why   string
	}{
		{"groups", len(tr.rep.Groups), "authz has no users to group"},
		{"identity providers", len(tr.rep.IdentityProviders), "authz has no browser logins to broker"},
		{"authentication flows", len(tr.rep.AuthenticationFlows), "authz authenticates clients only, by secret or signed assertion"},
	} {
		if part.count > 0 {
			tr.skip(part.name, strconv.Itoa(part.count), "%s", part.why)
		}
	}
	if len(tr.rep.DefaultDefaultClientScopes) > 0 || len(tr.rep.DefaultOptionalClientScopes) > 0 {
		tr.skip("realm default client scopes", strconv.Itoa(len(tr.rep.DefaultDefaultClientScopes)+len(tr.rep.DefaultOptionalClientScopes)),
			"they apply to clients created later; each imported client keeps its own default and optional scopes")
	}
}
