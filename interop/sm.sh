#!/usr/bin/env bash
# Interop for XEP-0198 stream management (issue 10): slixmpp's xep_0198
# plugin enables resumption, loses its TCP connection without closing the
# stream, reconnects and resumes; what was sent meanwhile arrives once and
# in order (interop/sm_slixmpp.py).
#
#   bash interop/sm.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/sm/ and is stopped by PID on exit. Prints PASS/FAIL lines
# and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init sm sm-interop

IP=${SM_IP:-127.0.0.64}
PORT=${SM_PORT:-15764}
DOMAIN=sm-parley.test
PASSWORD='interop-secret-1'

need_slixmpp
install_needed
ensure_parley
port_open "$IP" "$PORT" && die "$IP:$PORT is already in use"

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.muc]
enabled = false
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
TOML
for u in alice bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/sm_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD"
grep -q '^PASS: slixmpp sm alice resumes' "$WORK/slixmpp.out" || ko "slixmpp did not report a resumption"
grep -q 'c2s: session resumed' "$WORK/parley.log" && ok "the server logged the resumption" || ko "no resumption in the server log"

end_suite
