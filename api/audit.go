package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authz-dev/authz/store"
)

// statusRecorder remembers the status a handler answered.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection: a realm import
// extends its deadlines through it, and without this they stay the
// listener's few seconds.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Audited records every write: who, what, which resource, when, and how it
// ended. It records no request body, so no secret can reach the log. The
// actor comes from the request's context (WithActor).
func (s *Server) Audited(action string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dryRun(r) {
			// A dry run writes nothing, so there is nothing to audit.
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		outcome := "success"
		if rec.status >= http.StatusBadRequest {
			outcome = "failure"
		}
		who := ActorFrom(r.Context())
		entry := store.AuditEntry{
			Actor:       who.ClientID,
			ActorIssuer: who.Issuer,
			Action:      action,
			Resource:    strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, Prefix), "/"),
			Outcome:     outcome,
			Status:      rec.status,
		}
		s.log.InfoContext(r.Context(), "audit", "actor", entry.Actor, "actor_issuer", entry.ActorIssuer, "action", entry.Action, "resource", entry.Resource,
			"outcome", entry.Outcome, "status", entry.Status)
		// The write has happened; a lost audit row must not turn it into an
		// error, but it must be loud.
		if err := s.store.AppendAudit(r.Context(), entry); err != nil {
			s.log.ErrorContext(r.Context(), "audit entry not stored", "action", action, "resource", entry.Resource, "err", err)
		}
	})
}

// AuditEntryResponse is one admin write as the audit log shows it.
type AuditEntryResponse struct {
	ID          int64  `json:"id"`
	At          string `json:"at"`
	Actor       string `json:"actor"`
	ActorIssuer string `json:"actorIssuer"`
	Action      string `json:"action"`
	Resource    string `json:"resource"`
	Outcome     string `json:"outcome"`
	Status      int    `json:"status"`
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	p, ok := readPage(w, r)
	if !ok {
		return
	}
	if p.After != "" {
		if _, err := strconv.ParseInt(p.After, 10, 64); err != nil {
			writeProblem(w, http.StatusBadRequest, "The cursor is not valid.", FieldError{Field: "cursor", Reason: "was not issued by this API"})
			return
		}
	}
	entries, err := s.store.ListAudit(r.Context(), p.plusOne())
	if err != nil {
		s.writeStoreError(w, "The audit log", err)
		return
	}
	entries, next := cut(p, entries, func(e store.AuditEntry) string { return strconv.FormatInt(e.ID, 10) })
	items := make([]AuditEntryResponse, 0, len(entries))
	for _, e := range entries {
		items = append(items, AuditEntryResponse{ID: e.ID, At: e.At.UTC().Format(time.RFC3339Nano), Actor: e.Actor, ActorIssuer: e.ActorIssuer,
			Action: e.Action, Resource: e.Resource, Outcome: e.Outcome, Status: e.Status})
	}
	writeJSON(w, http.StatusOK, ListResponse[AuditEntryResponse]{Items: items, NextCursor: next})
}
