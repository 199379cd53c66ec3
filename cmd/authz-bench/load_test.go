package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
)

// TestMain lets the test binary stand in for authz-bench when the baseline
// phase re-executes itself as the trivial server.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == trivialServerCommand {
		if err := serveTrivial(os.Stdout); err != nil {
			os.Exit(1)
		}
		return
	}
	os.Exit(m.Run())
}

func TestCompareRunsEveryPhaseInRoundsAndPrintsTheRatios(t *testing.T) {
	var hits atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys":[]}`))
	}))
	defer target.Close()
	var out, errs bytes.Buffer
	err := run(context.Background(), []string{"run", "--compare", "--target", "jwks", "--jwks-url", target.URL,
		"--workers", "2", "--duration", "200ms", "--rounds", "2"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s", err, errs.String())
	}
	report := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`rounds=2`),
		regexp.MustCompile(`(?m)^\s+trivial handler\s+[1-9]\d*\s.*\s0$`),
		regexp.MustCompile(`(?m)^\s+JWKS endpoint\s+[1-9]\d*\s.*\s0$`),
		regexp.MustCompile(`ratio JWKS endpoint ÷ trivial handler = \d+\.\d\d`),
	} {
		if !want.MatchString(report) {
			t.Errorf("report lacks %s:\n%s", want, report)
		}
	}
	if hits.Load() == 0 {
		t.Error("the JWKS phase sent nothing to the target")
	}
}

func TestRunRefusesTargetsBeyondLoopbackAndUnboundedRuns(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--target", "jwks", "--jwks-url", "http://example.com/jwks.json"},
		{"run", "--target", "jwks", "--jwks-url", "http://127.0.0.1:1/", "--duration", "1h"},
		{"run", "--target", "jwks", "--jwks-url", "http://127.0.0.1:1/", "--workers", "100000"},
		{"run", "--target", "jwks", "--jwks-url", "http://127.0.0.1:1/", "--compare", "--rounds", "1000"},
	} {
		var out, errs bytes.Buffer
		if err := run(context.Background(), args, &out, &errs); err == nil {
			t.Errorf("%s: accepted", strings.Join(args, " "))
		}
	}
}
