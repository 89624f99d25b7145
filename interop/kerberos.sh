#!/usr/bin/env bash
# Interop for Kerberos (SASL GSSAPI, RFC 4752) against the built ./parley:
#  - a throwaway MIT Kerberos realm (Debian krb5-kdc, krb5-admin-server):
#    kdc.conf, krb5.conf, database and the service keytab for
#    xmpp/<domain> made here, krb5kdc on a loopback address;
#  - alice gets a ticket with MIT kinit, and slixmpp logs in with its
#    GSSAPI mechanism, which drives MIT's GSSAPI library through
#    pykerberos (python3-kerberos): no password reaches Parley;
#  - a principal without an XMPP account is refused, and so is alice on a
#    host that offers only password mechanisms ([host] mechanisms);
#  - a host offering only GSSAPI refuses a password login.
#
#   bash interop/kerberos.sh        (after `make build`, which makes ./parley)
#
# Nothing is resolved through DNS: krb5.conf names the KDC by address and
# turns off DNS lookups of KDCs and realms, hostname canonicalisation and
# reverse lookups. Config, realm and data live under interop/.work/kerberos/;
# krb5kdc and parley are stopped by PID on exit. Prints PASS/FAIL lines and
# "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init kerberos kerberos-interop

PORT=${KRB_PARLEY_PORT:-15822}
KDC_PORT=${KRB_KDC_PORT:-15888}
REALM=PARLEY-INTEROP.TEST
DOMAIN=krb-parley.test       # GSSAPI and passwords
KDOMAIN=krbonly-parley.test  # GSSAPI only
PDOMAIN=pw-parley.test       # passwords only

need_slixmpp
need_dpkg krb5-kdc
need_dpkg krb5-admin-server
need_dpkg krb5-user
need_dpkg python3-kerberos
install_needed
ensure_parley
pick_addr IP "$PORT $KDC_PORT" 127.0.0.112 "${KRB_PARLEY_IP:-}"

fresh_work data krb

# ---------------------------------------------------------------- realm
K="$WORK/krb"
cat >"$K/kdc.conf" <<CONF
[kdcdefaults]
	kdc_listen = $IP:$KDC_PORT
	kdc_tcp_listen = $IP:$KDC_PORT
[realms]
	$REALM = {
		database_name = $K/principal
		key_stash_file = $K/stash
		acl_file = $K/kadm5.acl
		kdc_listen = $IP:$KDC_PORT
		kdc_tcp_listen = $IP:$KDC_PORT
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
	}
[logging]
	kdc = FILE:$K/kdc.log
CONF
: >"$K/kadm5.acl"
cat >"$K/krb5.conf" <<CONF
[libdefaults]
	default_realm = $REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	udp_preference_limit = 1
[realms]
	$REALM = {
		kdc = $IP:$KDC_PORT
		admin_server = $IP:$KDC_PORT
	}
[domain_realm]
	$DOMAIN = $REALM
	$KDOMAIN = $REALM
	$PDOMAIN = $REALM
CONF
export KRB5_CONFIG="$K/krb5.conf" KRB5_KDC_PROFILE="$K/kdc.conf" KRB5CCNAME="FILE:$K/ccache" KRB5_KTNAME="FILE:$K/none.keytab"

kadm() { /usr/sbin/kadmin.local -r "$REALM" -q "$1" >>"$K/kadmin.log" 2>&1 || die "kadmin.local $1" "$K/kadmin.log"; }
/usr/sbin/kdb5_util create -s -r "$REALM" -P "master-$RANDOM$RANDOM" >"$K/kdb5_util.log" 2>&1 || die "kdb5_util create" "$K/kdb5_util.log"
kadm "addprinc -pw alice-krb-pass alice"
kadm "addprinc -pw bob-krb-pass bob"
for d in "$DOMAIN" "$KDOMAIN" "$PDOMAIN"; do
  kadm "addprinc -randkey xmpp/$d"
  kadm "ktadd -k $K/xmpp.keytab xmpp/$d"
done
start_bg "$K/krb5kdc.out" /usr/sbin/krb5kdc -n -r "$REALM"
KDC_PID=$LAST_PID
wait_server "$KDC_PID" "$IP" "$KDC_PORT" || die "krb5kdc starts" "$K/krb5kdc.out" "$K/kdc.log"
ok "MIT krb5kdc serves $REALM on $IP:$KDC_PORT"

