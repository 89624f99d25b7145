#!/usr/bin/env bash
# Cluster interop (issue 14): three Parley nodes of the built ./parley on
# distinct loopback addresses, a three-server NATS JetStream cluster, one
# throwaway PostgreSQL database and a throwaway Prosody with its own
# domain. slixmpp clients on different nodes log in, chat both ways,
# subscribe and see each other's presence, share one room (occupants on
# all three nodes) and federate with Prosody from two nodes, both ways.
# carol's connection then drops and her client resumes its XEP-0198
# session through another node while the first still runs (a handover:
# nobody sees her leave, a message sent meanwhile arrives, she stays in
# the room).
# Then the node holding the room is killed with SIGKILL while clients on
# surviving nodes and a client on the doomed node send numbered messages
# with XEP-0198 acknowledgements (window 1): the killed node's clients
# reconnect to other nodes (one at once, one after a survivor announced
# it offline); every message the server acknowledged arrives exactly once
# (live, from offline storage, or in the recipient's archive when it was
# lost in transit; no stanza id twice); the room is usable again within
# 10 s of the kill (the survivors' occupants get status 332 and rejoin;
# it is reloaded from storage, not created anew); federation still works
# afterwards (interop/cluster_slixmpp.py).
#
#   bash interop/cluster.sh        (after `make build`, which makes ./parley)
#
# Layout (all loopback, standard ports on each address):
#   127.0.0.171-173  Parley node1..node3 (c2s 5222, s2s 5269)
#   127.0.0.174-176  nats-server nats1..nats3 (client 4222, routes 6222)
#   127.0.0.177      Prosody (c2s 5222, s2s 5269)
# Storage: database parley_interop_cluster on 127.0.0.1:5432 (user
# postgres), created here and dropped at the end (CLUSTER_PG_HOST,
# CLUSTER_PG_USER, CLUSTER_DB override). Names: Parley reaches Prosody by
# a static route; Prosody finds the Parley domain (all three nodes) in a
# hosts file of its own (libunbound's hoststxt), so neither /etc/hosts nor
# the system resolver is used. Every process is started and stopped by
# PID; the machine's own services are never touched. Config, data and
# logs under interop/.work/cluster/. Prints PASS/FAIL lines and
# "N passed, M failed"; exits non-zero on failure. CLUSTER_VERBOSE=1 puts
# slixmpp's debug log in slixmpp.err.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
interop_init cluster cluster-interop

PDOM=cluster-parley.test
QDOM=cluster-prosody.test
PASSWORD='interop-secret-1'
NODE_IPS=(127.0.0.171 127.0.0.172 127.0.0.173)
NATS_IPS=(127.0.0.174 127.0.0.175 127.0.0.176)
QIP=127.0.0.177
PG_HOST=${CLUSTER_PG_HOST:-127.0.0.1}
PG_USER=${CLUSTER_PG_USER:-postgres}
DB=${CLUSTER_DB:-parley_interop_cluster}

need_cmd nats-server
need_cmd prosody
need_dpkg lua-unbound   # Prosody resolves names from a hosts file only through libunbound
need_cmd psql postgresql-client
need_cmd createdb postgresql-client
need_slixmpp
install_needed
ensure_parley

# Every address must be free: other servers are never stopped.
for ip in "${NODE_IPS[@]}" "$QIP"; do
  for p in 5222 5269; do port_open "$ip" "$p" && die "$ip:$p is already in use"; done
done
for ip in "${NATS_IPS[@]}"; do
  for p in 4222 6222; do port_open "$ip" "$p" && die "$ip:$p is already in use"; done
done

psql_q() { psql -h "$PG_HOST" -U "$PG_USER" -d postgres -qAtX -v ON_ERROR_STOP=1 -c "$1"; }
DB_MADE=0
drop_db() {
  [ "$DB_MADE" = 1 ] || return 0
  psql_q "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || log "could not drop database $DB"
  DB_MADE=0
}
NODE_PIDS=() DRIVER_PID=""
# forget PID: stop tracking a process that has ended (or was killed on
# purpose), so that nothing is ever sent to its PID again.
forget() {
  local q keep=()
  for q in "${PIDS[@]}"; do [ "$q" = "$1" ] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}
