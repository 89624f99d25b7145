# Shared by the interop suites; each sources it first:
#
#   . "$(dirname "$0")/lib.sh"
#   interop_init NAME LOG-TAG      # cd to the repo, ROOT BIN PY WORK, counters
#
# and then keeps only what is its own: addresses, configs, peers, checks.
# Provides: PASS/FAIL counting (ok, ko, finish, die) and the final
# "N passed, M failed" line that interop/all.sh sums; Debian packages
# (need_*, install_needed); building ./parley if missing (ensure_parley);
# background processes stopped by PID on exit (start_bg, track, stop_pid,
# stop_all); free loopback addresses checked before use (pick_addr);
# waiting for ports (wait_port, wait_server); parley user add
# (add_user); a fresh work dir and a Parley config (fresh_work,
# parley_conf); starting and ending a one-server suite (start_parley,
# end_suite); relaying a client script's PASS/FAIL lines (relay,
# run_client); the server log on failure (show_on_failure); a self-signed
# certificate (selfsigned).
# shellcheck shell=bash

# interop_init NAME LOG-TAG: the work dir is interop/.work/NAME; log lines
# start with "LOG-TAG: ". PASS_SEP (": " unless the suite set it) goes
# between PASS/FAIL and the check's name.
interop_init() {
  cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
  ROOT=$(pwd)
  BIN=${PARLEY_BIN:-"$ROOT/parley"}
  PY=/usr/bin/python3   # Debian's python: the one that sees python3-slixmpp
  WORK="$ROOT/interop/.work/$1"
  LOG_TAG=$2
  PASS_SEP=${PASS_SEP-": "}
  pass=0 fail=0
  NEED=()
  PIDS=()
  trap stop_all EXIT
  trap 'stop_all; exit 130' INT TERM
}

