package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/keys"
	"github.com/authz-dev/authz/store"
	"github.com/authz-dev/authz/store/postgres"
	"github.com/authz-dev/authz/store/postgres/pgtest"
)

const (
	tutorialIssuer   = "payments"
	tutorialAudience = "https://api.example.test"
)

// tutorial is what the README's walkthrough produces.
type tutorial struct {
	clientID, clientSecret string
	tokens                 []string
}

// runTutorial follows the README against a running server: create an
// issuer and a client, get tokens with client_secret_basic and
// client_secret_post, and verify them as a gateway would.
func runTutorial(t *testing.T, p *process) tutorial {
	t.Helper()
	ctx := context.Background()
	lifetime := int64(300)
	iss := p.putIssuer(t, tutorialIssuer, api.IssuerRequest{
		Description:         "Payments API",
		AvailableScopes:     []string{"read", "write"},
		Audience:            tutorialAudience,
		TokenLifetime:       &lifetime,
		ClientAuthenticator: api.AuthenticatorList{"client-secret"},
	})
	issuerURL := p.publicURL + "/issuers/" + tutorialIssuer
	if iss.Issuer != issuerURL {
		t.Fatalf("issuer URL = %v, want %s", iss.Issuer, issuerURL)
	}
	client := p.createClient(t, tutorialIssuer, api.CreateClientRequest{Name: "billing batch", Scopes: []string{"read", "write"}})
	tut := tutorial{clientID: client.ClientID, clientSecret: client.ClientSecret}
	if client.TokenEndpoint != issuerURL+"/token" || client.Issuer != issuerURL {
		t.Fatalf("client answer = %+v", client)
	}

	for _, style := range []struct {
		name string
		auth oauth2.AuthStyle
	}{{"client_secret_basic", oauth2.AuthStyleInHeader}, {"client_secret_post", oauth2.AuthStyleInParams}} {
		cfg := clientcredentials.Config{
			ClientID:     tut.clientID,
			ClientSecret: tut.clientSecret,
			TokenURL:     issuerURL + "/token",
			Scopes:       []string{"read"},
			AuthStyle:    style.auth,
			// The portal tutorial's consumer sends this non-standard
			// parameter; it must be ignored.
			EndpointParams: url.Values{"scopes": {"openid"}},
		}
		tok, err := cfg.Token(ctx)
		if err != nil {
			t.Fatalf("%s: get token: %v", style.name, err)
		}
		if tok.TokenType != "Bearer" || time.Until(tok.Expiry) < 4*time.Minute {
			t.Fatalf("%s: token type %q expiry %v", style.name, tok.TokenType, tok.Expiry)
		}
		verifyAsGateway(t, issuerURL, tok.AccessToken, tut.clientID, "read")
		tut.tokens = append(tut.tokens, tok.AccessToken)
	}
	return tut
}

// verifyAsGateway checks a token the way a gateway does: discovery, then
// the JWKS, then the claims the gateway plugin reads.
func verifyAsGateway(t *testing.T, issuerURL, raw, clientID, scope string) {
	t.Helper()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, issuerURL)
	if err != nil {
		t.Fatalf("discovery at %s: %v", issuerURL, err)
	}
	verified, err := provider.Verifier(&oidc.Config{ClientID: tutorialAudience}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("verify token against the published JWKS: %v", err)
	}
	if verified.Issuer != issuerURL || strings.HasSuffix(verified.Issuer, "/") {
		t.Fatalf("iss = %q, want %q", verified.Issuer, issuerURL)
	}
	if len(verified.Audience) != 1 || verified.Audience[0] != tutorialAudience {
		t.Fatalf("aud = %v", verified.Audience)
	}
	if d := time.Until(verified.Expiry); d <= 4*time.Minute || d > 5*time.Minute {
		t.Fatalf("exp is %v away, want about 5 minutes", d)
	}
	if verified.IssuedAt.After(time.Now()) {
		t.Fatalf("iat %v is in the future", verified.IssuedAt)
	}
	var claims struct {
		Azp      string `json:"azp"`
		ClientID string `json:"client_id"`
		Sub      string `json:"sub"`
		Scope    string `json:"scope"`
		JTI      string `json:"jti"`
	}
	if err := verified.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Azp != clientID || claims.ClientID != clientID || claims.Sub != clientID || claims.Scope != scope || claims.JTI == "" {
		t.Fatalf("claims = %+v; want azp = client_id = sub = %s, scope %q, a jti", claims, clientID, scope)
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders["typ"]; typ != "at+jwt" {
		t.Fatalf("typ = %v, want at+jwt", typ)
	}
}

