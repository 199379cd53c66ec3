// Package route records which route template a request matched, so that
// what is measured or traced about a request is labelled by the route
// (/issuers/{name}/token), never by the caller's raw path.
//
// The outermost observer calls Track; the router that matches the request
// names its template with Name. A request no route took keeps Unmatched.
package route

import (
	"context"
	"net/http"
)

// Unmatched labels a request that no route took (a 404 of the router's own,
// or a refusal before routing).
const Unmatched = "unmatched"

// Record is what a request's handlers tell its observers.
type Record struct {
	// Template is the pattern of the route that took the request.
	Template string
}

type recordKey struct{}

// Track returns r carrying a Record, and the Record; when r already carries
// one (an outer observer tracks it too), both share it.
func Track(r *http.Request) (*http.Request, *Record) {
	if rec, ok := r.Context().Value(recordKey{}).(*Record); ok {
		return r, rec
	}
	rec := &Record{Template: Unmatched}
	return r.WithContext(context.WithValue(r.Context(), recordKey{}, rec)), rec
}

// Name records the template of the route that took r; nothing when no
// observer tracks r.
func Name(r *http.Request, template string) {
	if rec, ok := r.Context().Value(recordKey{}).(*Record); ok {
		rec.Template = template
	}
}

// Named is h, naming template before it runs: for routers that know the
// template of each handler they register.
func Named(template string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Name(r, template)
		h.ServeHTTP(w, r)
	})
}

// Method bounds a request's method to the ones HTTP defines for this
// server's routes, so that a label or attribute never holds a caller's
// invented verb.
func Method(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "OTHER"
}

// StatusWriter remembers the status of the answer written through it.
type StatusWriter struct {
	http.ResponseWriter
	Status int
	wrote  bool
}

// NewStatusWriter wraps w; an answer that never calls WriteHeader is 200.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w, Status: http.StatusOK}
}

// WriteHeader keeps the first final status, the one the client receives.
func (w *StatusWriter) WriteHeader(status int) {
	if !w.wrote && status >= 200 {
		w.Status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Known is a route a router serves, for observers that report every route
// from the start rather than from its first request.
type Known struct{ Method, Template string }
