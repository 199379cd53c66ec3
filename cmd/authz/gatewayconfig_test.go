package main

import (
	"strings"
	"testing"

	"github.com/authz-dev/authz/api"
)

// TestGatewayConfigRefusesBadInputWithExitCode2: an unknown issuer, an
// unknown gateway or a scope the issuer does not offer is a usage mistake,
// said clearly on standard error, with nothing on standard output.
func TestGatewayConfigRefusesBadInputWithExitCode2(t *testing.T) {
	t.Parallel()
	p := startServer(t, devEnv)
	p.putIssuer(t, "shop", api.IssuerRequest{Audience: "https://shop.example", AvailableScopes: []string{"read"}})
	c := newInProcess(t)
	c.ok("login", "--admin-url", p.adminURL, "--public-url", p.publicURL, "--client-id", p.admin.clientID, "--client-secret", p.admin.clientSecret)
	for name, tc := range map[string]struct {
		args []string
		says string
	}{
		"an unknown issuer":             {[]string{"--issuer", "nope", "--gateway", "envoy"}, `"nope" does not exist`},
		"an unknown gateway":            {[]string{"--issuer", "shop", "--gateway", "nginx"}, `Unknown gateway "nginx"`},
		"a scope the issuer lacks":      {[]string{"--issuer", "shop", "--gateway", "envoy", "--scope", "admin"}, `does not offer scope "admin"`},
		"no gateway":                    {[]string{"--issuer", "shop"}, "gateway"},
		"apache with an http JWKS URL":  {[]string{"--issuer", "shop", "--gateway", "apache"}, "https only"},
		"krakend with an http JWKS URL": {[]string{"--issuer", "shop", "--gateway", "krakend"}, "https only"},
	} {
		code, out, errOut := c.exec(append([]string{"gateway-config"}, tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.says) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2, nothing, and %q", name, code, out, errOut, tc.says)
		}
	}
	// And what works prints the configuration alone.
	if out := c.ok("gateway-config", "--issuer", "shop", "--gateway", "envoy", "--scope", "read"); !strings.HasPrefix(out, "# Envoy") || !strings.Contains(out, "plain http") {
		t.Errorf("envoy printed %q, without its warning about the plain-http JWKS", out)
	}
}
