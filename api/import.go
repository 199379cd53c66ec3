package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/authz-dev/authz/keycloak/realm"
	"github.com/authz-dev/authz/store"
)

// ImportPath is where a Keycloak realm export is imported. Its body may be
// far larger than any other admin request, so the listener leaves it to
// the handler, which reads it only once the caller is a system admin.
const ImportPath = Prefix + "/imports/keycloak"

// importTimeout bounds reading a realm export, and twice it writing the
// answer.
const importTimeout = 2 * time.Minute

// MaxImportBytes bounds a realm export: ten thousand clients with their
// keys and mappings fit in a quarter of it.
const MaxImportBytes = 64 << 20

// ImportResponse says what an import of a Keycloak realm did, or with
// dryRun=true would do: each record created, updated or left unchanged,
// what the export holds that was left out and why, and what the operator
// should know.
type ImportResponse struct {
	Issuer    string               `json:"issuer"`
	IssuerURL string               `json:"issuerUrl"`
	DryRun    bool                 `json:"dryRun"`
	Summary   ImportSummary        `json:"summary"`
	Items     []ImportItemResponse `json:"items"`
	Skipped   []ImportSkip         `json:"skipped"`
	Warnings  []string             `json:"warnings"`
}

// ImportSummary counts the records of an import by result.
type ImportSummary struct {
	Created   int `json:"created"`
	Updated   int `json:"updated"`
	Unchanged int `json:"unchanged"`
	Skipped   int `json:"skipped"`
}

// ImportItemResponse is one record of an import: kind (issuer, role,
// client, key), name, result, and the fields an update changes.
type ImportItemResponse struct {
	Kind    string   `json:"kind"`
	Name    string   `json:"name"`
	Result  string   `json:"result"`
	Changes []string `json:"changes,omitempty"`
	Detail  string   `json:"detail,omitempty"`
}

// ImportSkip is a part of the export left out, with the reason.
type ImportSkip struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

var importResults = map[store.PutResult]string{store.Created: ResultCreated, store.Updated: ResultUpdated, store.Unchanged: ResultUnchanged}

// importKeycloak imports a realm export as one Keycloak-style issuer, in
// one transaction: secrets as digests, keys sealed under their Keycloak
// kids, ids kept. The body is never logged or echoed: it holds secrets
// and private keys.
func (s *Server) importKeycloak(w http.ResponseWriter, r *http.Request) {
	// A realm of ten thousand clients takes seconds to send and to write:
	// more than the listener's timeouts give any other request.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(importTimeout))
	_ = rc.SetWriteDeadline(time.Now().Add(2 * importTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxImportBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeProblem(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("The realm export exceeds %d bytes.", MaxImportBytes))
		return
	case err != nil:
		writeProblem(w, http.StatusBadRequest, "The realm export could not be read.")
		return
	}
	rep, err := realm.ParseBytes(body)
	if err != nil {
		writeProblem(w, http.StatusBadRequest, upperFirst(err.Error())+". Nothing was imported.")
		return
	}
	plan, err := realm.Translate(rep, realm.Options{Issuer: r.URL.Query().Get("issuer"), Now: s.now()})
	if err != nil {
		writeProblem(w, http.StatusUnprocessableEntity, fmt.Sprintf("Realm %q cannot be imported: %v. Nothing was imported.", rep.Realm, err))
		return
	}
	name := plan.Import.Issuer.Name
	if name == SystemIssuer {
		writeProblem(w, http.StatusUnprocessableEntity, fmt.Sprintf("Issuer %q holds this server's admins and takes no import: pass another name (--issuer). Nothing was imported.", SystemIssuer))
		return
	}
	existing, err := s.store.GetIssuer(r.Context(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", name), err)
		return
	case !existing.Keycloak():
		writeProblem(w, http.StatusConflict, fmt.Sprintf("Issuer %q exists and is served at /issuers/%s: an import would move it to /realms/%s under its gateways. Import under another name (--issuer). Nothing was imported.", name, name, name))
		return
	case r.URL.Query().Get("update") != "true" && !dryRun(r):
		writeProblem(w, http.StatusConflict, fmt.Sprintf("Issuer %q exists: pass update=true (--update) to bring it, its clients (secrets included) and roles in line with this file. Nothing was imported.", name))
		return
	case r.URL.Query().Get("update") != "true":
		plan.Warnings = append(plan.Warnings, fmt.Sprintf("issuer %q exists: the import itself needs --update", name))
	}
	for _, c := range plan.Import.Clients {
		if c.JWKSURI == "" {
			continue
		}
		if err := s.public.ValidateJWKSURI(c.JWKSURI); err != nil {
			writeProblem(w, http.StatusUnprocessableEntity, fmt.Sprintf("Realm %q cannot be imported: client %q: its jwks.url %v. Nothing was imported.", rep.Realm, c.ID, err))
			return
		}
	}
	plan.Import.Keys = s.keys.ImportKeys(plan.Import.Issuer, plan.Keys)
	items, err := s.store.ImportIssuer(r.Context(), plan.Import, dryRun(r))
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Realm %q (as issuer %q)", rep.Realm, plan.Import.Issuer.Name), err)
		return
	}
	out := ImportResponse{
		Issuer:    plan.Import.Issuer.Name,
		IssuerURL: s.public.IssuerURL(plan.Import.Issuer),
		DryRun:    dryRun(r),
		Items:     make([]ImportItemResponse, 0, len(items)),
		Skipped:   make([]ImportSkip, 0, len(plan.Skipped)),
		Warnings:  append([]string{}, plan.Warnings...),
	}
	for _, it := range items {
		item := ImportItemResponse{Kind: it.Kind, Name: it.Name, Result: importResults[it.Result], Detail: it.Detail}
		for _, c := range it.Changed {
			item.Changes = append(item.Changes, fieldName(it.Kind, c))
		}
		switch it.Result {
		case store.Created:
			out.Summary.Created++
		case store.Updated:
			out.Summary.Updated++
		default:
			out.Summary.Unchanged++
		}
		out.Items = append(out.Items, item)
	}
	for _, sk := range plan.Skipped {
		out.Skipped = append(out.Skipped, ImportSkip(sk))
	}
	out.Summary.Skipped = len(out.Skipped)
	s.log.InfoContext(r.Context(), "keycloak realm import", "realm", rep.Realm, "issuer", out.Issuer, "dry_run", out.DryRun,
		"created", out.Summary.Created, "updated", out.Summary.Updated, "unchanged", out.Summary.Unchanged, "skipped", out.Summary.Skipped)
	writeJSON(w, http.StatusOK, out)
}

// fieldName spells a changed setting of a record as the API does.
func fieldName(kind, field string) string {
	names := map[string]map[string]string{store.ImportIssuerKind: issuerFields, store.ImportClientKind: clientFields}[kind]
	if n, ok := names[field]; ok {
		return n
	}
	return strings.ToLower(field[:1]) + field[1:]
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
