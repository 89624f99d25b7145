#!/usr/bin/env bash
# Interop: drive the BUILT ./parley with real XMPP clients nobody on the team
# wrote (slixmpp from Debian's python3-slixmpp, and go-sendxmpp).
#
#   make interop            # builds ./parley, then runs this script
#   bash interop/run.sh     # uses ./parley (built first if missing)
#
# The server runs on its own loopback address with its own data dir under
# interop/.work/ (gitignored); every client connects to that IP explicitly,
# so nothing depends on DNS. The run ends with a line "N passed, M failed"
# and exits non-zero if anything failed. See interop/README.md.
set -uo pipefail
PASS_SEP=" "
. "$(dirname "$0")/lib.sh"
interop_init core interop

IP=${INTEROP_IP:-127.0.0.21}
PORT=${INTEROP_PORT:-15222}       # STARTTLS (RFC 6120)
TLS_PORT=${INTEROP_TLS_PORT:-15223} # direct TLS (XEP-0368)
HTTP_PORT=${INTEROP_HTTP_PORT:-15280}
DOMAIN=${INTEROP_DOMAIN:-interop.test}
PASSWORD='interop-secret-1'

# ---------------------------------------------------------------- packages
need_slixmpp
need_cmd go-sendxmpp
install_needed

# ---------------------------------------------------------------- binary
ensure_parley

# ---------------------------------------------------------------- server
fresh_work data home
CONF="$WORK/parley.toml"
parley_conf "$CONF" <<TOML
[[host]]
domain = "$DOMAIN"

[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = ["$IP:$TLS_PORT"]

[http]
listen = "$IP:$HTTP_PORT"

[limits]
# The default first-failure delay would only slow a failing run down.
auth_failure_delay = "100ms"
TOML

SERVER_LOG="$WORK/server.log"
for u in alice bob carol dave; do add_user "$CONF" "$u@$DOMAIN" "$PASSWORD"; done

start_bg "$SERVER_LOG" "$BIN" serve --config "$CONF"
SERVER_PID=$LAST_PID
log "server pid $SERVER_PID on $IP:$PORT (STARTTLS) and $IP:$TLS_PORT (direct TLS), domain $DOMAIN"

# Wait (at most 10s) for both client ports to accept connections.
if ! wait_server "$SERVER_PID" "$IP" "$PORT" "$TLS_PORT"; then
  kill -0 "$SERVER_PID" 2>/dev/null || die "server exited during start-up" "$SERVER_LOG"
  die "server did not listen on $IP:$PORT and $IP:$TLS_PORT within 10s" "$SERVER_LOG"
fi

RELAY_OTHER=echo   # the client script's other lines are shown too
# ---------------------------------------------------------------- scenarios
run_client "$WORK/scenarios" -- env HOME="$WORK/home" timeout 150 "$PY" "$ROOT/interop/scenarios.py" \
  --ip "$IP" --port "$PORT" --tls-port "$TLS_PORT" --domain "$DOMAIN" \
  --password "$PASSWORD" --work "$WORK" "$@"
kill -0 "$SERVER_PID" 2>/dev/null || ko "server died during the run"

# RFC 6120 §4.4 on the way out: SIGTERM closes the streams and the process
# exits 0 within the 10s shutdown budget.
stop_pid "$SERVER_PID" 100
if [ "$STOP_KILLED" = 0 ] && [ "$STOP_RC" = 0 ]; then
  ok "server stops cleanly on SIGTERM"
else
  ko "server stops cleanly on SIGTERM: exit status $STOP_RC, killed=$STOP_KILLED"
fi
show_on_failure 300 "$SERVER_LOG"
[ "$fail" = 0 ] || log "client-side debug log: $WORK/scenarios.err"
finish
