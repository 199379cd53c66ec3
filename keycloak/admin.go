package keycloak

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// The subset of Keycloak's admin REST API that the portal calls, under
// /admin/realms/{realm}: clients by internal id, the roles they define,
// their service-account users and those users' client role mappings,
// client scopes, and scope mappings. Only Keycloak-style issuers answer,
// and only to their admins and the server's.

func (s *Server) adminRoutes() []operation {
	return []operation{
		{http.MethodGet, "/clients", "", false, s.findClients},
		{http.MethodGet, "/clients/{id}", "", false, s.findClient},
		{http.MethodPut, "/clients/{id}", "keycloak.client.update", true, s.updateClient},
		{http.MethodDelete, "/clients/{id}", "keycloak.client.delete", true, s.deleteClient},
		{http.MethodGet, "/clients/{id}/roles", "", false, s.listRoles},
		{http.MethodPost, "/clients/{id}/roles", "keycloak.client.role.create", true, s.createRole},
		{http.MethodGet, "/clients/{id}/roles/{roleName}", "", false, s.findRole},
		{http.MethodDelete, "/clients/{id}/roles/{roleName}", "keycloak.client.role.delete", true, s.deleteRole},
		{http.MethodGet, "/clients/{id}/service-account-user", "", false, s.serviceAccountUser},
		{http.MethodPost, "/clients/{id}/client-secret", "keycloak.client.secret.create", true, s.newClientSecret},
		{http.MethodGet, "/clients/{id}/client-secret", "", false, s.readClientSecret},
		{http.MethodGet, "/clients/{id}/default-client-scopes", "", false, s.listScopes(defaultScopes)},
		{http.MethodPut, "/clients/{id}/default-client-scopes/{scopeId}", "keycloak.client.scope.add", true, s.changeScope(defaultScopes, true)},
		{http.MethodDelete, "/clients/{id}/default-client-scopes/{scopeId}", "keycloak.client.scope.delete", true, s.changeScope(defaultScopes, false)},
		{http.MethodGet, "/clients/{id}/optional-client-scopes", "", false, s.listScopes(optionalScopes)},
		{http.MethodPut, "/clients/{id}/optional-client-scopes/{scopeId}", "keycloak.client.scope.add", true, s.changeScope(optionalScopes, true)},
		{http.MethodDelete, "/clients/{id}/optional-client-scopes/{scopeId}", "keycloak.client.scope.delete", true, s.changeScope(optionalScopes, false)},
		{http.MethodGet, "/clients/{id}/scope-mappings/clients/{client}", "", false, s.listMappings(scopeMappings)},
		{http.MethodPost, "/clients/{id}/scope-mappings/clients/{client}", "keycloak.client.scope-mapping.add", true, s.changeMappings(scopeMappings, true)},
		{http.MethodDelete, "/clients/{id}/scope-mappings/clients/{client}", "keycloak.client.scope-mapping.delete", true, s.changeMappings(scopeMappings, false)},
		{http.MethodGet, "/client-scopes", "", false, s.listClientScopes},
		{http.MethodGet, "/users/{id}", "", false, s.findUser},
		{http.MethodGet, "/users/{id}/role-mappings/clients/{client}", "", false, s.listMappings(roleMappings)},
		{http.MethodPost, "/users/{id}/role-mappings/clients/{client}", "keycloak.user.role-mapping.add", true, s.changeMappings(roleMappings, true)},
		{http.MethodDelete, "/users/{id}/role-mappings/clients/{client}", "keycloak.user.role-mapping.delete", true, s.changeMappings(roleMappings, false)},
	}
}

