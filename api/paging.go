package api

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/authz-dev/authz/store"
)

const (
	defaultPageSize = 50
	maxPageSize     = 500
	cursorPrefix    = "v1:"
)

// ListResponse is the shape of every listing: a page of items and, when
// more follow, the cursor that fetches them.
type ListResponse[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// page is a requested page: the store's Page with the requested limit.
type page struct{ store.Page }

// readPage parses limit and cursor. Cursors are opaque to callers: base64 of
// a versioned key, so the key's form can change without breaking them.
func readPage(w http.ResponseWriter, r *http.Request) (page, bool) {
	q := r.URL.Query()
	p := page{store.Page{Limit: defaultPageSize}}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeProblem(w, http.StatusBadRequest, "The limit is not valid.", FieldError{Field: "limit", Reason: "must be a whole number from 1 to 500"})
			return page{}, false
		}
		p.Limit = n
	}
	if v := q.Get("cursor"); v != "" {
		raw, err := base64.RawURLEncoding.DecodeString(v)
		key, ok := strings.CutPrefix(string(raw), cursorPrefix)
		if err != nil || !ok {
			writeProblem(w, http.StatusBadRequest, "The cursor is not valid.", FieldError{Field: "cursor", Reason: "was not issued by this API"})
			return page{}, false
		}
		p.After = key
	}
	return p, true
}

// plusOne asks the store for one more record than the page holds, which
// tells whether another page follows.
func (p page) plusOne() store.Page { return store.Page{After: p.After, Limit: p.Limit + 1} }

// cut trims the extra record and returns the cursor of the next page.
func cut[T any](p page, items []T, key func(T) string) ([]T, string) {
	if len(items) <= p.Limit {
		return items, ""
	}
	items = items[:p.Limit]
	return items, base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + key(items[len(items)-1])))
}
