#!/usr/bin/env bash
# Federation interop: the built ./parley against real Prosody and ejabberd
# (Debian packages), each on its own loopback address and domain, in three
# modes:
#   (a) self-signed certificates + accept_self_signed (dialback over TLS)
#   (b) certificates from a test CA made here and trusted by all (SASL EXTERNAL)
#   (c) as (a), but Parley's outgoing streams use XEP-0368 direct TLS to the
#       peer's direct-TLS s2s port (static route tls://ip:5270)
# Every peer is a throwaway instance with its own config and data under
# interop/.work/federation/<peer>-<mode>, started and stopped by PID here.
# The machine is left alone: system services are never started or stopped,
# and /etc/hosts and the system resolver are not used. Each server gets a
# loopback address checked free first (127.0.0.71-73 by default, the next
# free ones if taken; FED_PARLEY_IP, FED_PROSODY_IP, FED_EJABBERD_IP choose
# them, and the run fails if a chosen one is taken). Peers find parley.test
# in hosts files of their own: Prosody through libunbound (hoststxt = a
# file; .test is a local zone of unbound's, so nothing is asked of a DNS
# server), ejabberd in a mount namespace of its own (unshare, so root)
# whose /etc/hosts and /etc/resolv.conf are the suite's files, plus an
# inetrc without nameservers; Parley uses static routes.
#
#   FED_PEERS="prosody ejabberd"  FED_MODES="a b c"  (defaults) select cases.
#
# Ends with "N passed, M failed"; exit non-zero on failure.
set -uo pipefail
PASS_SEP=" "
. "$(dirname "$0")/lib.sh"
interop_init federation federation
PDOM=parley.test      # Parley
QDOM=prosody.test     # Prosody
EDOM=ejabberd.test    # ejabberd
PASSWORD='interop-secret-1'

need_cmd prosody
need_dpkg lua-unbound   # Prosody resolves names from a hosts file only through libunbound
need_dpkg ejabberd
need_slixmpp
install_needed
ensure_parley
# Where Debian puts ejabberd's Erlang application (ERL_LIBS wants its parent).
EJ_APP=$(dpkg -L ejabberd | grep -m1 '/ebin/ejabberd.app$')
EJ_LIBS=$(dirname "$(dirname "$(dirname "$EJ_APP")")")
# Addresses, checked free before each case (another run may have taken
# one since the last): peers dial parley.test on 5269 (no SRV), so the
# ports are the standard ones and the address is what varies.
pick_addrs() { # peer
  PICKED=()
  pick_addr PIP "5222 5269" 127.0.0.71 "${FED_PARLEY_IP:-}"
  case $1 in
    prosody) pick_addr QIP "5222 5269 5270" 127.0.0.72 "${FED_PROSODY_IP:-}" ;;
    ejabberd) pick_addr EIP "5222 5269 5270" 127.0.0.73 "${FED_EJABBERD_IP:-}" ;;
  esac
}

# PRIVATE_ETC HOSTS RESOLV CMD...: run CMD with HOSTS as its /etc/hosts
# and RESOLV as its /etc/resolv.conf, in a mount namespace of its own.
PRIVATE_ETC=(unshare --mount --propagation private sh -c \
  'mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf && shift 2 && exec "$@"' private-etc)
