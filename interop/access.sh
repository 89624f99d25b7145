#!/usr/bin/env bash
# Interop for service access control (seed 000 SACL, issue 16): slixmpp
# clients, each outside one service's access list (login, room creation,
# room joining, the file-transfer proxy, file upload, federation), are
# refused that service with the XEP's error and can use the others; then
# `parley group add` on the running server pushes a new auto-buddy
# ([[host.shared_roster]]) contact to an online member
# (interop/access_slixmpp.py). The server's log must show each refusal.
#
#   bash interop/access.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/access/ and is stopped by PID on exit. Prints PASS/FAIL
# lines and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init access access-interop

PORT=${ACCESS_PORT:-15820}
HTTPS_PORT=${ACCESS_HTTPS_PORT:-15821}
PROXY_PORT=${ACCESS_PROXY_PORT:-15822}
DOMAIN=access-parley.test
PASSWORD='interop-secret-1'

need_slixmpp
install_needed
ensure_parley
pick_addr IP "$PORT $HTTPS_PORT $PROXY_PORT" 127.0.0.120 "${ACCESS_IP:-}"

fresh_work data
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.access.login]
deny_users = ["mallory@$DOMAIN"]
[host.access.muc_create]
users = ["alice@$DOMAIN"]
[host.access.muc_join]
deny_users = ["carol@$DOMAIN"]
[host.access.proxy65]
deny_users = ["dave@$DOMAIN"]
[host.access.upload]
deny_users = ["eve@$DOMAIN"]
[host.access.federation]
groups = ["staff"]
[[host.shared_roster]]
group = "staff"
name = "Staff"
[host.http]
public_url = "https://$IP:$HTTPS_PORT"
[host.upload]
enabled = true
[proxy65]
enabled = true
listen = "$IP:$PROXY_PORT"
[auth]
groups_poll_interval = "500ms"
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[https]
listen = "$IP:$HTTPS_PORT"
[limits]
auth_failure_delay = "100ms"
TOML
for u in alice bob carol dave eve mallory; do add_user "$WORK/parley.toml" "$u@$DOMAIN" "$PASSWORD"; done
"$BIN" group add staff "alice@$DOMAIN" --config "$WORK/parley.toml" >>"$WORK/useradd.log" 2>&1 || die "parley group add staff alice"
"$BIN" config check --config "$WORK/parley.toml" >"$WORK/check.out" 2>&1 && ok "config check accepts the rules (group staff exists)" \
  || { ko "config check"; tail -5 "$WORK/check.out"; }
start_parley "$IP" "$PORT" "$HTTPS_PORT" "$PROXY_PORT"

run_client "$WORK/slixmpp" -- env HOME="$WORK" timeout 300 "$PY" "$ROOT/interop/access_slixmpp.py" "$IP" "$PORT" "$DOMAIN" "$PASSWORD" "$BIN" "$WORK/parley.toml"

# Every refusal is logged at info with the service and the user.
for s in muc_create:bob muc_join:carol proxy65:dave upload:eve federation:bob; do
  svc=${s%%:*} user=${s#*:}
  if grep -q "level=INFO.*refused by the access policy.*service=$svc.*user=$user@$DOMAIN" "$WORK/parley.log"; then
    ok "log line for $user refused $svc"
  else
    ko "log line for $user refused $svc"
  fi
done
grep -q "login refused by access policy.*mallory@$DOMAIN" "$WORK/parley.log" && ok "log line for mallory's refused login" || ko "log line for mallory's refused login"

# A rule naming a group nobody is in is a config check error.
sed 's/groups = \["staff"\]/groups = ["staf"]/' "$WORK/parley.toml" >"$WORK/typo.toml"
if "$BIN" config check --config "$WORK/typo.toml" >"$WORK/typo.out" 2>&1; then
  ko "config check refuses a rule naming an unknown group"
else
  grep -q '"staf"' "$WORK/typo.out" && ok "config check refuses a rule naming an unknown group" || ko "config check names the unknown group"
fi

end_suite
