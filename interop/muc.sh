#!/usr/bin/env bash
# Interop for XEP-0045 multi-user chat (issue 5): slixmpp clients (xep_0045)
# create and configure a room on Parley's conference service, join, chat,
# get history, change the subject, kick (and are refused a kick), destroy.
#
#   bash interop/muc.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/muc/ and is stopped by PID on exit. Prints PASS/FAIL lines
# and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init muc muc-interop

IP=${MUC_IP:-127.0.0.57}
PORT=${MUC_PORT:-15757}
DOMAIN=muc-parley.test
PASSWORD='interop-secret-1'

need_slixmpp
install_needed
ensure_parley

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.muc]
room_creation = "local"
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[limits]
auth_failure_delay = "100ms"
TOML
for u in alice bob carol; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/muc_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD"
grep -q '^PASS: slixmpp muc alice creates' "$WORK/slixmpp.out" || { ko "slixmpp produced no room creation result"; tail -20 "$WORK/slixmpp.err"; }

end_suite
