# The two set-up commands of the README: `make run` starts the server in
# development mode, `make test` makes sure PostgreSQL and the third-party
# clients of the interoperability tests are there and runs every test.
.PHONY: run test build vulncheck

# The patched toolchain go.mod names, fetched from the Go module proxy once:
# machines that set GOTOOLCHAIN=local would otherwise build with whatever Go
# they have.
export GOTOOLCHAIN := go1.26.11

run:
	go run ./cmd/authz serve

# -count=1: the database tests depend on a server outside Go's test cache.
# Then each fuzz target runs briefly on top of its committed seeds, for a
# count of inputs rather than a duration: Go 1.26's fuzzing coordinator can
# fail a duration-bounded run with "context deadline exceeded" when its
# deadline meets a busy worker (go.dev/issue/75804, fixed in Go 1.27). The
# counts are about ten seconds each on this project's two-core machines.
test:
	bash .ci/ensure-postgres
	bash .ci/ensure-test-tools
	go test -count=1 -race ./...
	go test -run '^$$' -fuzz '^FuzzTokenRequest$$' -fuzztime 30000x ./issuer
	go test -run '^$$' -fuzz '^FuzzClientAssertion$$' -fuzztime 5000x ./issuer
	go test -run '^$$' -fuzz '^FuzzAdminJSON$$' -fuzztime 30000x ./api
	go test -run '^$$' -fuzz '^FuzzParseResources$$' -fuzztime 8000x ./cmd/authz
	go test -run '^$$' -fuzz '^FuzzRealmImport$$' -fuzztime 2000x ./keycloak/realm

# The build names itself: `authz version`, /healthz and authz_build_info.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.buildDate=$(DATE)

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o authz ./cmd/authz

# govulncheck with the Go vulnerability database, or, where vuln.go.dev is
# out of reach, the same database built from the golang.org/x/vulndb module.
vulncheck:
	bash .ci/vulncheck
