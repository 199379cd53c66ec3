#!/usr/bin/env bash
# Reruns every figure in BENCHMARKS.md on this machine, loopback only.
#   bash cmd/authz-bench/run-benchmarks.sh [seconds-per-phase]   (--compare runs every phase in 3 interleaved rounds)
# Needs the PostgreSQL that `make test` sets up (AUTHZ_TEST_DATABASE_URL,
# which also says its host and port). It creates two databases, named by
# BENCH_DATABASE (default authz_bench) and that name with _big, and drops
# them when it ends; the servers it starts listen on free loopback ports.
# BENCH_CLIENTS (default 10000000) sizes the registered-clients phase, and
# BENCH_ISSUERS (default 100000, 0 skips the phase) the tenant-scale phase,
# which adds those issuers to the same database. The whole run takes about
# half an hour at the defaults, most of it loading ten million clients.
set -euo pipefail
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.26.11}   # the toolchain go.mod names
cd "$(dirname "$0")/../.."
secs=${1:-10}
admin_db=${AUTHZ_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
bench_name=${BENCH_DATABASE:-authz_bench}
[[ $bench_name =~ ^[a-z_][a-z0-9_]{0,50}$ ]] || { echo "BENCH_DATABASE must be a plain lower-case name" >&2; exit 2; }
db_url() { echo "${admin_db/\/postgres\?//$1?}"; }
bench_db=$(db_url "$bench_name")
big_db=$(db_url "${bench_name}_big")
work=$(mktemp -d)
drop_databases() {
  psql "$admin_db" -qc "drop database if exists $bench_name with (force)" -c "drop database if exists ${bench_name}_big with (force)" 2>/dev/null || true
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
# up; sets PUBLIC, ADMIN, ES_SECRET, SERVER_PID and BOOT_ID and BOOT_SECRET
# (the admin client's credentials).
postgres_server() {
  local url boot
  psql "$admin_db" -qc "drop database if exists $2 with (force)" -c "create database $2"
  url=$(db_url "$2")
  boot=$(AUTHZ_DATABASE_URL=$url AUTHZ_KEK=$kek "$authz" bootstrap)
  BOOT_ID=$(echo "$boot" | grep -oP 'client_id:\s+\K\S+') BOOT_SECRET=$(echo "$boot" | grep -oP 'client_secret:\s+\K\S+')
  AUTHZ_DATABASE_URL=$url AUTHZ_KEK=$kek start_server "$1"
  setup "$BOOT_ID" "$BOOT_SECRET"
}

echo "== PostgreSQL (versus endpoint) and memory store (token endpoint), ES256, interleaved rounds"
postgres_server postgres "$bench_name"
PG_PUBLIC=$PUBLIC PG_SECRET=$ES_SECRET
run --rounds 3 --token-url "$MEMORY_PUBLIC/issuers/bench-es256/token" --client-id bench-es --client-secret "$MEMORY_SECRET" \
  --versus-token-url "$PG_PUBLIC/issuers/bench-es256/token" --versus-client-secret "$PG_SECRET" | tee "$work/pg-vs-memory.txt"
kill "$memory_pid"; wait "$memory_pid" 2>/dev/null || true

clients=${BENCH_CLIENTS:-10000000}
echo "== 1 k (token endpoint) and $clients (versus endpoint) registered clients, the same load over 1000 warm clients, interleaved rounds"
"$bench" seed --database-url "$bench_db" --issuer bench-es256 --count 1000 --secret seeded-secret --scope read
postgres_server postgres-big "${bench_name}_big"
BIG_PUBLIC=$PUBLIC big_pid=$SERVER_PID BIG_ID=$BOOT_ID BIG_SECRET=$BOOT_SECRET
"$bench" seed --database-url "$big_db" --issuer bench-es256 --count 1000 --secret seeded-secret --scope read
"$bench" seed --database-url "$big_db" --issuer bench-es256 --count $((clients - 1000)) --prefix bench-x --secret seeded-secret --scope read
# Let PostgreSQL finish the work a load of millions of rows leaves behind,
# so that it does not compete for the cores during the measurement.
psql "$big_db" -qc 'vacuum analyze' -c 'checkpoint'
for url in "$PG_PUBLIC" "$BIG_PUBLIC"; do
  "$bench" run --duration 3s --clients 1000 --token-url "$url/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret >/dev/null
done
run --clients 1000 --rate "$half" --workers 64 --rounds 5 --token-url "$PG_PUBLIC/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret \
  --versus-token-url "$BIG_PUBLIC/issuers/bench-es256/token" | tee "$work/big-vs-1k.txt"
psql "$big_db" -Atc "select 'registered clients: ' || count(*) from clients"

echo "== resident memory: $clients registered clients, 150,000 of them asking (more than the client cache's 100,000 bound)"
grep -E '^(VmRSS|VmHWM)' "/proc/$big_pid/status" | sed 's/^/before: /'
"$bench" run --duration 30s --clients 150000 --token-url "$BIG_PUBLIC/issuers/bench-es256/token" --client-id bench-x --client-secret seeded-secret | tee "$work/spread.txt"
grep -E '^(VmRSS|VmHWM)' "/proc/$big_pid/status" | sed 's/^/after: /' | tee "$work/rss.txt"

echo "== ES256 over 1000 warm clients (token endpoint) and spread over all $clients (versus endpoint: each a client not asked for before, a cache miss), interleaved rounds"
run --rounds 3 --clients 1000 --token-url "$BIG_PUBLIC/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret \
  --versus-token-url "$BIG_PUBLIC/issuers/bench-es256/token" --versus-client-id bench-x --versus-clients $((clients - 1000)) --versus-first 1000000 |
  tee "$work/uniform-big.txt"
half_uniform=$(awk '/^ +versus endpoint/ {printf "%d", $3/2}' "$work/uniform-big.txt")
echo "-- at half the spread rate ($half_uniform tokens/s), clients not asked for before"
# Whether the misses wait for the disk: PostgreSQL's block reads outside its buffers.
blocks() { psql "$big_db" -Atc "select blks_read || ' ' || blks_hit from pg_stat_database where datname = current_database()"; }
before_blocks=$(blocks)
run --rounds 3 --rate "$half_uniform" --workers 64 --clients 1000 --token-url "$BIG_PUBLIC/issuers/bench-es256/token" --client-id bench- --client-secret seeded-secret \
  --versus-token-url "$BIG_PUBLIC/issuers/bench-es256/token" --versus-client-id bench-x --versus-clients $((clients - 1000)) --versus-first 5000000 |
  tee "$work/uniform-half.txt"
echo "$before_blocks $(blocks)" | awk '{printf "PostgreSQL blocks in that phase: %d read from outside its buffers, %d found in them\n", $3 - $1, $4 - $2}'

issuers=${BENCH_ISSUERS:-100000}
if [ "$issuers" -gt 0 ]; then
  echo "== tenant scale: $issuers issuers (ES256) with 2 clients each, 1000 RS256 issuers, in the database of $clients clients"
  "$bench" seed --database-url "$big_db" --kek "$kek" --issuers "$issuers" --count $((2 * issuers)) --prefix c- --secret seeded-secret --scope read
  "$bench" seed --database-url "$big_db" --kek "$kek" --issuers 1000 --issuer-prefix r- --alg RS256 --count 1000 --prefix rc- --secret seeded-secret --scope read
  # The comparison's small side: 10 issuers, 1000 clients, in the 1 k database.
  "$bench" seed --database-url "$bench_db" --kek "$kek" --issuers 10 --count 1000 --prefix c- --secret seeded-secret --scope read
  psql "$big_db" -qc 'vacuum analyze' -c 'checkpoint'
  kill "$big_pid"; wait "$big_pid" 2>/dev/null || true
  started=$(date +%s%N)
  AUTHZ_DATABASE_URL=$big_db AUTHZ_KEK=$kek start_server scale
  SCALE_PUBLIC=$PUBLIC SCALE_ADMIN=$ADMIN scale_pid=$SERVER_PID
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$PUBLIC/readyz")" = 200 ]; do sleep 0.05; done
  echo "start-up to ready: $(( ($(date +%s%N) - started) / 1000000 )) ms"
  grep -E '^(VmRSS|VmHWM)' "/proc/$scale_pid/status" | sed 's/^/after start-up: /'
  psql "$big_db" -Atc "select 'issuers: ' || count(*) from issuers" -c "select 'registered clients: ' || count(*) from clients"

  # The node that takes the rotation lock plans every issuer once; after
  # that, a check with nothing due is one indexed read.
  until [ "$(psql "$big_db" -Atc 'select count(*) from issuer_key_schedule where due_at <= now()')" = 0 ]; do sleep 0.2; done
  echo "first rotation check planned every issuer: $(( ($(date +%s%N) - started) / 1000000 )) ms after start"
  for _ in 1 2 3; do
    psql "$big_db" -Atc "explain (analyze, format json) select issuers.name, s.changed_xid::text, s.due_at::text from issuer_key_schedule s
      join issuers on issuers.name = s.issuer_name where s.due_at <= now() order by s.due_at, s.issuer_name limit 1000" |
      grep -oP '"Execution Time": \K[0-9.]+'
  done | sort -n | awk '{a[NR]=$1} END {printf "rotation check with none due, database time (median of 3): %s ms\n", a[2]}'

  echo "-- first token of issuers this node has not touched, ES256 (1000 issuers, one request each)"
  "$bench" run --duration 10s --rate 100 --workers 4 --issuers "$issuers" --clients "$issuers" --first $((issuers / 2)) \
    --token-url "$PUBLIC/issuers/{issuer}/token" --client-id c- --client-secret seeded-secret | tee "$work/cold-es.txt"
  echo "-- first token of issuers this node has not touched, RS256 (500 issuers)"
  "$bench" run --duration 10s --rate 50 --workers 4 --issuers 1000 --issuer-prefix r- --clients 1000 \
    --token-url "$PUBLIC/issuers/{issuer}/token" --client-id rc- --client-secret seeded-secret | tee "$work/cold-rs.txt"
  echo "-- first JWKS of issuers this node has not touched (1000 issuers)"
  "$bench" run --target jwks --duration 10s --rate 100 --workers 4 --issuers "$issuers" --first $((issuers * 3 / 4)) \
    --jwks-url "$PUBLIC/issuers/{issuer}/jwks.json" | tee "$work/cold-jwks.txt"
  grep -E '^(VmRSS|VmHWM)' "/proc/$scale_pid/status" | sed 's/^/after 2,500 cold issuers: /'

  echo "== $issuers (versus endpoint) and 10 (token endpoint) issuers, the same load over 1000 clients: 1000 warm issuers and 10, interleaved rounds"
  for side in "$PG_PUBLIC 10" "$SCALE_PUBLIC $issuers"; do
    set -- $side
    "$bench" run --duration 3s --clients 1000 --issuers "$2" --token-url "$1/issuers/{issuer}/token" --client-id c- --client-secret seeded-secret >/dev/null
  done
  run --clients 1000 --rate "$half" --workers 64 --rounds 5 --issuers 10 --versus-issuers "$issuers" --client-id c- --client-secret seeded-secret \
    --token-url "$PG_PUBLIC/issuers/{issuer}/token" --versus-token-url "$SCALE_PUBLIC/issuers/{issuer}/token" | tee "$work/issuers-vs-10.txt"

  echo "== admin listing: the first page of issuers and one past 99% of them"
  token=$(curl -s -u "$BIG_ID:$BIG_SECRET" -d grant_type=client_credentials "$SCALE_PUBLIC/issuers/system/token" | grep -oP '"access_token":"\K[^"]+')
  late=$(printf 'v1:%s' "$(printf 't-%06d' $((issuers * 99 / 100)))" | base64 | tr '+/' '-_' | tr -d '=')
  for page in "" "&cursor=$late"; do
    for _ in $(seq 21); do
      curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$SCALE_ADMIN/admin/v1/issuers?limit=100$page"
    done | sort -n | awk -v p="${page:+late}" '{a[NR]=$1} END {printf "issuers page of 100 (%s): median %.2f ms\n", p ? "past 99%" : "first", a[11] * 1000}'
  done | tee "$work/paging.txt"

  echo "== a rotation through one node reaches the JWKS of two others (3 nodes, $issuers issuers)"
  AUTHZ_DATABASE_URL=$big_db AUTHZ_KEK=$kek start_server scale-2
  node2=$PUBLIC
  AUTHZ_DATABASE_URL=$big_db AUTHZ_KEK=$kek start_server scale-3
  node3=$PUBLIC
  "$authz" login --admin-url "$SCALE_ADMIN" --token-url "$SCALE_PUBLIC/issuers/system/token" --client-id "$BIG_ID" --client-secret "$BIG_SECRET" >/dev/null
  for i in 500 $((issuers * 7 / 10)); do
    name=$(printf 't-%06d' "$i")
    curl -s -o /dev/null "$node2/issuers/$name/jwks.json"   # warm on one node, cold on the other
    "$authz" keys rotate --issuer "$name" >/dev/null
    rotated=$(date +%s%N)
    for node in "$node2" "$node3"; do
      until [ "$(curl -s "$node/issuers/$name/jwks.json" | grep -o '"kid"' | wc -l)" = 2 ]; do sleep 0.005; done
    done
    echo "$name: the new key is in both other nodes' JWKS $(( ($(date +%s%N) - rotated) / 1000000 )) ms after the rotation returned"
  done | tee "$work/propagation.txt"

  cpu() { awk '{print $14 + $15}' "/proc/$scale_pid/stat"; }
  idle=$(cpu); sleep 60
  echo "server CPU while idle for 60 s (key polls, rotator checks): $(( ($(cpu) - idle) * 1000 / $(getconf CLK_TCK) )) ms"
  grep -E '^(VmRSS|VmHWM)' "/proc/$scale_pid/status" | sed 's/^/after 60 s idle: /'
fi

echo "== summary"
# versus FILE COLUMN: the token and versus rows' figures in COLUMN.
versus() { awk -v c="$2" '/^ +(token|versus) endpoint/ {printf "%s ", $c}' "$work/$1"; }
echo "$(versus pg-vs-memory.txt 3)" | awk '{printf "ES256 PostgreSQL ÷ memory tokens/s: %.2f (%d ÷ %d)\n", $2/$1, $2, $1}'
echo "$(versus big-vs-1k.txt 6 | tr -d ms)" | awk -v n="$clients" '{printf "token p99 with %d ÷ with 1000 clients: %.2f (%sms ÷ %sms)\n", n, $2/$1, $2, $1}'
round_median() { sed -n 's/^ratio p99 by round = .*(median \(.*\))$/\1/p' "$work/$1"; }
echo "  the same, median of the rounds' ratios: $(round_median big-vs-1k.txt)"
echo "$(versus uniform-big.txt 3)" | awk '{printf "ES256 tokens/s spread over every client ÷ over 1000 warm ones: %.2f (%d ÷ %d)\n", $2/$1, $2, $1}'
echo "$(versus uniform-half.txt 6)" | awk '{printf "ES256 p99 at half that rate, spread over every client: %s (over 1000 warm ones: %s)\n", $2, $1}'
if [ "$issuers" -gt 0 ]; then
  echo "$(versus issuers-vs-10.txt 6 | tr -d ms)" | awk -v n="$issuers" '{printf "token p99 with %d ÷ with 10 issuers: %.2f (%sms ÷ %sms)\n", n, $2/$1, $2, $1}'
  echo "  the same, median of the rounds' ratios: $(round_median issuers-vs-10.txt)"
  for f in cold-es cold-rs cold-jwks; do awk -v f="$f" '/^ +(token|JWKS) endpoint/ {print f " p99: " $6 " (p50 " $4 ")"}' "$work/$f.txt"; done
fi
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
