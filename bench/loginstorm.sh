#!/usr/bin/env bash
# Login storms (issue 15): Parley's login capacity on one core, then 1.5×
# that offered with the login gate at its default and with the gate
# effectively off (limits.max_concurrent_logins = 100000), alternately in
# one run. SCRAM-SHA-1 after STARTTLS; the server pinned to one CPU with
# taskset, parley-bench to the other, a fresh server for every run. The
# generator reads the server's parley_login_seconds (login slot to bind)
# from /metrics, so the admitted logins' own time is reported next to the
# client-side latency, which includes the wait in the listen backlog.
# Throwaway config and data under bench/.work/loginstorm/; the server is
# started and stopped here by PID. See bench/README.md, "Login storms".
#
# Knobs (environment; defaults in brackets):
#   LOGIN_IP         [127.0.0.160]   server address (c2s :5222, metrics :5280)
#   LOGIN_SOURCES    [127.0.0.161 … 127.0.0.168]  client addresses, in turn
#   LOGIN_USERS      [200]    accounts (the generator reuses them)
#   LOGIN_PROBE      [300 500 700 900 1100 1300]   logins/s, capacity probe
#   LOGIN_STEP       [8]      seconds per step
#   LOGIN_ROUNDS     [3]      storm runs per gate setting (alternating)
#   LOGIN_CAPACITY   []       skip the probe and use this capacity (logins/s)
#   BENCH_CPUS       [0 1]    server CPU, generator CPU
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
W="$ROOT/bench/.work/loginstorm"
BIN=${PARLEY_BIN:-"$ROOT/parley"}
GEN=${PARLEY_BENCH_BIN:-"$ROOT/parley-bench"}
IP=${LOGIN_IP:-127.0.0.160}
SOURCES=${LOGIN_SOURCES:-127.0.0.161 127.0.0.162 127.0.0.163 127.0.0.164 127.0.0.165 127.0.0.166 127.0.0.167 127.0.0.168}
USERS=${LOGIN_USERS:-200}
PROBE=${LOGIN_PROBE:-300 500 700 900 1100 1300}
STEP=${LOGIN_STEP:-8}
ROUNDS=${LOGIN_ROUNDS:-3}
read -r CPU_SERVER CPU_GEN <<<"${BENCH_CPUS:-0 1}"
DOMAIN=bench.test

log() { echo "loginstorm: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"
[ -x "$BIN" ] || die "$BIN missing: run make build"
[ -x "$GEN" ] || die "$GEN missing: run make build-bench"

SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null
  for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null
  SERVER_PID=""
}
trap stop_server EXIT
trap 'log interrupted; exit 130' INT TERM
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

rm -rf "$W"; mkdir -p "$W"
bench_cert "$W" "$DOMAIN"

conf() { # dir gate(default|off)
  local gate=""
  [ "$2" = off ] && gate="max_concurrent_logins = 100000
max_concurrent_logins_per_ip = 100000"
  cat >"$1/parley.toml" <<TOML
data_dir = "$1/data"
admin_socket = "-"
[log]
level = "warn"
[[host]]
domain = "$DOMAIN"
cert_file = "$W/$DOMAIN.crt"
key_file = "$W/$DOMAIN.key"
[host.archive]
enabled = false
rooms = false
[c2s]
listen = ["$IP:5222"]
direct_tls_listen = []
require_tls = true
[http]
listen = "$IP:5280"
[limits]
# Every connection comes from a few loopback addresses, and the generator
# reuses $USERS accounts: the per-address connection cap and the sessions
# per account would throttle the generator, not Parley. The login gate is
# left at its default unless gate=off.
max_connections_per_ip = 1000000
max_sessions_per_account = 100000
$gate
[auth]
scram_iterations = 4096
TOML
}

mkdir -p "$W/template"; conf "$W/template" default
seq 1 "$USERS" | xargs -P 2 -I{} "$BIN" user add "bench{}@$DOMAIN" "benchpass{}" --config "$W/template/parley.toml" \
  >"$W/useradd.log" 2>&1 || { tail -5 "$W/useradd.log"; die "user add failed"; }

