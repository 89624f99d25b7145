#!/usr/bin/env bash
# A three-node Parley cluster against one Parley node, in one run, on this
# machine, under the same parley-bench load (the chat and room scenarios
# and rates of bench/compare.sh): a single node configured as
# compare.sh's Parley, and three nodes on a throwaway PostgreSQL database
# with a three-server NATS JetStream cluster. The sessions are spread over
# the three nodes round-robin, so about 2/3 of the chat messages cross
# nodes. Everything the server side runs (one node; or three nodes and
# three nats-servers) is pinned to one CPU and measured together, with the
# nodes' PostgreSQL backends (CPU per delivery summed over the processes),
# the generator to the other CPU; so on a 2-core machine this measures the
# cluster's overhead, not its scale-out (bench/README.md, "A three-node
# cluster on one machine").
#
# Work and logs in bench/.work/cluster/; databases parley_bench_cluster
# and parley_bench_cluster_tmpl (created and dropped here) on the local
# PostgreSQL; every process is started and stopped here by PID; loopback
# only. Prints a table of ratios cluster/single
# (bench/.work/cluster/results.md, from bench/cluster.py).
#
# Knobs (environment; defaults in brackets):
#   BENCH_MODES         [none starttls]  c2s TLS modes
#   BENCH_SCENARIOS     [chat muc]
#   BENCH_STEP          [6]     seconds per rate step
#   BENCH_USERS         [200]   online users (chat)
#   BENCH_OCCUPANTS     [50]    room occupants (muc)
#   BENCH_CHAT_RATES    [1000 4000 8000]  messages/s
#   BENCH_MUC_RATES     [20 80 160]       room messages/s (× occupants deliveries)
#   BENCH_CPUS          [0 1]   server-side CPU, generator CPU
#   BENCH_PG            [postgres://postgres@127.0.0.1:5432]  PostgreSQL (trust auth)
#   BENCH_PPROF         []      set: every Parley serves /debug/pprof/ on <its address>:8080
#   BENCH_IDLE_SECS     [5]     seconds of idle CPU measured before each run
#   BENCH_CLUSTER_IPS   [127.0.0.180 ... 127.0.0.186]  single node, three nodes, three NATS
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
B="$ROOT/bench"
W="$B/.work/cluster"
BIN=${PARLEY_BIN:-"$ROOT/parley"}
GEN=${PARLEY_BENCH_BIN:-"$ROOT/parley-bench"}
MODES=${BENCH_MODES:-none starttls}
SCENARIOS=${BENCH_SCENARIOS:-chat muc}
STEP=${BENCH_STEP:-6}
USERS=${BENCH_USERS:-200}
OCCUPANTS=${BENCH_OCCUPANTS:-50}
CHAT_RATES=${BENCH_CHAT_RATES:-1000 4000 8000}
MUC_RATES=${BENCH_MUC_RATES:-20 80 160}
read -r CPU_SERVER CPU_GEN <<<"${BENCH_CPUS:-0 1}"
PG=${BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=parley_bench_cluster
DB_TMPL=parley_bench_cluster_tmpl
PG_POOL=4   # connections per node (pgxpool's default on one CPU), opened at start
read -r SINGLE_IP N1 N2 N3 S1 S2 S3 <<<"${BENCH_CLUSTER_IPS:-127.0.0.180 127.0.0.181 127.0.0.182 127.0.0.183 127.0.0.184 127.0.0.185 127.0.0.186}"
NODE_IPS=("$N1" "$N2" "$N3")
NATS_IPS=("$S1" "$S2" "$S3")
DOMAIN=bench.test
ACCOUNTS=$(( USERS > OCCUPANTS ? USERS : OCCUPANTS ))
SECRET=parley-bench-cluster-dialback-0123456789

log() { echo "cluster-bench: $*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

command -v nats-server >/dev/null || die "nats-server missing: apt-get install -y nats-server"
command -v psql >/dev/null || die "psql missing: apt-get install -y postgresql-client"
command -v openssl >/dev/null || die "openssl missing"
command -v curl >/dev/null || die "curl missing"
[ -x "$BIN" ] || die "$BIN missing: run make build"
[ -x "$GEN" ] || die "$GEN missing: run make build-bench"

# ---- processes and the databases: all started or made here, all undone ---
NODE_PIDS=()  # Parley: the single node, or the cluster's nodes
NATS_PIDS=()  # the cluster's nats-servers
MADE_DB=""    # set once the databases may exist
stop_pid() { # pid
  local p=$1
  kill "$p" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null
}
stop_all() { # Parley first (a node leaves the registry as it stops), then NATS
  local p
  for p in "${NODE_PIDS[@]}" "${NATS_PIDS[@]}"; do stop_pid "$p"; done
  NODE_PIDS=(); NATS_PIDS=()
}
sql() { PGOPTIONS='--client-min-messages=warning' psql -X -q -v ON_ERROR_STOP=1 "$PG/test?sslmode=disable" -c "$1" >/dev/null; }
drop_dbs() { sql "DROP DATABASE IF EXISTS $DB WITH (FORCE)" && sql "DROP DATABASE IF EXISTS $DB_TMPL WITH (FORCE)"; }
cleanup() {
  stop_all
  if [ -n "$MADE_DB" ]; then drop_dbs || log "could not drop $DB and $DB_TMPL"; fi
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM
wait_port() { for _ in $(seq 300); do (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

rm -rf "$W"; mkdir -p "$W/certs"
C="$W/certs"
bench_cert "$C" "$DOMAIN" "conference.$DOMAIN"
RESULTS="$W/results.tsv"

# ---- Parley: compare.sh's configuration; the nodes add storage and cluster --
parley_conf() { parley_bench_conf "$@"; }
pg_lines() { # database [pool size]: a fixed pool, so the backends are the same all run
  local pool=""
  [ -n "${2:-}" ] && pool="&pool_min_conns=$2&pool_max_conns=$2"
  printf 'storage = "postgres"\npostgres_dsn = "%s"\n' "$PG/$1?sslmode=disable$pool"
}
node_conf() { # dir mode k
  local urls="" ip
  for ip in "${NATS_IPS[@]}"; do urls+="${urls:+, }\"nats://$ip:4222\""; done
  parley_conf "$1" "$2" "${NODE_IPS[$3]}" "$(pg_lines "$DB" "$PG_POOL")" \
    "[s2s]
# federation off, as in compare.sh; the secret a cluster with it would need
dialback_secret = \"$SECRET\"
[cluster]
node = \"node$(( $3 + 1 ))\"
nats_urls = [$urls]
replicas = 3"
}
start_parley() { # dir ip: one server process pinned to the server CPU
  (cd "$1" && exec taskset -c "$CPU_SERVER" "$BIN" serve --config "$1/parley.toml" >>"$1/server.log" 2>&1) &
  local pid=$!
  if wait_port "$2" 5222; then NODE_PIDS+=("$pid"); return 0; fi
  stop_pid "$pid"
  return 1
}

# ---- NATS: three JetStream servers in one cluster -------------------------
start_nats() { # dir
  local k ip routes=""
  for ip in "${NATS_IPS[@]}"; do routes+="${routes:+, }\"nats-route://$ip:6222\""; done
  for k in 0 1 2; do
    ip=${NATS_IPS[$k]}
    mkdir -p "$1/nats$((k + 1))/store"
    cat >"$1/nats$((k + 1))/nats.conf" <<CONF
server_name: nats$((k + 1))
host: $ip
port: 4222
http: "$ip:8222"
jetstream { store_dir: "$1/nats$((k + 1))/store" }
cluster {
  name: parleybench
  listen: "$ip:6222"
  routes: [$routes]
}
CONF
    taskset -c "$CPU_SERVER" nats-server -c "$1/nats$((k + 1))/nats.conf" -l "$1/nats$((k + 1))/nats.log" &
    NATS_PIDS+=("$!")
  done
  for ip in "${NATS_IPS[@]}"; do
    wait_port "$ip" 4222 || { log "nats-server on $ip did not start"; return 1; }
  done
  # JetStream answers once the servers have elected its meta leader.
  for _ in $(seq 300); do
    local ok=0
    for ip in "${NATS_IPS[@]}"; do
      curl -sf "http://$ip:8222/healthz" >/dev/null && ok=$((ok + 1))
    done
    [ $ok -eq 3 ] && return 0
    sleep 0.2
  done
  log "NATS JetStream not ready (see $1/nats*/nats.log)"; return 1
}

# ---- the same accounts for both: parley user add --------------------------
accounts() { # config
  seq 1 "$ACCOUNTS" | xargs -P 2 -I{} "$BIN" user add "bench{}@$DOMAIN" "benchpass{}" --config "$1" \
    >"$(dirname "$1")/useradd.log" 2>&1 || { tail -5 "$(dirname "$1")/useradd.log"; return 1; }
}
template_single() {
  mkdir -p "$W/single/template"; parley_conf "$W/single/template" none "$SINGLE_IP"
  accounts "$W/single/template/parley.toml"
}
template_cluster() { # accounts in a template database, copied per scenario
  MADE_DB=1
  drop_dbs && sql "CREATE DATABASE $DB_TMPL" || return 1
  local d="$W/cluster/template"
  mkdir -p "$d"; parley_conf "$d" none "${NODE_IPS[0]}" "$(pg_lines "$DB_TMPL")"   # accounts need storage only
  accounts "$d/parley.toml"
}

# ---- idle cost: what the server side burns with no sessions and no load --
# (heartbeats, JetStream's own traffic, timers); subtracted from the CPU
# per delivery in the table's "net" column, since at low rates it is a
# large part of a cluster's.
ticks() { # pids: utime+stime, in clock ticks, summed
  local t=0 p f
  for p; do read -r -a f < <(sed 's/^.*) //' "/proc/$p/stat"); t=$(( t + f[11] + f[12] )); done
  echo "$t"
}
idle_cost() { # label mode scenario pids...
  local label=$1 mode=$2 sc=$3; shift 3
  local t0 t1 secs=${BENCH_IDLE_SECS:-5}
  t0=$(ticks "$@"); sleep "$secs"; t1=$(ticks "$@")
  printf '%s\t%s\t%s\t%s\n' "$label" "$mode" "$sc" "$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) / secs ))" >>"$W/idle.tsv"
}

# ---- one scenario on one setup ------------------------------------------
rates_of() { case $1 in chat) echo "$CHAT_RATES";; muc) echo "$MUC_RATES";; esac; }
bench() { # label mode scenario addrs pids dir
  local users=$USERS
  [ "$3" = muc ] && users=$OCCUPANTS
  log "$1/$2/$3: $(rates_of "$3" | tr ' ' ',')/s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "$1 $2 $3 start $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)" >>"$W/machine.txt"
  taskset -c "$CPU_GEN" "$GEN" run -q -addr "$4" -domain "$DOMAIN" -tls "$2" -mech PLAIN \
    -users "$users" -scenario "$3" -rates "$(rates_of "$3" | tr ' ' ',')" -step "${STEP}s" -drain 5s -setup 16 \
    -stop-saturated -pid "$5" -label "$1" -tsv "$RESULTS" >"$6/bench.out" 2>"$6/bench.err"
  local rc=$?
  sed 's/^/  /' "$6/bench.out" >&2
  [ $rc -eq 0 ] || log "$1/$2/$3: generator failed: $(tail -3 "$6/bench.err")"
  return $rc
}
run_single() { # mode scenario
  local d="$W/single/$1-$2"
  rm -rf "$d"; cp -a "$W/single/template" "$d"
  parley_conf "$d" "$1" "$SINGLE_IP"
  start_parley "$d" "$SINGLE_IP" || { log "single node did not start: $(tail -5 "$d/server.log")"; return 1; }
  sleep 2
  idle_cost single "$1" "$2" "${NODE_PIDS[@]}"
  bench single "$1" "$2" "$SINGLE_IP:5222" "${NODE_PIDS[0]}" "$d"
  local rc=$?
  stop_all
  return $rc
}
run_cluster() { # mode scenario
  local d="$W/cluster/$1-$2" k n addrs="" tries
  rm -rf "$d"; mkdir -p "$d"
  sql "DROP DATABASE IF EXISTS $DB WITH (FORCE)" && sql "CREATE DATABASE $DB TEMPLATE $DB_TMPL" || return 1
  start_nats "$d" || { stop_all; return 1; }
  for k in 0 1 2; do
    n="$d/node$((k + 1))"
    mkdir -p "$n"; node_conf "$n" "$1" "$k"
    addrs+="${addrs:+,}${NODE_IPS[$k]}:5222"
    # The first node creates the JetStream buckets: just after the meta
    # leader is elected, that can still fail; the node exits, try again.
    for tries in 1 2 3 4 5; do
      start_parley "$n" "${NODE_IPS[$k]}" && break
      log "node$((k + 1)) did not start (try $tries): $(tail -2 "$n/server.log")"
      sleep 2
    done
    [ ${#NODE_PIDS[@]} -eq $((k + 1)) ] || { stop_all; return 1; }
  done
  sleep 2
  "$BIN" cluster status --config "$d/node1/parley.toml" >"$d/status.txt" 2>&1 || true
  # The nodes' PostgreSQL backends are measured too: the cluster reads
  # storage where one node reads memory (a remote recipient's blocking
  # list, for one), and that work is the database server's.
  local pg_pids
  pg_pids=$(PGOPTIONS='--client-min-messages=warning' psql -X -At "$PG/test?sslmode=disable" -c \
    "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE datname = '$DB' AND backend_type = 'client backend'")
  [ "$(echo "$pg_pids" | tr ',' '\n' | grep -c .)" -eq $((3 * PG_POOL)) ] \
    || log "expected $((3 * PG_POOL)) PostgreSQL backends for $DB, found: ${pg_pids:-none}"
  echo "$pg_pids" >"$d/pg_pids.txt"
  idle_cost cluster "$1" "$2" "${NODE_PIDS[@]}" "${NATS_PIDS[@]}" ${pg_pids//,/ }
  bench cluster "$1" "$2" "$addrs" "$(IFS=,; echo "${NODE_PIDS[*]},${NATS_PIDS[*]}")${pg_pids:+,$pg_pids}" "$d"
  local rc=$?
  stop_all
  return $rc
}

failed=()
{ echo "started $(date -u +%FT%TZ)"; echo "cpus $(nproc)"; grep -m1 'model name' /proc/cpuinfo; echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"; } >"$W/machine.txt"
log "$ACCOUNTS accounts (single node: SQLite, as compare.sh; cluster: PostgreSQL $DB)"
template_single || die "single-node accounts failed"
template_cluster || die "cluster accounts failed"
for mode in $MODES; do
  for sc in $SCENARIOS; do
    case $sc in chat|muc) ;; *) die "unknown scenario $sc (chat, muc)";; esac
    run_single "$mode" "$sc" || failed+=("single/$mode/$sc")
    run_cluster "$mode" "$sc" || failed+=("cluster/$mode/$sc")
  done
done
echo "ended $(date -u +%FT%TZ); load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$W/machine.txt"
[ -s "$RESULTS" ] || die "no results"
/usr/bin/python3 "$B/cluster.py" "$RESULTS" --idle "$W/idle.tsv" --machine "$W/machine.txt" --out "$W/results.md"
[ ${#failed[@]} -eq 0 ] || die "failed: ${failed[*]} (see bench/.work/cluster/)"