kinit_as() { echo "$2" | kinit "$1" >"$K/kinit.log" 2>&1; }
if kinit_as alice alice-krb-pass && klist >>"$K/kinit.log" 2>&1; then
  ok "MIT kinit gets alice@$REALM a ticket"
else
  die "kinit alice" "$K/kinit.log"
fi

# ---------------------------------------------------------------- server
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.kerberos]
keytab = "krb/xmpp.keytab"
realms = ["$REALM"]
[[host]]
domain = "$KDOMAIN"
mechanisms = ["GSSAPI"]
[host.kerberos]
keytab = "krb/xmpp.keytab"
realms = ["$REALM"]
[[host]]
domain = "$PDOMAIN"
mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"]
[host.kerberos]
keytab = "krb/xmpp.keytab"
realms = ["$REALM"]
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
[http]
listen = ""
TOML
if "$BIN" config check --config "$WORK/parley.toml" >"$WORK/check.log" 2>&1; then
  ok "parley config check accepts the Kerberos hosts"
else
  ko "parley config check: $(tail -3 "$WORK/check.log")"
fi
# A host asking for GSSAPI without a keytab is a config error.
printf '[[host]]\ndomain = "nokeytab.test"\nmechanisms = ["GSSAPI"]\n' >"$WORK/bad.toml"
if ! "$BIN" config check --config "$WORK/bad.toml" >"$WORK/bad.log" 2>&1 && grep -q "GSSAPI needs kerberos.keytab" "$WORK/bad.log"; then
  ok "parley config check refuses GSSAPI without a keytab"
else
  ko "config check of GSSAPI without a keytab: $(tail -3 "$WORK/bad.log")"
fi

for u in "alice@$DOMAIN" "alice@$KDOMAIN" "alice@$PDOMAIN"; do add_user "$WORK/parley.toml" "$u" "secret-$u"; done
start_parley "$IP" "$PORT"

client() { timeout 40 "$PY" "$ROOT/interop/kerberos_slixmpp.py" "$@" 2>>"$WORK/slixmpp.err"; }

out=$(client GSSAPI "alice@$DOMAIN/krb" "" "$IP" "$PORT")
if [[ "$out" == "OK alice@$DOMAIN/krb" ]] && grep -q "user=alice@$DOMAIN mechanism=GSSAPI" "$WORK/parley.log"; then
  ok "slixmpp (MIT GSSAPI via pykerberos) logs in with GSSAPI"
else
  ko "GSSAPI login: $out"
fi

out=$(client GSSAPI "alice@$KDOMAIN/krb" "" "$IP" "$PORT")
if [[ "$out" == "OK alice@$KDOMAIN/krb" ]]; then
  ok "GSSAPI login on a GSSAPI-only host"
else
  ko "GSSAPI on the GSSAPI-only host: $out"
fi

out=$(client SCRAM-SHA-256 "alice@$KDOMAIN/pw" "secret-alice@$KDOMAIN" "$IP" "$PORT")
if [[ "$out" == ERR* ]]; then
  ok "the GSSAPI-only host refuses a password login"
else
  ko "password login on the GSSAPI-only host: $out"
fi

out=$(client GSSAPI "alice@$PDOMAIN/krb" "" "$IP" "$PORT")
if [[ "$out" == ERR* ]]; then
  ok "a host without GSSAPI in its mechanisms refuses Kerberos"
else
  ko "GSSAPI on the password-only host: $out"
fi
out=$(client SCRAM-SHA-256 "alice@$PDOMAIN/pw" "secret-alice@$PDOMAIN" "$IP" "$PORT")
if [[ "$out" == "OK alice@$PDOMAIN/pw" ]]; then
  ok "the password-only host still takes SCRAM"
else
  ko "SCRAM on the password-only host: $out"
fi

# bob has a principal but no XMPP account.
if kinit_as bob bob-krb-pass; then
  out=$(client GSSAPI "bob@$DOMAIN/krb" "" "$IP" "$PORT")
  if [[ "$out" == ERR* ]] && grep -q "principal=bob@$REALM" "$WORK/parley.log"; then
    ok "a principal without an account is refused (and the reason logged)"
  else
    ko "bob without an account: $out"
  fi
else
  ko "kinit bob: $(tail -3 "$K/kinit.log")"
fi

show_on_failure 25 "$WORK/parley.log" "$WORK/slixmpp.err" "$K/kdc.log"
end_suite
