#!/usr/bin/env bash
# Interop for issue 5's components:
#  - two slixmpp clients transfer a 5 MB file through Parley's XEP-0065 proxy
#    (xep_0065; the sender discovers the proxy through disco and offers it
#    as the only streamhost) and the receiver's SHA-256 matches the sender's;
#  - a slixmpp ComponentXMPP connects to Parley's XEP-0114 port (a wrong
#    secret is refused first) and answers a client's disco#info query.
#
#   bash interop/components.sh      (after `make build`, which makes ./parley)
#
# Parley runs on its own 127.0.0.x with config and data under
# interop/.work/components/ and is stopped by PID on exit. Prints PASS/FAIL
# lines and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init components components-interop

IP=${COMP_IP:-127.0.0.51}
C2S_PORT=${COMP_C2S_PORT:-15722}
COMP_PORT=${COMP_COMPONENT_PORT:-15747}
PROXY_PORT=${COMP_PROXY_PORT:-15777}
DOMAIN=comp.test
PROXY=proxy.$DOMAIN
EXT=ext.$DOMAIN
SECRET='component-secret-1'
PASSWORD='interop-secret-1'
SIZE=$((5 * 1024 * 1024))

need_slixmpp
install_needed
ensure_parley

# ---------------------------------------------------------------- server
fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[c2s]
listen = ["$IP:$C2S_PORT"]
direct_tls_listen = []
[http]
listen = ""
[component]
listen = "$IP:$COMP_PORT"
[[component.service]]
domain = "$EXT"
secret = "$SECRET"
name = "Interop external component"
[proxy65]
enabled = true
listen = "$IP:$PROXY_PORT"
TOML
for u in sender receiver asker; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
wait_server "$LAST_PID" "$IP" "$C2S_PORT" "$COMP_PORT" "$PROXY_PORT" || die "parley starts" "$WORK/parley.log"
ok "parley listens: c2s $IP:$C2S_PORT, component $IP:$COMP_PORT, proxy65 $IP:$PROXY_PORT"

# The transfer script's "sha256 sent=... received=..." line goes to the log.
sha_line() { case "$1" in sha256*) log "$1" ;; esac; }
RELAY_OTHER=sha_line
run_client "$WORK/s5b" -- "$PY" "$ROOT/interop/components_s5b.py" "$IP" "$C2S_PORT" "$DOMAIN" "$PROXY" "$SIZE"
run_client "$WORK/external" -- "$PY" "$ROOT/interop/components_external.py" "$IP" "$C2S_PORT" "$COMP_PORT" "$DOMAIN" "$EXT" "$SECRET"

show_on_failure 40 "$WORK/parley.log"
stop_all
finish
