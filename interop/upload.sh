#!/usr/bin/env bash
# Interop for the HTTPS front door and XEP-0363 HTTP File Upload (issue 12):
# slixmpp (xep_0363) discovers upload.<domain>, requests a slot, PUTs a
# 2 MiB file with the slot's headers and GETs it back with the same SHA-256;
# a reused slot, a missing token and a file over max-file-size are refused;
# slixmpp's own upload_file works end to end; host-meta (XEP-0156) lists the
# enabled transports (interop/upload_slixmpp.py). The script then checks
# the stored file on disk and that nothing but the upload directory grew.
#
#   bash interop/upload.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/upload/ and is stopped by PID on exit. Its certificate is
# self-signed and the clients skip verification. Prints PASS/FAIL lines and
# "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init upload upload-interop

IP=${UPLOAD_IP:-127.0.0.66}
PORT=${UPLOAD_PORT:-15766}
HTTPS_PORT=${UPLOAD_HTTPS_PORT:-15767}
DOMAIN=upload-parley.test
PASSWORD='interop-secret-1'
BASE="https://$IP:$HTTPS_PORT"

need_slixmpp
need_dpkg python3-aiohttp  # slixmpp's XEP-0363 plugin does the HTTP PUT with aiohttp (only recommended by python3-slixmpp)
install_needed
ensure_parley
for p in "$PORT" "$HTTPS_PORT"; do port_open "$IP" "$p" && die "$IP:$p is already in use"; done

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.muc]
enabled = false
[host.http]
public_url = "$BASE"
[host.upload]
enabled = true
max_file_size = 10485760
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[https]
listen = "$IP:$HTTPS_PORT"
websocket = true
bosh = true
TOML
for u in alice bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
PID=$LAST_PID
wait_server "$PID" "$IP" "$PORT" "$HTTPS_PORT" || die "parley starts" "$WORK/parley.log"
ok "parley starts on $IP:$PORT (XMPP) and $IP:$HTTPS_PORT (HTTPS)"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 120 "$PY" "$ROOT/interop/upload_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD" "$BASE"
grep -q '^PASS: slixmpp upload GET returns the same SHA-256' "$WORK/slixmpp.out" || ko "slixmpp did not report a round trip"

# Two uploads (the 2 MiB file and upload_file's note), each one file under
# data/upload/<domain>/, and no other file anywhere in the data dir but the
# server's own.
stored=$(find "$WORK/data/upload/$DOMAIN" -type f -not -path '*/.tmp/*' | wc -l)
[ "$stored" = 2 ] && ok "two files stored under data/upload/$DOMAIN" || ko "$stored files under data/upload/$DOMAIN, want 2"
other=$(find "$WORK/data" -type f -not -path "$WORK/data/upload/$DOMAIN/*" -not -name 'parley.db*' -not -name 'selfsigned.*')
[ -z "$other" ] && ok "nothing written outside the upload directory" || ko "unexpected files: $other"
[ "$(grep -c 'upload: stored' "$WORK/parley.log")" = 2 ] && ok "the server logged two stored uploads" || ko "the server log does not show two stored uploads"

if kill -0 "$PID" 2>/dev/null; then ok "parley still running after the run"; else ko "parley died"; tail -30 "$WORK/parley.log"; fi
stop_pid "$PID" 100
[ "$STOP_RC" = 0 ] && [ "$STOP_KILLED" = 0 ] && ok "SIGTERM stops the server cleanly" || ko "stop: status $STOP_RC, killed $STOP_KILLED"
[ "$fail" -eq 0 ] || { log "server log: $WORK/parley.log; client log: $WORK/slixmpp.err"; }
finish
