package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/credential"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
)

// Limits on token lifetimes: long enough for a batch job, short enough that
// a leaked token soon dies.
const (
	minTokenLifetime     = time.Minute
	maxTokenLifetime     = 24 * time.Hour
	defaultTokenLifetime = 5 * time.Minute
)

// scopeTokenPattern is RFC 6749 §3.3's scope-token; roles follow the same
// rule so they can travel in the same places.
var scopeTokenPattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]{1,128}$`)

// AuthenticatorList accepts the portal's single clientAuthenticator string
// as well as a list.
type AuthenticatorList []string

// UnmarshalJSON reads a string or a list of strings.
func (l *AuthenticatorList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("clientAuthenticator must be a string or a list of strings")
	}
	*l = many
	return nil
}

// IssuerRequest is the body of PUT /issuers/{name}: the whole issuer. Absent
// fields take their defaults; times are in seconds.
type IssuerRequest struct {
	Description         string            `json:"description,omitempty"`
	AvailableScopes     []string          `json:"availableScopes,omitempty"`
	ClientRoles         []string          `json:"clientRoles,omitempty"`
	Audience            string            `json:"audience"`
	TokenLifetime       *int64            `json:"tokenLifetime,omitempty"`
	SigningAlgorithm    string            `json:"signingAlgorithm,omitempty"`
	ClientAuthenticator AuthenticatorList `json:"clientAuthenticator,omitempty"`
	KeyRotationPeriod   int64             `json:"keyRotationPeriod,omitempty"`
	KeyPublishLead      int64             `json:"keyPublishLead,omitempty"`
	KeyRetirePeriod     int64             `json:"keyRetirePeriod,omitempty"`
	// URLStyle "keycloak" serves the issuer at /realms/{name}, with
	// Keycloak's paths and token claims; empty, at /issuers/{name}.
	URLStyle string `json:"urlStyle,omitempty"`
	// AnonymousRegistration lets anyone register clients through the
	// registration service, without a token.
	AnonymousRegistration bool `json:"anonymousRegistration,omitempty"`
}

// IssuerResponse is a CredentialIssuer as the admin API shows it.
type IssuerResponse struct {
	Name                  string   `json:"name"`
	Description           string   `json:"description"`
	Flow                  string   `json:"flow"`
	AvailableScopes       []string `json:"availableScopes"`
	ClientRoles           []string `json:"clientRoles"`
	Audience              string   `json:"audience"`
	TokenLifetime         int64    `json:"tokenLifetime"`
	SigningAlgorithm      string   `json:"signingAlgorithm"`
	ClientAuthenticator   []string `json:"clientAuthenticator"`
	KeyRotationPeriod     int64    `json:"keyRotationPeriod"`
	KeyPublishLead        int64    `json:"keyPublishLead"`
	KeyRetirePeriod       int64    `json:"keyRetirePeriod"`
	URLStyle              string   `json:"urlStyle"`
	AnonymousRegistration bool     `json:"anonymousRegistration"`
	Revision              int64    `json:"revision"`
	Issuer                string   `json:"issuer"`
	TokenEndpoint         string   `json:"tokenEndpoint"`
	JWKSURI               string   `json:"jwksUri"`
	RegistrationEndpoint  string   `json:"registrationEndpoint"`
	CreatedAt             string   `json:"createdAt"`
	UpdatedAt             string   `json:"updatedAt"`
	// Warnings tell the operator what a change will do to gateways.
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) issuerResponse(iss store.Issuer) IssuerResponse {
	return IssuerResponse{
		Name:                  iss.Name,
		Description:           iss.Description,
		Flow:                  "client-credentials",
		AvailableScopes:       iss.AvailableScopes,
		ClientRoles:           iss.ClientRoles,
		Audience:              iss.Audience,
		TokenLifetime:         int64(iss.TokenLifetime / time.Second),
		SigningAlgorithm:      iss.SigningAlgorithm,
		ClientAuthenticator:   iss.ClientAuthenticators,
		KeyRotationPeriod:     int64(iss.KeyRotationPeriod / time.Second),
		KeyPublishLead:        int64(iss.KeyPublishLead / time.Second),
		KeyRetirePeriod:       int64(iss.KeyRetirePeriod / time.Second),
		URLStyle:              iss.URLStyle,
		AnonymousRegistration: iss.AnonymousRegistration,
		Revision:              iss.Revision,
		Issuer:                s.public.IssuerURL(iss),
		TokenEndpoint:         s.public.TokenURL(iss),
		JWKSURI:               s.public.JWKSURL(iss),
		RegistrationEndpoint:  s.public.RegistrationURL(iss),
		CreatedAt:             iss.CreatedAt.UTC().Format(time.RFC3339),
		UpdatedAt:             iss.UpdatedAt.UTC().Format(time.RFC3339),
	}
}

func issuerETag(iss store.Issuer) string { return `"` + strconv.FormatInt(iss.Revision, 10) + `"` }

// ifMatchRevision reads If-Match: 0 when absent, the revision of a quoted
// ETag, and -1 for anything that can match no revision.
func ifMatchRevision(r *http.Request) int64 {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
	if err != nil || n < 1 {
		return -1
	}
	return n
}

func validateTokens(field string, values []string, what string) []FieldError {
	var errs []FieldError
	seen := map[string]bool{}
	for i, v := range values {
		switch {
		case !scopeTokenPattern.MatchString(v):
			errs = append(errs, FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q is not a valid %s: 1 to 128 printable characters, no spaces, quotes or backslashes", v, what)})
		case seen[v]:
			errs = append(errs, FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("%q is listed twice", v)})
		}
		seen[v] = true
	}
	return errs
}

func validateLifetime(seconds *int64) (time.Duration, []FieldError) {
	if seconds == nil {
		return 0, nil
	}
	d := time.Duration(*seconds) * time.Second
	if d < minTokenLifetime || d > maxTokenLifetime {
		return 0, []FieldError{{Field: "tokenLifetime", Reason: fmt.Sprintf("must be from %d to %d seconds",
			int(minTokenLifetime/time.Second), int(maxTokenLifetime/time.Second))}}
	}
	return d, nil
}

func (r IssuerRequest) toIssuer(name string) (store.Issuer, []FieldError) {
	var errs []FieldError
	if !credential.ValidIssuerName(name) {
		errs = append(errs, FieldError{Field: "name", Reason: "must be 3 to 63 characters of lowercase letters, digits and '-', starting with a letter"})
	}
	errs = append(errs, validateTokens("availableScopes", r.AvailableScopes, "scope")...)
	errs = append(errs, validateTokens("clientRoles", r.ClientRoles, "role")...)
	if r.Audience == "" {
		errs = append(errs, FieldError{Field: "audience", Reason: "is required: RFC 9068 tokens always carry aud"})
	}
	lifetime, lifetimeErrs := validateLifetime(r.TokenLifetime)
	errs = append(errs, lifetimeErrs...)
	if r.TokenLifetime == nil {
		lifetime = defaultTokenLifetime
	}
	alg := r.SigningAlgorithm
	if alg == "" {
		alg = keys.RS256
	}
	if !keys.SupportedAlgorithm(alg) {
		errs = append(errs, FieldError{Field: "signingAlgorithm", Reason: "must be one of " + strings.Join(keys.Algorithms(), ", ")})
	}
	errs = append(errs, validateSchedule(r, lifetime)...)
	if r.URLStyle != store.URLStyleNative && r.URLStyle != store.URLStyleKeycloak {
		errs = append(errs, FieldError{Field: "urlStyle", Reason: `must be "keycloak", or empty for /issuers/{name}`})
	}
	authenticators := []string(r.ClientAuthenticator)
	if len(authenticators) == 0 {
		authenticators = []string{credential.ClientSecret}
	}
	for i, a := range authenticators {
		if !slices.Contains(credential.Authenticators(), a) {
			errs = append(errs, FieldError{Field: fmt.Sprintf("clientAuthenticator[%d]", i),
				Reason: fmt.Sprintf("%q is not one of %s", a, strings.Join(credential.Authenticators(), ", "))})
		}
	}
	return store.Issuer{
		Name:                  name,
		Description:           r.Description,
		AvailableScopes:       r.AvailableScopes,
		ClientRoles:           r.ClientRoles,
		Audience:              r.Audience,
		TokenLifetime:         lifetime,
		SigningAlgorithm:      alg,
		ClientAuthenticators:  slices.Compact(slices.Sorted(slices.Values(authenticators))),
		KeyRotationPeriod:     time.Duration(r.KeyRotationPeriod) * time.Second,
		KeyPublishLead:        time.Duration(r.KeyPublishLead) * time.Second,
		KeyRetirePeriod:       time.Duration(r.KeyRetirePeriod) * time.Second,
		URLStyle:              r.URLStyle,
		AnonymousRegistration: r.AnonymousRegistration,
	}, errs
}

// Bounds of the key schedule, in seconds; 0 means the server's default.
const (
	maxRotationPeriod = 366 * 24 * 3600
	maxPublishLead    = 7 * 24 * 3600
	maxRetirePeriod   = 30 * 24 * 3600
)

func validateSchedule(r IssuerRequest, lifetime time.Duration) []FieldError {
	var errs []FieldError
	check := func(field string, v, maxSeconds int64) {
		if v < 0 || v > maxSeconds {
			errs = append(errs, FieldError{Field: field, Reason: fmt.Sprintf("must be from 1 to %d seconds, or 0 for the default", maxSeconds)})
		}
	}
	check("keyRotationPeriod", r.KeyRotationPeriod, maxRotationPeriod)
	check("keyPublishLead", r.KeyPublishLead, maxPublishLead)
	check("keyRetirePeriod", r.KeyRetirePeriod, maxRetirePeriod)
	if r.KeyRetirePeriod > 0 && time.Duration(r.KeyRetirePeriod)*time.Second < lifetime {
		errs = append(errs, FieldError{Field: "keyRetirePeriod", Reason: "must be at least tokenLifetime, or tokens would outlive the key that signed them"})
	}
	return errs
}

// algorithmWarnings says what a change of signing algorithm does to
// gateways in the field.
func algorithmWarnings(before *store.Issuer, after store.Issuer) []string {
	isRSA := func(alg string) bool { return alg == keys.RS256 || alg == keys.PS256 }
	var w []string
	if after.SigningAlgorithm != keys.RS256 && (before == nil || before.SigningAlgorithm == keys.RS256) {
		w = append(w, fmt.Sprintf("signingAlgorithm %s: gateways that accept only RS256, or that read every JWKS key as RSA "+
			"(such as Kong's jwt-keycloak plugin), will reject this issuer's tokens once its new key signs.", after.SigningAlgorithm))
	}
	if before != nil && before.SigningAlgorithm != after.SigningAlgorithm {
		w = append(w, fmt.Sprintf("The change from %s to %s is a key rotation: the new key is published now and signs after the publication lead.",
			before.SigningAlgorithm, after.SigningAlgorithm))
		if isRSA(after.SigningAlgorithm) && !isRSA(before.SigningAlgorithm) {
			w = append(w, "Once the RSA key signs, the JWKS carries RSA keys only: tokens signed earlier with the old key stop verifying.")
		}
	}
	return w
}

// refuseSystemIssuer guards the reserved issuer: `authz bootstrap` owns it,
// and changing or deleting it could lock every operator out.
func refuseSystemIssuer(w http.ResponseWriter, name string) bool {
	if name != SystemIssuer {
		return false
	}
	writeProblem(w, http.StatusForbidden, fmt.Sprintf("Issuer %q is reserved for the admin API itself; `authz bootstrap` manages it.", SystemIssuer))
	return true
}

func (s *Server) putIssuer(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if refuseSystemIssuer(w, name) {
		return
	}
	var req IssuerRequest
	if !decodeBody(w, r, &req) {
		return
	}
	iss, errs := req.toIssuer(name)
	if len(errs) > 0 {
		writeProblem(w, http.StatusUnprocessableEntity, "The issuer is invalid.", errs...)
		return
	}
	var before *store.Issuer
	prev, err := s.store.GetIssuer(r.Context(), name)
	switch {
	case err == nil:
		before = &prev
	case !errors.Is(err, store.ErrNotFound):
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", name), err)
		return
	}
	if dryRun(r) {
		s.answerIssuerDryRun(w, r, before, iss)
		return
	}
	stored, result, err := s.store.PutIssuer(r.Context(), iss, ifMatchRevision(r))
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", name), err)
		return
	}
	if _, err := s.keys.Reconcile(r.Context(), stored.Name); err != nil {
		s.writeStoreError(w, fmt.Sprintf("The signing key of issuer %q", name), err)
		return
	}
	status := http.StatusOK
	if result == store.Created {
		status = http.StatusCreated
		w.Header().Set("Location", r.URL.Path)
	}
	w.Header().Set("ETag", issuerETag(stored))
	resp := s.issuerResponse(stored)
	resp.Warnings = algorithmWarnings(before, stored)
	writeJSON(w, status, resp)
}

func (s *Server) getIssuer(w http.ResponseWriter, r *http.Request) {
	iss, ok := s.loadIssuer(w, r)
	if !ok {
		return
	}
	w.Header().Set("ETag", issuerETag(iss))
	writeJSON(w, http.StatusOK, s.issuerResponse(iss))
}

func (s *Server) listIssuers(w http.ResponseWriter, r *http.Request) {
	p, ok := readPage(w, r)
	if !ok {
		return
	}
	issuers, err := s.store.ListIssuers(r.Context(), p.plusOne())
	if err != nil {
		s.writeStoreError(w, "The issuer list", err)
		return
	}
	issuers, next := cut(p, issuers, func(i store.Issuer) string { return i.Name })
	items := make([]IssuerResponse, 0, len(issuers))
	for _, iss := range issuers {
		items = append(items, s.issuerResponse(iss))
	}
	writeJSON(w, http.StatusOK, ListResponse[IssuerResponse]{Items: items, NextCursor: next})
}

func (s *Server) deleteIssuer(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["name"]
	if refuseSystemIssuer(w, name) {
		return
	}
	cascade := r.URL.Query().Get("cascade")
	if cascade != "" && cascade != "true" && cascade != "false" {
		writeProblem(w, http.StatusBadRequest, "The cascade parameter is not valid.", FieldError{Field: "cascade", Reason: "must be true or false"})
		return
	}
	err := s.store.DeleteIssuer(r.Context(), name, cascade == "true", ifMatchRevision(r))
	if errors.Is(err, store.ErrConflict) {
		writeProblem(w, http.StatusConflict, fmt.Sprintf("Issuer %q still has clients; delete them first or pass ?cascade=true.", name))
		return
	}
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", name), err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// loadIssuer reads the issuer named in the path, answering 404 itself.
func (s *Server) loadIssuer(w http.ResponseWriter, r *http.Request) (store.Issuer, bool) {
	name := mux.Vars(r)["name"]
	iss, err := s.store.GetIssuer(r.Context(), name)
	if err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", name), err)
		return store.Issuer{}, false
	}
	return iss, true
}

// answerIssuerDryRun says what a PUT would do, having changed nothing.
func (s *Server) answerIssuerDryRun(w http.ResponseWriter, r *http.Request, before *store.Issuer, iss store.Issuer) {
	if before == nil {
		writeJSON(w, http.StatusOK, DryRunResponse{Result: ResultCreated})
		return
	}
	if err := before.CheckRevision(ifMatchRevision(r)); err != nil {
		s.writeStoreError(w, fmt.Sprintf("Issuer %q", iss.Name), err)
		return
	}
	writeJSON(w, http.StatusOK, dryRunResult(issuerFields, before.ChangedSettings(iss)))
}

// issuerFields names the issuer's settings as the API spells them.
var issuerFields = map[string]string{
	"Description": "description", "AvailableScopes": "availableScopes", "ClientRoles": "clientRoles",
	"Audience": "audience", "TokenLifetime": "tokenLifetime", "SigningAlgorithm": "signingAlgorithm",
	"ClientAuthenticators": "clientAuthenticator", "KeyRotationPeriod": "keyRotationPeriod",
	"KeyPublishLead": "keyPublishLead", "KeyRetirePeriod": "keyRetirePeriod", "URLStyle": "urlStyle",
	"AnonymousRegistration": "anonymousRegistration",
}
