package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/mux"

	"github.com/authz-dev/authz/api"
)

// specChecker holds the admin API to its OpenAPI description: every request
// and response that passes through it is validated, so the description
// cannot drift from what the server does.
type specChecker struct {
	doc    *openapi3.T
	router routers.Router
}

func loadSpec(t testing.TB) *specChecker {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	// Match requests by path alone, whatever host the test server has.
	doc.Servers = openapi3.Servers{{URL: "http://127.0.0.1" + api.Prefix}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &specChecker{doc: doc, router: router}
}

// wrap validates each exchange with next. A request the description calls
// invalid must be refused; every response must be one it describes.
func (c *specChecker) wrap(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)

		probe := r.Clone(context.Background())
		probe.URL.Scheme, probe.URL.Host, probe.Host = "http", "127.0.0.1", "127.0.0.1"
		probe.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := c.router.FindRoute(probe)
		switch {
		case err != nil:
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s is not in openapi.yaml but answered %d", r.Method, r.URL.Path, rec.Code)
			}
		default:
			in := &openapi3filter.RequestValidationInput{
				Request: probe, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
			}
			if reqErr := openapi3filter.ValidateRequest(context.Background(), in); reqErr != nil && rec.Code < 400 {
				t.Errorf("openapi.yaml refuses %s %s (%v) but the server answered %d", r.Method, r.URL.Path, reqErr, rec.Code)
			}
			out := (&openapi3filter.ResponseValidationInput{
				RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
				Options: &openapi3filter.Options{IncludeResponseStatus: true},
			}).SetBodyBytes(rec.Body.Bytes())
			if respErr := openapi3filter.ValidateResponse(context.Background(), out); respErr != nil {
				t.Errorf("the answer %d to %s %s breaks openapi.yaml: %v", rec.Code, r.Method, r.URL.Path, respErr)
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

func TestOpenAPIDescribesExactlyTheRoutes(t *testing.T) {
	spec := loadSpec(t)
	var described []string
	for path, item := range spec.doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+api.Prefix+path)
		}
	}
	var routed []string
	f := newFixture(t)
	_ = f.apiHandler.(*mux.Router).Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err1 := route.GetPathTemplate()
		methods, err2 := route.GetMethods()
		if err1 != nil || err2 != nil {
			return nil
		}
		for _, m := range methods {
			routed = append(routed, m+" "+path)
		}
		return nil
	})
	slices.Sort(described)
	slices.Sort(routed)
	if !slices.Equal(described, routed) {
		t.Fatalf("openapi.yaml and the router disagree:\ndescribed %s\nrouted    %s",
			strings.Join(described, ", "), strings.Join(routed, ", "))
	}
}

func TestOpenAPIDocumentIsServed(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.admin.URL + api.Prefix + "/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Equal(body, api.OpenAPI()) {
		t.Fatalf("status %d; served document differs from api/openapi.yaml", resp.StatusCode)
	}
}
