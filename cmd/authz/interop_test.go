package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/authz-dev/authz/api"
)

// needTool fails the test in CI, where `make test` has installed the tool
// (.ci/ensure-test-tools), and skips it elsewhere when the tool is absent.
func needTool(t *testing.T, present bool, what string) {
	t.Helper()
	if present {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing: .ci/ensure-test-tools installs it (make test runs it)", what)
	}
	t.Skipf("%s is missing: run .ci/ensure-test-tools (make test does)", what)
}

// debianPython is Debian's python3, where python3-authlib is installed.
const debianPython = "/usr/bin/python3"

// TestAuthlibGetsTokensWithEveryClientAuthentication runs Debian's
// python3-authlib 1.2, as its documentation shows, against authz: its
// private_key_jwt assertions live an hour, which authz takes by default.
func TestAuthlibGetsTokensWithEveryClientAuthentication(t *testing.T) {
	t.Parallel()
	needTool(t, exec.Command(debianPython, "-c", "import authlib, requests").Run() == nil, "python3-authlib")
	p := startServer(t, devEnv)
	ctx := context.Background()
	p.putIssuer(t, "payments", api.IssuerRequest{Audience: tutorialAudience, AvailableScopes: []string{"read"},
		ClientAuthenticator: api.AuthenticatorList{"client-secret", "client-jwt"}})
	secretClient := p.createClient(t, "payments", api.CreateClientRequest{Name: "authlib secret", Scopes: []string{"read"}})
	jwtClient := p.createClient(t, "payments", api.CreateClientRequest{Name: "authlib jwt", Scopes: []string{"read"}})
	key, err := p.api(t).GenerateClientKey(ctx, "payments", jwtClient.ClientID, api.GenerateKeyRequest{Algorithm: "RS256"})
	if err != nil {
		t.Fatal(err)
	}
	runLog.remember("a generated private key", key.PrivateKeyPEM)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	secretFile, keyFile := write("secret", secretClient.ClientSecret), write("key.pem", key.PrivateKeyPEM)
	tokenURL := p.publicURL + "/issuers/payments/token"
	for _, tc := range []struct{ method, clientID, file string }{
		{"client_secret_basic", secretClient.ClientID, secretFile},
		{"client_secret_post", secretClient.ClientID, secretFile},
		{"private_key_jwt", jwtClient.ClientID, keyFile},
	} {
		t.Run(tc.method, func(t *testing.T) {
			out, err := exec.Command(debianPython, "testdata/interop/authlib_token.py", tc.method, tokenURL, tc.clientID, tc.file).CombinedOutput()
			if err != nil {
				t.Fatalf("authlib: %v\n%s", err, out)
			}
			var tok struct {
				AccessToken string `json:"access_token"`
				Scope       string `json:"scope"`
			}
			if err := json.Unmarshal(out, &tok); err != nil {
				t.Fatalf("authlib printed %s", out)
			}
			runLog.remember("an access token", tok.AccessToken)
			verifyAsGateway(t, p.publicURL+"/issuers/payments", tok.AccessToken, tc.clientID, "read")
		})
	}
}
