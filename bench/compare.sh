#!/usr/bin/env bash
# Side-by-side benchmark: parley-bench (cmd/parley-bench) against Parley,
# Prosody and ejabberd from Debian, in one run, on the same footing: same
# accounts, same scenarios and rates, TLS (STARTTLS) and plaintext, default
# throttles lifted alike, the server pinned to CPU 0 and the generator to
# CPU 1, a fresh server (fresh copy of its data) for every scenario, each
# server on its own loopback address. Throwaway configs and data under
# bench/.work/compare/; every process is started and stopped here by PID;
# system services are never used. Prints one table of ratios (also
# bench/.work/compare/results.md) and draws latency-against-rate plots
# (bench/.work/compare/plots/*.png). See bench/README.md.
#
# Knobs (environment; defaults in brackets):
#   BENCH_SERVERS       [parley prosody ejabberd]
#   BENCH_MODES         [starttls none]      c2s TLS modes, one pass each
#   BENCH_SCENARIOS     [login chat presence muc idle]
#   BENCH_STEP          [6]    seconds per rate step
#   BENCH_USERS         [200]  online users (chat, presence), login pool
#   BENCH_IDLE          [10000] idle sessions (accounts created: max of the two)
#   BENCH_IDLE_QUIET    [150]  seconds of quiet after the last idle login before RSS is read
#   BENCH_OCCUPANTS     [50]   room occupants (muc)
#   BENCH_CONTACTS      [20]   roster size (presence)
#   BENCH_CHAT_RATES    [1000 4000 8000 16000 32000 64000 96000]  messages/s
#   BENCH_PRESENCE_RATES [100 400 1600]    presence updates/s (× contacts deliveries)
#   BENCH_MUC_RATES     [20 80 320]        room messages/s (× occupants deliveries)
#   BENCH_LOGIN_RATES   [25 100 400]       logins/s
#   BENCH_LOGIN_MECH    [SCRAM-SHA-1]      login scenario's mechanism (PLAIN elsewhere)
#   BENCH_CPUS          [0 1]   server CPU, generator CPU
#   BENCH_P99_LIMIT     [50]    ms: a step whose p99 is above is not "sustained"
#   BENCH_CEILING_RATES [8000 20000 40000 80000 160000]  chat rates against the reflector (8000: the floor, set beside Parley's CPU at the lowest rate both ran)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B="$ROOT/bench"
W="$B/.work/compare"
BIN=${PARLEY_BIN:-"$ROOT/parley"}
GEN=${PARLEY_BENCH_BIN:-"$ROOT/parley-bench"}
PY=/usr/bin/python3
SERVERS=${BENCH_SERVERS:-parley prosody ejabberd}
MODES=${BENCH_MODES:-starttls none}
SCENARIOS=${BENCH_SCENARIOS:-login chat presence muc idle}
STEP=${BENCH_STEP:-6}
USERS=${BENCH_USERS:-200}
IDLE=${BENCH_IDLE:-10000}
IDLE_QUIET=${BENCH_IDLE_QUIET:-150}
OCCUPANTS=${BENCH_OCCUPANTS:-50}
CONTACTS=${BENCH_CONTACTS:-20}
CHAT_RATES=${BENCH_CHAT_RATES:-1000 4000 8000 16000 32000 64000 96000}
PRESENCE_RATES=${BENCH_PRESENCE_RATES:-100 400 1600}
MUC_RATES=${BENCH_MUC_RATES:-20 80 320}
LOGIN_RATES=${BENCH_LOGIN_RATES:-25 100 400}
LOGIN_MECH=${BENCH_LOGIN_MECH:-SCRAM-SHA-1}
read -r CPU_SERVER CPU_GEN <<<"${BENCH_CPUS:-0 1}"
DOMAIN=bench.test
PASS_PREFIX=benchpass
ACCOUNTS=$(( USERS > IDLE ? USERS : IDLE ))
[ "$OCCUPANTS" -le "$ACCOUNTS" ] || ACCOUNTS=$OCCUPANTS
declare -A IP=([parley]=127.0.0.131 [prosody]=127.0.0.132 [ejabberd]=127.0.0.133)
REFLECT_IP=127.0.0.134

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

