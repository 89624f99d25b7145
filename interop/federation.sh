#!/usr/bin/env bash
# Federation interop: the built ./parley against a real Prosody (Debian),
# each on its own loopback address and domain, in two modes:
#   (a) self-signed certificates + accept_self_signed (dialback over TLS)
#   (b) certificates from a test CA made here and trusted by both (SASL EXTERNAL)
# Names resolve through /etc/hosts lines added here and removed at the end
# (Prosody reads them with unbound hoststxt); Parley uses static routes.
# ejabberd is not covered yet (not installed here; see interop/README.md).
# Ends with "N passed, M failed"; exit non-zero on failure.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${PARLEY_BIN:-"$ROOT/parley"}
PY=/usr/bin/python3
WORK="$ROOT/interop/.work/federation"
PIP=127.0.0.41; PDOM=parley.test     # Parley
QIP=127.0.0.42; QDOM=prosody.test    # Prosody
PASSWORD='interop-secret-1'
pass=0; fail=0
ok()  { echo "PASS $*"; pass=$((pass+1)); }
bad() { echo "FAIL $*"; fail=$((fail+1)); }
log() { echo "federation: $*"; }

need=()
command -v prosody >/dev/null || need+=(prosody)
dpkg -s lua-unbound >/dev/null 2>&1 || need+=(lua-unbound)   # Prosody reads /etc/hosts only through libunbound
"$PY" -c 'import slixmpp' 2>/dev/null || need+=(python3-slixmpp)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } </dev/null >/dev/null 2>&1 \
    || { log "cannot install ${need[*]}"; echo "0 passed, 1 failed"; exit 1; }
fi
[ -x "$BIN" ] || CGO_ENABLED=0 go build -trimpath -o "$BIN" ./cmd/parley || { echo "0 passed, 1 failed"; exit 1; }

HOSTS_TAG="# parley-interop-federation"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if grep -q "$HOSTS_TAG" /etc/hosts 2>/dev/null; then
    grep -v "$HOSTS_TAG" /etc/hosts >/tmp/hosts.$$ && cat /tmp/hosts.$$ >/etc/hosts; rm -f /tmp/hosts.$$
  fi
}
trap cleanup EXIT
grep -q "$HOSTS_TAG" /etc/hosts || {
  printf '%s %s conference.%s %s\n%s %s %s\n' "$QIP" "$QDOM" "$QDOM" "$HOSTS_TAG" "$PIP" "$PDOM" "$HOSTS_TAG" >>/etc/hosts
}

wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

selfsigned() { # dir name
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
    -addext "subjectAltName=DNS:$2,DNS:*.$2" -keyout "$1/$2.key" -out "$1/$2.crt" 2>/dev/null
}
ca_signed() { # dir name (needs $1/ca.crt, $1/ca.key)
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" -keyout "$1/$2.key" -out "$1/$2.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:*.%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2" "$2" >"$1/$2.ext"
  openssl x509 -req -in "$1/$2.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" -CAcreateserial -days 2 -extfile "$1/$2.ext" -out "$1/$2.crt" 2>/dev/null
}

run_mode() { # mode: a or b
  local mode=$1 dir="$WORK/$1"
  rm -rf "$dir"; mkdir -p "$dir/parley" "$dir/prosody/data" "$dir/certs"
  local c="$dir/certs" trust="" ca_line="" secure="false"
  if [ "$mode" = a ]; then
    selfsigned "$c" "$PDOM"; selfsigned "$c" "$QDOM"
    trust="accept_self_signed = true"
  else
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=Parley interop CA" \
      -keyout "$c/ca.key" -out "$c/ca.crt" 2>/dev/null
    ca_signed "$c" "$PDOM"; ca_signed "$c" "$QDOM"
    ca_line="ca_file = \"$c/ca.crt\""; secure="true"
  fi
  cp "$c/$QDOM.crt" "$c/$QDOM.key" "$dir/prosody/"; chmod 644 "$dir/prosody/$QDOM.key"
  cat >"$dir/parley.toml" <<TOML
data_dir = "parley"
[log]
level = "debug"
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
"$QDOM" = "$QIP:5269"
"conference.$QDOM" = "$QIP:5269"
TOML
  local cafile_lua=""
  [ "$mode" = b ] && cafile_lua="cafile = \"$c/ca.crt\";"
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
s2s_direct_tls_ports = {}
http_ports = {}
https_ports = {}
admin_shell_socket = nil
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "version", "ping", "presence", "message", "iq", "posix", "s2s_auth_certs" }
modules_disabled = { "admin_shell" }
authentication = "internal_plain"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = $secure
use_dane = false
unbound = { hoststxt = true }
ssl = { key = "$dir/prosody/$QDOM.key"; certificate = "$dir/prosody/$QDOM.crt"; $cafile_lua }
VirtualHost "$QDOM"
Component "conference.$QDOM" "muc"
LUA
  "$BIN" user add "alice@$PDOM" "$PASSWORD" --config "$dir/parley.toml" >/dev/null 2>&1 || bad "[$mode] parley user add"
  prosodyctl --config "$dir/prosody/prosody.cfg.lua" register bob "$QDOM" "$PASSWORD" >/dev/null 2>&1 || bad "[$mode] prosody register"
  (cd "$dir" && exec "$BIN" serve --config "$dir/parley.toml" >"$dir/parley.log" 2>&1) & pids+=($!)
  prosody --config "$dir/prosody/prosody.cfg.lua" >"$dir/prosody/stdout.log" 2>&1 & pids+=($!)
  wait_port "$PIP" 5222 || { bad "[$mode] parley did not start"; tail -5 "$dir/parley.log"; return; }
  wait_port "$QIP" 5222 || { bad "[$mode] prosody did not start"; tail -20 "$dir/prosody/stdout.log"; return; }
  log "mode $mode: parley $PIP ($PDOM), prosody $QIP ($QDOM)"
  while read -r line; do
    case "$line" in
      PASS*) ok "[$mode] ${line#PASS }";;
      FAIL*) bad "[$mode] ${line#FAIL }";;
      *) echo "$line";;
    esac
  done < <("$PY" "$ROOT/interop/federation/scenarios.py" --parley "$PIP:5222" --peer "$QIP:5222" \
      --parley-domain "$PDOM" --peer-domain "$QDOM" --muc "conference.$QDOM" --password "$PASSWORD" 2>"$dir/slixmpp.log")
  echo "--- methods reported by Parley (parley s2s list) / log:"
  grep 's2s authenticated' "$dir/parley.log" | sed 's/^/  parley: /' | cut -c1-220
  echo "--- methods reported by Prosody:"
  grep -iE 'authenticated|secure|dialback.*valid|verified' "$dir/prosody/prosody.log" | grep -i s2s | sed 's/^/  prosody: /' | cut -c1-200 | head -8
  local want=dialback-tls; [ "$mode" = b ] && want=sasl-external
  if grep 's2s authenticated' "$dir/parley.log" | grep -q "method=$want"; then ok "[$mode] parley reports $want"; else bad "[$mode] parley does not report $want"; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  pids=()
}

for m in ${FED_MODES:-a b}; do run_mode "$m"; done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
