#!/usr/bin/env bash
# Side-by-side XMPP load comparison: the same tsung scenario (rendered from
# bench/tsung.xml.in) against Parley, Prosody and ejabberd, one after the
# other in one run, each a throwaway instance on its own loopback address
# with its own config and data under bench/.work/tsung/<server>/. Prints one
# table (also bench/.work/tsung/results.md) with each server's figures and the ratios
# Parley/Prosody and Parley/ejabberd. See bench/README.md.
#
# Knobs (environment):
#   BENCH_USERS=500       accounts and concurrent users
#   BENCH_RATE=50         user arrivals per second
#   BENCH_DURATION=60     seconds each user spends sending chat messages
#   BENCH_INTERVAL=2      seconds between two messages of one user
#   BENCH_MSG_SIZE=64     message body bytes
#   BENCH_TLS=starttls    starttls (default) or plain
#   BENCH_SERVERS="parley prosody ejabberd"
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B="$ROOT/bench"
W="$B/.work/tsung"
BIN=${PARLEY_BIN:-"$ROOT/parley"}
PY=/usr/bin/python3
USERS=${BENCH_USERS:-500}
RATE=${BENCH_RATE:-50}
DURATION=${BENCH_DURATION:-60}
INTERVAL=${BENCH_INTERVAL:-2}
MSG_SIZE=${BENCH_MSG_SIZE:-64}
TLS=${BENCH_TLS:-starttls}
SERVERS=${BENCH_SERVERS:-parley prosody ejabberd}
DOMAIN=bench.test
PASS_PREFIX=benchpass             # tsung's password for user benchN is benchpassN
declare -A IP=([parley]=127.0.0.136 [prosody]=127.0.0.137 [ejabberd]=127.0.0.138)
EPMD_PORT=43691                   # tsung's private epmd (never the system one)
EJ_LIBS=/usr/lib/x86_64-linux-gnu # Debian's ejabberd Erlang applications

ARRIVAL_SECONDS=$(( (USERS + RATE - 1) / RATE ))   # nominal; the phase is twice that + 5 s, capped by maxnumber
MSGS=$(( DURATION / INTERVAL )); [ "$MSGS" -ge 1 ] || MSGS=1
# Hard cap on one tsung run: arrivals + messaging + slack.
LOAD_LIMIT=$(( ARRIVAL_SECONDS * 2 + 5 + MSGS * INTERVAL + INTERVAL + 30 ))

log() { echo "bench: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

case $TLS in starttls|plain) ;; *) die "BENCH_TLS must be starttls or plain";; esac

need=()
command -v tsung >/dev/null || need+=(tsung)
command -v prosody >/dev/null || need+=(prosody)
dpkg -s ejabberd >/dev/null 2>&1 || need+=(ejabberd)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } </dev/null >/dev/null 2>&1 \
    || die "cannot install ${need[*]}"
fi
[ -x "$BIN" ] || die "$BIN missing: run make build"

