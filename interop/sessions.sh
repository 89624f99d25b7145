#!/usr/bin/env bash
# Bound sessions that end badly leave nothing behind, checked on the built
# ./parley with a raw-socket client (interop/sessions_raw.py, standard
# library only): 300 sessions from one address each ended by the server's
# <invalid-from/> (more than limits.max_connections_per_ip, so a leaked
# connection slot would lock the address out), then an ordinary login from
# the same address; /metrics must show parley_connections{kind="c2s"} and
# go_goroutines back at their baseline, and SIGTERM must stop the server in
# under 2 s.
#
#   bash interop/sessions.sh        (after `make build`)
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init sessions sessions-interop

IP=${SESSIONS_PARLEY_IP:-127.0.0.44}
PORT=${SESSIONS_PARLEY_PORT:-15822}
HTTP=${SESSIONS_PARLEY_HTTP:-15880}
DOMAIN=sessions-parley.test
COUNT=${SESSIONS_COUNT:-300}

ensure_parley
fresh_work data
port_open "$IP" "$PORT" && die "$IP:$PORT is already in use"

parley_conf "$WORK/parley.toml" <<CONF
[[host]]
domain = "$DOMAIN"
[host.muc]
enabled = false
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = "$IP:$HTTP"
CONF
add_user "$WORK/parley.toml" "alice@$DOMAIN" password1

start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
PID=$LAST_PID
wait_server "$PID" "$IP" "$PORT" "$HTTP" || die "parley did not start" "$WORK/parley.log"

metric() { # metric NAME-WITH-LABELS: its value from /metrics
  "$PY" - "$IP" "$HTTP" "$1" <<'PY'
import sys, urllib.request
ip, port, name = sys.argv[1:4]
for line in urllib.request.urlopen("http://%s:%s/metrics" % (ip, port), timeout=5).read().decode().splitlines():
    if line.startswith(name + " "):
        print(int(float(line.split()[1])))
        break
PY
}
settle() { # settle NAME MAX: wait up to 10 s for metric NAME <= MAX; prints it
  local v
  for _ in $(seq 100); do
    v=$(metric "$1")
    [ -n "$v" ] && [ "$v" -le "$2" ] && break
    sleep 0.1
  done
  echo "$v"
}

base_goroutines=$(metric go_goroutines)
run_client "$WORK/raw" -- "$PY" interop/sessions_raw.py "$IP" "$PORT" "$DOMAIN" alice password1 "$COUNT"

conns=$(settle 'parley_connections{kind="c2s"}' 0)
[ "$conns" = 0 ] && ok "parley_connections{kind=\"c2s\"} back to 0" || ko "parley_connections{kind=\"c2s\"} is $conns"
sessions=$(settle "parley_sessions{host=\"$DOMAIN\"}" 0)
[ "$sessions" = 0 ] && ok "parley_sessions back to 0" || ko "parley_sessions is $sessions"
g=$(settle go_goroutines $((base_goroutines + 3)))
[ "$g" -le $((base_goroutines + 3)) ] && ok "go_goroutines back to the baseline ($g, was $base_goroutines)" \
  || ko "go_goroutines $g after the sessions, $base_goroutines before"

t0=$(date +%s%N)
stop_pid "$PID" 50
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$STOP_KILLED" = 0 ] && [ "$ms" -lt 2000 ] && ok "SIGTERM stopped the server in ${ms} ms" \
  || ko "SIGTERM took ${ms} ms (killed: $STOP_KILLED)"

show_on_failure 30 "$WORK/parley.log"
finish