run() { # name gate rates -> bench.out in $W/name
  local d="$W/$1"
  rm -rf "$d"; cp -a "$W/template" "$d"; conf "$d" "$2"
  (cd "$d" && exec taskset -c "$CPU_SERVER" "$BIN" serve --config "$d/parley.toml" >"$d/server.log" 2>&1) &
  SERVER_PID=$!
  wait_port "$IP" 5222 || { tail -20 "$d/server.log"; stop_server; return 1; }
  sleep 1
  log "$1: gate $2, $3 logins/s"
  taskset -c "$CPU_GEN" "$GEN" run -q -addr "$IP:5222" -domain "$DOMAIN" -tls starttls -mech SCRAM-SHA-1 \
    -users "$USERS" -resource "" -max-inflight 50000 -scenario login -rates "$(echo "$3" | tr ' ' ',')" -step "${STEP}s" -drain 5s -timeout 60s \
    -sources "$(echo "$SOURCES" | tr ' ' ',')" -metrics "http://$IP:5280/metrics" \
    -pid "$SERVER_PID" -label "$1" -tsv "$W/results.tsv" >"$d/bench.out" 2>"$d/bench.err"
  local rc=$?
  sed 's/^/  /' "$d/bench.out" >&2
  stop_server
  return $rc
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >"$W/machine.txt"
# The reference: server CPU of one TLS handshake, one PBKDF2 and both, on
# the server's CPU (BenchmarkLoginCost, internal/c2s).
go test -c -o "$W/c2s.test" ./internal/c2s/ || die "cannot build the c2s benchmark"
(cd "$W" && taskset -c "$CPU_SERVER" ./c2s.test -test.run '^$' -test.bench LoginCost -test.benchtime 300x -test.count 3) \
  | grep '^Benchmark' | tee "$W/logincost.txt" >&2
if [ -n "${LOGIN_CAPACITY:-}" ]; then
  CAP=$LOGIN_CAPACITY
else
  run probe default "$PROBE" || die "probe failed"
  # Capacity: the most logins per second the server completed in a probe
  # step, counted over the step and the drain that followed it (the
  # generator waits until every login of the step has ended): below
  # capacity that is about the offered rate, past it the rate the server
  # works its backlog off at, which is what one core can do.
  CAP=$(awk -F'\t' 'NR==1 { for (i=1;i<=NF;i++) col[$i]=i; next }
    $1=="probe" && $col["errors"]==0 && $col["window_s"]>0 { c = $col["delivered"]/$col["window_s"]; if (c > best) best = c }
    END { printf "%d", best }' "$W/results.tsv")
  [ "${CAP:-0}" -gt 0 ] || die "no capacity found (see $W/results.tsv)"
fi
STORM=$(( CAP * 3 / 2 ))
log "capacity $CAP logins/s on one core; storm at $STORM logins/s"
echo "capacity $CAP storm $STORM" >>"$W/machine.txt"
for r in $(seq "$ROUNDS"); do
  run "gate-default-$r" default "$STORM"
  run "gate-off-$r" off "$STORM"
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$W/machine.txt"
cat "$W/machine.txt" >&2
# One line per storm run: client-side and server-side latency.
awk -F'\t' 'NR==1 { for (i=1;i<=NF;i++) col[$i]=i; next }
  { printf "%-16s offered %5.0f/s completed %6.1f/s errors %s  client ms p50 %8.1f p99 %8.1f mean %8.1f  server ms mean %7.1f p99 %7.1f  server µs/login %6.0f\n",
      $1, $col["offered_per_s"], $col["delivered"]/$col["window_s"], $col["errors"], $col["p50_ms"], $col["p99_ms"], $col["mean_ms"],
      $col["server_login_mean_ms"], $col["server_login_p99_ms"], $col["server_us_per"] }' "$W/results.tsv" | tee "$W/summary.txt"