# ---- process bookkeeping: everything we start is stopped by PID ---------
pids=()
sampler=""
stop_pid() { # pid
  local p=$1
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
}
TSUNG_PGID=""
stop_all() {
  if [ -n "$TSUNG_PGID" ]; then
    kill -TERM -- "-$TSUNG_PGID" 2>/dev/null; sleep 1; kill -KILL -- "-$TSUNG_PGID" 2>/dev/null
    wait "$TSUNG_PGID" 2>/dev/null; TSUNG_PGID=""
  fi
  [ -n "$sampler" ] && { stop_pid "$sampler"; sampler=""; }
  local p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  pids=()
}
cleanup() {
  stop_all
  [ -n "${EPMD_PID:-}" ] && stop_pid "$EPMD_PID"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

rm -rf "$W"; mkdir -p "$W/certs"
C="$W/certs"
bench_cert "$C" "$DOMAIN"

# ---- Parley ---------------------------------------------------------------
setup_parley() {
  local d="$W/parley" ip=${IP[parley]} c2s_tls="require_tls = true"
  [ "$TLS" = plain ] && c2s_tls="require_tls = false
allow_plain_without_tls = true"
  mkdir -p "$d"
  cat >"$d/parley.toml" <<TOML
data_dir = "$d/data"
[log]
level = "warn"
[[host]]
domain = "$DOMAIN"
cert_file = "$C/$DOMAIN.crt"
key_file = "$C/$DOMAIN.key"
[host.muc]
enabled = false
# no message archive: the other two archive nothing here (and archiving
# into SQLite costs Parley more than routing the message)
[host.archive]
enabled = false
[c2s]
listen = ["$ip:5222"]
direct_tls_listen = []
$c2s_tls
[http]
listen = ""
[limits]
# tsung connects every user from one address; the per-IP cap and the
# per-connection byte rate would throttle the load generator, not Parley.
max_connections_per_ip = 100000
max_concurrent_logins_per_ip = $((8 * $(nproc)))
max_concurrent_logins = $((8 * $(nproc)))
rate_bytes_per_second = 104857600
rate_burst_bytes = 104857600
[auth]
scram_iterations = 4096
TOML
  # Accounts: one process per account (SCRAM-SHA-1/256 at 4096 iterations).
  seq 1 "$USERS" | xargs -P 2 -I{} "$BIN" user add "bench{}@$DOMAIN" "${PASS_PREFIX}{}" --config "$d/parley.toml" \
    >"$d/useradd.log" 2>&1 || { tail -5 "$d/useradd.log"; return 1; }
}
start_parley() {
  local d="$W/parley"
  (cd "$d" && exec "$BIN" serve --config "$d/parley.toml" >"$d/server.log" 2>&1) & pids+=($!)
  SERVER_PID=$!
  wait_port "${IP[parley]}" 5222 || { tail -20 "$d/server.log"; return 1; }
}

# ---- Prosody --------------------------------------------------------------
setup_prosody() {
  local d="$W/prosody" ip=${IP[prosody]} enc=true
  [ "$TLS" = plain ] && enc=false
  mkdir -p "$d/data"
  cat >"$d/prosody.cfg.lua" <<LUA
run_as_root = true
daemonize = false
pidfile = "$d/prosody.pid"
data_path = "$d/data"
log = { warn = "$d/prosody.log" }
interfaces = { "$ip" }
c2s_ports = { 5222 }
c2s_direct_tls_ports = {}
s2s_ports = {}
s2s_direct_tls_ports = {}
http_ports = {}
https_ports = {}
network_settings = { tcp_backlog = 1024 }
-- no mod_limits: no per-connection rate limit, like the others here
modules_enabled = { "roster", "saslauth", "tls", "disco", "ping", "presence", "message", "iq" }
modules_disabled = { "admin_shell", "s2s" }
authentication = "internal_hashed"
default_iteration_count = 4096
c2s_require_encryption = $enc
allow_unencrypted_plain_auth = true
ssl = { key = "$C/$DOMAIN.key"; certificate = "$C/$DOMAIN.crt" }
VirtualHost "$DOMAIN"
LUA
  # Accounts written straight into Prosody's file store in the format of
  # mod_auth_internal_hashed (SCRAM-SHA-1, 4096 iterations): prosodyctl
  # register costs a Lua start per account.
  "$PY" "$B/accounts.py" prosody "$d/data" "$DOMAIN" "$USERS" "$PASS_PREFIX" || return 1
}
start_prosody() {
  local d="$W/prosody"
  prosody -F --config "$d/prosody.cfg.lua" >"$d/stdout.log" 2>&1 & pids+=($!)
  SERVER_PID=$!
  wait_port "${IP[prosody]}" 5222 || { tail -20 "$d/stdout.log"; return 1; }
}

# ---- ejabberd -------------------------------------------------------------
setup_ejabberd() {
  local d="$W/ejabberd" ip=${IP[ejabberd]} req=true
  [ "$TLS" = plain ] && req=false
  mkdir -p "$d/db"
  cat "$C/$DOMAIN.crt" "$C/$DOMAIN.key" >"$d/$DOMAIN.pem"
  printf '{lookup,[file]}.\n' >"$d/inetrc"   # no DNS: nothing is resolved here
  local tls_lines="    starttls: true
    starttls_required: $req"
  cat >"$d/ejabberd.yml" <<YML
hosts: ["$DOMAIN"]
loglevel: warning
certfiles: ["$d/$DOMAIN.pem"]
auth_method: internal
auth_password_format: scram
listen:
  - port: 5222
    ip: "$ip"
    module: ejabberd_c2s
$tls_lines
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
YML
}
start_ejabberd() {
  local d="$W/ejabberd"
  # The VM directly (ejabberdctl switches user and needs a distributed node
  # and epmd): a non-distributed node, its own mnesia dir; the accounts are
  # registered by an -eval once the application is up, before the port is
  # polled by the load.
  (cd "$d" && EJABBERD_CONFIG_PATH="$d/ejabberd.yml" EJABBERD_LOG_PATH="$d/ejabberd.log" ERL_INETRC="$d/inetrc" \
    ERL_CRASH_DUMP="$d/erl_crash.dump" ERL_LIBS="$EJ_LIBS" \
    exec erl -noinput -noshell +K true +P 1048576 -mnesia dir "\"$d/db\"" -s ejabberd \
      -eval "N = $USERS, R = [ejabberd_auth:try_register(<<\"bench\", (integer_to_binary(I))/binary>>, <<\"$DOMAIN\">>, <<\"$PASS_PREFIX\", (integer_to_binary(I))/binary>>) || I <- lists:seq(1, N)], io:format(\"registered: ~p of ~p~n\", [length([ok || {ok,_} <- R] ++ [ok || ok <- R]), N])" \
    >"$d/stdout.log" 2>&1) & pids+=($!)
  SERVER_PID=$!
  wait_port "${IP[ejabberd]}" 5222 || { tail -20 "$d/stdout.log"; return 1; }
  for _ in $(seq 600); do grep -q '^registered:' "$d/stdout.log" && break; sleep 0.1; done
  grep -q "^registered: $USERS of $USERS" "$d/stdout.log" || { log "ejabberd: $(grep '^registered' "$d/stdout.log")"; return 1; }
}

# ---- tsung ----------------------------------------------------------------
tls_block() {
  [ "$TLS" = plain ] && return
  cat <<'XML'
      <!-- STARTTLS and the stream restart over TLS -->
      <transaction name="starttls">
        <request><jabber type="starttls" ack="bidi_ack"/></request>
        <request><jabber type="connect" ack="parse" regexp="&lt;/(stream:)?features&gt;"/></request>
      </transaction>
XML
}
render() { # server out
  local tb; tb=$(tls_block)
  sed -e "s/@IP@/${IP[$1]}/g" -e "s/@USERS@/$USERS/g" -e "s/@MAXUSERS@/$((USERS + 100))/g" \
      -e "s/@RATE@/$RATE/g" -e "s/@ARRIVAL_SECONDS@/$((ARRIVAL_SECONDS * 2 + 5))/g" -e "s/@LOAD_LIMIT@/$LOAD_LIMIT/g" \
      -e "s/@MSGS@/$MSGS/g" -e "s/@INTERVAL@/$INTERVAL/g" -e "s/@MSG_SIZE@/$MSG_SIZE/g" \
      "$B/tsung.xml.in" | awk -v tb="$tb" '{ if ($0 == "@TLS@") print tb; else print }' >"$2"
}

# tsung's controller is a distributed Erlang node: give it a private epmd
# on loopback that we own (and stop) instead of the machine's.
export ERL_EPMD_PORT=$EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
epmd -port "$EPMD_PORT" -address 127.0.0.1 >/dev/null 2>&1 & EPMD_PID=$!
sleep 0.3

run_one() { # server
  local s=$1 d="$W/$1"
  log "$s: setting up ($USERS accounts)"
  "setup_$s" || { log "$s: setup failed"; return 1; }
  log "$s: starting on ${IP[$s]}"
  "start_$s" || { log "$s: did not start"; stop_all; return 1; }
  sleep 2   # let the server settle (idle RSS below)
  "$PY" "$B/report.py" sample "$SERVER_PID" "$d/proc.tsv" & sampler=$!
  render "$s" "$d/tsung.xml"
  mkdir -p "$d/tsung"
  log "$s: load for up to ${LOAD_LIMIT}s (arrivals ${ARRIVAL_SECONDS}s, $MSGS messages/user every ${INTERVAL}s)"
  echo "start $(date +%s.%N)" >"$d/marks"
  # Its own session and process group (the tsung script does not exec erl),
  # so that the cleanup can stop the whole group by its id.
  HOME="$d" ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}" setsid timeout -k 10 $((LOAD_LIMIT + 60)) tsung -n -w 0 -f "$d/tsung.xml" -l "$d/tsung/" start \
    >"$d/tsung.out" 2>&1 </dev/null & TSUNG_PGID=$!
  wait "$TSUNG_PGID"
  local rc=$?
  TSUNG_PGID=
  echo "tsung_rc $rc" >>"$d/marks"
  echo "end $(date +%s.%N)" >>"$d/marks"
  sleep 1
  stop_all
  if [ "$rc" -ne 0 ] || grep -q 'Error' "$d/tsung.out" || ! ls "$d"/tsung/*/tsung.log >/dev/null 2>&1; then
    log "$s: tsung failed (rc $rc):"; tail -15 "$d/tsung.out" >&2; return 1
  fi
  log "$s: done"
}

ran=(); failed=()
for s in $SERVERS; do
  case $s in parley|prosody|ejabberd) ;; *) die "unknown server $s";; esac
  if run_one "$s"; then ran+=("$s"); else failed+=("$s"); fi
done
[ ${#ran[@]} -gt 0 ] || die "no server ran"
"$PY" "$B/report.py" table --work "$W" --servers "${ran[*]}" --users "$USERS" --rate "$RATE" \
  --duration "$DURATION" --interval "$INTERVAL" --tls "$TLS" --msg-size "$MSG_SIZE" --out "$W/results.md"
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (see bench/.work/tsung/<server>/)"