PEERS=${FED_PEERS:-prosody ejabberd}
if [[ " $PEERS " == *" ejabberd "* ]] && ! "${PRIVATE_ETC[@]}" /dev/null /dev/null true 2>/dev/null; then
  ko "[ejabberd] cannot run: it needs a mount namespace (unshare --mount, as root) to resolve parley.test from its own hosts file"
  PEERS=${PEERS//ejabberd/}
fi

RELAY_OTHER=echo   # the client script's other lines are shown too

ca_signed() { # dir name (needs $1/ca.crt, $1/ca.key)
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" -keyout "$1/$2.key" -out "$1/$2.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:*.%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" "$2" >"$1/$2.ext"
  openssl x509 -req -in "$1/$2.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial -days 2 -extfile "$1/$2.ext" -out "$1/$2.crt" 2>/dev/null
}

# ---- Prosody -------------------------------------------------------------

start_prosody() { # mode dir certs
  local mode=$1 dir=$2 c=$3 secure=false cafile_lua=""
  [ "$mode" = b ] && { secure=true; cafile_lua="cafile = \"$c/ca.crt\";"; }
  mkdir -p "$dir/prosody/data"
  cp "$c/$QDOM.crt" "$c/$QDOM.key" "$dir/prosody/"; chmod 644 "$dir/prosody/$QDOM.key"
  # libunbound reads names from this file, not /etc/hosts; its resolver
  # list names Parley's address, where no DNS server answers, so nothing
  # reaches the system's resolver even for a name outside .test.
  printf '%s %s\n%s %s conference.%s\n' "$PIP" "$PDOM" "$QIP" "$QDOM" "$QDOM" >"$dir/prosody/hosts"
  printf 'nameserver %s\n' "$PIP" >"$dir/prosody/resolv.conf"
  cat >"$dir/prosody/prosody.cfg.lua" <<LUA
pidfile = "$dir/prosody/prosody.pid"
data_path = "$dir/prosody/data"
run_as_root = true
daemonize = false
log = { debug = "$dir/prosody/prosody.log" }
interfaces = { "$QIP" }
c2s_ports = { 5222 }
s2s_ports = { 5269 }
c2s_direct_tls_ports = {}
s2s_direct_tls_ports = { 5270 }
http_ports = {}
https_ports = {}
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "version", "ping", "presence", "message", "iq", "posix", "s2s_auth_certs", "vcard", "offline" }
modules_disabled = { "admin_shell" }
authentication = "internal_plain"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = $secure
use_dane = false
unbound = { hoststxt = "$dir/prosody/hosts"; resolvconf = "$dir/prosody/resolv.conf" }
ssl = { key = "$dir/prosody/$QDOM.key"; certificate = "$dir/prosody/$QDOM.crt"; $cafile_lua }
VirtualHost "$QDOM"
Component "conference.$QDOM" "muc"
LUA
  prosodyctl --config "$dir/prosody/prosody.cfg.lua" register bob "$QDOM" "$PASSWORD" >/dev/null 2>&1 || ko "[prosody/$mode] prosody register"
  prosody --config "$dir/prosody/prosody.cfg.lua" >"$dir/prosody/stdout.log" 2>&1 & track $!
  wait_port "$QIP" 5222 150 || { tail -20 "$dir/prosody/stdout.log"; return 1; }
}

