#!/usr/bin/env bash
# Interop for XEP-0352 client state indication (issue 10): slixmpp clients
# (xep_0352, xep_0085) check the <csi/> stream feature; presence updates and
# chat states held while alice is inactive and delivered, latest presence
# per contact only, before bob's next message; <active/> delivering what
# was held; an IQ reaching an inactive client at once; and a full hold
# buffer (limits.csi_queue = 5) delivered in order rather than dropped.
#
#   bash interop/csi.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/csi/ and is stopped by PID on exit. Prints PASS/FAIL lines
# and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init csi csi-interop

IP=${CSI_IP:-127.0.0.63}
PORT=${CSI_PORT:-15763}
DOMAIN=csi-parley.test
PASSWORD='interop-secret-1'
QUEUE=5

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
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[limits]
auth_failure_delay = "100ms"
csi_queue = $QUEUE
TOML
for u in alice bob carol; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/csi_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD" "$QUEUE"
grep -q '^PASS: slixmpp csi stream feature' "$WORK/slixmpp.out" || { ko "slixmpp produced no stream feature result"; tail -20 "$WORK/slixmpp.err"; }

end_suite
