#!/usr/bin/env bash
# Reruns every figure in BENCHMARKS.md on this machine, loopback only.
#   bash cmd/authz-bench/run-benchmarks.sh [seconds-per-phase]   (--compare runs every phase in 3 interleaved rounds)
# Needs the PostgreSQL that `make test` sets up (AUTHZ_TEST_DATABASE_URL).
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.11}   # the toolchain go.mod names
cd "$(dirname "$0")/../.."
secs=${1:-10}
admin_db=${AUTHZ_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
bench_db=${admin_db/\/postgres\?//authz_bench?}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
export AUTHZ_CONFIG=$work/cli.json

bash .ci/ensure-postgres
go build -o "$work/authz" ./cmd/authz
go build -o "$work/authz-bench" ./cmd/authz-bench
authz=$work/authz
bench=$work/authz-bench

# start_server NAME ARGS...: runs authz serve on free loopback ports and sets
# PUBLIC, ADMIN and SERVER_PID.
start_server() {
  local name=$1; shift
  "$authz" serve --public-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0 --log-format json --insecure-http "$@" \
    >"$work/$name.out" 2>"$work/$name.err" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if grep -q '"listener":"admin"' "$work/$name.err" 2>/dev/null; then break; fi
    sleep 0.1
  done
  PUBLIC=http://$(grep -o '"listener":"public","addr":"[^"]*' "$work/$name.err" | sed 's/.*"addr":"//')
  ADMIN=http://$(grep -o '"listener":"admin","addr":"[^"]*' "$work/$name.err" | sed 's/.*"addr":"//')
}

# setup ADMIN_ID ADMIN_SECRET: logs in and creates the bench issuers and
# clients; sets ES_SECRET and RS_SECRET.
setup() {
  "$authz" login --admin-url "$ADMIN" --token-url "$PUBLIC/issuers/system/token" --client-id "$1" --client-secret "$2" >/dev/null
  cat >"$work/bench.yaml" <<'YAML'
kind: CredentialIssuer
name: bench-es256
audience: https://api.example.test
availableScopes: [read]
signingAlgorithm: ES256
---
kind: CredentialIssuer
name: bench-rs256
audience: https://api.example.test
availableScopes: [read]
---
kind: Client
issuer: bench-es256
clientId: bench-es
name: bench es
scopes: [read]
---
kind: Client
issuer: bench-rs256
clientId: bench-rs
name: bench rs
scopes: [read]
---
kind: CredentialIssuer
name: bench-kc
urlStyle: keycloak
audience: https://api.example.test
availableScopes: [read]
---
kind: CredentialIssuer
name: bench-kc-es
urlStyle: keycloak
audience: https://api.example.test
availableScopes: [read]
signingAlgorithm: ES256
---
kind: Client
issuer: bench-kc
clientId: bench-api
name: bench api
definedRoles: [reader]
---
kind: Client
issuer: bench-kc
clientId: bench-kc
name: bench kc
scopes: [read]
roleMappings: [{client: bench-api, role: reader}]
---
kind: Client
issuer: bench-kc-es
clientId: bench-kc-es
name: bench kc es
scopes: [read]
YAML
  "$authz" apply -f "$work/bench.yaml" >"$work/applied.txt"
  ES_SECRET=$(awk '/client_id: +bench-es$/ {getline; print $2}' "$work/applied.txt")
  RS_SECRET=$(awk '/client_id: +bench-rs$/ {getline; print $2}' "$work/applied.txt")
  KC_SECRET=$(awk '/client_id: +bench-kc$/ {getline; print $2}' "$work/applied.txt")
  KC_ES_SECRET=$(awk '/client_id: +bench-kc-es$/ {getline; print $2}' "$work/applied.txt")
}

run() {
  echo "\$ authz-bench run $*" | sed "s/$ES_SECRET/\$ES_SECRET/; s/$RS_SECRET/\$RS_SECRET/; s/$KC_SECRET/\$KC_SECRET/; s/$KC_ES_SECRET/\$KC_ES_SECRET/; s/${UNTRACED_SECRET:-none}/\$UNTRACED_SECRET/"
  "$bench" run --duration "${secs}s" "$@"
  echo
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(go version | cut -d' ' -f3)"
echo
echo "== memory store"
start_server memory
memory_pid=$SERVER_PID
setup "$(grep -oP 'client_id:\s+\K\S+' "$work/memory.out")" "$(grep -oP 'client_secret:\s+\K\S+' "$work/memory.out")"
run --compare --rounds 3 --alg RS256 --token-url "$PUBLIC/issuers/bench-rs256/token" --client-id bench-rs --client-secret "$RS_SECRET" | tee "$work/rs-memory.txt"
run --compare --rounds 3 --alg ES256 --token-url "$PUBLIC/issuers/bench-es256/token" --client-id bench-es --client-secret "$ES_SECRET" | tee "$work/es-memory.txt"
run --compare --rounds 3 --target jwks --jwks-url "$PUBLIC/issuers/bench-es256/jwks.json" | tee "$work/jwks-memory.txt"
echo "== Keycloak-style issuers (realm URLs, Keycloak's claims, a mapped role)"
run --compare --rounds 3 --alg RS256 --token-url "$PUBLIC/realms/bench-kc/protocol/openid-connect/token" --client-id bench-kc --client-secret "$KC_SECRET" | tee "$work/kc-rs-memory.txt"
run --compare --rounds 3 --alg ES256 --token-url "$PUBLIC/realms/bench-kc-es/protocol/openid-connect/token" --client-id bench-kc-es --client-secret "$KC_ES_SECRET" | tee "$work/kc-es-memory.txt"
run --compare --rounds 3 --target jwks --jwks-url "$PUBLIC/realms/bench-kc-es/protocol/openid-connect/certs" | tee "$work/kc-jwks-memory.txt"
# tokens/s is field 3 of the phase row, p99 field 6.
half=$(awk '/^ +token endpoint/ {printf "%d", $3/2}' "$work/es-memory.txt")
echo "== ES256 latency at half the maximum throughput ($half tokens/s)"
run --rate "$half" --workers 64 --token-url "$PUBLIC/issuers/bench-es256/token" --client-id bench-es --client-secret "$ES_SECRET"

# Tracing: the server above (no OTEL_* set) against one exporting every span,
# then a tenth of them, over OTLP/HTTP to a sink that accepts and drops them.
"$bench" trivial-server >"$work/sink.addr" &
sink_pid=$!
for _ in $(seq 50); do [ -s "$work/sink.addr" ] && break; sleep 0.1; done
UNTRACED_PUBLIC=$PUBLIC UNTRACED_SECRET=$ES_SECRET
for sampler in always_on traceidratio; do
  echo "== tracing off (token endpoint) and on (versus endpoint), OTEL_TRACES_SAMPLER=parentbased_$sampler (OTEL_TRACES_SAMPLER_ARG=0.1)"
  OTEL_EXPORTER_OTLP_ENDPOINT=http://$(cat "$work/sink.addr") OTEL_TRACES_SAMPLER=parentbased_$sampler OTEL_TRACES_SAMPLER_ARG=0.1 \
    start_server "traced-$sampler"
  setup "$(grep -oP 'client_id:\s+\K\S+' "$work/traced-$sampler.out")" "$(grep -oP 'client_secret:\s+\K\S+' "$work/traced-$sampler.out")"
  run --rounds 3 --token-url "$UNTRACED_PUBLIC/issuers/bench-es256/token" --client-id bench-es --client-secret "$UNTRACED_SECRET" \
    --versus-token-url "$PUBLIC/issuers/bench-es256/token" --versus-client-secret "$ES_SECRET" | tee "$work/tracing-$sampler.txt"
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
done
kill "$sink_pid" "$memory_pid"; wait "$sink_pid" "$memory_pid" 2>/dev/null || true

echo "== PostgreSQL store"
psql "$admin_db" -qc 'drop database if exists authz_bench with (force)' -c 'create database authz_bench'
kek=$(head -c 32 /dev/urandom | base64)
export AUTHZ_DATABASE_URL=$bench_db AUTHZ_KEK=$kek
boot=$("$authz" bootstrap)
start_server postgres
postgres_pid=$SERVER_PID
setup "$(echo "$boot" | grep -oP 'client_id:\s+\K\S+')" "$(echo "$boot" | grep -oP 'client_secret:\s+\K\S+')"
run --compare --rounds 3 --alg ES256 --token-url "$PUBLIC/issuers/bench-es256/token" --client-id bench-es --client-secret "$ES_SECRET" | tee "$work/es-postgres.txt"

echo "== 1 k and 1 M registered clients, the same load over 1000 warm clients"
"$bench" seed --database-url "$bench_db" --issuer bench-es256 --count 1000 --secret seeded-secret --scope read
warm() { "$bench" run --duration 3s --clients 1000 --token-url "$PUBLIC/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret >/dev/null; }
warm
run --clients 1000 --rate "$half" --workers 64 --token-url "$PUBLIC/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret | tee "$work/1k.txt"
"$bench" seed --database-url "$bench_db" --issuer bench-es256 --count 999000 --prefix bench-x --secret seeded-secret --scope read
# Let PostgreSQL finish the work a million-row load leaves behind, so that
# it does not compete for the cores during the measurement.
psql "$bench_db" -qc 'vacuum analyze' -c 'checkpoint'
warm
run --clients 1000 --rate "$half" --workers 64 --token-url "$PUBLIC/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret | tee "$work/1m.txt"
psql "$bench_db" -Atc "select 'registered clients: ' || count(*) from clients"

echo "== resident memory: 1 M registered clients, 150,000 of them asking (more than the client cache's 100,000 bound)"
grep -E '^(VmRSS|VmHWM)' "/proc/$postgres_pid/status" | sed 's/^/before: /'
"$bench" run --duration 30s --clients 150000 --token-url "$PUBLIC/issuers/bench-es256/token" --client-id bench-x --client-secret seeded-secret | tee "$work/spread.txt"
grep -E '^(VmRSS|VmHWM)' "/proc/$postgres_pid/status" | sed 's/^/after: /' | tee "$work/rss.txt"

echo "== summary"
mem=$(awk '/^ +token endpoint/ {print $3}' "$work/es-memory.txt"); pg=$(awk '/^ +token endpoint/ {print $3}' "$work/es-postgres.txt")
echo "$pg $mem" | awk '{printf "ES256 PostgreSQL ÷ memory tokens/s: %.2f (%d ÷ %d)\n", $1/$2, $1, $2}'
p1k=$(awk '/^ +token endpoint/ {print $6}' "$work/1k.txt" | tr -d ms); p1m=$(awk '/^ +token endpoint/ {print $6}' "$work/1m.txt" | tr -d ms)
echo "$p1m $p1k" | awk '{printf "token p99 with 1 M ÷ with 1 k clients: %.2f (%sms ÷ %sms)\n", $1/$2, $1, $2}'
for sampler in always_on traceidratio; do
  awk -v s="$sampler" '/^ratio versus endpoint ÷/ {printf "ES256 tokens/s, tracing on (parentbased_%s) ÷ off: %s\n", s, $NF}' "$work/tracing-$sampler.txt"
done
# rate FILE PHASE: a phase's ops/s in a --compare run: the first number on
# the row that starts with the phase's name.
rate() { awk -v phase="$2" 'index($0, phase) && $1" "$2 == phase {for (i = 3; i <= NF; i++) if ($i ~ /^[0-9]+$/) {print $i; exit}}' "$work/$1"; }
# kc_vs_native WHAT NATIVE KEYCLOAK NUMERATOR BASELINE: the Keycloak-style
# issuer's ratio over the native one's, each measured against its own run's
# baseline.
kc_vs_native() {
  local n k
  n=$(echo "$(rate "$2" "$4") $(rate "$2" "$5")" | awk '{print $1/$2}')
  k=$(echo "$(rate "$3" "$4") $(rate "$3" "$5")" | awk '{print $1/$2}')
  echo "$k $n" | awk -v what="$1" '{printf "Keycloak-style ÷ native, %s: %.3f (%.3f ÷ %.3f)\n", what, $1/$2, $1, $2}'
}
kc_vs_native "RS256 tokens/s ÷ raw signing" rs-memory.txt kc-rs-memory.txt "token endpoint" "raw signing"
kc_vs_native "ES256 tokens/s ÷ trivial handler" es-memory.txt kc-es-memory.txt "token endpoint" "trivial handler"
kc_vs_native "JWKS ÷ trivial handler" jwks-memory.txt kc-jwks-memory.txt "JWKS endpoint" "trivial handler"
