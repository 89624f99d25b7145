#!/usr/bin/env bash
# A real browser client against the built ./parley (issue 12): stock
# Converse.js (npm) on a local page in headless Debian Chromium, driven by
# Playwright (interop/browser/converse.mjs), logs in over XMPP-over-WebSocket
# (RFC 7395), then over BOSH (XEP-0206), on Parley's HTTPS listener, sends a
# message to a slixmpp user (interop/browser_peer.py) and shows the reply in
# its chat window.
# Screenshots are kept in interop/.work/browser/.
#
#   bash interop/browser.sh        (after `make build`)
#
# Parley, the page server and the peer run on their own 127.0.0.x ports and
# are stopped by PID. Needs Debian's chromium, node and npm (installed when
# missing) and the npm registry for converse.js and playwright-core.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init browser browser-interop

IP=${BROWSER_IP:-127.0.0.67}
PORT=${BROWSER_PORT:-15767}      # c2s
HTTPS=${BROWSER_HTTPS:-15743}    # Parley's HTTPS listener
PAGE=${BROWSER_PAGE:-15780}      # the page's own HTTP server
DOMAIN=browser-parley.test
PASSWORD='interop-secret-1'
CONVERSE_VERSION=14.0.0
PLAYWRIGHT_VERSION=1.64.1

need_slixmpp
need_cmd chromium
need_cmd node nodejs
need_cmd npm
install_needed
ensure_parley
for p in "$PORT" "$HTTPS" "$PAGE"; do port_open "$IP" "$p" && die "$IP:$p is already in use"; done

fresh_work data page npm
log "installing converse.js@$CONVERSE_VERSION and playwright-core@$PLAYWRIGHT_VERSION from npm"
if ! npm install --prefix "$WORK/npm" --no-audit --no-fund --loglevel=error \
    "converse.js@$CONVERSE_VERSION" "playwright-core@$PLAYWRIGHT_VERSION" </dev/null >"$WORK/npm.log" 2>&1; then
  die "npm install" "$WORK/npm.log"
fi
mkdir -p "$WORK/page/converse"
cp -r "$WORK/npm/node_modules/converse.js/dist/." "$WORK/page/converse/"
cp "$ROOT/interop/browser/index.html" "$WORK/page/"
cp "$ROOT/interop/browser/converse.mjs" "$WORK/npm/"

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
[https]
listen = "$IP:$HTTPS"
websocket = true
websocket_origins = ["$IP:$PAGE"]
bosh = true
bosh_origins = ["$IP:$PAGE"]
TOML
for u in alice bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
PID=$LAST_PID
wait_server "$PID" "$IP" "$PORT" "$HTTPS" || die "parley starts" "$WORK/parley.log"
ok "parley starts with WebSocket and BOSH on https://$IP:$HTTPS"

start_bg "$WORK/page.log" "$PY" -m http.server --bind "$IP" --directory "$WORK/page" "$PAGE"
wait_port "$IP" "$PAGE" || die "the page server starts" "$WORK/page.log"

start_bg "$WORK/peer.out" env HOME="$WORK" "$PY" "$ROOT/interop/browser_peer.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD" 80 bosh
PEER=$LAST_PID
for _ in $(seq 100); do grep -q '^READY' "$WORK/peer.out" && break; sleep 0.2; done
grep -q '^READY' "$WORK/peer.out" || die "slixmpp peer logs in" "$WORK/peer.out"

run_client "$WORK/converse-websocket" -- timeout 90 node "$WORK/npm/converse.mjs" \
  "http://$IP:$PAGE/index.html" websocket "wss://$IP:$HTTPS/xmpp-websocket" "alice@$DOMAIN" "$PASSWORD" "bob@$DOMAIN" \
  "$WORK/converse-websocket.png"
[ -s "$WORK/converse-websocket.png" ] && ok "screenshot saved: $WORK/converse-websocket.png" || ko "no screenshot"
run_client "$WORK/converse-bosh" -- timeout 90 node "$WORK/npm/converse.mjs" \
  "http://$IP:$PAGE/index.html" bosh "https://$IP:$HTTPS/http-bind" "alice@$DOMAIN" "$PASSWORD" "bob@$DOMAIN" \
  "$WORK/converse-bosh.png"
[ -s "$WORK/converse-bosh.png" ] && ok "screenshot saved: $WORK/converse-bosh.png" || ko "no BOSH screenshot"

wait "$PEER" 2>/dev/null
relay < "$WORK/peer.out"
if kill -0 "$PID" 2>/dev/null; then ok "parley still running after the run"; else ko "parley died"; fi
stop_all
show_on_failure 40 "$WORK/parley.log" "$WORK/converse-websocket.err" "$WORK/converse-bosh.err"
finish