# One line per authenticated Prosody session: direction, pair, TLS,
# certificate chain verdict, method (SASL EXTERNAL or dialback).
report_prosody() { # dir
  awk '
    { id = $4 }
    id ~ /^s2s(in|out)/ {
      if ($0 ~ /Stream encrypted/) { t = $8; gsub(/\(/, "", t); tls[id] = t }
      if ($0 ~ /certificate chain validation result/) { cert[id] = $NF }
      if ($0 ~ /verified dialback key|<db:result|<result /) { db[id] = 1 }
      if ($0 ~ /is now authenticated for/) {
        split($0, a, "connection "); split(a[2], b, " ")
        m = db[id] ? "dialback" : "sasl-external"
        printf "  prosody: %-3s %s tls=%s cert=%s method=%s\n", (id ~ /^s2sin/ ? "in" : "out"), b[1], tls[id] ? tls[id] : "none", cert[id] ? cert[id] : "-", m
      }
    }' "$1/prosody/prosody.log"
}

check_prosody() { # dir mode peer-domain: Prosody's own view, both directions
  local want=dialback; [ "$2" = b ] && want=sasl-external
  local r; r=$(report_prosody "$1")
  grep -q "in  $PDOM->$3 .*method=$want" <<<"$r" && grep -q "out $3->$PDOM .*method=$want" <<<"$r"
}

# ---- ejabberd ------------------------------------------------------------

start_ejabberd() { # mode dir certs
  local mode=$1 dir=$2 c=$3 e="$2/ejabberd" ca=""
  mkdir -p "$e/db"
  cat "$c/$EDOM.crt" "$c/$EDOM.key" >"$e/$EDOM.pem"
  [ "$mode" = b ] && ca="ca_file: \"$c/ca.crt\""
  # Names: ejabberd asks Erlang's own resolver for SRV records and then the
  # C library (getaddrinfo) for addresses. The inetrc gives Erlang's
  # resolver no nameservers (SRV lookups fail at once) and our names only;
  # the C library reads /etc/hosts and /etc/resolv.conf, so ejabberd runs in
  # a mount namespace of its own where those two are the files below (the
  # machine's are untouched, its DNS server never asked).
  : >"$e/empty"
  printf '{lookup,[file]}.\n{hosts_file,"%s"}.\n{resolv_conf,"%s"}.\n{host,{127,0,0,1},["localhost"]}.\n{host,{%s},["%s"]}.\n' \
    "$e/empty" "$e/empty" "${PIP//./,}" "$PDOM" >"$e/inetrc"
  printf '127.0.0.1 localhost\n%s %s\n' "$PIP" "$PDOM" >"$e/hosts"
  printf 'nameserver %s\n' "$PIP" >"$e/resolv.conf"   # no DNS server answers there
  cat >"$e/ejabberd.yml" <<YML
hosts: ["$EDOM"]
loglevel: ${FED_EJ_LOGLEVEL:-info}
certfiles: ["$e/$EDOM.pem"]
$ca
listen:
  - port: 5222
    ip: "$EIP"
    module: ejabberd_c2s
    starttls_required: true
    backlog: 128
  - port: 5269
    ip: "$EIP"
    module: ejabberd_s2s_in
    backlog: 128
  - port: 5270
    ip: "$EIP"
    module: ejabberd_s2s_in
    tls: true
    backlog: 128
auth_method: internal
s2s_use_starttls: required
s2s_dns_timeout: 2
s2s_dns_retries: 1
shaper_rules:
  c2s_shaper: none
  s2s_shaper: none
modules:
  mod_roster: {}
  mod_disco: {}
  mod_version: {}
  mod_ping: {}
  mod_s2s_dialback: {}
  mod_vcard: {}
  mod_offline: {}
  mod_muc:
    host: "conference.$EDOM"
    access_create: all
YML
  # Run the VM directly (ejabberdctl switches user and needs a distributed
  # node and epmd): a non-distributed node, its own mnesia dir; bob is
  # registered once the application has started. unshare and sh exec, so
  # the tracked PID is the VM's.
  (cd "$e" && EJABBERD_CONFIG_PATH="$e/ejabberd.yml" EJABBERD_LOG_PATH="$e/ejabberd.log" ERL_INETRC="$e/inetrc" \
    ERL_CRASH_DUMP="$e/erl_crash.dump" ERL_LIBS="$EJ_LIBS" \
    exec "${PRIVATE_ETC[@]}" "$e/hosts" "$e/resolv.conf" erl -noinput -noshell -mnesia dir "\"$e/db\"" -s ejabberd \
      -eval "io:format(\"register bob: ~p~n\", [ejabberd_auth:try_register(<<\"bob\">>, <<\"$EDOM\">>, <<\"$PASSWORD\">>)])" \
    >"$e/stdout.log" 2>&1) & track $!
  wait_port "$EIP" 5222 150 || { tail -20 "$e/stdout.log"; return 1; }
  for _ in $(seq 50); do grep -q 'register bob' "$e/stdout.log" && break; sleep 0.1; done
  grep -q 'register bob: ok' "$e/stdout.log" || { ko "[ejabberd/$mode] register bob: $(grep 'register bob' "$e/stdout.log")"; }
}

report_ejabberd() { # dir
  grep -E 'Accepted (inbound|outbound) s2s|s2s .*(authentication|connection) (failed|refused)|Closing s2s|Failed to establish' \
    "$1/ejabberd/ejabberd.log" | sed -E 's/^[^ ]+ [^ ]+ \[[a-z]+\] <[^>]*>@[^ ]+ /  ejabberd: /' | cut -c1-200 | sort -u | head -12
}

check_ejabberd() { # dir mode peer-domain
  local want=dialback; [ "$2" = b ] && want=EXTERNAL
  grep -q "Accepted inbound s2s $want authentication $PDOM -> $3 " "$1/ejabberd/ejabberd.log" &&
    grep -q "Accepted outbound s2s $want authentication $3 -> $PDOM " "$1/ejabberd/ejabberd.log"
}

# ---- one case -------------------------------------------------------------

run_case() { # peer mode
  local peer=$1 mode=$2 dir="$WORK/$1-$2" pdom pip
  pick_addrs "$peer"
  case $peer in prosody) pdom=$QDOM pip=$QIP;; ejabberd) pdom=$EDOM pip=$EIP;; esac
  local tag="[$peer/$mode]"
  rm -rf "$dir"; mkdir -p "$dir/parley" "$dir/certs"
  local c="$dir/certs" trust="" ca_line=""
  local route="$pip:5269"
  [ "$mode" = c ] && route="tls://$pip:5270"   # XEP-0368 direct TLS for Parley's outgoing streams
  if [ "$mode" != b ]; then
    selfsigned "$c" "$PDOM"; selfsigned "$c" "$pdom"
    trust="accept_self_signed = true"
  else
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Parley interop CA" \
      -keyout "$c/ca.key" -out "$c/ca.crt" 2>/dev/null
    ca_signed "$c" "$PDOM"; ca_signed "$c" "$pdom"
    ca_line="ca_file = \"$c/ca.crt\""
  fi
  parley_conf "$dir/parley.toml" parley <<TOML
