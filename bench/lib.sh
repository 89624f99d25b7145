# Shared by the bench scripts (sourced, never run): the throwaway test
# certificate and the Parley configuration the comparisons run it with.
# The caller defines log and die.

# bench_cert DIR DOMAIN [DNS name...]: a self-signed P-256 certificate for
# DOMAIN (and the other names) as DIR/DOMAIN.crt and DIR/DOMAIN.key, the
# key readable by servers that drop privileges.
bench_cert() {
  local dir=$1 domain=$2 san="DNS:$2" n
  shift 2
  for n in "$@"; do san="$san,DNS:$n"; done
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$domain" \
    -addext "subjectAltName=$san" -keyout "$dir/$domain.key" -out "$dir/$domain.crt" 2>/dev/null \
    || die "openssl failed"
  chmod 644 "$dir/$domain.key"
}

# parley_bench_conf DIR MODE IP [TOP] [SECTIONS]: DIR/parley.toml for one
# Parley under load: host $DOMAIN with the certificate in $C, rooms up to
# 200 occupants, no archive, clients on IP:5222 (MODE none: plaintext
# allowed; else STARTTLS required). TOP goes before the first table,
# SECTIONS at the end. With BENCH_PPROF set, /debug/pprof on IP:8080.
parley_bench_conf() {
  local tls="require_tls = true"
  [ "$2" = none ] && tls="require_tls = false
allow_plain_without_tls = true"
  local http='listen = ""'
  [ -n "${BENCH_PPROF:-}" ] && http=$(printf 'listen = "%s:8080"\npprof = true' "$3")
  cat >"$1/parley.toml" <<TOML
data_dir = "$1/data"
admin_socket = "-"
${4:-}
[log]
level = "warn"
[[host]]
domain = "$DOMAIN"
cert_file = "$C/$DOMAIN.crt"
key_file = "$C/$DOMAIN.key"
[host.muc]
default_occupants = 200
[host.archive]
enabled = false
rooms = false
[c2s]
listen = ["$3:5222"]
direct_tls_listen = []
$tls
[http]
$http
[limits]
# One client address for every connection, and a generator that sends
# faster than a person: the per-address cap, the per-address share of the
# login gate and the per-connection byte rate would throttle the
# generator, not Parley (the gate itself stays). Queue as ejabberd's.
max_connections_per_ip = 1000000
max_concurrent_logins_per_ip = $((8 * $(nproc)))
max_concurrent_logins = $((8 * $(nproc)))
rate_bytes_per_second = 104857600
rate_burst_bytes = 104857600
output_queue = 100000
[auth]
scram_iterations = 4096
${5:-}
TOML
}
