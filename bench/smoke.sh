#!/usr/bin/env bash
# CI smoke test of the load generator: the built ./parley on a throwaway
# config and data dir, 10 accounts, then parley-bench for a few seconds of
# logins (SCRAM-SHA-256 over STARTTLS) and of chat (PLAIN over STARTTLS);
# fails if anything was lost, failed or skipped (-strict). Under a minute.
# Address: BENCH_SMOKE_IP (default 127.0.0.135).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${PARLEY_BIN:-"$ROOT/parley"}
GEN=${PARLEY_BENCH_BIN:-"$ROOT/parley-bench"}
IP=${BENCH_SMOKE_IP:-127.0.0.135}
D=$(mktemp -d)
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$D"
}
trap cleanup EXIT
cat >"$D/parley.toml" <<TOML
data_dir = "$D/data"
admin_socket = "-"
[log]
level = "warn"
[[host]]
domain = "bench.test"
[c2s]
listen = ["$IP:5222"]
direct_tls_listen = []
[http]
listen = ""
[limits]
max_connections_per_ip = 10000
max_concurrent_logins_per_ip = $((8 * $(nproc)))
max_concurrent_logins = $((8 * $(nproc)))
rate_bytes_per_second = 104857600
rate_burst_bytes = 104857600
TOML
for i in $(seq 1 10); do "$BIN" user add "bench$i@bench.test" "benchpass$i" --config "$D/parley.toml" >/dev/null; done
"$BIN" serve --config "$D/parley.toml" >"$D/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/$IP/5222") 2>/dev/null && break; sleep 0.1; done
run() { "$GEN" run -q -strict -addr "$IP:5222" -domain bench.test -users 10 -step 3s -drain 10s -pid "$PID" "$@"; }
run -scenario login -mech SCRAM-SHA-256 -rates 20 || { tail -20 "$D/server.log"; exit 1; }
run -scenario chat -mech PLAIN -rates 200 || { tail -20 "$D/server.log"; exit 1; }
echo "bench smoke: nothing lost"