[[host]]
domain = "$PDOM"
cert_file = "$c/$PDOM.crt"
key_file = "$c/$PDOM.key"
[c2s]
listen = ["$PIP:5222"]
direct_tls_listen = []
[http]
listen = ""
[s2s]
enabled = true
listen = ["$PIP:5269"]
connect_timeout = "15s"
$trust
$ca_line
[s2s.routes]
"$pdom" = "$route"
"conference.$pdom" = "$route"
TOML
  "$BIN" user add "alice@$PDOM" "$PASSWORD" --config "$dir/parley.toml" >/dev/null 2>&1 || ko "$tag parley user add"
  (cd "$dir" && exec "$BIN" serve --config "$dir/parley.toml" >"$dir/parley.log" 2>&1) & track $!
  wait_port "$PIP" 5222 150 || { ko "$tag parley did not start"; tail -5 "$dir/parley.log"; stop_all; return; }
  "start_$peer" "$mode" "$dir" "$c" || { ko "$tag $peer did not start"; stop_all; return; }
  log "$peer, mode $mode: parley $PIP ($PDOM), $peer $pip ($pdom)"
  run_client "$dir/slixmpp" "$tag" -- timeout 60 "$PY" "$ROOT/interop/federation/scenarios.py" --parley "$PIP:5222" --peer "$pip:5222" \
      --parley-domain "$PDOM" --peer-domain "$pdom" --muc "conference.$pdom" --password "$PASSWORD"
  echo "--- methods reported by Parley (parley s2s list):"
  (cd "$dir" && "$BIN" s2s list --config "$dir/parley.toml") | sed 's/^/  /'
  echo "--- methods reported by $peer:"
  "report_$peer" "$dir"
  local want=dialback-tls; [ "$mode" = b ] && want=sasl-external
  local lines; lines=$(grep 's2s authenticated' "$dir/parley.log" | grep "remote=$pdom ")
  if grep -q "direction=in .*method=$want" <<<"$lines" && grep -q "direction=out .*method=$want" <<<"$lines"; then
    ok "$tag parley authenticated $pdom both ways with $want"
  else
    ko "$tag parley did not authenticate $pdom both ways with $want: $(grep -o 'direction=[a-z]* .*method=[a-z-]*' <<<"$lines" | tr '\n' ';')"
  fi
  if "check_$peer" "$dir" "$mode" "$pdom"; then
    ok "$tag $peer authenticated $PDOM both ways with $want"
  else
    ko "$tag $peer did not report $want both ways for $PDOM"
  fi
  stop_all
}

for peer in $PEERS; do
  for m in ${FED_MODES:-a b c}; do run_case "$peer" "$m"; done
done
finish
