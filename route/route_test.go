package route

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// unwrapping is a middleware's writer that only knows how to unwrap.
type unwrapping struct{ http.ResponseWriter }

func (u unwrapping) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// opaque is a writer that hides what it wraps.
type opaque struct{ http.ResponseWriter }

func TestNameReachesEveryObserverAroundTheResponse(t *testing.T) {
	outer := NewStatusWriter(httptest.NewRecorder())
	inner := NewStatusWriter(unwrapping{outer})
	h := Named("/issuers/{name}/token", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		w.WriteHeader(http.StatusOK) // ignored: the client saw 418
	}))
	h.ServeHTTP(unwrapping{inner}, httptest.NewRequest(http.MethodPost, "/issuers/x/token", nil))
	for name, sw := range map[string]*StatusWriter{"outer": outer, "inner": inner} {
		if sw.Template != "/issuers/{name}/token" || sw.Status != http.StatusTeapot {
			t.Errorf("%s observer saw %q %d", name, sw.Template, sw.Status)
		}
	}

	hidden := NewStatusWriter(httptest.NewRecorder())
	Name(opaque{hidden}, "/x")
	if hidden.Template != Unmatched {
		t.Errorf("a writer that hides its inner one let the name through: %q", hidden.Template)
	}
}

func TestMethodBoundsInventedVerbs(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "DELETE": "DELETE", "BREW": "OTHER", "get": "OTHER", "": "OTHER"} {
		if got := Method(in); got != want {
			t.Errorf("Method(%q) = %q, want %q", in, got, want)
		}
	}
}
