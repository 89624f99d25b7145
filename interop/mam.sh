#!/usr/bin/env bash
# Interop for XEP-0313 message archives (issue 10): slixmpp clients
# (xep_0313, xep_0059, xep_0359) chat and then page through their archives
# forwards and backwards, check the stanza-ids of delivered messages
# against archive ids, filter by time, read metadata, are refused another
# user's archive; then a public room archives its discussion, stamps it
# with the room's stanza-id, and an outsider pages through it.
#
#   bash interop/mam.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x (127.0.0.61) with config and data
# under interop/.work/mam/ and is stopped by PID on exit. Prints PASS/FAIL
# lines and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init mam mam-interop

IP=${MAM_IP:-127.0.0.61}
PORT=${MAM_PORT:-16161}
DOMAIN=mam-parley.test
PASSWORD='interop-secret-1'

need_slixmpp
install_needed
ensure_parley

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.archive]
max_page_size = 50
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

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/mam_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD"
grep -q '^PASS: slixmpp mam sender pages forward' "$WORK/slixmpp.out" || { ko "slixmpp produced no paging result"; tail -20 "$WORK/slixmpp.err"; }

if kill -0 "$PID" 2>/dev/null; then ok "parley still running after the run"; else ko "parley died"; tail -30 "$WORK/parley.log"; fi
stop_pid "$PID"
if [ "$STOP_RC" = 0 ] && [ "$STOP_KILLED" = 0 ]; then ok "parley stops cleanly on SIGTERM"; else ko "parley stop: status $STOP_RC, killed $STOP_KILLED"; fi
stop_all
[ "$fail" -eq 0 ] || { log "server log: $WORK/parley.log; client log: $WORK/slixmpp.err"; }
finish
