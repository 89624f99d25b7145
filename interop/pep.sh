#!/usr/bin/env bash
# Interop for personal eventing (issue 11: XEP-0163 on XEP-0060, XEP-0115
# caps): slixmpp clients (xep_0060, xep_0163, xep_0084, xep_0115) publish
# and receive an avatar through +notify and as the last item, publish
# bookmarks (XEP-0402) from one resource and read them from another,
# which joins the bookmarked room (autojoin), set and read the room's
# avatar (XEP-0486 vCard and disco#info hash), and fetch an OMEMO device
# list and bundle with the open access model as a non-contact; plus the
# errors for someone else's service, private nodes and unmet
# publish-options.
#
#   bash interop/pep.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/pep/ and is stopped by PID on exit. Prints PASS/FAIL lines
# and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init pep pep-interop

IP=${PEP_IP:-127.0.0.65}
PORT=${PEP_PORT:-15765}
DOMAIN=pep-parley.test
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
for u in alice bob dave; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 180 "$PY" "$ROOT/interop/pep_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD"
grep -q '^PASS: slixmpp pep alice and bob subscribe' "$WORK/slixmpp.out" || { ko "slixmpp produced no subscription result"; tail -20 "$WORK/slixmpp.err"; }

end_suite
