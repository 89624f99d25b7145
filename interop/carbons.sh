#!/usr/bin/env bash
# Interop for XEP-0280 message carbons and XEP-0191 blocking (issue 10):
# slixmpp clients (xep_0280, xep_0191) log in as two resources of one
# account and a contact; carbons of received and sent messages reach the
# other resource, a client-made carbon is refused; blocking refuses
# messages both ways, pushes to the other resource, and unblocking
# restores delivery.
#
#   bash interop/carbons.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/carbons/ and is stopped by PID on exit. Prints PASS/FAIL
# lines and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init carbons carbons-interop

IP=${CARBONS_IP:-127.0.0.62}
PORT=${CARBONS_PORT:-16262}
DOMAIN=carbons-parley.test
PASSWORD='interop-secret-1'

need_slixmpp
install_needed
ensure_parley

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[limits]
auth_failure_delay = "100ms"
TOML
for u in alice bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/carbons_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD"
grep -q '^PASS: slixmpp carbons: phone gets a <received/>' "$WORK/slixmpp.out" || { ko "slixmpp produced no carbon result"; tail -20 "$WORK/slixmpp.err"; }

end_suite
