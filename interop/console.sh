#!/usr/bin/env bash
# The web console (issue 13) with the built ./parley and a real browser.
#
#  1. The binary: ./parley serves /admin/ and /account/ on its HTTPS
#     listener; curl checks the login page's headers and cookies, that an
#     anonymous request goes to the login page, and that the encodings of
#     the Openfire console bypass (CVE-2023-32315) never reach an admin
#     page.
#  2. Headless Debian Chromium driven by chromedp (the Go test TestBrowser
#     in internal/console): an admin logs in, sees the dashboard chart,
#     creates a user; the user changes the password on /account/ and logs
#     in over XMPP with the new one; the user gets 403 on every admin URL.
#     Screenshots of every page go to interop/.work/console/screenshots/.
#
#   bash interop/console.sh        (after `make build`)
#
# Parley runs on its own 127.0.0.x ports and is stopped by PID. Needs
# Debian's chromium and curl (installed when missing) and the Go toolchain.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init console console-interop

IP=${CONSOLE_IP:-127.0.0.80}
PORT=${CONSOLE_PORT:-15780}     # c2s
HTTPS=${CONSOLE_HTTPS:-15781}   # the HTTPS listener
DOMAIN=console-parley.test
PASSWORD='Interop-secret-1'

need_cmd chromium
need_cmd curl
install_needed
ensure_parley
for p in "$PORT" "$HTTPS"; do port_open "$IP" "$p" && die "$IP:$p is already in use"; done

fresh_work data screenshots
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
admins = ["admin@$DOMAIN"]
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[https]
listen = "$IP:$HTTPS"
[console]
admin = true
account = true
TOML
for u in admin bob; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
start_parley "$IP" "$PORT" "$HTTPS"

URL="https://$DOMAIN:$HTTPS"
CURL=(curl -sk --resolve "$DOMAIN:$HTTPS:$IP" --max-time 10)

hdr=$("${CURL[@]}" -D - -o /dev/null "$URL/admin/login")
if grep -qi '^content-security-policy: .*script-src .self.' <<<"$hdr" && ! grep -qi 'unsafe-inline' <<<"$hdr" &&
   grep -qi '^x-frame-options: DENY' <<<"$hdr"; then
  ok "login page: CSP without inline scripts, X-Frame-Options DENY"
else
  ko "login page security headers"; echo "$hdr"
fi
if grep -qi '^set-cookie: __Host-parley-login=.*HttpOnly' <<<"$hdr" && grep -qi '^set-cookie: .*Secure' <<<"$hdr" &&
   grep -qi '^set-cookie: .*SameSite=Strict' <<<"$hdr"; then
  ok "login cookie: __Host-, HttpOnly, Secure, SameSite=Strict"
else
  ko "login cookie flags"; echo "$hdr"
fi
code=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{redirect_url}' "$URL/admin/users")
case "$code" in
  "303 $URL/admin/login") ok "anonymous /admin/users goes to the login page" ;;
  *) ko "anonymous /admin/users: $code" ;;
esac
bad=0
for p in '/account/%2e%2e/admin/users' '/account/%252e%252e/admin/users' '/account/%u002e%u002e/admin/users' \
         '/account/..;/admin/users' '/admin/assets/..;/users' '//admin/users' '/admin/users.' '/ADMIN/users' \
         '/admin/Users' '/admin/users;x=1' '/admin/%75sers' '/admin/assets/%2e%2e/users'; do
  code=$("${CURL[@]}" --path-as-is -o "$WORK/body" -w '%{http_code}' "$URL$p")
  if [ "$code" = 200 ] || grep -q 'bob@' "$WORK/body"; then
    ko "traversal $p answered $code"; bad=1
  fi
done
[ "$bad" = 0 ] && ok "12 traversal encodings never reach an admin page"

# The browser test, with the screenshots kept.
log "running the headless Chromium test (go test -run TestBrowser ./internal/console)"
if PARLEY_SCREENSHOTS="$WORK/screenshots" PARLEY_CHROMIUM="$(command -v chromium)" \
    go test -count=1 -run 'TestBrowser$' -v ./internal/console >"$WORK/browser.out" 2>&1; then
  if grep -q -- '--- PASS: TestBrowser' "$WORK/browser.out"; then
    ok "headless Chromium: admin creates a user, the user changes the password and logs in over XMPP, 403 on every admin URL, chart shows data"
  else
    ko "the browser test did not run"; tail -20 "$WORK/browser.out"
  fi
else
  ko "headless Chromium browser test"; tail -40 "$WORK/browser.out"
fi
n=$(find "$WORK/screenshots" -name '*.png' | wc -l)
if [ "$n" -ge 15 ]; then ok "$n screenshots in interop/.work/console/screenshots"; else ko "only $n screenshots"; fi

end_suite