# stop_nodes: the Parley nodes still running, on SIGTERM while NATS still
# runs (a node leaving deletes its heartbeat there; without NATS its
# shutdown waits for it); serve gives its shutdown 10 s. A line per node
# with CHECK set.
stop_nodes() {
  local i t0 ms
  for i in 0 1 2; do
    [ -n "${NODE_PIDS[$i]:-}" ] && [[ " ${PIDS[*]} " == *" ${NODE_PIDS[$i]} "* ]] || continue
    t0=$(date +%s%N)
    stop_pid "${NODE_PIDS[$i]}" 150
    ms=$((($(date +%s%N) - t0) / 1000000))
    [ -n "${CHECK:-}" ] || continue
    if [ "$STOP_KILLED" = 0 ] && [ "$STOP_RC" = 0 ]; then
      ok "node$((i + 1)) stops on SIGTERM (exit 0 in ${ms} ms)"
    else
      ko "node$((i + 1)) did not stop cleanly on SIGTERM (status $STOP_RC, killed $STOP_KILLED, ${ms} ms)"
    fi
  done
}
# The client driver first (it would go on killing and connecting), then
# the nodes, then NATS and Prosody, then the database they used.
cleanup() {
  [ -n "$DRIVER_PID" ] && [[ " ${PIDS[*]} " == *" $DRIVER_PID "* ]] && stop_pid "$DRIVER_PID" 30
  stop_nodes
  stop_all
  drop_db
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

fresh_work certs prosody/data nats1 nats2 nats3 node1/data node2/data node3/data
psql_q 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL at $PG_HOST:5432 (user $PG_USER) answers"
psql_q "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
createdb -h "$PG_HOST" -U "$PG_USER" "$DB" 2>"$WORK/createdb.err" || die "createdb $DB" "$WORK/createdb.err"
DB_MADE=1
DSN="postgres://$PG_USER@$PG_HOST:5432/$DB?sslmode=disable"

# ---- NATS: three JetStream servers routed to each other --------------------
routes=""
for i in 0 1 2; do routes+="${routes:+, }\"nats-route://${NATS_IPS[$i]}:6222\""; done
NATS_URLS=""
for i in 0 1 2; do
  n=$((i + 1))
  cat >"$WORK/nats$n/nats.conf" <<CONF
server_name: nats$n
listen: ${NATS_IPS[$i]}:4222
jetstream { store_dir: "$WORK/nats$n/store" }
cluster {
  name: parley-interop
  listen: ${NATS_IPS[$i]}:6222
  routes: [$routes]
}
CONF
  start_bg "$WORK/nats$n/nats.log" nats-server -c "$WORK/nats$n/nats.conf"
  NATS_URLS+="${NATS_URLS:+, }\"nats://${NATS_IPS[$i]}:4222\""
done
for ip in "${NATS_IPS[@]}"; do wait_port "$ip" 4222 300 || die "nats-server on $ip starts" "$WORK"/nats*/nats.log; done
ok "three nats-servers listen on ${NATS_IPS[*]}"

# ---- Parley: three nodes, one database, one certificate, one dialback secret
selfsigned "$WORK/certs" "$PDOM"
selfsigned "$WORK/certs" "$QDOM"
# heartbeat and lease are shorter than the defaults (1 s, 5 s) so that a
# dead node is noticed well within the 10 s the room has to come back,
# and long enough (a node fences itself after lease/2 without NATS) for
# a loaded machine.
for i in 0 1 2; do
  n=$((i + 1))
  # parley_conf's [log] table would come before the top-level keys.
  cat >"$WORK/node$n/parley.toml" <<TOML
# Generated by interop/cluster.sh; thrown away at the next run.
data_dir = "data"
storage = "postgres"
postgres_dsn = "$DSN"
[log]
level = "debug"
[[host]]
domain = "$PDOM"
cert_file = "$WORK/certs/$PDOM.crt"
key_file = "$WORK/certs/$PDOM.key"
[c2s]
listen = ["${NODE_IPS[$i]}:5222"]
direct_tls_listen = []
[http]
listen = ""
[limits]
auth_failure_delay = "100ms"
[s2s]
enabled = true
listen = ["${NODE_IPS[$i]}:5269"]
connect_timeout = "15s"
accept_self_signed = true
dialback_secret = "cluster-interop-dialback-secret-0123456789"
[s2s.routes]
"$QDOM" = "$QIP:5269"
"conference.$QDOM" = "$QIP:5269"
[cluster]
node = "node$n"
nats_urls = [$NATS_URLS]
replicas = 3
heartbeat = "500ms"
lease = "4s"
TOML
done
"$BIN" config check --config "$WORK/node1/parley.toml" >"$WORK/configcheck.log" 2>&1 || die "parley config check" "$WORK/configcheck.log"
# The first start applies the migrations; the accounts go straight into
# the shared database.
start_node() { # index (0-2)
  local n=$(($1 + 1))
  (cd "$WORK/node$n" && exec "$BIN" serve --config "$WORK/node$n/parley.toml" >>"$WORK/node$n/parley.log" 2>&1) &
  NODE_PIDS[$1]=$!
  track "$!"
}
for i in 0 1 2; do start_node "$i"; done
for i in 0 1 2; do
  # Joining waits for JetStream to elect its leaders (a node retries for
  # a minute).
  for _ in $(seq 900); do
    kill -0 "${NODE_PIDS[$i]}" 2>/dev/null || break
    port_open "${NODE_IPS[$i]}" 5222 && port_open "${NODE_IPS[$i]}" 5269 && break
    sleep 0.1
  done
  port_open "${NODE_IPS[$i]}" 5222 || die "parley node$((i + 1)) starts on ${NODE_IPS[$i]}" "$WORK/node$((i + 1))/parley.log"
done
ok "three parley nodes listen on ${NODE_IPS[*]}"
for u in alice bob carol dave erin; do add_user "$WORK/node1/parley.toml" "$u@$PDOM" "$PASSWORD"; done

status_json() { "$BIN" cluster status --json --config "$WORK/node2/parley.toml" 2>&1; }
live=0
for _ in $(seq 100); do
  live=$(status_json | grep -c '"live": true')
  [ "$live" = 3 ] && break
  sleep 0.2
done
[ "$live" = 3 ] && ok "parley cluster status: three live nodes" || ko "parley cluster status shows $live live nodes: $(status_json | tr -d '\n' | cut -c1-300)"

# ---- Prosody --------------------------------------------------------------
P="$WORK/prosody"
cp "$WORK/certs/$QDOM.crt" "$WORK/certs/$QDOM.key" "$P/"; chmod 644 "$P/$QDOM.key"
# libunbound reads names from this file, not /etc/hosts; its resolver list
# names an address where no DNS server answers, so nothing reaches the
# system's resolver. The Parley domain has the three nodes' addresses.
{
  for ip in "${NODE_IPS[@]}"; do printf '%s %s conference.%s\n' "$ip" "$PDOM" "$PDOM"; done
  printf '%s %s conference.%s\n' "$QIP" "$QDOM" "$QDOM"
} >"$P/hosts"
printf 'nameserver %s\n' "$QIP" >"$P/resolv.conf"
cat >"$P/prosody.cfg.lua" <<LUA
pidfile = "$P/prosody.pid"
data_path = "$P/data"
run_as_root = true
daemonize = false
log = { debug = "$P/prosody.log" }
interfaces = { "$QIP" }
c2s_ports = { 5222 }
s2s_ports = { 5269 }
c2s_direct_tls_ports = {}
s2s_direct_tls_ports = {}
http_ports = {}
https_ports = {}
modules_enabled = { "roster", "saslauth", "tls", "dialback", "disco", "ping", "presence", "message", "iq", "posix", "offline" }
modules_disabled = { "admin_shell" }
authentication = "internal_plain"
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
use_dane = false
unbound = { hoststxt = "$P/hosts"; resolvconf = "$P/resolv.conf" }
ssl = { key = "$P/$QDOM.key"; certificate = "$P/$QDOM.crt" }
VirtualHost "$QDOM"
LUA
prosodyctl --config "$P/prosody.cfg.lua" register pat "$QDOM" "$PASSWORD" >"$P/register.log" 2>&1 || die "prosodyctl register pat" "$P/register.log"
start_bg "$P/stdout.log" prosody --config "$P/prosody.cfg.lua"
wait_port "$QIP" 5222 300 || die "prosody starts on $QIP" "$P/stdout.log"
ok "prosody listens on $QIP"

# ---- the scenarios ----------------------------------------------------------
log "parley ${NODE_IPS[*]} ($PDOM), nats ${NATS_IPS[*]}, prosody $QIP ($QDOM), database $DB"
RELAY_OTHER=echo   # the driver's progress lines are shown too
started=$(date +%s)
# Tracked by PID (not run_client's pipe), so an interrupted run stops it:
# it holds the nodes' PIDs and kills one of them.
env HOME="$WORK" timeout 420 "$PY" "$ROOT/interop/cluster_slixmpp.py" \
  --nodes "$(IFS=,; echo "${NODE_IPS[*]}")" --pids "$(IFS=,; echo "${NODE_PIDS[*]}")" \
  --prosody "$QIP" --domain "$PDOM" --peer-domain "$QDOM" --password "$PASSWORD" \
  --status "$BIN cluster status --json --config $WORK/node2/parley.toml" ${CLUSTER_VERBOSE:+-v} \
  >"$WORK/slixmpp.out" 2>"$WORK/slixmpp.err" &
DRIVER_PID=$!
track "$DRIVER_PID"
wait "$DRIVER_PID"
rc=$?
forget "$DRIVER_PID"
relay <"$WORK/slixmpp.out"
if [ "$rc" != 0 ] && ! grep -q '^FAIL' "$WORK/slixmpp.out"; then
  ko "cluster_slixmpp.py exited with status $rc without reporting a failure"
  tail -n 20 "$WORK/slixmpp.err"
fi
log "scenarios took $(($(date +%s) - started)) s"

# The killed node is gone; the other two still run.
for i in 0 1 2; do
  if kill -0 "${NODE_PIDS[$i]}" 2>/dev/null; then
    ok "node$((i + 1)) still running after the run"
  elif grep -q "^PASS: node$((i + 1)), holding the room.*killed with SIGKILL" "$WORK/slixmpp.out"; then
    forget "${NODE_PIDS[$i]}"
  else
    ko "node$((i + 1)) died"; tail -20 "$WORK/node$((i + 1))/parley.log"
  fi
done
grep -q 'room taken over from storage' "$WORK"/node*/parley.log &&
  ok "a surviving node logged that it reloaded the room from storage" ||
  ko "no node logged 'muc: room taken over from storage'"

grep -q 'does not check revisions atomically' "$WORK/node2/parley.log" &&
  log "note: $(nats-server --version 2>&1) lets concurrent revision-checked writes to a replicated bucket all succeed (nats-server issue 4320, fixed in 2.9.21); the nodes warned about it"
CHECK=1 stop_nodes
cleanup
show_on_failure 40 "$WORK/node1/parley.log" "$WORK/node2/parley.log" "$WORK/node3/parley.log" "$WORK/slixmpp.err"
[ "$fail" -eq 0 ] || log "logs: $WORK/node*/parley.log, $WORK/prosody/prosody.log, $WORK/slixmpp.{out,err}"
finish