need=()
command -v prosody >/dev/null || need+=(prosody)
dpkg -s ejabberd >/dev/null 2>&1 || need+=(ejabberd)
command -v openssl >/dev/null || need+=(openssl)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } </dev/null >/dev/null 2>&1 \
    || die "cannot install ${need[*]}"
fi
[ -x "$BIN" ] || die "$BIN missing: run make build"
[ -x "$GEN" ] || die "$GEN missing: run make bench-compare (it builds ./parley-bench)"
EJ_APP=$(dpkg -L ejabberd | grep -m1 '/ebin/ejabberd.app$')
EJ_LIBS=$(dirname "$(dirname "$(dirname "$EJ_APP")")")

# ---- processes: everything started here is stopped by PID ---------------
SERVER_PID=""
stop_pid() { # pid
  local p=$1
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
}
stop_server() { [ -n "$SERVER_PID" ] && stop_pid "$SERVER_PID"; SERVER_PID=""; }
trap stop_server EXIT
trap 'log interrupted; exit 130' INT TERM
wait_port() { for _ in $(seq 600); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

rm -rf "$W"; mkdir -p "$W/certs" "$W/plots"
C="$W/certs"
bench_cert "$C" "$DOMAIN" "conference.$DOMAIN"
RESULTS="$W/results.tsv"

# ---- Parley ---------------------------------------------------------------
parley_conf() { parley_bench_conf "$1" "$2" "${IP[parley]}"; }
template_parley() { # dir
  mkdir -p "$1"; parley_conf "$1" starttls
  seq 1 "$ACCOUNTS" | xargs -P 2 -I{} "$BIN" user add "bench{}@$DOMAIN" "${PASS_PREFIX}{}" --config "$1/parley.toml" \
    >"$1/useradd.log" 2>&1 || { tail -5 "$1/useradd.log"; return 1; }
}
start_parley() { # dir mode
  parley_conf "$1" "$2"
  (cd "$1" && exec taskset -c "$CPU_SERVER" "$BIN" serve --config "$1/parley.toml" >"$1/server.log" 2>&1) &
  SERVER_PID=$!
  wait_port "${IP[parley]}" 5222 || { tail -20 "$1/server.log"; return 1; }
}

# ---- Prosody --------------------------------------------------------------
prosody_conf() { # dir mode
  local enc=true
  [ "$2" = none ] && enc=false
  cat >"$1/prosody.cfg.lua" <<LUA
run_as_root = true
daemonize = false
pidfile = "$1/prosody.pid"
data_path = "$1/data"
log = { warn = "$1/prosody.log" }
interfaces = { "${IP[prosody]}" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = {}
s2s_ports = {}
s2s_direct_tls_ports = {}
http_ports = {}
https_ports = {}
component_ports = {}
network_settings = { tcp_backlog = 1024 }
-- no DNS is needed (no s2s); never ask the system's resolver
use_dane = false
-- no mod_limits: no per-connection rate limit, like the others here
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "presence", "message", "iq" }
modules_disabled = { "admin_shell", "s2s", "offline" }
authentication = "internal_hashed"
default_iteration_count = 4096
c2s_require_encryption = $enc
allow_unencrypted_plain_auth = true
ssl = { key = "$C/$DOMAIN.key"; certificate = "$C/$DOMAIN.crt" }
VirtualHost "$DOMAIN"
Component "conference.$DOMAIN" "muc"
  restrict_room_creation = false
  max_history_messages = 20
LUA
}
template_prosody() { # dir
  mkdir -p "$1/data"
  # mod_auth_internal_hashed's files, written directly (prosodyctl register
  # costs a Lua start per account).
  "$PY" "$B/accounts.py" prosody "$1/data" "$DOMAIN" "$ACCOUNTS" "$PASS_PREFIX"
}
start_prosody() { # dir mode
  prosody_conf "$1" "$2"
  taskset -c "$CPU_SERVER" prosody -F --config "$1/prosody.cfg.lua" >"$1/stdout.log" 2>&1 &
  SERVER_PID=$!
  wait_port "${IP[prosody]}" 5222 || { tail -20 "$1/stdout.log"; return 1; }
}

# ---- ejabberd -------------------------------------------------------------
ejabberd_conf() { # dir mode
  local req=true
  [ "$2" = none ] && req=false
  printf '{lookup,[file]}.\n' >"$1/inetrc"   # no DNS: nothing is resolved here
  cat "$C/$DOMAIN.crt" "$C/$DOMAIN.key" >"$1/$DOMAIN.pem"
  cat >"$1/ejabberd.yml" <<YML
hosts: ["$DOMAIN"]
loglevel: warning
certfiles: ["$1/$DOMAIN.pem"]
auth_method: internal
auth_password_format: scram
listen:
  - port: 5222
    ip: "${IP[ejabberd]}"
    module: ejabberd_c2s
    starttls: true
    starttls_required: $req
    backlog: 1024
    max_stanza_size: 262144
    shaper: none
shaper_rules:
  c2s_shaper: none
  s2s_shaper: none
max_fsm_queue: 100000
modules:
  mod_roster: {}
  mod_disco: {}
  mod_ping: {}
  mod_muc:
    host: "conference.$DOMAIN"
    access_create: all
    max_users: 1000
    history_size: 20
YML
}
# ejabberd runs in the VM directly (ejabberdctl switches user and wants a
# distributed node and epmd): a non-distributed node, its own mnesia dir
# and config, an inetrc that resolves nothing.
run_ejabberd() { # dir eval
  (cd "$1" && EJABBERD_CONFIG_PATH="$1/ejabberd.yml" EJABBERD_LOG_PATH="$1/ejabberd.log" ERL_INETRC="$1/inetrc" \
    ERL_CRASH_DUMP="$1/erl_crash.dump" ERL_LIBS="$EJ_LIBS" \
    exec taskset -c "$CPU_SERVER" erl -noinput -noshell +K true +P 1048576 -mnesia dir "\"$1/db\"" -s ejabberd -eval "$2" \
    >"$1/stdout.log" 2>&1) &
  SERVER_PID=$!
}
template_ejabberd() { # dir: registers the accounts once, stops
  mkdir -p "$1/db"; ejabberd_conf "$1" starttls
  run_ejabberd "$1" "N = $ACCOUNTS, R = [ejabberd_auth:try_register(<<\"bench\", (integer_to_binary(I))/binary>>, <<\"$DOMAIN\">>, <<\"$PASS_PREFIX\", (integer_to_binary(I))/binary>>) || I <- lists:seq(1, N)], io:format(\"registered: ~p of ~p~n\", [length([ok || {ok,_} <- R] ++ [ok || ok <- R]), N])"
  for _ in $(seq 1800); do grep -q '^registered:' "$1/stdout.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "^registered: $ACCOUNTS of $ACCOUNTS" "$1/stdout.log" || { log "ejabberd: $(grep registered "$1/stdout.log")"; tail -5 "$1/stdout.log"; stop_server; return 1; }
  stop_server
}
start_ejabberd() { # dir mode
  ejabberd_conf "$1" "$2"
  run_ejabberd "$1" "io:format(\"started~n\")"
  wait_port "${IP[ejabberd]}" 5222 || { tail -20 "$1/stdout.log"; return 1; }
  for _ in $(seq 300); do grep -q '^started' "$1/stdout.log" && break; sleep 0.1; done
}

# ---- the generator's own ceiling: against its reflector ------------------
ceiling() {
  local d="$W/reflector" mode
  mkdir -p "$d"
  for mode in $MODES; do
    local tlsflag=""; [ "$mode" = none ] || tlsflag=-tls
    taskset -c "$CPU_SERVER" "$GEN" reflect -addr "$REFLECT_IP:5222" -domain "$DOMAIN" $tlsflag >"$d/reflect-$mode.log" 2>&1 &
    SERVER_PID=$!
    wait_port "$REFLECT_IP" 5222 || { log "reflector did not start"; stop_server; return 1; }
    log "generator ceiling ($mode): chat against its own reflector"
    taskset -c "$CPU_GEN" "$GEN" run -q -addr "$REFLECT_IP:5222" -domain "$DOMAIN" -tls "$mode" -mech PLAIN \
      -users "$USERS" -scenario chat -rates "$(echo "${BENCH_CEILING_RATES:-8000 20000 40000 80000 160000}" | tr " " ",")" -step "${STEP}s" -drain 3s \
      -stop-saturated -pid "$SERVER_PID" -label reflector -tsv "$RESULTS" | tee -a "$d/run.log" >&2
    stop_server
  done
}

# ---- one scenario against one server --------------------------------------
rates_of() { case $1 in chat) echo "$CHAT_RATES";; presence) echo "$PRESENCE_RATES";; muc) echo "$MUC_RATES";; login) echo "$LOGIN_RATES";; idle) echo 1;; esac; }
run_scenario() { # server mode scenario
  local s=$1 mode=$2 sc=$3 d="$W/$1/$2-$3"
  rm -rf "$d"; cp -a "$W/$s/template" "$d"
  "start_$s" "$d" "$mode" || { log "$s did not start"; stop_server; return 1; }
  sleep 2
  local users=$USERS mech=PLAIN extra=()
  case $sc in
    muc) users=$OCCUPANTS ;;
    idle) users=$IDLE; extra=(-step "${STEP}s" -settle "${IDLE_QUIET}s") ;;
    login) mech=$LOGIN_MECH ;;
    presence) extra=(-contacts "$CONTACTS") ;;
  esac
  log "$s/$mode/$sc: $(rates_of "$sc" | tr ' ' ',')/s"
  taskset -c "$CPU_GEN" "$GEN" run -q -addr "${IP[$s]}:5222" -domain "$DOMAIN" -tls "$mode" -mech "$mech" \
    -users "$users" -scenario "$sc" -rates "$(rates_of "$sc" | tr ' ' ',')" -step "${STEP}s" -drain 5s -setup 16 \
    -stop-saturated -pid "$SERVER_PID" -label "$s" -tsv "$RESULTS" "${extra[@]}" >"$d/bench.out" 2>"$d/bench.err"
  local rc=$?
  sed 's/^/  /' "$d/bench.out" >&2
  [ $rc -eq 0 ] || { log "$s/$mode/$sc: generator failed: $(tail -3 "$d/bench.err")"; }
  stop_server
  return $rc
}

failed=()
{ echo "started $(date -u +%FT%TZ)"; nproc; grep -m1 'model name' /proc/cpuinfo; uptime; } >"$W/machine.txt"
ceiling || failed+=(ceiling)
for s in $SERVERS; do
  case $s in parley|prosody|ejabberd) ;; *) die "unknown server $s";; esac
  log "$s: $ACCOUNTS accounts"
  mkdir -p "$W/$s"
  "template_$s" "$W/$s/template" || { failed+=("$s"); continue; }
  for mode in $MODES; do
    for sc in $SCENARIOS; do
      run_scenario "$s" "$mode" "$sc" || failed+=("$s/$mode/$sc")
    done
  done
done
echo "ended $(date -u +%FT%TZ); load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$W/machine.txt"
[ -s "$RESULTS" ] || die "no results"
"$PY" "$B/compare.py" "$RESULTS" --p99-limit "${BENCH_P99_LIMIT:-50}" --machine "$W/machine.txt" --plots "$W/plots" --out "$W/results.md"
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (see bench/.work/compare/)"
