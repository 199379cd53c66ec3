package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/store"
)

// Bounds of an initial access token.
const (
	maxInitialAccessLifetime = 366 * 24 * time.Hour
	maxInitialAccessCount    = 100_000
)

// CreateInitialAccessTokenRequest is the body of POST
// /issuers/{name}/initial-access-tokens.
type CreateInitialAccessTokenRequest struct {
	// ExpiresIn is the token's lifetime in seconds; 0 or absent: no expiry.
	ExpiresIn int64 `json:"expiresIn,omitempty"`
	// Count is how many registrations the token allows; absent: 1.
	Count *int `json:"count,omitempty"`
}

// InitialAccessTokenResponse describes an initial access token, never the
// token itself.
type InitialAccessTokenResponse struct {
	ID             string `json:"id"`
	CreatedAt      string `json:"createdAt"`
	ExpiresAt      string `json:"expiresAt,omitempty"`
	RemainingCount int    `json:"remainingCount"`
}

// CreatedInitialAccessToken is the only answer that carries the token.
type CreatedInitialAccessToken struct {
	InitialAccessTokenResponse
	Token string `json:"token"`
}

func initialAccessResponse(t store.InitialAccessToken) InitialAccessTokenResponse {
	return InitialAccessTokenResponse{ID: t.ID, CreatedAt: formatTime(t.CreatedAt), ExpiresAt: formatTime(t.ExpiresAt), RemainingCount: t.RemainingCount}
}

// createInitialAccessToken makes a token that lets its holder register
// clients of the issuer through the registration service: until it
// expires, as many times as its count; only successful registrations
// spend it.
func (s *Server) createInitialAccessToken(w http.ResponseWriter, r *http.Request) {
	var req CreateInitialAccessTokenRequest
	if r.ContentLength != 0 && !decodeBody(w, r, &req) {
		return
	}
	count := 1
	if req.Count != nil {
		count = *req.Count
	}
	var errs []FieldError
	if req.ExpiresIn < 0 || time.Duration(req.ExpiresIn)*time.Second > maxInitialAccessLifetime {
		errs = append(errs, FieldError{Field: "expiresIn", Reason: fmt.Sprintf("must be from 0 (no expiry) to %d seconds", int(maxInitialAccessLifetime/time.Second))})
	}
	if count < 1 || count > maxInitialAccessCount {
		errs = append(errs, FieldError{Field: "count", Reason: fmt.Sprintf("must be from 1 to %d", maxInitialAccessCount)})
	}
	if mux.Vars(r)["name"] == SystemIssuer {
		errs = append(errs, FieldError{Field: "issuer", Reason: "the system issuer's clients are admins: only an admin registers them, through this API"})
	}
	if len(errs) > 0 {
		writeProblem(w, http.StatusUnprocessableEntity, "The initial access token is invalid.", errs...)
		return
	}
	t := store.InitialAccessToken{IssuerName: mux.Vars(r)["name"], RemainingCount: count}
	if req.ExpiresIn > 0 {
		// Whole seconds, as the answer shows it, rounded up so the token
		// lives at least as long as asked.
		expires := s.now().Add(time.Duration(req.ExpiresIn) * time.Second)
		if whole := expires.Truncate(time.Second); whole.Before(expires) {
			expires = whole.Add(time.Second)
		}
		t.ExpiresAt = expires
	}
	token := credential.NewOpaqueToken(credential.InitialAccessPrefix)
	t.Digest = credential.SecretDigest(token)
	stored, err := s.store.CreateInitialAccessToken(r.Context(), t)
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", t.IssuerName), err)
		return
	}
	w.Header().Set("Location", r.URL.Path+"/"+stored.ID)
	writeJSON(w, http.StatusCreated, CreatedInitialAccessToken{InitialAccessTokenResponse: initialAccessResponse(stored), Token: token})
}

func (s *Server) listInitialAccessTokens(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	tokens, err := s.store.ListInitialAccessTokens(r.Context(), name)
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", name), err)
		return
	}
	items := make([]InitialAccessTokenResponse, 0, len(tokens))
	for _, t := range tokens {
		items = append(items, initialAccessResponse(t))
	}
	writeJSON(w, http.StatusOK, ListResponse[InitialAccessTokenResponse]{Items: items})
}

func (s *Server) deleteInitialAccessToken(w http.ResponseWriter, r *http.Request) {
	vars := mux.Vars(r)
	if err := s.store.DeleteInitialAccessToken(r.Context(), vars["name"], vars["tokenId"]); err != nil {
		s.writeStoreError(w, fmt.Sprintf("Initial access token %q of issuer %q", vars["tokenId"], vars["name"]), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
