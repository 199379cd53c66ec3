// Package route records which route template a request matched, so that
// what is measured or traced about a request is labelled by the route
// (/issuers/{name}/token), never by the caller's raw path.
//
// Each observer wraps the response in a StatusWriter; the router that
// matches the request names its template with Name, which reaches every
// StatusWriter around the response. A request no route took keeps
// Unmatched. The template travels with the response writer rather than in
// the request's context, which would cost a copy of the request each time.
package route

import "net/http"

// Unmatched labels a request that no route took (a 404 of the router's own,
// or a refusal before routing).
const Unmatched = "unmatched"

// Name records the template of the route that took the request on every
// StatusWriter w is or wraps; nothing when no observer wraps w.
func Name(w http.ResponseWriter, template string) {
	for {
		switch v := w.(type) {
		case *StatusWriter:
			v.Template = template
			w = v.ResponseWriter
		case interface{ Unwrap() http.ResponseWriter }:
			w = v.Unwrap()
		default:
			return
		}
	}
}

// Named is h, naming template before it runs: for routers that know the
// template of each handler they register.
func Named(template string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		Name(w, template)
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

// StatusWriter remembers the status of the answer written through it, and
// the template of the route that wrote it.
type StatusWriter struct {
	http.ResponseWriter
	Status   int
	Template string
	wrote    bool
}

// NewStatusWriter wraps w; an answer that never calls WriteHeader is 200,
// and a request no router names is Unmatched.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w, Status: http.StatusOK, Template: Unmatched}
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
