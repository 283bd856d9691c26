# Shared by the scripts in bench/: a loopback fixture farm, tributary on it, and
# cleanup. Source it; it sets WORK, FARM_PID, TRIBUTARY_PID and TRIBUTARY_ADDR.
# Everything listens on 127.0.0.1; every wait is bounded.

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FARM=${FARM:-$REPO/bench/feedfarm.py}
# A fixed port for the farm (it needs its own URL before it starts); override when busy.
FARM_PORT=${FARM_PORT:-18901}
# Feeds x items the farm serves; frozen (--rate 0) so every run sees the same bytes.
FARM_FEEDS=${FARM_FEEDS:-20}
FARM_ITEMS=${FARM_ITEMS:-10}
# More bench/feedfarm.py options (faults, rate: later ones override the defaults above).
FARM_ARGS=${FARM_ARGS:-}
# The farm and tributary stop by themselves after this many seconds at the latest.
MAX_SECONDS=${MAX_SECONDS:-900}

WORK=$(mktemp -d /tmp/tributary-bench.XXXXXX)
chmod 755 "$WORK"
FARM_PID=
TRIBUTARY_PID=
TRIBUTARY_ADDR=

now() { date +%s.%N; }
# Seconds since the time $1 (from `now`), to the hundredth.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
# The median of the numbers on stdin, one a line; "-" for none.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
cpu_seconds() { # user + system time of pid $1
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}
# Whether the log holds a line matching $2 past byte $1 (only the new bytes are read:
# the log of a first cycle at 100 000 sources is tens of megabytes).
logged_since() { tail -c +"$(($1 + 1))" "$WORK/tributary.log" | grep -q "$2"; }
# One SIGHUP of the daemon DAEMON_PID, timed until the scheduler logs "sources
# reloaded" (30 s at most). Sets RELOAD_MARK (the log's size before it),
# RELOAD_SECONDS (wall) and RELOAD_CPU (the daemon's CPU meanwhile).
timed_reload() {
  RELOAD_MARK=$(stat -c %s "$WORK/tributary.log")
  local start cpu
  start=$(now)
  cpu=$(cpu_seconds "$DAEMON_PID")
  kill -HUP "$DAEMON_PID"
  for _ in $(seq 1500); do
    logged_since "$RELOAD_MARK" 'sources reloaded' && break
    sleep 0.02
  done
  RELOAD_SECONDS=$(since "$start")
  RELOAD_CPU=$(awk -v a="$cpu" -v b="$(cpu_seconds "$DAEMON_PID")" 'BEGIN { printf "%.2f", b - a }')
}

cleanup() {
  for pid in $TRIBUTARY_PID $FARM_PID ${EXTRA_PIDS:-}; do
    kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

port_is_free() {
  ! ss -ltn "sport = :$1" 2>/dev/null | grep -q LISTEN
}

need_debian_package() { # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  [ "$(id -u)" = 0 ] || die "$1 is missing; install the Debian package $2"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

# Starts the fixture farm and writes $WORK/feeds.toml for tributary (extra [publish]
# lines in $1, then any other sections in $2), listening on port 0.
start_farm() {
  [ -f "$FARM" ] || die "no fixture farm at $FARM (set FARM=path/to/feedfarm.py)"
  port_is_free "$FARM_PORT" || die "port $FARM_PORT is taken; set FARM_PORT"
  python3 "$FARM" --feeds "$FARM_FEEDS" --items "$FARM_ITEMS" --rate 0 \
    --epoch 1767225600 --port "$FARM_PORT" --max-seconds "$MAX_SECONDS" $FARM_ARGS \
    --write-config "$WORK/farm.toml" >"$WORK/farm.log" 2>&1 &
  FARM_PID=$!
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$FARM_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.1:$FARM_PORT/healthz" >/dev/null || die "the farm did not start: $(cat "$WORK/farm.log")"
  {
    printf '[server]\nlisten = "127.0.0.1:0"\n\n[store]\npath = "%s/store"\n\n[publish]\nmax_items = 100\n%s\n\n%s\n\n' "$WORK" "${1:-}" "${2:-}"
    grep -v '^#' "$WORK/farm.toml"
  } >"$WORK/feeds.toml"
}

# Runs `$BIN run --config $1` in the background under `timeout $MAX_SECONDS`, its log
# in $WORK/tributary.log; sets TRIBUTARY_PID (timeout's) and DAEMON_PID (the daemon
# itself, for its RSS, CPU time and signals).
run_daemon() {
  RUST_LOG=info timeout "$MAX_SECONDS" "$BIN" run --config "$1" >"$WORK/tributary.log" 2>&1 &
  TRIBUTARY_PID=$!
  DAEMON_PID=
  for _ in $(seq 100); do
    DAEMON_PID=$(pgrep -P "$TRIBUTARY_PID" || true)
    [ -n "$DAEMON_PID" ] && break
    sleep 0.01
  done
  [ -n "$DAEMON_PID" ] || die "tributary did not start"
}

# Starts the release build of tributary on $WORK/feeds.toml and waits until it
# serves $1 items (at most 60 s).
start_tributary() {
  local want=$1 bin="${TRIBUTARY_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tributary}"
  [ -x "$bin" ] || die "no release build at $bin; run cargo build --release"
  "$bin" check --config "$WORK/feeds.toml" >/dev/null || die "generated config is invalid"
  RUST_LOG=info timeout "$MAX_SECONDS" "$bin" run --config "$WORK/feeds.toml" >"$WORK/tributary.log" 2>&1 &
  TRIBUTARY_PID=$!
  for _ in $(seq 600); do
    TRIBUTARY_ADDR=$(grep -o 'listen=[0-9.:]*' "$WORK/tributary.log" | head -1 | cut -d= -f2 || true)
    if [ -n "$TRIBUTARY_ADDR" ]; then
      local n
      n=$(curl -fsS "http://$TRIBUTARY_ADDR/feed.json" 2>/dev/null |
        python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))' 2>/dev/null || echo 0)
      [ "$n" -ge "$want" ] && return 0
    fi
    sleep 0.1
  done
  die "tributary did not serve $want items within 60 s: $(tail -5 "$WORK/tributary.log")"
}
