#!/usr/bin/env bash
# Interop for XEP-0050 ad-hoc commands and XEP-0133 service administration
# (issue 13): a slixmpp admin (xep_0050) runs add-user on the host and the
# new account logs in; a non-admin sees no commands and is refused.
#
#   bash interop/adhoc.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/adhoc/ and is stopped by PID on exit. Prints PASS/FAIL lines
# and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init adhoc adhoc-interop

IP=${ADHOC_IP:-127.0.0.68}
PORT=${ADHOC_PORT:-15768}
DOMAIN=adhoc-parley.test
PASSWORD='interop-secret-1'

need_slixmpp
install_needed
ensure_parley

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
admins = ["admin@$DOMAIN"]
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[limits]
auth_failure_delay = "100ms"
TOML
for u in admin bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/adhoc_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD"
grep -q '^PASS: slixmpp adhoc admin runs add-user' "$WORK/slixmpp.out" || { ko "slixmpp produced no add-user result"; tail -20 "$WORK/slixmpp.err"; }

# The audit line names the admin, the command and the target, never the
# password.
if grep -q 'admin action.*admin=admin@'"$DOMAIN"'.*via=xmpp.*action=add-user.*target=newbie@'"$DOMAIN" "$WORK/parley.log" &&
   ! grep -q 'newbie-secret-1' "$WORK/parley.log"; then
  ok "audit line for add-user, no password in the log"
else
  ko "audit line for add-user, no password in the log"
fi

end_suite
