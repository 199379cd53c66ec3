package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/api/client"
)

// apacheBinary and apacheModules are Debian's apache2 and
// libapache2-mod-auth-openidc, which .ci/ensure-test-tools installs.
const (
	apacheBinary  = "/usr/sbin/apache2"
	apacheModules = "/usr/lib/apache2/modules"
)

// startApache runs httpd in the foreground on a loopback port with the
// configuration authz wrote, and returns its base URL.
func startApache(t *testing.T, dir, generated string) string {
	t.Helper()
	addr := freeLoopbackAddr(t)
	modules := ""
	for _, m := range []string{"mpm_event", "authn_core", "authz_core", "proxy", "proxy_http", "auth_openidc"} {
		modules += fmt.Sprintf("LoadModule %s_module %s/mod_%s.so\n", m, apacheModules, m)
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "User www-data\nGroup www-data\n"
	}
	conf := fmt.Sprintf(`ServerRoot %[1]s
DefaultRuntimeDir %[1]s
PidFile %[1]s/httpd.pid
ErrorLog %[1]s/error.log
LogLevel warn auth_openidc:info
Listen %[2]s
ServerName 127.0.0.1
%[3]s%[4]s
%[5]s
`, dir, addr, modules, user, generated)
	confFile := filepath.Join(dir, "httpd.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(apacheBinary, "-f", confFile, "-DFOREGROUND")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	// httpd forks workers that hold its output open: the whole group is
	// stopped, and Wait does not wait for the pipes past WaitDelay.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start apache: %v", err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if conn, err := net.Dial("tcp", addr); err == nil {
			conn.Close()
			return "http://" + addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("apache did not listen on %s:\n%s\n%s\n%s", addr, out, log, conf)
		}
	}
}