// adminError answers in Keycloak's shapes: errorMessage for a refused
// input, error otherwise. Keycloak's admin client reports either.
func adminError(w http.ResponseWriter, status int, message string) {
	field := "error"
	if status == http.StatusBadRequest || status == http.StatusConflict {
		field = "errorMessage"
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="authz-keycloak-admin", error="invalid_token"`)
	}
	writeJSON(w, status, map[string]string{field: message})
}

// admin admits an admin call: a valid token of an admin of the realm (or
// of the server), with the right to write when the call writes. Any
// refusal costs the caller one of its failures. The token is checked
// before the realm is looked up, so a stranger learns nothing of which
// realms exist.
func (s *Server) admin(rt operation) http.Handler {
	var run http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt.handler(w, r, r.Context().Value(callKey{}).(*call))
	})
	if rt.write {
		run = s.ops.Audited(rt.action, run)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		realm := r.PathValue("realm")
		token, ok := api.BearerToken(r.Header.Get("Authorization"))
		if !ok {
			s.failed(r)
			adminError(w, http.StatusUnauthorized, "HTTP 401 Unauthorized: a bearer token is required.")
			return
		}
		actor, err := s.ops.Authenticate(r.Context(), token)
		switch {
		case errors.Is(err, credential.ErrInvalidToken), errors.Is(err, api.ErrNotAnAdmin):
			s.failed(r)
			s.log.InfoContext(r.Context(), "keycloak admin token refused", "realm", realm, "reason", err.Error())
			adminError(w, http.StatusUnauthorized, "HTTP 401 Unauthorized: the bearer token is invalid, expired, or grants no admin rights.")
			return
		case err != nil:
			s.storeFault(w, r, err, func(status int, message string) { adminError(w, status, message) })
			return
		case !actor.May(realm, rt.write):
			s.failed(r)
			adminError(w, http.StatusForbidden, fmt.Sprintf("HTTP 403 Forbidden: client %q of realm %q may not make this call on realm %q.", actor.ClientID, actor.Issuer, realm))
			return
		}
		iss, err := s.issuerFor(r.Context(), realm, store.URLStyleKeycloak)
		switch {
		case errors.Is(err, store.ErrNotFound):
			adminError(w, http.StatusNotFound, "Realm not found.")
			return
		case err != nil:
			s.storeFault(w, r, err, func(status int, message string) { adminError(w, status, message) })
			return
		}
		ctx := api.WithActor(r.Context(), actor)
		run.ServeHTTP(w, r.WithContext(context.WithValue(ctx, callKey{}, &call{issuer: iss, actor: actor, registration: byAdmin})))
	})
}

// adminWriteFailed answers a failed admin operation, and reports whether
// there was one; what names the record for a 404.
func (s *Server) adminWriteFailed(w http.ResponseWriter, r *http.Request, what string, err error) bool {
	var invalid api.FieldErrors
	var bad *invalidInput
	switch {
	case err == nil:
		return false
	case errors.As(err, &bad):
		adminError(w, http.StatusBadRequest, bad.reason)
	case errors.As(err, &invalid):
		adminError(w, http.StatusBadRequest, invalid.Error())
	case errors.Is(err, store.ErrNotFound):
		adminError(w, http.StatusNotFound, "Could not find "+what+".")
	case errors.Is(err, store.ErrConflict):
		adminError(w, http.StatusConflict, what+" already exists.")
	default:
		s.storeFault(w, r, err, func(status int, message string) { adminError(w, status, message) })
	}
	return true
}

// clientByID loads the client a path's {id} (Keycloak's internal id)
// names.
func (s *Server) clientByID(w http.ResponseWriter, r *http.Request, c *call, param string) (store.Client, bool) {
	client, err := s.ops.Store().GetClientByInternalID(r.Context(), c.issuer.Name, r.PathValue(param))
	return client, !s.adminWriteFailed(w, r, "client", err)
}

// updateByID changes the client a path's {id} names, making sure it is
// still the same client (not one re-created under its client id).
func (s *Server) updateByID(w http.ResponseWriter, r *http.Request, c *call, client store.Client, change func(*store.Client) error) bool {
	_, err := s.ops.UpdateClient(r.Context(), c.issuer, client.ID, func(cl *store.Client) error {
		if cl.InternalID != client.InternalID {
			return store.ErrNotFound
		}
		return change(cl)
	})
	return !s.adminWriteFailed(w, r, "client", err)
}

// access is what Keycloak tells a caller it may do with a client.
func access(c *call) map[string]bool {
	manage := c.actor.May(c.issuer.Name, true)
	return map[string]bool{"view": true, "configure": manage, "manage": manage}
}

// Keycloak's default page size of admin listings, and bounds that keep a
// listing's cost (first + max rows read) small.
const (
	defaultMaxResults = 100
	maxMaxResults     = 1000
	maxFirstResult    = 10_000
)

// findClients lists clients: by exact client id, by a fragment of it with
// search=true, or all, a page (first, max) at a time.
func (s *Server) findClients(w http.ResponseWriter, r *http.Request, c *call) {
	q := r.URL.Query()
	first, err := intParam(q, "first", 0, 0, maxFirstResult)
	if err == nil {
		var max int
		max, err = intParam(q, "max", defaultMaxResults, -1, maxMaxResults)
		if max < 0 {
			max = maxMaxResults
		}
		q.Set("max", strconv.Itoa(max))
	}
	if err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	max, _ := strconv.Atoi(q.Get("max"))
	clientID, search := q.Get("clientId"), q.Get("search") == "true"
	var clients []store.Client
	if clientID != "" && !search {
		client, err := s.ops.Store().GetClient(r.Context(), c.issuer.Name, clientID)
		switch {
		case err == nil:
			clients = []store.Client{client}
		case !errors.Is(err, store.ErrNotFound):
			s.adminWriteFailed(w, r, "client", err)
			return
		}
	} else {
		clients, err = s.ops.Store().ListClients(r.Context(), c.issuer.Name, store.ClientQuery{
			IDContains: clientID, Page: store.Page{Limit: first + max}})
		if s.adminWriteFailed(w, r, "realm", err) {
			return
		}
	}
	out := []clientOutput{}
	for i, client := range clients {
		if i >= first && len(out) < max {
			out = append(out, representation(client, access(c)))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func intParam(q url.Values, name string, def, min, max int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, fmt.Errorf("%s must be a number from %d to %d", name, min, max)
	}
	return n, nil
}

func (s *Server) findClient(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, representation(client, access(c)))
}

// updateClient applies the fields a representation holds, as Keycloak's
// update does: what it leaves out stays.
func (s *Server) updateClient(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	var in clientInput
	if err := readBody(r, &in); err != nil {
		s.adminWriteFailed(w, r, "client", err)
		return
	}
	if s.updateByID(w, r, c, client, func(cl *store.Client) error {
		if _, err := in.applyTo(cl, c.rules(), false); err != nil {
			return err
		}
		return s.checkAuthentication(c.issuer, cl)
	}) {
		w.WriteHeader(http.StatusNoContent)
	}
}

func (s *Server) deleteClient(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	if s.adminWriteFailed(w, r, "client", s.ops.Store().DeleteClient(r.Context(), c.issuer.Name, client.ID)) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// roleRep is a RoleRepresentation of a client's role.
type roleRep struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Composite   bool   `json:"composite"`
	ClientRole  bool   `json:"clientRole"`
	ContainerID string `json:"containerId"`
}

func roleOf(client store.Client, role store.Role) roleRep {
	return roleRep{ID: role.ID, Name: role.Name, Description: role.Description, ClientRole: true, ContainerID: client.InternalID}
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	roles, err := s.ops.Store().ListRoles(r.Context(), c.issuer.Name, client.ID)
	if s.adminWriteFailed(w, r, "client", err) {
		return
	}
	out := make([]roleRep, 0, len(roles))
	for _, role := range roles {
		out = append(out, roleOf(client, role))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	var in struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := readBody(r, &in); err != nil {
		s.adminWriteFailed(w, r, "role", err)
		return
	}
	role, err := s.ops.CreateRole(r.Context(), store.Role{IssuerName: c.issuer.Name, ClientID: client.ID, Name: in.Name, Description: in.Description})
	if s.adminWriteFailed(w, r, fmt.Sprintf("Role with name %q", in.Name), err) {
		return
	}
	// Keycloak's admin client reads the new role's name from Location.
	w.Header().Set("Location", r.URL.Path+"/"+url.PathEscape(role.Name))
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) findRole(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	roles, err := s.ops.Store().ListRoles(r.Context(), c.issuer.Name, client.ID)
	if s.adminWriteFailed(w, r, "client", err) {
		return
	}
	i := slices.IndexFunc(roles, func(role store.Role) bool { return role.Name == r.PathValue("roleName") })
	if i < 0 {
		adminError(w, http.StatusNotFound, "Could not find role.")
		return
	}
	writeJSON(w, http.StatusOK, roleOf(client, roles[i]))
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	if s.adminWriteFailed(w, r, "role", s.ops.Store().DeleteRole(r.Context(), c.issuer.Name, client.ID, r.PathValue("roleName"))) {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// userRep is the UserRepresentation of a client's service account.
type userRep struct {
	ID                         string          `json:"id"`
	Username                   string          `json:"username"`
	Enabled                    bool            `json:"enabled"`
	EmailVerified              bool            `json:"emailVerified"`
	CreatedTimestamp           int64           `json:"createdTimestamp"`
	Totp                       bool            `json:"totp"`
	DisableableCredentialTypes []string        `json:"disableableCredentialTypes"`
	RequiredActions            []string        `json:"requiredActions"`
	NotBefore                  int             `json:"notBefore"`
	ServiceAccountClientID     string          `json:"serviceAccountClientId"`
	Access                     map[string]bool `json:"access"`
}

func userOf(c *call, client store.Client) userRep {
	return userRep{
		ID:                         client.ServiceAccountID,
		Username:                   credential.ServiceAccountUsername(client.ID),
		Enabled:                    true,
		CreatedTimestamp:           client.CreatedAt.UnixMilli(),
		DisableableCredentialTypes: []string{},
		RequiredActions:            []string{},
		ServiceAccountClientID:     client.InternalID,
		Access:                     access(c),
	}
}

func (s *Server) serviceAccountUser(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, userOf(c, client))
}

// findUser answers for service-account users, the only users here.
func (s *Server) findUser(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByServiceAccount(w, r, c)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, userOf(c, client))
}

func (s *Server) clientByServiceAccount(w http.ResponseWriter, r *http.Request, c *call) (store.Client, bool) {
	client, err := s.ops.Store().GetClientByServiceAccount(r.Context(), c.issuer.Name, r.PathValue("id"))
	return client, !s.adminWriteFailed(w, r, "user", err)
}

// newClientSecret replaces a client's secrets with a new one, which is
// shown once.
func (s *Server) newClientSecret(w http.ResponseWriter, r *http.Request, c *call) {
	client, ok := s.clientByID(w, r, c, "id")
	if !ok {
		return
	}
	revokeOthers := time.Duration(0)
	secret, _, err := s.ops.AddClientSecret(r.Context(), c.issuer.Name, client.ID, &revokeOthers)
	if s.adminWriteFailed(w, r, "client", err) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"type": "secret", "value": secret.Value})
}

// readClientSecret cannot answer the secret: only its digest is kept.
func (s *Server) readClientSecret(w http.ResponseWriter, r *http.Request, c *call) {
	if _, ok := s.clientByID(w, r, c, "id"); !ok {
		return
	}
	adminError(w, http.StatusNotFound, "A client's secret cannot be read back: this server keeps only its digest. "+
		"POST to client-secret to give the client a new one, shown once.")
}

func (s *Server) listClientScopes(w http.ResponseWriter, _ *http.Request, c *call) {
	writeJSON(w, http.StatusOK, clientScopes(c.issuer))
}

// scopeKind is a client's default or optional scopes.
type scopeKind int

const (
	defaultScopes scopeKind = iota
	optionalScopes
)

// scopes returns the client's scopes of a kind, and the other kind.
func (k scopeKind) scopes(c *store.Client) (these, others *[]string) {
	if k == defaultScopes {
		return &c.Scopes, &c.OptionalScopes
	}
	return &c.OptionalScopes, &c.Scopes
}

func (s *Server) listScopes(kind scopeKind) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		client, ok := s.clientByID(w, r, c, "id")
		if !ok {
			return
		}
		these, _ := kind.scopes(&client)
		writeJSON(w, http.StatusOK, scopeList(c.issuer, *these))
	}
}

// changeScope links a client scope to a client as default or optional
// (adding), or unlinks it. A scope is one or the other, so adding it as
// one kind takes it from the other.
func (s *Server) changeScope(kind scopeKind, add bool) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		client, ok := s.clientByID(w, r, c, "id")
		if !ok {
			return
		}
		scope, ok := scopeByID(c.issuer, r.PathValue("scopeId"))
		if !ok {
			adminError(w, http.StatusNotFound, "Could not find client scope.")
			return
		}
		if s.updateByID(w, r, c, client, func(cl *store.Client) error {
			these, others := kind.scopes(cl)
			*these = slices.DeleteFunc(*these, func(n string) bool { return n == scope.Name })
			if add {
				*others = slices.DeleteFunc(*others, func(n string) bool { return n == scope.Name })
				*these = append(*these, scope.Name)
			}
			return nil
		}) {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// mappingKind is the roles mapped to a service account (its role
// mappings) or the roles a client's tokens may carry (its scope mappings).
type mappingKind int

const (
	roleMappings mappingKind = iota
	scopeMappings
)

func (k mappingKind) refs(c *store.Client) *[]store.RoleRef {
	if k == roleMappings {
		return &c.RoleMappings
	}
	return &c.ScopeMappings
}

// mappingSubject loads the client whose mappings a path names: through its
// service-account user for role mappings, by internal id for scope
// mappings; and the client whose roles are mapped.
func (s *Server) mappingSubject(w http.ResponseWriter, r *http.Request, c *call, kind mappingKind) (subject, roles store.Client, ok bool) {
	if kind == roleMappings {
		subject, ok = s.clientByServiceAccount(w, r, c)
	} else {
		subject, ok = s.clientByID(w, r, c, "id")
	}
	if !ok {
		return subject, roles, false
	}
	roles, ok = s.clientByID(w, r, c, "client")
	return subject, roles, ok
}

func (s *Server) listMappings(kind mappingKind) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		subject, roles, ok := s.mappingSubject(w, r, c, kind)
		if !ok {
			return
		}
		out := []roleRep{}
		for _, ref := range *kind.refs(&subject) {
			if ref.ClientID == roles.ID {
				out = append(out, roleOf(roles, store.Role{ID: ref.ID, Name: ref.Name}))
			}
		}
		writeJSON(w, http.StatusOK, out)
	}
}

// requestedRoles reads a body of role representations and finds each
// among the roles the roles client defines, by id or by name; when both
// are given they must agree, as Keycloak checks.
func (s *Server) requestedRoles(w http.ResponseWriter, r *http.Request, c *call, roles store.Client) ([]store.RoleRef, bool) {
	var in []roleRep
	if err := readBody(r, &in); err != nil {
		s.adminWriteFailed(w, r, "role", err)
		return nil, false
	}
	defined, err := s.ops.Store().ListRoles(r.Context(), c.issuer.Name, roles.ID)
	if s.adminWriteFailed(w, r, "client", err) {
		return nil, false
	}
	var refs []store.RoleRef
	for _, want := range in {
		i := slices.IndexFunc(defined, func(d store.Role) bool {
			return (want.ID == "" || d.ID == want.ID) && (want.Name == "" || d.Name == want.Name) && (want.ID != "" || want.Name != "")
		})
		if i < 0 {
			adminError(w, http.StatusNotFound, fmt.Sprintf("Could not find role %q (id %q) of client %q.", want.Name, want.ID, roles.ID))
			return nil, false
		}
		if !slices.ContainsFunc(refs, func(r store.RoleRef) bool { return r.ID == defined[i].ID }) {
			refs = append(refs, store.RoleRef{ID: defined[i].ID, ClientID: roles.ID, Name: defined[i].Name})
		}
	}
	return refs, true
}

// changeMappings adds the roles a body names to a client's role or scope
// mappings, or removes them.
func (s *Server) changeMappings(kind mappingKind, add bool) func(http.ResponseWriter, *http.Request, *call) {
	return func(w http.ResponseWriter, r *http.Request, c *call) {
		subject, roles, ok := s.mappingSubject(w, r, c, kind)
		if !ok {
			return
		}
		named, ok := s.requestedRoles(w, r, c, roles)
		if !ok {
			return
		}
		if s.updateByID(w, r, c, subject, func(cl *store.Client) error {
			refs := kind.refs(cl)
			*refs = slices.DeleteFunc(*refs, func(have store.RoleRef) bool {
				return slices.ContainsFunc(named, func(ref store.RoleRef) bool { return ref.ID == have.ID })
			})
			if add {
				*refs = append(*refs, named...)
			}
			return nil
		}) {
			w.WriteHeader(http.StatusNoContent)
		}
	}
}
