package main

import (
	"compress/gzip"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// otlpReceiver is an OTLP/HTTP trace collector: it keeps every span sent
// to POST /v1/traces, and every raw body, for the leak check.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	raw   []byte
}

func startOTLPReceiver(t *testing.T) (*otlpReceiver, string) {
	t.Helper()
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			body = zr
		}
		raw, err := io.ReadAll(body)
		var req coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(raw, &req)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		rcv.raw = append(rcv.raw, raw...)
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				rcv.spans = append(rcv.spans, ss.Spans...)
			}
		}
		rcv.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return rcv, srv.URL
}

// await returns the spans of trace traceID once one named name arrived.
func (rcv *otlpReceiver) await(t *testing.T, traceID, name string) []*tracepb.Span {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		rcv.mu.Lock()
		var trace []*tracepb.Span
		found := false
		for _, s := range rcv.spans {
			if hex.EncodeToString(s.TraceId) == traceID {
				trace = append(trace, s)
				found = found || s.Name == name
			}
		}
		rcv.mu.Unlock()
		if found {
			return trace
		}
		if time.Now().After(deadline) {
			t.Fatalf("no span %q of trace %s arrived within 10s; trace has %d spans", name, traceID, len(trace))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func spanNamed(spans []*tracepb.Span, name string) *tracepb.Span {
	for _, s := range spans {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func spanAttrs(s *tracepb.Span) map[string]string {
	attrs := map[string]string{}
	for _, kv := range s.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			attrs[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			attrs[kv.Key] = strconv.FormatInt(v.IntValue, 10)
		case *commonpb.AnyValue_BoolValue:
			attrs[kv.Key] = strconv.FormatBool(v.BoolValue)
		}
	}
	return attrs
}

// TestTracesContinueTheCallersTrace sends requests carrying a W3C
// traceparent, as a gateway does, to a server exporting to an in-test OTLP
// receiver: the token request's span arrives in the caller's trace, as the
// child of the caller's span, named by its route and saying what became of
// the request; an admin call's span holds its PostgreSQL statements; and no
// span carries a secret or a token.
func TestTracesContinueTheCallersTrace(t *testing.T) {
	t.Parallel()
	rcv, endpoint := startOTLPReceiver(t)
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, append(env, "OTEL_EXPORTER_OTLP_ENDPOINT="+endpoint, "OTEL_BSP_SCHEDULE_DELAY=50", "OTEL_SERVICE_NAME=authz-under-test"))
	id, secret := newPaymentsClient(t, p)

	traced := func(method, url, traceID, parentID string, body string, prepare func(*http.Request)) int {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
		prepare(req)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	form := func(id, secret string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth(id, secret)
		}
	}

	const issued, refused, adminCall = "4bf92f3577b34da6a3ce929d0e0e4736", "5bf92f3577b34da6a3ce929d0e0e4737", "6bf92f3577b34da6a3ce929d0e0e4738"
	const gatewaySpan = "00f067aa0ba902b7"
	if status := traced(http.MethodPost, p.publicURL+"/issuers/payments/token", issued, gatewaySpan, "grant_type=client_credentials", form(id, secret)); status != http.StatusOK {
		t.Fatalf("token request: %d", status)
	}
	traced(http.MethodPost, p.publicURL+"/issuers/payments/token", refused, gatewaySpan, "grant_type=client_credentials", form(id, "wrong"))
	token := p.adminToken(t)
	traced(http.MethodGet, p.adminURL+"/admin/v1/issuers/payments/clients/"+id, adminCall, gatewaySpan, "", func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer "+token)
	})

	tokenSpan := spanNamed(rcv.await(t, issued, "POST /issuers/{name}/token"), "POST /issuers/{name}/token")
	if got := hex.EncodeToString(tokenSpan.ParentSpanId); got != gatewaySpan {
		t.Errorf("token span's parent = %s, want the caller's span %s", got, gatewaySpan)
	}
	if tokenSpan.Kind != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("token span kind = %v", tokenSpan.Kind)
	}
	attrs := spanAttrs(tokenSpan)
	for k, want := range map[string]string{
		"authz.issuer": "payments", "authz.client_id": id, "authz.outcome": "issued",
		"http.route": "/issuers/{name}/token", "http.response.status_code": "200", "authz.listener": "public",
	} {
		if attrs[k] != want {
			t.Errorf("token span %s = %q, want %q", k, attrs[k], want)
		}
	}
	refusedAttrs := spanAttrs(spanNamed(rcv.await(t, refused, "POST /issuers/{name}/token"), "POST /issuers/{name}/token"))
	if refusedAttrs["authz.outcome"] != "invalid_client" || refusedAttrs["http.response.status_code"] != "401" {
		t.Errorf("refused token span: %v", refusedAttrs)
	}

	const adminRoute = "GET /admin/v1/issuers/{name}/clients/{clientId}"
	adminTrace := rcv.await(t, adminCall, adminRoute)
	server := spanNamed(adminTrace, adminRoute)
	var statements int
	for _, s := range adminTrace {
		if strings.HasPrefix(s.Name, "postgresql ") {
			statements++
			if a := spanAttrs(s); a["db.system.name"] != "postgresql" || s.Kind != tracepb.Span_SPAN_KIND_CLIENT {
				t.Errorf("statement span %s: kind %v, attributes %v", s.Name, s.Kind, a)
			}
			if !inTrace(adminTrace, s, server) {
				t.Errorf("statement span %s is not under the admin call's span", s.Name)
			}
		}
	}
	if statements == 0 {
		t.Errorf("the admin call's trace has no PostgreSQL statement: %d spans", len(adminTrace))
	}

	rcv.mu.Lock()
	raw := string(rcv.raw)
	rcv.mu.Unlock()
	if !strings.Contains(raw, "authz-under-test") {
		t.Error("spans do not name OTEL_SERVICE_NAME's service")
	}
	if strings.Contains(raw, secret) || strings.Contains(raw, token) || strings.Contains(raw, p.admin.clientSecret) {
		t.Error("a span carries a secret or a token")
	}
}

// inTrace reports whether span descends from ancestor within spans.
func inTrace(spans []*tracepb.Span, span, ancestor *tracepb.Span) bool {
	byID := map[string]*tracepb.Span{}
	for _, s := range spans {
		byID[string(s.SpanId)] = s
	}
	for s := span; s != nil; s = byID[string(s.ParentSpanId)] {
		if string(s.ParentSpanId) == string(ancestor.SpanId) {
			return true
		}
	}
	return false
}

// TestTracingRefusesAnExporterItDoesNotHave: OTLP over gRPC, which this
// server does not speak, is a start-up error rather than a silent loss of
// every trace.
func TestTracingRefusesAnExporterItDoesNotHave(t *testing.T) {
	t.Parallel()
	code, out := runAuthz(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK=", "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL=grpc"},
		"serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "http/protobuf") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}