func postgresEnv(t *testing.T) (databaseURL, kek string, env []string) {
	t.Helper()
	databaseURL = pgtest.NewDatabase(t)
	kek = newKEKBase64(t)
	return databaseURL, kek, []string{"AUTHZ_DATABASE_URL=" + databaseURL, "AUTHZ_KEK=" + kek}
}

// startPostgresServer bootstraps a fresh database and starts a server on it.
func startPostgresServer(t *testing.T, env []string, args ...string) *process {
	t.Helper()
	adm := bootstrap(t, env)
	p := startServer(t, env, args...)
	p.admin = adm
	return p
}

func TestTutorialOnPostgres(t *testing.T) {
	t.Parallel()
	databaseURL, kek, env := postgresEnv(t)
	p := startPostgresServer(t, env)
	tut := runTutorial(t, p)
	assertReady(t, p)
	p.stop(t)

	// Nothing secret may reach the logs: not the client secret, not a token,
	// not the KEK, not the signing key.
	logs := p.output.String()
	forbidden := map[string]string{"client secret": tut.clientSecret, "KEK": kek}
	for i, tok := range tut.tokens {
		forbidden["token "+string(rune('A'+i))] = tok
		forbidden["token signature "+string(rune('A'+i))] = tok[strings.LastIndexByte(tok, '.')+1:]
	}
	for name, value := range privateKeyForms(t, databaseURL, kek) {
		forbidden[name] = value
	}
	for name, value := range forbidden {
		if value == "" {
			t.Fatalf("nothing to search for %s", name)
		}
		if strings.Contains(logs, value) {
			t.Errorf("the logs contain the %s", name)
		}
	}
	if !strings.Contains(logs, tut.clientID) {
		t.Errorf("the logs never name client %s: the scan would prove nothing", tut.clientID)
	}
}

// privateKeyForms opens the issuer's stored signing key with the KEK and
// returns the encodings in which it could leak.
func privateKeyForms(t *testing.T, databaseURL, kekB64 string) map[string]string {
	t.Helper()
	ctx := context.Background()
	st, err := postgres.Open(ctx, databaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored, err := st.ListSigningKeys(ctx, tutorialIssuer)
	if err != nil || len(stored) == 0 {
		t.Fatalf("stored keys: %d, %v", len(stored), err)
	}
	kek, _ := base64.StdEncoding.DecodeString(kekB64)
	sealer, err := keys.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	forms := map[string]string{}
	for _, sk := range stored {
		der, err := sealer.Open(sk.KEKID, sk.IssuerName, sk.ID, sk.SealedPrivateKey)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := x509.ParsePKCS8PrivateKey(der)
		if err != nil {
			t.Fatal(err)
		}
		rsaKey := priv.(*rsa.PrivateKey)
		// A fragment is enough: any longer leak contains it.
		forms["private key (PKCS#8 base64)"] = base64.StdEncoding.EncodeToString(der)[40:104]
		forms["private key (JWK d)"] = base64.RawURLEncoding.EncodeToString(rsaKey.D.Bytes())[:64]
		forms["private key (sealed)"] = base64.StdEncoding.EncodeToString(sk.SealedPrivateKey)[:64]
	}
	return forms
}

func assertReady(t *testing.T, p *process) {
	t.Helper()
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get(p.publicURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", path, resp.StatusCode)
		}
	}
}

func TestTutorialOnMemoryStore(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="})
	runTutorial(t, p)
	assertReady(t, p)
	if !strings.Contains(p.output.String(), "DEVELOPMENT MODE") {
		t.Fatalf("dev mode logged no warning:\n%s", p.output)
	}
	if out := p.banner.String(); !strings.Contains(out, "DEVELOPMENT MODE") || !strings.Contains(out, "/admin/v1/issuers/demo") {
		t.Fatalf("dev mode printed no banner and example:\n%s", out)
	}
}

