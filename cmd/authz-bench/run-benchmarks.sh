#!/usr/bin/env bash
# Reruns every figure in BENCHMARKS.md on this machine, loopback only.
#   bash cmd/authz-bench/run-benchmarks.sh [seconds-per-phase]   (--compare runs every phase in 3 interleaved rounds)
# Needs the PostgreSQL that `make test` sets up (AUTHZ_TEST_DATABASE_URL,
# which also says its host and port). It creates two databases, named by
# BENCH_DATABASE (default authz_bench) and that name with _1m and _scale,
# and drops them when it ends; the servers it starts listen on free loopback
# ports. BENCH_ISSUERS (default 100000, 0 skips the phase) and
# BENCH_ISSUER_CLIENTS (default 1000000) size the tenant-scale phase.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.11}   # the toolchain go.mod names
cd "$(dirname "$0")/../.."
secs=${1:-10}
admin_db=${AUTHZ_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
bench_name=${BENCH_DATABASE:-authz_bench}
[[ $bench_name =~ ^[a-z_][a-z0-9_]{0,50}$ ]] || { echo "BENCH_DATABASE must be a plain lower-case name" >&2; exit 2; }
db_url() { echo "${admin_db/\/postgres\?//$1?}"; }
bench_db=$(db_url "$bench_name")
big_db=$(db_url "${bench_name}_1m")
work=$(mktemp -d)
drop_databases() {
  psql "$admin_db" -qc "drop database if exists $bench_name with (force)" -c "drop database if exists ${bench_name}_1m with (force)" \
    -c "drop database if exists ${bench_name}_scale with (force)" 2>/dev/null || true
}
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; drop_databases; rm -rf "$work"' EXIT
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
  for _ in $(seq 1200); do   # two minutes: many issuers take a while
    if grep -q '"listener":"admin"' "$work/$name.err" 2>/dev/null; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "authz serve ($name) exited:" >&2; cat "$work/$name.err" >&2; exit 1; }
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
  # The command as run, each secret shown as $SECRET.
  local shown=() prev=
  for arg in "$@"; do
    case $prev in --client-secret|--versus-client-secret) [ "$arg" = seeded-secret ] || arg='$SECRET' ;; esac
    shown+=("$arg"); prev=$arg
  done
  echo "\$ authz-bench run ${shown[*]}"
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
kill "$sink_pid"; wait "$sink_pid" 2>/dev/null || true
MEMORY_PUBLIC=$UNTRACED_PUBLIC MEMORY_SECRET=$UNTRACED_SECRET

kek=$(head -c 32 /dev/urandom | base64)
# postgres_server NAME DATABASE: a new database, bootstrapped, served and set
# up; sets PUBLIC, ES_SECRET and SERVER_PID.
postgres_server() {
  local url boot
  psql "$admin_db" -qc "drop database if exists $2 with (force)" -c "create database $2"
  url=$(db_url "$2")
  boot=$(AUTHZ_DATABASE_URL=$url AUTHZ_KEK=$kek "$authz" bootstrap)
  AUTHZ_DATABASE_URL=$url AUTHZ_KEK=$kek start_server "$1"
  setup "$(echo "$boot" | grep -oP 'client_id:\s+\K\S+')" "$(echo "$boot" | grep -oP 'client_secret:\s+\K\S+')"
}

echo "== PostgreSQL (versus endpoint) and memory store (token endpoint), ES256, interleaved rounds"
postgres_server postgres "$bench_name"
PG_PUBLIC=$PUBLIC PG_SECRET=$ES_SECRET pg_pid=$SERVER_PID
run --rounds 3 --token-url "$MEMORY_PUBLIC/issuers/bench-es256/token" --client-id bench-es --client-secret "$MEMORY_SECRET" \
  --versus-token-url "$PG_PUBLIC/issuers/bench-es256/token" --versus-client-secret "$PG_SECRET" | tee "$work/pg-vs-memory.txt"
kill "$memory_pid"; wait "$memory_pid" 2>/dev/null || true

