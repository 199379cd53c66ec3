// Package document renders public JSON documents once and serves them many
// times: the discovery metadata and key sets that gateways fetch. The ETag
// is a digest of the body, so every node that renders the same content
// hands out the same ETag, and a gateway's conditional fetch is answered
// with 304 by any of them.
package document

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Document is a rendered body with its validator and cache lifetime. It is
// immutable: a change renders a new one.
type Document struct {
	Body   []byte
	ETag   string
	MaxAge time.Duration
}

// New renders v as JSON.
func New(v any, maxAge time.Duration) (*Document, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return FromBytes(body, maxAge), nil
}

// FromBytes wraps an already rendered body.
func FromBytes(body []byte, maxAge time.Duration) *Document {
	sum := sha256.Sum256(body)
	return &Document{Body: body, ETag: `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`, MaxAge: maxAge}
}

// ServeHTTP answers GET and HEAD, honouring If-None-Match; other methods
// get 405 in RFC 6749's error shape, which the endpoints around it share.
func (d *Document) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		h.Set("Content-Type", "application/json;charset=UTF-8")
		w.WriteHeader(http.StatusMethodNotAllowed)
		_, _ = w.Write([]byte(`{"error":"invalid_request","error_description":"Use GET."}` + "\n"))
		return
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(d.MaxAge/time.Second)))
	h.Set("ETag", d.ETag)
	if match := r.Header.Get("If-None-Match"); match != "" && match == d.ETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(d.Body)
}