func TestRestartOnSameDatabaseKeepsIssuersClientsAndKeys(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	addr := freeLoopbackAddr(t)
	first := startPostgresServer(t, env, "--public-addr", addr)
	tut := runTutorial(t, first)
	first.stop(t)

	second := startServer(t, env, "--public-addr", addr)
	second.admin = first.admin
	issuerURL := second.publicURL + "/issuers/" + tutorialIssuer
	// A token signed before the restart verifies against the JWKS after it.
	verifyAsGateway(t, issuerURL, tut.tokens[0], tut.clientID, "read")
	// The client and its secret survived too.
	tok, err := (&clientcredentials.Config{ClientID: tut.clientID, ClientSecret: tut.clientSecret, TokenURL: issuerURL + "/token"}).Token(context.Background())
	if err != nil {
		t.Fatalf("token after restart: %v", err)
	}
	verifyAsGateway(t, issuerURL, tok.AccessToken, tut.clientID, "read write")
	got, err := second.api(t).GetIssuer(context.Background(), tutorialIssuer)
	if err != nil || got.Description != "Payments API" {
		t.Fatalf("issuer after restart = %+v, %v", got, err)
	}
}

func TestServeRefusesAnotherKEKForStoredKeys(t *testing.T) {
	t.Parallel()
	databaseURL, _, env := postgresEnv(t)
	p := startPostgresServer(t, env)
	runTutorial(t, p)
	p.stop(t)

	code, out := runAuthz(t, []string{"AUTHZ_DATABASE_URL=" + databaseURL, "AUTHZ_KEK=" + newKEKBase64(t)},
		"serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--public-url", "https://auth.example.test")
	if code != 1 || !strings.Contains(out, "key-encryption key that is not configured") {
		t.Fatalf("serve with the wrong KEK: exit %d, output:\n%s", code, out)
	}
}

func TestServeConfigErrorsAreClear(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantText string
	}{
		{"database without KEK", []string{"AUTHZ_DATABASE_URL=postgres://127.0.0.1:1/x", "AUTHZ_KEK="}, nil, 2, "--kek (or $AUTHZ_KEK) is required"},
		{"short KEK", []string{"AUTHZ_DATABASE_URL=postgres://127.0.0.1:1/x", "AUTHZ_KEK=c2hvcnQ="}, nil, 1, "neither base64 of 32 bytes nor a readable file"},
		{"bad duration", []string{"AUTHZ_JWKS_MAX_AGE=soon"}, nil, 2, "$AUTHZ_JWKS_MAX_AGE is not a valid duration"},
		{"unknown flag", nil, []string{"--frobnicate"}, 2, "unknown flag: --frobnicate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runAuthz(t, tc.env, append([]string{"serve", "--public-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--public-url", "https://auth.example.test"}, tc.args...)...)
			if code != tc.wantCode || !strings.Contains(out, tc.wantText) {
				t.Fatalf("exit %d (want %d), output:\n%s", code, tc.wantCode, out)
			}
			if strings.Contains(out, "c2hvcnQ=") {
				t.Fatal("the error repeats the KEK")
			}
		})
	}
}

func TestMigrateCommandIsRepeatable(t *testing.T) {
	t.Parallel()
	databaseURL := pgtest.NewDatabase(t)
	for range 2 {
		if code, out := runAuthz(t, nil, "migrate", "--database-url", databaseURL); code != 0 {
			t.Fatalf("migrate: exit %d\n%s", code, out)
		}
	}
	st, err := postgres.Open(context.Background(), databaseURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.ListIssuers(context.Background(), store.Page{}); err != nil {
		t.Fatalf("schema not usable after migrate: %v", err)
	}
}

func TestFailedAuthenticationLimitIsConfigurable(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK=", "AUTHZ_AUTH_FAILURES_PER_CLIENT=3"})
	id, _ := newPaymentsClient(t, p)
	var statuses []int
	for range 5 {
		statuses = append(statuses, tokenStatus(t, p, "payments", id, "wrong"))
	}
	if want := []int{401, 401, 401, 429, 429}; fmt.Sprint(statuses) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", statuses, want)
	}
}

