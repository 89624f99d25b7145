#!/usr/bin/env bash
# Interop for XEP-0388 SASL2, XEP-0386 Bind 2, XEP-0484 FAST and XEP-0474
# (issue 16). No Debian XMPP library speaks SASL2 yet (slixmpp 1.8 and
# aioxmpp 0.13 do not), so the client is interop/sasl2client, written to
# the XEPs: it logs in with SCRAM-SHA-256-PLUS and Bind 2 (stream
# management and carbons inline), gets a FAST token, loses its connection,
# reconnects with the token in one round trip while resuming its session
# inline, and gets what was sent meanwhile; forged and replayed tokens are
# refused. Then `parley user fast list/revoke` see and take the token away.
#
#   bash interop/sasl2.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/sasl2/ and is stopped by PID on exit. Prints PASS/FAIL
# lines and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init sasl2 sasl2-interop

IP=${SASL2_IP:-127.0.0.100}
PORT=${SASL2_PORT:-15800}
DOMAIN=sasl2-parley.test
PASSWORD='interop-secret-1'

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
log "building interop/sasl2client"
go build -o "$WORK/sasl2client" ./interop/sasl2client || die "build interop/sasl2client"
start_parley "$IP" "$PORT"

TOKEN="$WORK/token"
run_client "$WORK/client" -- timeout 120 "$WORK/sasl2client" -addr "$IP:$PORT" -domain "$DOMAIN" -password "$PASSWORD" -token-file "$TOKEN"

grep -q 'c2s: FAST token issued' "$WORK/parley.log" && ok "the server logged the token's issue" || ko "no token issue in the server log"
if [ -s "$TOKEN" ] && grep -qF "$(cat "$TOKEN")" "$WORK/parley.log"; then ko "the token appears in the server log"; else ok "the token itself is not in the server log"; fi
if [ -s "$TOKEN" ] && grep -rqaF "$(cat "$TOKEN")" "$WORK/data"; then ko "the token is stored in the clear"; else ok "the token is not stored in the clear"; fi

out=$("$BIN" user fast list "alice@$DOMAIN" --config "$WORK/parley.toml" 2>&1)
if echo "$out" | grep -q 'HT-SHA-256-EXPR.*current.*sasl2client on interop'; then ok "parley user fast list shows the client's token"; else ko "parley user fast list: $out"; fi
out=$("$BIN" user fast revoke "alice@$DOMAIN" all --config "$WORK/parley.toml" 2>&1)
if echo "$out" | grep -q 'revoked 1 FAST token'; then ok "parley user fast revoke all"; else ko "parley user fast revoke: $out"; fi
run_client "$WORK/refused" -- timeout 60 "$WORK/sasl2client" -addr "$IP:$PORT" -domain "$DOMAIN" -token-file "$TOKEN" -expect-refused

end_suite
