// Package tracing exports OpenTelemetry spans over OTLP/HTTP when the
// standard OTEL_* environment asks for it, and otherwise costs nothing: the
// server's handlers then run unwrapped and every span is the API's no-op.
//
// Incoming W3C traceparent headers are honoured on both listeners, so a
// gateway's trace continues through the token endpoint.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/authz-dev/authz/route"
)

// Tracing is the server's tracer provider: exporting, or a no-op.
type Tracing struct {
	provider   trace.TracerProvider
	sdk        *sdktrace.TracerProvider
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// Enabled reports whether the environment asks for spans to be exported:
// an OTLP endpoint, or OTEL_TRACES_EXPORTER=otlp, and neither
// OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none.
func Enabled(getenv func(string) string) bool {
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") {
		return false
	}
	switch getenv("OTEL_TRACES_EXPORTER") {
	case "none":
		return false
	case "otlp":
		return true
	}
	return getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Setup reads the OTEL_* environment. The exporter reads the endpoint,
// headers, timeout, compression and TLS settings itself; the SDK reads
// OTEL_TRACES_SAMPLER, OTEL_BSP_* and OTEL_RESOURCE_ATTRIBUTES; the
// service name is "authz" unless OTEL_SERVICE_NAME says otherwise.
func Setup(ctx context.Context, getenv func(string) string, version string) (*Tracing, error) {
	t := &Tracing{provider: noop.NewTracerProvider(), propagator: propagation.TraceContext{}}
	if !Enabled(getenv) {
		t.tracer = t.provider.Tracer(instrumentation)
		return t, nil
	}
	if exp := getenv("OTEL_TRACES_EXPORTER"); exp != "" && exp != "otlp" && exp != "none" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: this server exports only otlp", exp)
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol != "" && protocol != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: this server exports OTLP over http/protobuf only (a collector's port 4318)", protocol)
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	// Later sources win: the defaults, then OTEL_RESOURCE_ATTRIBUTES and
	// OTEL_SERVICE_NAME.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "authz"), attribute.String("service.version", version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK(), resource.WithHost())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	t.sdk = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	t.provider = t.sdk
	t.tracer = t.sdk.Tracer(instrumentation)
	return t, nil
}

const instrumentation = "github.com/authz-dev/authz"

// Provider is where other packages (the PostgreSQL store) start spans.
func (t *Tracing) Provider() trace.TracerProvider { return t.provider }

// On reports whether spans are exported.
func (t *Tracing) On() bool { return t.sdk != nil }

// Shutdown sends the spans still queued.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.sdk == nil {
		return nil
	}
	if err := t.sdk.Shutdown(ctx); err != nil {
		return fmt.Errorf("flush spans: %w", err)
	}
	return nil
}

// Handler starts a server span for each request h answers on the named
// listener, as the child of the caller's traceparent when it sends one, and
// names it by the route template the request took. With tracing off it is h.
func (t *Tracing) Handler(listener string, h http.Handler) http.Handler {
	if t.sdk == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := t.propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		method := route.Method(r.Method)
		ctx, span := t.tracer.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		if !span.IsRecording() {
			// Sampled out: nothing below records, and nothing this server
			// sends carries trace context, so the request goes on as it
			// came, without the attributes, writer and request copy a
			// recorded span needs.
			h.ServeHTTP(w, r)
			return
		}
		span.SetAttributes(
			attribute.String("http.request.method", method),
			attribute.String("url.path", truncate(r.URL.Path, maxPathAttribute)),
			attribute.String("authz.listener", listener),
		)
		sw := route.NewStatusWriter(w)
		h.ServeHTTP(sw, r.WithContext(ctx))
		span.SetName(method + " " + sw.Template)
		span.SetAttributes(attribute.String("http.route", sw.Template), attribute.Int("http.response.status_code", sw.Status))
		if sw.Status >= http.StatusInternalServerError {
			span.SetStatus(codes.Error, strconv.Itoa(sw.Status))
		}
	})
}

// maxPathAttribute bounds url.path: a caller who sets the sampled flag of
// his traceparent has his requests recorded, and the path is his to choose.
const maxPathAttribute = 256

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Back up to a rune boundary, so the attribute stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