func TestMetricsCountTokensCacheAndThrottling(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, append(env, "AUTHZ_AUTH_FAILURES_PER_CLIENT=2"))
	// Before any event, every known route and counter is there at zero.
	for _, want := range []string{
		`authz_http_requests_total{code="200",listener="public",method="POST",route="/issuers/{name}/token"} 0`,
		`authz_http_requests_total{code="200",listener="public",method="GET",route="/realms/{name}/protocol/openid-connect/certs"} 0`,
		`authz_http_requests_total{code="200",listener="public",method="POST",route="/realms/{realm}/clients-registrations/openid-connect"} 0`,
		`authz_http_requests_total{code="200",listener="admin",method="POST",route="/admin/v1/issuers/{name}/clients"} 0`,
		`authz_http_request_duration_seconds_count{listener="admin",method="GET",route="/admin/v1/audit"} 0`,
		`authz_rate_limited_total{by="address"} 0`,
		`authz_rate_limited_total{by="client"} 0`,
		`authz_client_cache_lookups_total{result="stale"} 0`,
	} {
		if text := scrapeMetrics(t, p); !strings.Contains(text, want) {
			t.Errorf("metrics at start-up lack %s", want)
		}
	}

	id, secret := newPaymentsClient(t, p)
	waitForStatus(t, p, "payments", id, secret, http.StatusOK, 5*time.Second)
	tokenStatus(t, p, "payments", id, secret)
	for range 3 {
		tokenStatus(t, p, "payments", id, "wrong")
	}
	tokenStatus(t, p, "nowhere", id, secret)
	for _, path := range []string{"/issuers/payments/jwks.json", "/issuers/payments/.well-known/openid-configuration", "/no/such/path-x7", "/healthz"} {
		resp, err := http.Get(p.publicURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	text := scrapeMetrics(t, p)
	for _, want := range []string{
		`authz_token_requests_total{code="200",issuer="payments"}`,
		`authz_token_requests_total{code="401",issuer="payments"} 2`,
		`authz_token_requests_total{code="429",issuer="payments"} 1`,
		`authz_token_requests_total{code="404",issuer="unknown"} 1`,
		`authz_token_request_duration_seconds_bucket{le="`,
		`authz_issuer_cache_lookups_total{result="hit"}`,
		`authz_key_cache_lookups_total{result="miss"} `,
		`authz_cache_entries{cache="keys"} `,
		`authz_http_requests_total{code="401",listener="public",method="POST",route="/issuers/{name}/token"} 2`,
		`authz_http_requests_total{code="404",listener="public",method="POST",route="/issuers/{name}/token"} 1`,
		`authz_http_requests_total{code="200",listener="public",method="GET",route="/issuers/{name}/jwks.json"} 1`,
		`authz_http_requests_total{code="200",listener="public",method="GET",route="/issuers/{name}/.well-known/openid-configuration"} 1`,
		`authz_http_requests_total{code="200",listener="public",method="GET",route="/healthz"} 1`,
		`authz_http_requests_total{code="404",listener="public",method="GET",route="unmatched"} 1`,
		`authz_http_requests_total{code="201",listener="admin",method="POST",route="/admin/v1/issuers/{name}/clients"} 1`,
		`authz_http_request_duration_seconds_bucket{listener="public",method="POST",route="/issuers/{name}/token",le="`,
		`authz_client_cache_lookups_total{result="hit"}`,
		`authz_rate_limited_total{by="client"} 1`,
		`authz_database_errors_total`,
		`authz_build_info{commit="` + currentBuild().Commit + `",goversion="` + runtime.Version() + `",version="` + currentBuild().Version + `"} 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, secret) || strings.Contains(text, `issuer="nowhere"`) || strings.Contains(text, "path-x7") ||
		regexp.MustCompile(`route="[^"]*payments`).MatchString(text) {
		t.Error("metrics carry a secret, a caller-chosen issuer name or a raw path")
	}
	checkWithPromtool(t, text)
}

// scrapeMetrics reads the admin listener's /metrics.
func scrapeMetrics(t *testing.T, p *process) string {
	t.Helper()
	resp, err := http.Get(p.adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// checkWithPromtool lints an exposition with Prometheus' own promtool
// (Debian's prometheus package, installed by .ci/ensure-test-tools):
// names, help texts, units and counter suffixes as Prometheus wants them.
func checkWithPromtool(t *testing.T, exposition string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	needTool(t, err == nil, "promtool (Debian's prometheus package)")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestRequestIDsTieAnswersToLogLines(t *testing.T) {
	t.Parallel()
	p := startServer(t, []string{"AUTHZ_DATABASE_URL=", "AUTHZ_KEK="})
	req, _ := http.NewRequest(http.MethodPost, p.publicURL+"/issuers/nowhere/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", "case-4711")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") != "case-4711" {
		t.Fatalf("X-Request-Id echoed as %q", resp.Header.Get("X-Request-Id"))
	}
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: "a"})
	req, _ = http.NewRequest(http.MethodPost, p.publicURL+"/issuers/payments/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", `bad id","forged":"field`)
	req.SetBasicAuth("c-nobody", "wrong")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	generated := resp.Header.Get("X-Request-Id")
	if generated == "" || strings.Contains(generated, " ") {
		t.Fatalf("a malformed X-Request-Id was not replaced: %q", generated)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.output.String(), `"request_id":"`+generated+`"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line carries request id %s:\n%s", generated, p.output)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