log() { echo "$LOG_TAG: $*"; }
ok() { echo "PASS$PASS_SEP$*"; pass=$((pass + 1)); }
ko() { echo "FAIL$PASS_SEP$*"; fail=$((fail + 1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }
# die MSG [FILE...]: a failed check that ends the run; the tail of each FILE
# (a log that explains it) is printed first.
die() {
  ko "$1"; shift
  [ $# -gt 0 ] && tail -n 20 "$@" 2>/dev/null
  stop_all
  finish
}

# ---------------------------------------------------------------- packages
# need_slixmpp, need_cmd CMD [PACKAGE], need_dpkg PACKAGE: note a missing
# package in NEED; install_needed installs them all quietly, without a
# terminal (CI has no stdin).
need_slixmpp() { "$PY" -c 'import slixmpp' >/dev/null 2>&1 || NEED+=(python3-slixmpp); }
need_cmd() { command -v "$1" >/dev/null 2>&1 || NEED+=("${2:-$1}"); }
need_dpkg() { dpkg -s "$1" >/dev/null 2>&1 || NEED+=("$1"); }
install_needed() {
  [ ${#NEED[@]} -gt 0 ] || return 0
  log "installing ${NEED[*]}"
  local aptlog; aptlog=$(mktemp)
  if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
         DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${NEED[@]}"; } \
      </dev/null >"$aptlog" 2>&1; then
    tail -n 20 "$aptlog"; rm -f "$aptlog"
    die "install ${NEED[*]}"
  fi
  rm -f "$aptlog"
  NEED=()
}

# ensure_parley: build ./parley (or $PARLEY_BIN) if it is not there yet.
ensure_parley() {
  [ -x "$BIN" ] && return 0
  log "building ./parley"
  CGO_ENABLED=0 go build -trimpath -o "$BIN" ./cmd/parley || die "build"
}

# ---------------------------------------------------------------- processes
# track PID: stop PID (stop_all) when the suite ends, however it ends.
track() { PIDS+=("$1"); }
# start_bg LOG CMD...: run CMD in the background with its output in LOG;
# its PID is in LAST_PID and tracked.
start_bg() {
  local out=$1; shift
  "$@" >"$out" 2>&1 &
  LAST_PID=$!
  track "$LAST_PID"
}
# stop_pid PID [TENTHS]: SIGTERM, SIGKILL if it still runs after TENTHS/10 s
# (default 5 s), reap it and forget it. STOP_RC is its exit status;
# STOP_KILLED is 1 if it needed SIGKILL.
stop_pid() {
  local p=$1 t=${2:-50} q keep=()
  STOP_KILLED=0
  kill -TERM "$p" 2>/dev/null
  for _ in $(seq "$t"); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$p" 2>/dev/null; then
    log "pid $p did not stop on SIGTERM within $((t / 10))s; killing it"
    kill -KILL "$p" 2>/dev/null
    STOP_KILLED=1
  fi
  wait "$p" 2>/dev/null
  STOP_RC=$?
  for q in "${PIDS[@]}"; do [ "$q" = "$p" ] || keep+=("$q"); done
  PIDS=("${keep[@]}")
}
# stop_all [TENTHS]: SIGTERM to every tracked process, then stop_pid each.
stop_all() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  while [ ${#PIDS[@]} -gt 0 ]; do stop_pid "${PIDS[0]}" "$@"; done
}

# port_open IP PORT: something accepts connections there.
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
# wait_port IP PORT [TENTHS]: until something listens (default 10 s).
wait_port() {
  for _ in $(seq "${3:-100}"); do
    port_open "$1" "$2" && return 0
    sleep 0.1
  done
  return 1
}
# wait_server PID IP PORT...: until all PORTs listen on IP (10 s); fails at
# once if PID exits.
wait_server() {
  local pid=$1 ip=$2 port up; shift 2
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 1
    up=1
    for port in "$@"; do port_open "$ip" "$port" || { up=0; break; }; done
    [ "$up" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}

# pick_addr VAR "PORT..." FIRST [CHOSEN]: set VAR to a loopback address on
# which every PORT is free, checked before anything is started there. With
# CHOSEN (an address the user set) only that one is tried; otherwise FIRST
# (127.0.0.N), then N+1, ... up to 127.0.0.254, skipping addresses picked
# before in this run. "Free" means a server could listen there, probed by
# binding as a server does: nothing listens on that IP and port, nor on the
# port on every address (0.0.0.0, [::]; that takes it on all of 127.0.0.x,
# and then no address is free). Other servers (system services included)
# are never stopped: when nothing is free the run ends with a message and
# what `ss` shows listening on the ports.
PICKED=()
pick_addr() {
  local var=$1 ports=$2 first=$3 chosen=${4:-} out
  if ! out=$("$PY" - "$first" "$chosen" "${PICKED[*]}" $ports 2>&1 <<'PY'
import socket, sys
first, chosen, picked, ports = sys.argv[1], sys.argv[2], set(sys.argv[3].split()), [int(p) for p in sys.argv[4:]]

def busy(ip):
    for p in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
        try:
            s.bind((ip, p))
        except OSError as e:
            return "%s:%d is taken (%s)" % (ip, p, e.strerror)
        finally:
            s.close()
    return None

if chosen:
    why = busy(chosen)
    if why:
        print(why, file=sys.stderr)
        sys.exit(1)
    print(chosen)
    sys.exit(0)
base, n = first.rsplit(".", 1)
reason = None
for i in range(int(n), 255):
    ip = "%s.%d" % (base, i)
    if ip in picked:
        continue
    why = busy(ip)
    if not why:
        print(ip)
        sys.exit(0)
    reason = reason or why
print("no address from %s to %s.254 has them all free (%s)" % (first, base, reason), file=sys.stderr)
sys.exit(1)
PY
  ); then
    local p
    ko "no free loopback address for ports $ports: $out; other servers are never stopped, free the address or choose another"
    for p in $ports; do ss -ltnpH "sport = :$p" 2>/dev/null | sed 's/^/  listening: /'; done
    stop_all
    finish
  fi
  if [ "$out" != "$first" ] && [[ " ${PICKED[*]} " != *" $first "* ]]; then
    log "$first is taken; using $out"
  fi
  PICKED+=("$out")
  printf -v "$var" '%s' "$out"
}

# fresh_work [SUBDIR...]: an empty WORK with these directories in it.
fresh_work() {
  rm -rf "$WORK"
  mkdir -p "$WORK"
  local d
  for d in "$@"; do mkdir -p "$WORK/$d"; done
}

# parley_conf FILE [DATA_DIR]: write a Parley config: a note that it is
# generated, data_dir (default "data", relative to FILE), debug logging, and
# then the suite's own tables read from stdin.
parley_conf() {
  {
    echo "# Generated by interop/$(basename "$0"); thrown away at the next run."
    echo "data_dir = \"${2:-data}\""
    printf '[log]\nlevel = "debug"\n'
    cat
  } >"$1"
}

# start_parley IP PORT [PORT...]: serve $WORK/parley.toml (log in
# $WORK/parley.log) and wait until every PORT listens on IP; PID is its
# process. The run ends if it does not start.
start_parley() {
  local ip=$1; shift
  start_bg "$WORK/parley.log" "$BIN" serve --config "$WORK/parley.toml"
  PID=$LAST_PID
  wait_server "$PID" "$ip" "$@" || die "parley starts" "$WORK/parley.log"
  ok "parley starts on $ip:$1"
}

# end_suite: the closing checks of a one-server suite: parley ($PID) still
# runs, everything is stopped, where the logs are on failure, the totals.
end_suite() {
  if kill -0 "$PID" 2>/dev/null; then ok "parley still running after the run"; else ko "parley died"; tail -30 "$WORK/parley.log"; fi
  stop_all
  [ "$fail" -eq 0 ] || log "server log: $WORK/parley.log; client log: $WORK/slixmpp.err"
  finish
}

# add_user CONFIG JID PASSWORD: parley user add, or the run ends.
add_user() {
  "$BIN" user add "$2" "$3" --config "$1" >>"$WORK/useradd.log" 2>&1 \
    || { cat "$WORK/useradd.log"; die "parley user add $2"; }
}

# ---------------------------------------------------------------- clients
# relay [TAG]: count the PASS/FAIL lines read from stdin (as "PASS: name" or
# "PASS name") as this suite's own, TAG before the name; any other line goes
# to the command $RELAY_OTHER (echo, log; by default it is dropped).
relay() {
  local line rest
  while IFS= read -r line; do
    case "$line" in
      PASS:*|PASS\ *) rest=${line#PASS}; rest=${rest#:}; ok "${1:+$1 }${rest# }" ;;
      FAIL:*|FAIL\ *) rest=${line#FAIL}; rest=${rest#:}; ko "${1:+$1 }${rest# }" ;;
      *) ${RELAY_OTHER:-:} "$line" ;;
    esac
  done
}
# run_client BASE [TAG] -- CMD...: run a client script with its stdout in
# BASE.out and stderr in BASE.err, relaying its PASS/FAIL lines as they come
# (with TAG); a non-zero exit that reported no FAIL line is a failure too.
run_client() {
  local base=$1 tag= rc; shift
  [ "$1" != -- ] && { tag=$1; shift; }
  shift
  relay "$tag" < <("$@" 2>"$base.err" | tee "$base.out"; echo "${PIPESTATUS[0]}" >"$base.rc")
  rc=$(cat "$base.rc" 2>/dev/null)
  if [ "${rc:-1}" != 0 ] && ! grep -q '^FAIL' "$base.out"; then
    ko "${tag:+$tag }$(basename "$base") exited with status $rc without reporting a failure"
    tail -n 20 "$base.err"
  fi
}

# show_on_failure LINES FILE...: when anything failed, the last LINES lines
# of each FILE (the server's log and the like).
show_on_failure() {
  [ "$fail" -gt 0 ] || return 0
  local n=$1 f; shift
  for f in "$@"; do
    [ -e "$f" ] || continue
    echo "----- $f (last $n lines) -----"
    tail -n "$n" "$f"
  done
  echo "----- end of logs -----"
}

# selfsigned DIR NAME: DIR/NAME.key and DIR/NAME.crt, an EC certificate
# for NAME and *.NAME.
selfsigned() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
    -addext "subjectAltName=DNS:$2,DNS:*.$2" -keyout "$1/$2.key" -out "$1/$2.crt" 2>/dev/null
}
