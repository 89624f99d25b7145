#!/usr/bin/env bash
# Interop for XEP-0357 push notifications (issue 11): a slixmpp
# ComponentXMPP on the XEP-0114 port plays the app server; alice enables
# push (with a publish-options form) and stays unavailable; bob's messages
# to her reach the component as notifications (summary form, message
# count, publish-options); an error answer disables the registration;
# disable is accepted.
#
#   bash interop/push.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/push/ and is stopped by PID on exit. Prints PASS/FAIL lines
# and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init push push-interop

IP=${PUSH_IP:-127.0.0.69}
C2S_PORT=${PUSH_C2S_PORT:-15769}
COMP_PORT=${PUSH_COMPONENT_PORT:-15779}
DOMAIN=push-parley.test
APP=push.$DOMAIN
SECRET='component-secret-1'
PASSWORD='interop-secret-1'

need_slixmpp
install_needed
ensure_parley

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.muc]
enabled = false
[c2s]
listen = ["$IP:$C2S_PORT"]
direct_tls_listen = []
[http]
listen = ""
[limits]
auth_failure_delay = "100ms"
[component]
listen = "$IP:$COMP_PORT"
[[component.service]]
domain = "$APP"
secret = "$SECRET"
TOML
for u in alice bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
PID=$LAST_PID
wait_server "$PID" "$IP" "$C2S_PORT" "$COMP_PORT" || die "parley starts" "$WORK/parley.log"
ok "parley starts on $IP:$C2S_PORT (component port $COMP_PORT)"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/push_slixmpp.py" "$IP" "$C2S_PORT" "$COMP_PORT" "$DOMAIN" "$APP" "$SECRET" "$PASSWORD"
grep -q 'PASS: .*reaches the app server' "$WORK/slixmpp.out" || { ko "no notification reached the app server"; tail -20 "$WORK/slixmpp.err"; }

end_suite
