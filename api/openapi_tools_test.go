package api_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The third-party OpenAPI tools, installed by .ci/ensure-test-tools: the
// npm packages pinned by testdata/openapi-tools/package-lock.json, and
// oapi-codegen built into the user's cache.
const (
	openAPIToolsDir   = "testdata/openapi-tools"
	oapiCodegen       = "oapi-codegen-v2.8.2/oapi-codegen"
	oapiRuntimeModule = "github.com/oapi-codegen/runtime@v1.9.0"
)

func needTool(t *testing.T, path, what string) string {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is missing (%s): .ci/ensure-test-tools installs it (make test runs it)", what, path)
	}
	t.Skipf("%s is missing (%s): run .ci/ensure-test-tools (make test does)", what, path)
	return ""
}

func npmTool(t *testing.T, name string) string {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join(openAPIToolsDir, "node_modules", ".bin", name))
	if err != nil {
		t.Fatal(err)
	}
	return needTool(t, abs, name+" (npm)")
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenAPILintsClean holds openapi.yaml to Redocly's recommended rules
// (two exceptions, each with its reason in redocly.yaml) and Spectral's oas
// ruleset, warnings included.
func TestOpenAPILintsClean(t *testing.T) {
	spec, _ := filepath.Abs("openapi.yaml")
	out := run(t, openAPIToolsDir, npmTool(t, "redocly"), "lint", "--config", "redocly.yaml", "--format", "stylish", spec)
	if !strings.Contains(out, "Your API description is valid") || strings.Contains(out, "You have") {
		t.Errorf("redocly lint:\n%s", out)
	}
	out = run(t, openAPIToolsDir, npmTool(t, "spectral"), "lint", "--ruleset", ".spectral.yaml", "--fail-severity", "hint", spec)
	if !strings.Contains(out, "No results") {
		t.Errorf("spectral lint:\n%s", out)
	}
}

// TestOpenAPIGeneratesClients generates a TypeScript client with
// openapi-typescript and a Go one with oapi-codegen, and compiles both:
// a portal written in either language can use the description as it is.
func TestOpenAPIGeneratesClients(t *testing.T) {
	spec, _ := filepath.Abs("openapi.yaml")
	dir := t.TempDir()

	run(t, openAPIToolsDir, npmTool(t, "openapi-typescript"), spec, "-o", filepath.Join(dir, "admin.d.ts"))
	run(t, openAPIToolsDir, npmTool(t, "tsc"), "--noEmit", "--strict", filepath.Join(dir, "admin.d.ts"))

	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	codegen := needTool(t, filepath.Join(cache, "authz", "tools", oapiCodegen), "oapi-codegen")
	// The API has a Client schema, so the generated HTTP client takes
	// another name, as oapi-codegen's client-type-name option is for.
	config := filepath.Join(dir, "oapi-codegen.yaml")
	if err := os.WriteFile(config, []byte("package: adminclient\ngenerate: {models: true, client: true}\noutput-options: {client-type-name: AdminAPI}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := run(t, dir, codegen, "-config", config, spec)
	goDir := filepath.Join(dir, "go")
	if err := os.MkdirAll(goDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goDir, "admin.gen.go"), []byte(gen), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(goDir, "go.mod"), []byte("module example.test/adminclient\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, goDir, "go", "get", oapiRuntimeModule)
	run(t, goDir, "go", "mod", "tidy")
	run(t, goDir, "go", "vet", "./...")
	for _, want := range []string{"type SigningAlgorithm string", "type ClientAuthenticators struct", "`json:\"clientId\"`", "`json:\"jwksUri\"`", "type AdminAPI struct"} {
		if !strings.Contains(gen, want) {
			t.Errorf("the generated Go client lacks %q", want)
		}
	}
}
