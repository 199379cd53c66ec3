package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authz-dev/authz/api"
	"github.com/authz-dev/authz/credential"
)

// operator runs authz commands as an operator would, with its own config
// file.
type operator struct {
	t   *testing.T
	env []string
}

func newCLI(t *testing.T) *operator {
	return &operator{t: t, env: []string{"AUTHZ_CONFIG=" + filepath.Join(t.TempDir(), "config.json")}}
}

// run runs a command that must succeed and returns its output.
func (c *operator) run(args ...string) string {
	c.t.Helper()
	code, out := runAuthz(c.t, c.env, args...)
	if code != 0 {
		c.t.Fatalf("authz %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// fail runs a command that must fail and returns its output.
func (c *operator) fail(args ...string) string {
	c.t.Helper()
	code, out := runAuthz(c.t, c.env, args...)
	if code == 0 {
		c.t.Fatalf("authz %s succeeded, want failure:\n%s", strings.Join(args, " "), out)
	}
	return out
}

func (c *operator) json(into any, args ...string) {
	c.t.Helper()
	out := c.run(append(args, "-o", "json")...)
	for _, field := range []string{`"client_secret": "`, `"access_token": "`} {
		for rest := out; strings.Contains(rest, field); {
			rest = rest[strings.Index(rest, field)+len(field):]
			runLog.remember(strings.Trim(field, `": `), rest[:strings.IndexByte(rest, '"')])
		}
	}
	if err := json.Unmarshal([]byte(out), into); err != nil {
		c.t.Fatalf("authz %s -o json printed no JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (c *operator) login(p *process) {
	c.t.Helper()
	p.knowAdmin(c.t)
	c.run("login", "--admin-url", p.adminURL, "--public-url", p.publicURL,
		"--client-id", p.admin.clientID, "--client-secret", p.admin.clientSecret)
}

// tokenStatus tries the client-credentials grant and returns the status.
func tokenStatus(t *testing.T, p *process, issuerName, id, secret string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.publicURL+"/issuers/"+issuerName+"/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitForStatus polls until the token request answers want, for at most
// limit, and returns how long that took.
func waitForStatus(t *testing.T, p *process, issuerName, id, secret string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if tokenStatus(t, p, issuerName, id, secret) == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("token request for %s did not answer %d within %v", id, want, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const lifecycleYAML = `
kind: CredentialIssuer
name: payments
description: Payments API
flow: client-credentials
availableScopes: [read, write]
clientRoles: [viewer, editor]
audience: https://api.example.test
tokenLifetime: 300
clientAuthenticator: client-secret
---
kind: Client
issuer: payments
clientId: billing-batch
name: Billing batch
scopes: [read]
roles: [viewer]
`

func TestAdminLifecycleThroughTheCLI(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, env)
	c := newCLI(t)
	c.login(p)

	file := filepath.Join(t.TempDir(), "resources.yaml")
	if err := os.WriteFile(file, []byte(lifecycleYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	var applied []applyResult
	c.json(&applied, "apply", "-f", file)
	if len(applied) != 2 || applied[0].Result != "created" || applied[1].Result != "created" || applied[1].ClientSecret == "" {
		t.Fatalf("first apply = %+v", applied)
	}
	yamlSecret := applied[1].ClientSecret
	var reapplied []applyResult
	c.json(&reapplied, "apply", "-f", file)
	if len(reapplied) != 2 || reapplied[0].Result != "unchanged" || reapplied[1].Result != "unchanged" || reapplied[1].ClientSecret != "" {
		t.Fatalf("second apply = %+v, want both unchanged and no secret", reapplied)
	}
	changed := strings.Replace(lifecycleYAML, "scopes: [read]", "scopes: [read, write]", 1)
	if err := os.WriteFile(file, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := c.run("apply", "-f", file); !strings.Contains(out, "CredentialIssuer/payments unchanged") ||
		!strings.Contains(out, "Client/payments/Billing batch updated") {
		t.Fatalf("third apply printed:\n%s", out)
	}
	if tokenStatus(t, p, "payments", "billing-batch", yamlSecret) != http.StatusOK {
		t.Fatal("the applied client gets no token")
	}

	var created api.CreatedClientResponse
	c.json(&created, "clients", "create", "--issuer", "payments", "--name", "Reports", "--scopes", "read", "--roles", "viewer")
	if created.ClientID == "" || created.ClientSecret == "" {
		t.Fatalf("created = %+v", created)
	}
	var tok credential.TokenResponse
	c.json(&tok, "token", "--issuer", "payments", "--public-url", p.publicURL,
		"--client-id", created.ClientID, "--client-secret", created.ClientSecret, "--scope", "read")
	verifyAsGateway(t, p.publicURL+"/issuers/payments", tok.AccessToken, created.ClientID, "read")

	// Rotation with a grace period: both secrets work during it, only the
	// new one after it.
	var rotated struct {
		ClientSecret string `json:"clientSecret"`
	}
	c.json(&rotated, "clients", "rotate-secret", "--issuer", "payments", created.ClientID, "--grace", "3s")
	graceEnds := time.Now().Add(3 * time.Second)
	if tokenStatus(t, p, "payments", created.ClientID, created.ClientSecret) != http.StatusOK ||
		tokenStatus(t, p, "payments", created.ClientID, rotated.ClientSecret) != http.StatusOK {
		t.Fatal("during the grace period both secrets must work")
	}
	time.Sleep(time.Until(graceEnds) + 100*time.Millisecond)
	if tokenStatus(t, p, "payments", created.ClientID, created.ClientSecret) != http.StatusUnauthorized {
		t.Fatal("the old secret still works after the grace period")
	}
	if tokenStatus(t, p, "payments", created.ClientID, rotated.ClientSecret) != http.StatusOK {
		t.Fatal("the new secret stopped working")
	}

	c.run("clients", "disable", "--issuer", "payments", created.ClientID)
	waitForStatus(t, p, "payments", created.ClientID, rotated.ClientSecret, http.StatusUnauthorized, time.Second)
	var listed []api.ClientResponse
	c.json(&listed, "clients", "list", "--issuer", "payments", "--enabled", "false")
	if len(listed) != 1 || listed[0].ClientID != created.ClientID {
		t.Fatalf("disabled clients = %+v", listed)
	}
	c.run("clients", "enable", "--issuer", "payments", created.ClientID)
	waitForStatus(t, p, "payments", created.ClientID, rotated.ClientSecret, http.StatusOK, time.Second)

	c.run("clients", "delete", "--issuer", "payments", created.ClientID)
	if out := c.fail("clients", "get", "--issuer", "payments", created.ClientID); !strings.Contains(out, "404") {
		t.Fatalf("get after delete printed:\n%s", out)
	}
	waitForStatus(t, p, "payments", created.ClientID, rotated.ClientSecret, http.StatusUnauthorized, time.Second)

	if out := c.fail("issuers", "delete", "payments"); !strings.Contains(out, "409") || !strings.Contains(out, "cascade") {
		t.Fatalf("delete with clients printed:\n%s", out)
	}
	c.run("issuers", "delete", "payments", "--cascade")
	var issuers []api.IssuerResponse
	c.json(&issuers, "issuers", "list")
	if len(issuers) != 1 || issuers[0].Name != "system" {
		t.Fatalf("issuers after delete = %+v", issuers)
	}
	if out := c.run("issuers", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "system") {
		t.Fatalf("table output:\n%s", out)
	}
}

func TestApplyRefusesInvalidYAMLAndChangesNothing(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	p := startPostgresServer(t, env)
	c := newCLI(t)
	c.login(p)
	tests := []struct{ name, yaml, want string }{
		{"not YAML", "kind: [unclosed", "document 1"},
		{"unknown field", "kind: CredentialIssuer\nname: x1x\naudience: a\ncolour: red\n", "colour"},
		{"unknown kind", "kind: Gateway\nname: x\n", "kind must be"},
		{"client without issuer", "kind: Client\nname: x\n", "needs issuer"},
		{"bad second document", "kind: CredentialIssuer\nname: good-one\naudience: a\n---\nkind: Client\nissuer: good-one\nname: x\nsecret: s\n", "document 2"},
		{"empty file", "", "no resources"},
	}
	for _, tc := range tests {
		file := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(file, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if out := c.fail("apply", "-f", file); !strings.Contains(out, tc.want) || !strings.Contains(out, "nothing was applied") {
			t.Errorf("%s: output lacks %q:\n%s", tc.name, tc.want, out)
		}
	}
	var issuers []api.IssuerResponse
	c.json(&issuers, "issuers", "list")
	if len(issuers) != 1 {
		t.Fatalf("invalid files created issuers: %+v", issuers)
	}
}

func TestClientDisabledOnOneNodeIsRefusedByAnotherWithinASecond(t *testing.T) {
	t.Parallel()
	_, _, env := postgresEnv(t)
	a := startPostgresServer(t, env)
	b := startServer(t, env)
	b.admin = a.admin
	a.putIssuer(t, "payments", api.IssuerRequest{Audience: "https://api.example.test"})
	client := a.createClient(t, "payments", api.CreateClientRequest{Name: "shared"})
	id, secret := client.ClientID, client.ClientSecret
	// Node B learns of the new client and caches it.
	waitForStatus(t, b, "payments", id, secret, http.StatusOK, 5*time.Second)

	disabled := false
	if _, err := a.api(t).PatchClient(context.Background(), "payments", id, api.PatchClientRequest{Enabled: &disabled}); err != nil {
		t.Fatal(err)
	}
	took := waitForStatus(t, b, "payments", id, secret, http.StatusUnauthorized, time.Second)
	t.Logf("node B refused the client disabled on node A after %v", took)
}

func TestParseResourcesRefusesFilesThatWouldExplodeTheDecoder(t *testing.T) {
	// Nine levels of nine aliases each: 9⁹ strings if expanded.
	laughs := "kind: Client\nissuer: x\nname: y\nroles:\n- &l0 [a,a,a,a,a,a,a,a,a]\n"
	for i := 1; i < 9; i++ {
		laughs += fmt.Sprintf("- &l%d [%s*l%d]\n", i, strings.Repeat(fmt.Sprintf("*l%d,", i-1), 8), i-1)
	}
	laughs += "scopes: [*l8]\n"
	for _, tc := range []struct{ name, file, want string }{
		// Before the shape check, this 250 kB file took the decoder 9 GiB.
		{"one key repeated 50,000 times", strings.Repeat("name: x\n", 50000), "more than 64 keys"},
		{"a repeated key", "kind: Client\nissuer: x\nname: y\nname: z\n", `key "name" already defined at line 3`},
		{"repeated keys in many documents", strings.Repeat("kind: Client\n"+strings.Repeat("a: 1\n", 60)+"---\n", 1000), `key "a" already defined`},
		{"a mapping nested too wide", "kind: Client\nissuer: x\nname: y\nscopes: [{" + strings.Repeat("k: v, ", 70) + "}]\n", "more than 64 keys"},
		{"aliases multiplying", laughs, "cannot unmarshal !!seq into string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseResources([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// FuzzParseResources feeds apply's YAML reader arbitrary files: it must
// never panic, and what it accepts must be well-formed resources.
func FuzzParseResources(f *testing.F) {
	// More seeds in testdata/fuzz; this one is the tutorial's file.
	f.Add(lifecycleYAML)
	f.Fuzz(func(t *testing.T, file string) {
		docs, err := parseResources([]byte(file))
		if err != nil {
			return
		}
		for _, d := range docs {
			if (d.Kind != kindIssuer && d.Kind != kindClient) || d.Name == "" || (d.Kind == kindClient && d.Issuer == "") {
				t.Fatalf("accepted a malformed resource %+v from %q", d, file)
			}
		}
	})
}
