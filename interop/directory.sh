#!/usr/bin/env bash
# Interop for issue 6 (accounts in an LDAP directory) against the built
# ./parley: Debian's OpenLDAP slapd runs on a loopback port with a
# generated slapd.conf and the LDIF fixture of internal/directory/ldaptest
# (people incl. a disabled user, groups, room entries); Parley serves a host
# with accounts = "directory"; interop/directory_slixmpp.py logs users in
# with directory passwords and checks roster pre-population, presence,
# vCard mapping modes, a persistent room and a live group change.
#
#   bash interop/directory.sh        (after `make build`, which makes ./parley)
#
# slapd and Parley run on their own 127.0.0.x with config and data under
# interop/.work/directory/ and are stopped by PID on exit (the system's own
# slapd, if any, is never used). Prints PASS/FAIL lines and
# "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init directory directory-interop

IP=${DIR_PARLEY_IP:-127.0.0.46}
PORT=${DIR_PARLEY_PORT:-15762}
LDAP_PORT=${DIR_LDAP_PORT:-13389}
DOMAIN=example.test
SUFFIX="dc=example,dc=test"
ROOT_DN="cn=admin,$SUFFIX"
ROOT_PW=root-secret
SERVICE_DN="cn=parley,ou=services,$SUFFIX"

need_slixmpp
[ -x /usr/sbin/slapd ] || NEED+=(slapd)
need_cmd ldapsearch ldap-utils
# The slapd package must not configure or start its own instance.
[ ${#NEED[@]} -eq 0 ] || echo "slapd slapd/no_configuration boolean true" | debconf-set-selections 2>/dev/null
install_needed
ensure_parley

fresh_work ldap/db data

# ---------------------------------------------------------------- slapd
# Same layout as internal/directory/ldaptest (plain LDAP on loopback).
cat >"$WORK/ldap/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile $WORK/ldap/slapd.pid
argsfile $WORK/ldap/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
authz-policy to
sizelimit unlimited
database mdb
maxsize 10485760
suffix "$SUFFIX"
rootdn "$ROOT_DN"
rootpw $ROOT_PW
directory $WORK/ldap/db
access to attrs=userPassword
  by anonymous auth
  by self write
  by * none
access to attrs=mobile,telephoneNumber,labeledURI,description
  by dn.exact="$SERVICE_DN" write
  by self write
  by users read
  by * none
access to *
  by dn.exact="$SERVICE_DN" read
  by users read
  by * none
CONF
/usr/sbin/slapadd -f "$WORK/ldap/slapd.conf" -l internal/directory/ldaptest/testdata/fixture.ldif >"$WORK/ldap/slapadd.log" 2>&1 \
  || die "slapadd fixture" "$WORK/ldap/slapadd.log"
start_bg "$WORK/ldap/slapd.log" /usr/sbin/slapd -d 0 -f "$WORK/ldap/slapd.conf" -h "ldap://$IP:$LDAP_PORT/"
SLAPD_PID=$LAST_PID
wait_server "$SLAPD_PID" "$IP" "$LDAP_PORT" || die "slapd did not start" "$WORK/ldap/slapd.log"
ok "slapd started on $IP:$LDAP_PORT with the fixture"

# ---------------------------------------------------------------- parley
cat >"$WORK/parley.toml" <<TOML
data_dir = "data"
[[host]]
domain = "$DOMAIN"
accounts = "directory"
[host.muc]
room_creation = "admins"
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
[directory]
servers = ["$IP:$LDAP_PORT"]
tls = "none"          # loopback test directory; use starttls or ldaps elsewhere
bind_dn = "$SERVICE_DN"
bind_password = "parley-pass"
user_base = "ou=people,$SUFFIX"
group_base = "ou=groups,$SUFFIX"
room_base = "ou=rooms,$SUFFIX"
disabled_attribute = "employeeType"
disabled_values = ["disabled"]
roster_attribute = "seeAlso"
poll_interval = "1s"
[[directory.roster_group]]
group = "engineering"
name = "Engineering"
[directory.profile.mobile]
mode = "update"
[directory.profile.org_name]
mode = "static"
value = "Example Corp"
TOML

out=$("$BIN" user add zoe@$DOMAIN long-enough-pw --config "$WORK/parley.toml" 2>&1)
if [ $? -ne 0 ] && [[ "$out" == *"live in the LDAP directory"* ]]; then ok "parley user add says the host's accounts live in the directory"; else
  ko "parley user add on a directory host: $out"; fi
out=$("$BIN" user list --config "$WORK/parley.toml" 2>/dev/null)
if [[ "$out" == *"alice@$DOMAIN"* && "$out" != *"dave@"* ]]; then ok "parley user list shows the directory's enabled users"; else
  ko "parley user list: $out"; fi

start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
wait_server "$LAST_PID" "$IP" "$PORT" || die "parley did not start" "$WORK/parley.log"

RELAY_OTHER=echo   # the client script's other lines are shown too
run_client "$WORK/slixmpp" -- "$PY" interop/directory_slixmpp.py "$IP" "$PORT" "$DOMAIN" "ldap://$IP:$LDAP_PORT" "$ROOT_DN" "$ROOT_PW"

# Outage: with slapd gone, a login gets temporary-auth-failure, logged once.
stop_pid "$SLAPD_PID"
out=$(PYTHONPATH="$ROOT/interop" timeout 30 "$PY" - "$IP" "$PORT" "$DOMAIN" <<'PYEOF' 2>/dev/null
import asyncio, sys, slixmpp, common
ip, port, dom = sys.argv[1], int(sys.argv[2]), sys.argv[3]
async def main():
    c = slixmpp.ClientXMPP(f"carol@{dom}/x", "carol-pass", plugin_config={"feature_mechanisms": {"use_mech": "PLAIN"}})
    common.accept_self_signed(c)
    f = asyncio.get_event_loop().create_future()
    c.add_event_handler("session_start", lambda _: f.done() or f.set_result("OK"))
    c.add_event_handler("failed_auth", lambda s: f.done() or f.set_result("FAILED " + str(s)))
    c.connect(address=(ip, port))
    print(await asyncio.wait_for(f, 20))
    c.disconnect()
asyncio.run(main())
PYEOF
)
if [[ "$out" == FAILED* && "$out" == *temporary-auth-failure* ]] && grep -q "directory: UNREACHABLE" "$WORK/parley.log"; then
  ok "directory down: login refused with temporary-auth-failure, outage logged"
else
  ko "directory down: got '$out'"
fi

show_on_failure 25 "$WORK/parley.log"
finish
