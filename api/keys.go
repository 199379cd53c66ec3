package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/store"
)

// KeyResponse describes a signing key: its state and dates, never private
// material.
type KeyResponse struct {
	KID         string `json:"kid"`
	Algorithm   string `json:"algorithm"`
	State       string `json:"state"`
	PublishedAt string `json:"publishedAt"`
	ActivateAt  string `json:"activateAt,omitempty"`
	ActivatedAt string `json:"activatedAt,omitempty"`
	RetiredAt   string `json:"retiredAt,omitempty"`
	DeleteAt    string `json:"deleteAt,omitempty"`
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func keysResponse(keys []store.SigningKey) ListResponse[KeyResponse] {
	items := make([]KeyResponse, 0, len(keys))
	for _, k := range keys {
		items = append(items, KeyResponse{
			KID: k.ID, Algorithm: k.Algorithm, State: string(k.State), PublishedAt: formatTime(k.CreatedAt),
			ActivateAt: formatTime(k.ActivateAt), ActivatedAt: formatTime(k.ActivatedAt),
			RetiredAt: formatTime(k.RetiredAt), DeleteAt: formatTime(k.DeleteAt),
		})
	}
	return ListResponse[KeyResponse]{Items: items}
}

func (s *Server) writeKeys(w http.ResponseWriter, r *http.Request, status int) {
	name := mux.Vars(r)["name"]
	keys, err := s.store.ListSigningKeys(r.Context(), name)
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("The keys of issuer %q", name), err)
		return
	}
	writeJSON(w, status, keysResponse(keys))
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.loadIssuer(w, r); !ok {
		return
	}
	s.writeKeys(w, r, http.StatusOK)
}

// rotateKeys starts a normal rotation: the new key is published now and
// signs after the publication lead.
func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if err := s.keys.RotateNow(r.Context(), name); err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", name), err)
		return
	}
	s.writeKeys(w, r, http.StatusOK)
}

// revokeKey is the emergency for a compromised key: it leaves every node's
// JWKS at once and a fresh key takes over.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	if err := s.keys.Revoke(r.Context(), vars["name"], vars["kid"]); err != nil {
		s.writeStoreError(w, fmt.Sprintf("Key %q of issuer %q", vars["kid"], vars["name"]), err)
		return
	}
	s.writeKeys(w, r, http.StatusOK)
}