echo "== 1 k (token endpoint) and 1 M (versus endpoint) registered clients, the same load over 1000 warm clients, interleaved rounds"
"$bench" seed --database-url "$bench_db" --issuer bench-es256 --count 1000 --secret seeded-secret --scope read
postgres_server postgres-1m "${bench_name}_1m"
BIG_PUBLIC=$PUBLIC big_pid=$SERVER_PID
"$bench" seed --database-url "$big_db" --issuer bench-es256 --count 1000 --secret seeded-secret --scope read
"$bench" seed --database-url "$big_db" --issuer bench-es256 --count 999000 --prefix bench-x --secret seeded-secret --scope read
# Let PostgreSQL finish the work a million-row load leaves behind, so that
# it does not compete for the cores during the measurement.
psql "$big_db" -qc 'vacuum analyze' -c 'checkpoint'
for url in "$PG_PUBLIC" "$BIG_PUBLIC"; do
  "$bench" run --duration 3s --clients 1000 --token-url "$url/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret >/dev/null
done
run --clients 1000 --rate "$half" --workers 64 --rounds 3 --token-url "$PG_PUBLIC/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret \
  --versus-token-url "$BIG_PUBLIC/issuers/bench-es256/token" | tee "$work/1m-vs-1k.txt"
psql "$big_db" -Atc "select 'registered clients: ' || count(*) from clients"

echo "== resident memory: 1 M registered clients, 150,000 of them asking (more than the client cache's 100,000 bound)"
grep -E '^(VmRSS|VmHWM)' "/proc/$big_pid/status" | sed 's/^/before: /'
"$bench" run --duration 30s --clients 150000 --token-url "$BIG_PUBLIC/issuers/bench-es256/token" --client-id bench-x --client-secret seeded-secret | tee "$work/spread.txt"
grep -E '^(VmRSS|VmHWM)' "/proc/$big_pid/status" | sed 's/^/after: /' | tee "$work/rss.txt"

issuers=${BENCH_ISSUERS:-100000}
if [ "$issuers" -gt 0 ]; then
  echo "== tenant scale: $issuers issuers (ES256), ${BENCH_ISSUER_CLIENTS:-1000000} clients spread over them"
  kill "$big_pid" "$pg_pid" 2>/dev/null || true
  psql "$admin_db" -qc "drop database if exists ${bench_name}_scale with (force)" -c "create database ${bench_name}_scale"
  scale_db=$(db_url "${bench_name}_scale")
  AUTHZ_DATABASE_URL=$scale_db "$authz" migrate >/dev/null
  "$bench" seed --database-url "$scale_db" --kek "$kek" --issuers "$issuers" --count "${BENCH_ISSUER_CLIENTS:-1000000}" --prefix c- --secret seeded-secret --scope read
  psql "$scale_db" -qc 'vacuum analyze' -c 'checkpoint'
  started=$(date +%s%N)
  AUTHZ_DATABASE_URL=$scale_db AUTHZ_KEK=$kek start_server scale
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$PUBLIC/readyz")" = 200 ]; do sleep 0.05; done
  echo "start-up to ready: $(( ($(date +%s%N) - started) / 1000000 )) ms"
  grep -E '^(VmRSS|VmHWM)' "/proc/$SERVER_PID/status" | sed 's/^/after start-up: /'
  half_issuer=$((issuers / 2))
  curl -s -o /dev/null -w "first token of a cold issuer: %{http_code} in %{time_total} s\n" -u "$(printf 'c-%06d' "$half_issuer"):seeded-secret" \
    -d grant_type=client_credentials "$PUBLIC/issuers/$(printf 't-%06d' "$half_issuer")/token"
  curl -s -o /dev/null -w "first JWKS of a cold issuer: %{http_code} in %{time_total} s\n" "$PUBLIC/issuers/$(printf 't-%06d' $((half_issuer + 1)))/jwks.json"
  cpu() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
  idle=$(cpu); sleep 60
  echo "server CPU while idle for 60 s (key polls, rotator checks): $(( ($(cpu) - idle) * 1000 / $(getconf CLK_TCK) )) ms"
  grep -E '^(VmRSS|VmHWM)' "/proc/$SERVER_PID/status" | sed 's/^/after 60 s idle: /'
fi

echo "== summary"
# versus FILE COLUMN: the token and versus rows' figures in COLUMN.
versus() { awk -v c="$2" '/^ +(token|versus) endpoint/ {printf "%s ", $c}' "$work/$1"; }
echo "$(versus pg-vs-memory.txt 3)" | awk '{printf "ES256 PostgreSQL ÷ memory tokens/s: %.2f (%d ÷ %d)\n", $2/$1, $2, $1}'
echo "$(versus 1m-vs-1k.txt 6 | tr -d ms)" | awk '{printf "token p99 with 1 M ÷ with 1 k clients: %.2f (%sms ÷ %sms)\n", $2/$1, $2, $1}'
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
