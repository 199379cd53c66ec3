package tracing

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPathAttributeIsBounded: a caller who sets his traceparent's sampled
// flag has his requests recorded, and the path is his to choose; a 16 KiB
// path must not become a 16 KiB attribute, nor an invalid UTF-8 one.
func TestPathAttributeIsBounded(t *testing.T) {
	long := "/issuers/" + strings.Repeat("é", 8<<10)
	got := truncate(long, maxPathAttribute)
	if len(got) > maxPathAttribute || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("truncate gave %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if short := "/issuers/payments/token"; truncate(short, maxPathAttribute) != short {
		t.Error("a short path was cut")
	}
}

func TestEnabledFollowsTheStandardVariables(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, true},
		{map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
		{map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, false},
	} {
		if got := Enabled(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("Enabled(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}