// TestApacheConfiguredByGatewayConfigAdmitsOnlyTheIssuersTokens puts a
// real Apache httpd with mod_auth_openidc, configured by `authz
// gateway-config --gateway apache`, in front of an upstream, with authz's
// JWKS over TLS: the portal tutorial's 401 → token → 200, and refusals for
// an expired token, another audience, another issuer and a missing scope;
// then two key rotations under load, during which no valid token is
// refused.
func TestApacheConfiguredByGatewayConfigAdmitsOnlyTheIssuersTokens(t *testing.T) {
	t.Parallel()
	_, apacheErr := os.Stat(filepath.Join(apacheModules, "mod_auth_openidc.so"))
	_, binErr := os.Stat(apacheBinary)
	needTool(t, apacheErr == nil && binErr == nil, "apache2 with libapache2-mod-auth-openidc")
	ctx := context.Background()

	// Apache's workers run as www-data: what they read must be reachable,
	// and a test's TempDir sits in a directory only its owner may enter.
	dir, err := os.MkdirTemp("", "authz-apache-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "authz.pem"), filepath.Join(dir, "authz-key.pem")
	cert := writeSelfSigned(t, certFile, keyFile, 7)
	if err := os.Chmod(certFile, 0o644); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	trusting := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}

	p := startServer(t, devEnv, "--tls-cert", certFile, "--tls-key", keyFile, "--key-check-interval", "1s")
	public := "https://" + strings.TrimPrefix(p.publicURL, "http://")
	admin := "https://" + strings.TrimPrefix(p.adminURL, "http://")
	p.knowAdmin(t)
	adm := client.New(admin, &client.ClientCredentials{TokenURL: public + "/issuers/system/token",
		ClientID: p.admin.clientID, ClientSecret: p.admin.clientSecret, HTTP: trusting}, trusting)

	lead := int64(8) // JWKS max-age 3 s: rotations take seconds
	for _, name := range []string{"shop", "rival"} {
		if _, err := adm.PutIssuer(ctx, name, api.IssuerRequest{Audience: "https://shop.example", AvailableScopes: []string{"read", "write"},
			KeyPublishLead: lead, KeyRetirePeriod: 3600}, 0); err != nil {
			t.Fatal(err)
		}
	}
	lifetime := int64(60)
	newClient := func(issuer string, req api.CreateClientRequest) clientcredentials.Config {
		c, err := adm.CreateClient(ctx, issuer, req)
		if err != nil {
			t.Fatal(err)
		}
		runLog.remember("client_secret", c.ClientSecret)
		return clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: public + "/issuers/" + issuer + "/token"}
	}
	reader := newClient("shop", api.CreateClientRequest{Name: "reader", Scopes: []string{"read"}})
	shortLived := newClient("shop", api.CreateClientRequest{Name: "short-lived", Scopes: []string{"read"}, TokenLifetime: &lifetime})
	writer := newClient("shop", api.CreateClientRequest{Name: "writer", Scopes: []string{"write"}})
	elsewhere := newClient("shop", api.CreateClientRequest{Name: "elsewhere", Scopes: []string{"read"}, Audience: "https://elsewhere.example"})
	rival := newClient("rival", api.CreateClientRequest{Name: "rival", Scopes: []string{"read"}})
	tokenCtx := context.WithValue(ctx, oauth2.HTTPClient, trusting)
	token := func(cfg clientcredentials.Config) string {
		t.Helper()
		tok, err := cfg.Token(tokenCtx)
		if err != nil {
			t.Fatalf("token for %s: %v", cfg.ClientID, err)
		}
		runLog.remember("an access token", tok.AccessToken)
		return tok.AccessToken
	}
	expiring := token(shortLived)
	expiresAt := time.Now().Add(time.Duration(lifetime)*time.Second + 2*time.Second)

	var seen atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		fmt.Fprintf(w, "orders for %s", r.Header.Get("OIDC_CLAIM_azp"))
	}))
	t.Cleanup(upstream.Close)

	// The operator's way: the CLI, logged in, trusting authz's certificate.
	env := []string{"AUTHZ_CONFIG=" + filepath.Join(t.TempDir(), "cli.json"), "SSL_CERT_FILE=" + certFile}
	if code, out := runAuthz(t, env, "login", "--admin-url", admin, "--public-url", public,
		"--client-id", p.admin.clientID, "--client-secret", p.admin.clientSecret); code != 0 {
		t.Fatalf("login: %d %s", code, out)
	}
	code, generated := runAuthz(t, env, "gateway-config", "--issuer", "shop", "--gateway", "apache", "--upstream", upstream.URL, "--scope", "read")
	if code != 0 {
		t.Fatalf("gateway-config: %d\n%s", code, generated)
	}
	generated += fmt.Sprintf("OIDCCABundlePath %s\n", certFile)
	gw := startApache(t, dir, generated)

	call := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, gw+"/orders", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := call(""); s != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", s)
	}
	if s := call(token(reader)); s != http.StatusOK || seen.Load() != 1 {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("the reader's token: %d (upstream saw %d requests), want 200\n%s", s, seen.Load(), log)
	}
	for name, tok := range map[string]string{
		"a token without the scope":    token(writer),
		"a token for another audience": token(elsewhere),
		"another issuer's token":       token(rival),
		"a forged token":               "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2ln",
	} {
		if s := call(tok); s != http.StatusUnauthorized && s != http.StatusForbidden {
			t.Errorf("%s: %d, want 401 or 403", name, s)
		}
	}

	// Two rotations while tokens are fetched and used without pause: the
	// new key is in the JWKS Apache caches before it signs.
	var mu sync.Mutex
	statuses := map[int]int{}
	kids := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			tok := token(reader)
			s := call(tok)
			mu.Lock()
			statuses[s]++
			kids[kidOf(t, tok)] = true
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	})
	for range 2 {
		if _, err := adm.RotateKeys(ctx, "shop"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the rotated key to sign", func() bool {
			keys, err := adm.ListKeys(ctx, "shop")
			if err != nil {
				return false
			}
			for _, k := range keys {
				if k.State == "pending" {
					return false
				}
			}
			return true
		})
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if statuses[http.StatusOK] == 0 || len(statuses) != 1 || len(kids) < 3 {
		t.Errorf("during two rotations: %v over %d signing keys, want only 200 over 3", statuses, len(kids))
	}

	time.Sleep(time.Until(expiresAt))
	if s := call(expiring); s != http.StatusUnauthorized {
		t.Errorf("an expired token: %d, want 401", s)
	}
}

func waitFor(t *testing.T, limit time.Duration, what string, done func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !done(); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
	}
}
