package main

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/store/postgres/pgtest"
)

// TestServeWaitsForItsDatabase: a container platform may start authz
// before PostgreSQL accepts connections. The server retries, logging each
// try, and is ready once the database is: the proxy refuses for 3 s.
func TestServeWaitsForItsDatabase(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewProxy(t, pgtest.NewDatabase(t))
	proxy.Cut()
	time.AfterFunc(3*time.Second, proxy.Restore)
	started := time.Now()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=" + proxy.URL, "AUTHZ_KEK=" + newKEKBase64(t)})
	if waited := time.Since(started); waited < 3*time.Second {
		t.Errorf("the server listened after %v, before its database was reachable", waited)
	}
	assertReady(t, p)
	if n := strings.Count(p.output.String(), "database unreachable; retrying"); n == 0 {
		t.Errorf("no retry was logged:\n%s", p.output)
	}
}

// TestServeGivesUpOnItsDatabaseAfterTheWait: the wait is bounded.
func TestServeGivesUpOnItsDatabaseAfterTheWait(t *testing.T) {
	t.Parallel()
	proxy := pgtest.NewProxy(t, pgtest.NewDatabase(t))
	proxy.Cut()
	started := time.Now()
	code, out := runAuthz(t, []string{"AUTHZ_DATABASE_URL=" + proxy.URL, "AUTHZ_KEK=" + newKEKBase64(t)},
		"serve", "--database-wait", "2s", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--insecure-http")
	if code == 0 || !strings.Contains(out, "database unreachable; retrying") || time.Since(started) > 30*time.Second {
		t.Errorf("exit %d after %v:\n%s", code, time.Since(started), out)
	}
}

// TestTheBuildNamesItself: `authz version`, --version, /healthz and the
// authz_build_info metric all name the build.
func TestTheBuildNamesItself(t *testing.T) {
	t.Parallel()
	c := newInProcess(t)
	want := currentBuild()
	if out := c.ok("version"); !strings.Contains(out, want.Version) || !strings.Contains(out, runtime.Version()) {
		t.Errorf("authz version printed %q", out)
	}
	var b build
	c.json(&b, "version")
	if b.GoVersion != runtime.Version() || b.Version == "" {
		t.Errorf("authz version -o json: %+v", b)
	}
	if out := c.ok("--version"); !strings.Contains(out, want.String()) {
		t.Errorf("authz --version printed %q", out)
	}

	p := startServer(t, devEnv)
	var health struct{ Status, Version string }
	getJSON(t, p.publicURL+"/healthz", &health)
	if health.Status != "ok" || health.Version != want.Version {
		t.Errorf("/healthz = %+v, want version %q", health, want.Version)
	}
	if !strings.Contains(p.output.String(), `"msg":"starting","version":`) {
		t.Error("the start-up log line names no version")
	}
}
