#!/usr/bin/env bash
# A real OMEMO exchange (issue 11, XEP-0384): two accounts that are not
# contacts run python-omemo (Debian's python3-omemo with the
# python3-twomemo and python3-oldmemo backends) over slixmpp: each
# publishes device lists and bundles for urn:xmpp:omemo:2 and
# eu.siacs.conversations.axolotl with the open access model, the sender
# fetches the recipient's and sends a message encrypted with each
# version, which the recipient decrypts, and the recipient answers.
#
#   bash interop/omemo.sh        (after `make build`, which makes ./parley)
#   OMEMO_V=-v bash interop/omemo.sh   (slixmpp's debug log in slixmpp.err)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/omemo/ and is stopped by PID on exit. Prints PASS/FAIL
# lines and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init omemo omemo-interop

IP=${OMEMO_IP:-127.0.0.58}
PORT=${OMEMO_PORT:-15758}
DOMAIN=omemo-parley.test
PASSWORD='interop-secret-1'

need_slixmpp
for p in python3-omemo python3-twomemo python3-oldmemo python3-xmlschema; do need_dpkg "$p"; done
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
TOML
for u in alice bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 180 "$PY" "$ROOT/interop/omemo_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD" ${OMEMO_V:-}
grep -q '^PASS: omemo bob answers' "$WORK/slixmpp.out" || { ko "no OMEMO answer was decrypted"; tail -20 "$WORK/slixmpp.err"; }

end_suite
