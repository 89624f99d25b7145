#!/usr/bin/env bash
# Interop for issue 3 authentication against the built ./parley:
#  - slixmpp with its legacy auth plugin (xep_0078) logs in with
#    jabber:iq:auth (digest, then plaintext on a host with only plaintext
#    enabled). slixmpp 1.8.3's plugin cannot finish a login by itself (it
#    does not await its IQs), so auth_slixmpp.py runs the plugin's steps
#    with its stanza classes, awaited;
#  - a client certificate made here with openssl (xmppAddr otherName
#    alice@DOMAIN) logs in with SASL EXTERNAL using slixmpp (certfile/keyfile);
#  - the same certificate, revoked in a CRL and reloaded with SIGHUP, no
#    longer can.
#
#   bash interop/auth.sh        (after `make build`, which makes ./parley)
#
# The server runs on its own 127.0.0.x with config and data under
# interop/.work/auth/ and is stopped by PID on exit. Prints PASS/FAIL lines
# and "N passed, M failed"; exits non-zero on failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init auth auth-interop

IP=${AUTH_PARLEY_IP:-127.0.0.43}
PORT=${AUTH_PARLEY_PORT:-15722}
DOMAIN=auth-parley.test
PDOMAIN=plain-parley.test

need_slixmpp
need_cmd openssl
install_needed
ensure_parley

fresh_work data pki

# ---------------------------------------------------------------- PKI
P="$WORK/pki"
cat >"$P/ca.cnf" <<CNF
[ca]
default_ca = ca_default
[ca_default]
dir = $P
database = $P/index.txt
new_certs_dir = $P
serial = $P/serial
crlnumber = $P/crlnumber
default_md = sha256
default_days = 2
default_crl_days = 2
policy = policy_any
copy_extensions = none
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = Parley interop CA
[v3_ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
[client]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = otherName:1.3.6.1.5.5.7.8.5;UTF8:alice@$DOMAIN
CNF
: >"$P/index.txt"; echo 1000 >"$P/serial"; echo 1000 >"$P/crlnumber"
if ! { openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/ca.key" -out "$P/ca.pem" \
          -days 2 -config "$P/ca.cnf" -extensions v3_ca &&
       openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$P/alice.key" -out "$P/alice.csr" -subj "/CN=not-an-identity" &&
       openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -in "$P/alice.csr" -out "$P/alice.pem" -extensions client -notext &&
       openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -gencrl -out "$P/ca.crl"; } >"$WORK/openssl.log" 2>&1; then
  die "openssl PKI (see $WORK/openssl.log)"
fi
if openssl x509 -in "$P/alice.pem" -noout -ext subjectAltName 2>/dev/null | grep -q "alice@$DOMAIN"; then
  ok "openssl made a client certificate with xmppAddr alice@$DOMAIN"
else
  ko "client certificate lacks the xmppAddr otherName"
fi

# ---------------------------------------------------------------- server
parley_conf "$WORK/parley.toml" <<TOML
[[host]]
domain = "$DOMAIN"
[host.legacy_auth]
digest = true
plaintext = true
zero_knowledge = true
[[host]]
domain = "$PDOMAIN"
[host.legacy_auth]
plaintext = true
[c2s]
listen = ["$IP:$PORT"]
direct_tls_listen = []
client_ca_file = "pki/ca.pem"
crl_files = ["pki/ca.crl"]
[http]
listen = ""
TOML

for u in "alice@$DOMAIN" "dj@$DOMAIN" "pl@$PDOMAIN"; do add_user "$WORK/parley.toml" "$u" "secret-$u"; done

start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
PID=$LAST_PID
wait_server "$PID" "$IP" "$PORT" || die "parley did not start" "$WORK/parley.log"

client() { timeout 40 "$PY" "$ROOT/interop/auth_slixmpp.py" "$@" 2>>"$WORK/client.err"; }

out=$(client legacy "dj@$DOMAIN/oldie" "secret-dj@$DOMAIN" "$IP" "$PORT")
if [[ "$out" == "OK dj@$DOMAIN/oldie jabber:iq:auth digest" ]] && grep -q "mechanism=iq-auth-digest" "$WORK/parley.log"; then
  ok "slixmpp xep_0078 logs in with jabber:iq:auth digest"
else
  ko "slixmpp xep_0078 digest: $out"
fi

out=$(client legacy "pl@$PDOMAIN/oldie" "secret-pl@$PDOMAIN" "$IP" "$PORT")
if [[ "$out" == "OK pl@$PDOMAIN/oldie jabber:iq:auth plaintext" ]] && grep -q "mechanism=iq-auth-plaintext" "$WORK/parley.log"; then
  ok "slixmpp xep_0078 logs in with jabber:iq:auth plaintext (over TLS)"
else
  ko "slixmpp xep_0078 plaintext: $out"
fi

out=$(client legacy "dj@$DOMAIN/oldie" "wrong-password" "$IP" "$PORT")
if [[ "$out" == ERR* ]]; then
  ok "slixmpp xep_0078 with a wrong password is refused"
else
  ko "wrong legacy password accepted: $out"
fi

out=$(client external "alice@$DOMAIN/cert" "" "$IP" "$PORT" "$P/alice.pem" "$P/alice.key")
if [[ "$out" == "OK alice@$DOMAIN/cert"* ]] && grep -q "mechanism=EXTERNAL" "$WORK/parley.log"; then
  ok "slixmpp logs in with SASL EXTERNAL and the openssl client certificate"
else
  ko "SASL EXTERNAL: $out"
fi

# Revoke the certificate, reload with SIGHUP: EXTERNAL is no longer offered.
if openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -revoke "$P/alice.pem" >>"$WORK/openssl.log" 2>&1 &&
   openssl ca -batch -config "$P/ca.cnf" -cert "$P/ca.pem" -keyfile "$P/ca.key" -gencrl -out "$P/ca.crl" >>"$WORK/openssl.log" 2>&1; then
  kill -HUP "$PID"
  sleep 0.5
  out=$(client external "alice@$DOMAIN/cert" "" "$IP" "$PORT" "$P/alice.pem" "$P/alice.key")
  if [[ "$out" == ERR* ]] && grep -q "certificate revoked" "$WORK/parley.log"; then
    ok "revoked certificate (CRL reloaded on SIGHUP) cannot log in"
  else
    ko "revoked certificate: $out"
  fi
else
  ko "openssl revoke"
fi

show_on_failure 25 "$WORK/parley.log" "$WORK/client.err"
stop_all
finish
