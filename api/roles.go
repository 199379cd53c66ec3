package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/store"
)

// RoleResponse is a role defined on a client (a resource client, such as an
// API) or, without client, on the issuer.
type RoleResponse struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	Client      string `json:"client,omitempty"`
}

// CreateRoleRequest is the body of POST .../roles.
type CreateRoleRequest struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

func roleResponse(r store.Role) RoleResponse {
	return RoleResponse{ID: r.ID, Name: r.Name, Description: r.Description, Client: r.ClientID}
}

// The issuer's own roles (realm roles, in Keycloak's words) are the roles
// of client "": one set of handlers serves both.

func (s *Server) listRealmRoles(w http.ResponseWriter, r *http.Request)  { s.listRoles(w, r, "") }
func (s *Server) createRealmRole(w http.ResponseWriter, r *http.Request) { s.createRole(w, r, "") }
func (s *Server) deleteRealmRole(w http.ResponseWriter, r *http.Request) { s.deleteRole(w, r, "") }

func (s *Server) listClientRoles(w http.ResponseWriter, r *http.Request) {
	s.listRoles(w, r, mux.Vars(r)["clientId"])
}

func (s *Server) createClientRole(w http.ResponseWriter, r *http.Request) {
	s.createRole(w, r, mux.Vars(r)["clientId"])
}

func (s *Server) deleteClientRole(w http.ResponseWriter, r *http.Request) {
	s.deleteRole(w, r, mux.Vars(r)["clientId"])
}

// roleOwner names the client or issuer whose roles a request is about.
func roleOwner(issuerName, clientID string) string {
	if clientID == "" {
		return fmt.Sprintf("Issuer %q", issuerName)
	}
	return fmt.Sprintf("Client %q of issuer %q", clientID, issuerName)
}

func (s *Server) listRoles(w http.ResponseWriter, r *http.Request, clientID string) {
	name := mux.Vars(r)["name"]
	roles, err := s.store.ListRoles(r.Context(), name, clientID)
	if err != nil {
		s.writeStoreError(w, roleOwner(name, clientID), err)
		return
	}
	items := make([]RoleResponse, 0, len(roles))
	for _, role := range roles {
		items = append(items, roleResponse(role))
	}
	writeJSON(w, http.StatusOK, ListResponse[RoleResponse]{Items: items})
}

func (s *Server) createRole(w http.ResponseWriter, r *http.Request, clientID string) {
	var req CreateRoleRequest
	if !decodeBody(w, r, &req) {
		return
	}
	name := mux.Vars(r)["name"]
	role, err := s.CreateRole(r.Context(), store.Role{IssuerName: name, ClientID: clientID, Name: req.Name, Description: req.Description})
	var invalid FieldErrors
	switch {
	case errors.As(err, &invalid):
		writeProblem(w, http.StatusUnprocessableEntity, "The role is invalid.", invalid...)
		return
	case errors.Is(err, store.ErrConflict):
		writeProblem(w, http.StatusConflict, fmt.Sprintf("%s already has a role %q.", roleOwner(name, clientID), req.Name),
			FieldError{Field: "name", Reason: "is taken"})
		return
	case err != nil:
		s.writeStoreError(w, roleOwner(name, clientID), err)
		return
	}
	w.Header().Set("Location", r.URL.Path+"/"+role.Name)
	writeJSON(w, http.StatusCreated, roleResponse(role))
}

func (s *Server) deleteRole(w http.ResponseWriter, r *http.Request, clientID string) {
	vars := mux.Vars(r)
	if err := s.store.DeleteRole(r.Context(), vars["name"], clientID, vars["role"]); err != nil {
		s.writeStoreError(w, fmt.Sprintf("Role %q of %s", vars["role"], roleOwner(vars["name"], clientID)), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
