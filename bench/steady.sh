#!/usr/bin/env bash
# Steady-state cost of the daemon (not run by CI): what a poll costs once the store
# holds a source's items, against what the first (cold) poll costs, for one build or
# two side by side in the same run (the same farm, started twice, on their own ports).
#
#   bench/steady.sh                                   # this tree's release build
#   BASELINE=path/to/other/tributary bench/steady.sh  # and another build beside it
#   FEEDS=1000 STEADY=120 bench/steady.sh
#
# Two runs per build, each a fresh store and a fresh farm of FEEDS feeds of 50 items,
# `[poll] interval = "1m"`:
# - steady: the farm publishes one new item per feed per minute (--rate 1). CPU of the
#   cold cycle (start until every source was polled once, /readyz) per item stored;
#   then, after WARM seconds, CPU per NEW item stored over STEADY seconds (each poll
#   then fetches a changed document of 50 entries, one of them new).
# - 304: the farm is frozen (--rate 0), so the second cycle is all 304s. CPU of that
#   cycle (from the first 304 the farm answers to the last) against the cold cycle.
# Also the peak RSS (VmHWM) of each daemon. CPU is utime+stime of the daemon process
# from /proc (10 ms ticks). All traffic stays on 127.0.0.1; every wait is bounded.
#
# Figures, FEEDS=500 WARM=45 STEADY=120 on 2 shared cores, both builds side by side
# in one run, BASELINE = main at 0d5e0a1 (more in docs/PERFORMANCE.md "Steady state"):
#   build      cold us/item  steady us/new item  ratio  304 cycle / cold  peak RSS
#   main                200                9981  49.8x  0.27 / 6.03 s 4.5%  59.5 MB
#   36659b9             195                3460  17.8x  0.32 / 5.36 s 6.0%  54.1 MB
# FEEDS=1000, same way:
#   main                266               11514  43.4x  0.61 / 11.88 s 5.1%  61.8 MB
#   36659b9             237                3635  15.3x  0.61 / 10.82 s 5.6%  62.7 MB
# FEEDS=1000, BASELINE = 48b0441 (lazy outputs, counts, logs, flushes, JSON skipping):
#   48b0441             299                4289  14.3x  0.76 / 13.46 s 5.6%  61.3 MB
#   this                283                3178  11.2x  0.53 / 12.74 s 4.2%  65.4 MB
# FEEDS=1000 WARM=45, BASELINE = main at 6acf0a2 (non-UTF-8 feeds passed over), two runs:
#   6acf0a2             248                2881  11.6x  0.52 / 11.04 s 4.7%  63.6 MB
#   a6a6558             251                2720  10.8x  0.52 / 11.16 s 4.7%  61.6 MB
#   6acf0a2             266                3265  12.3x  0.61 / 14.37 s 4.2%  64.7 MB
#   a6a6558             270                3055  11.3x  0.58 / 14.26 s 4.1%  68.4 MB
# FEEDS=1000 WARM=45, BASELINE = main at 6acf0a2 (own scan, body buffers, charsets: 095b20f):
#   6acf0a2             218                3056  14.0x  0.62 / 14.70 s 4.2%  63.6 MB
#   095b20f             212                2441  11.5x  0.60 / 14.19 s 4.2%  64.7 MB
#   6acf0a2             241                3557  14.8x  0.53 / 13.16 s 4.0%  65.1 MB
#   1ecf331             228                2665  11.7x  0.51 / 12.46 s 4.1%  61.2 MB
# FEEDS=1000 WARM=45, BASELINE = main at 6daa967 (one blocking hop per poll; polls that only
# add items written without a sled transaction), three runs:
#   6daa967             253                2432   9.6x  0.61 / 13.24 s 4.6%  66.8 MB
#   b86b66f (hop only)  253                2328   9.2x  0.64 / 13.17 s 4.9%  60.7 MB
#   6daa967             286                2553   8.9x  0.68 / 14.46 s 4.7%  76.1 MB
#   3973b4b             267                2130   8.0x  0.65 / 13.14 s 4.9%  46.1 MB
#   6daa967             275                2726   9.9x  0.61 / 13.31 s 4.6%  58.6 MB
#   3973b4b             256                2244   8.8x  0.62 / 12.23 s 5.1%  45.9 MB
# FEEDS=1000 WARM=45, BASELINE = main at 6daa967, this = 244d30e (the HTML fast path too):
#   6daa967             264                2600   9.8x  0.63 / 10.94 s 5.8%  63.1 MB
#   244d30e             212                2057   9.7x  0.64 /  8.84 s 7.2%  43.6 MB
# FEEDS=1000 WARM=45, BASELINE = main at babffc0, this = 29d2529 (polls start in quarter-second
# slots; the HTML fast path reads what the parser closes as written):
#   babffc0             207                2243  10.8x  0.58 /  9.30 s 6.2%  48.9 MB
#   29d2529             201                1874   9.3x  0.29 /  9.15 s 3.2%  45.3 MB
# FEEDS=1000 WARM=45, BASELINE = 95c181e (quarter-second slots), this = the same with one-second slots:
#   250 ms              251                1924   7.7x  0.38 / 10.56 s 3.6%  49.4 MB
#   1 s                 250                1868   7.5x  0.25 / 10.33 s 2.4%  44.7 MB
# FEEDS=1000 WARM=45, 2026-12-08 (a faster day), each pair side by side: the scan's layout
# (5ff56a1) beside c2c6366; gzip inflated whole (7df0a43) beside 5ff56a1:
#   c2c6366             112                1166  10.4x  0.14 /  7.16 s 2.0%  45.2 MB
#   5ff56a1             111                1101   9.9x  0.14 /  6.98 s 2.0%  48.7 MB
#   5ff56a1             104                1094  10.5x  0.13 /  6.85 s 1.9%  50.7 MB
#   7df0a43             103                1007   9.8x  0.14 /  6.85 s 2.0%  50.1 MB
set -euo pipefail
cd "$(dirname "$0")/.."

FEEDS=${FEEDS:-500}
STEADY=${STEADY:-120}
WARM=${WARM:-60}
PORT=${PORT:-18931}
FARM=${FARM:-bench/feedfarm.py}
BIN=${TRIBUTARY_BIN:-$PWD/target/release/tributary}
BASELINE=${BASELINE:-}
[ -x "$BIN" ] || { echo "no release build at $BIN (cargo build --release)" >&2; exit 1; }
[ -z "$BASELINE" ] || [ -x "$BASELINE" ] || { echo "no build at $BASELINE" >&2; exit 1; }

WORK=$(mktemp -d /tmp/tributary-steady.XXXXXX)
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# Items the daemon stored so far (the counter of added items).
stored() {
  curl -fsS --max-time 10 "http://$1/metrics" |
    awk '/^tributary_items_stored_total /{print $2}'
}

# One run: NAME BIN MODE(steady|304) PORT; writes NAME.MODE.result as key=value lines.
# A subshell, which stops its own farm and daemon whichever way it ends.
run() (
  RUN_PIDS=()
  trap 'for p in "${RUN_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
  local name=$1 bin=$2 mode=$3 port=$4 dir="$WORK/$1.$3" rate=1 max=$((WARM + STEADY + 300))
  [ "$mode" = 304 ] && rate=0
  mkdir -p "$dir"
  python3 "$FARM" --port "$port" --feeds "$FEEDS" --items 50 --seed 1 --rate "$rate" \
    --max-seconds "$max" --write-config "$dir/farm.toml" >"$dir/farm.log" 2>&1 &
  RUN_PIDS+=($!)
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  printf '[server]\nlisten = "127.0.0.1:0"\n[store]\npath = "%s/store"\n[poll]\ninterval = "1m"\nmin_interval = "1m"\nconcurrency = 16\nper_host = 16\n\n' \
    "$dir" >"$dir/feeds.toml"
  grep -v '^#' "$dir/farm.toml" >>"$dir/feeds.toml"
  RUST_LOG=info timeout "$max" "$bin" run --config "$dir/feeds.toml" >"$dir/daemon.log" 2>&1 &
  local guard=$! pid=""
  RUN_PIDS+=("$guard")
  # The daemon itself, not `timeout`: its CPU and RSS are what is measured.
  for _ in $(seq 50); do pid=$(pgrep -P "$guard" | head -1 || true); [ -n "$pid" ] && break; sleep 0.1; done
  [ -n "$pid" ] || { echo "$name: no daemon process" >&2; return 1; }
  local addr="" started
  started=$(date +%s.%N)
  for _ in $(seq 300); do
    addr=$(grep -o 'listen=[0-9.:]*' "$dir/daemon.log" | head -1 | cut -d= -f2 || true)
    [ -n "$addr" ] && break
    sleep 0.1
  done
  [ -n "$addr" ] || { echo "$name: the daemon did not start: $(tail -3 "$dir/daemon.log")" >&2; return 1; }
  # The cold cycle: until every source was polled once.
  for _ in $(seq 1200); do
    curl -fsS --max-time 2 "http://$addr/readyz" >/dev/null 2>&1 && break
    sleep 0.25
  done
  local cold_cpu cold_items cold_wall
  cold_cpu=$(cpu_ticks "$pid")
  cold_wall=$(python3 -c "import time; print(round(time.time() - $started, 1))")
  cold_items=$(stored "$addr")
  {
    echo "cold_cpu=$cold_cpu"
    echo "cold_items=$cold_items"
    echo "cold_wall=$cold_wall"
  } >"$dir/result"
  if [ "$mode" = steady ]; then
    sleep "$WARM"
    local cpu1 items1 cpu2 items2
    cpu1=$(cpu_ticks "$pid"); items1=$(stored "$addr")
    sleep "$STEADY"
    cpu2=$(cpu_ticks "$pid"); items2=$(stored "$addr")
    { echo "steady_cpu=$((cpu2 - cpu1))"; echo "steady_items=$(python3 -c "print(int($items2 - $items1))")"; } >>"$dir/result"
  else
    # The farm counts the 304s it answered; the 304 cycle is from the first to the last.
    local first="" last="" n=0
    curl -fsS "http://127.0.0.1:$port/stats?reset=1" >/dev/null
    for _ in $(seq 1200); do
      n=$(curl -fsS "http://127.0.0.1:$port/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["not_modified"])')
      [ -z "$first" ] && [ "$n" -gt 0 ] && first=$(cpu_ticks "$pid")
      if [ "$n" -ge "$FEEDS" ]; then last=$(cpu_ticks "$pid"); break; fi
      sleep 0.25
    done
    [ -n "$last" ] || { echo "$name: only $n of $FEEDS sources answered 304" >&2; return 1; }
    echo "cycle304_cpu=$((last - first))" >>"$dir/result"
  fi
  echo "peak_rss_kb=$(awk '/^VmHWM:/{print $2}' "/proc/$pid/status")" >>"$dir/result"
  cp "$dir/result" "$WORK/$name.$mode.result"
)

builds=("this=$BIN")
[ -n "$BASELINE" ] && builds=("baseline=$BASELINE" "${builds[@]}")
echo "steady: $FEEDS feeds x 50 items, interval 1m; warm-up ${WARM}s, steady window ${STEADY}s; builds: ${builds[*]}" >&2
for mode in steady 304; do
  i=0
  for build in "${builds[@]}"; do
    run "${build%%=*}" "${build#*=}" "$mode" $((PORT + i)) &
    i=$((i + 1))
  done
  wait
done

python3 - "$WORK" "$hz" "${builds[@]}" <<'PY'
import sys
work, hz, builds = sys.argv[1], int(sys.argv[2]), [b.split("=")[0] for b in sys.argv[3:]]
def load(name, mode):
    try:
        return {k: float(v) for k, v in (l.strip().split("=") for l in open(f"{work}/{name}.{mode}.result") if "=" in l)}
    except FileNotFoundError:
        return None
print(f"{'build':10} {'cold us/item':>13} {'steady us/new item':>19} {'ratio':>7} {'304 cycle s':>12} {'cold cycle s':>13} {'304/cold':>9} {'peak RSS MB':>12}")
for name in builds:
    s, n = load(name, "steady"), load(name, "304")
    if not s or not n:
        print(f"{name:10} (a run failed)"); continue
    cold = s["cold_cpu"] / hz / s["cold_items"] * 1e6
    steady = s["steady_cpu"] / hz / max(s["steady_items"], 1) * 1e6
    c304, ccold = n["cycle304_cpu"] / hz, n["cold_cpu"] / hz
    rss = max(s["peak_rss_kb"], n["peak_rss_kb"]) / 1024
    print(f"{name:10} {cold:13.0f} {steady:19.0f} {steady / cold:6.2f}x {c304:12.2f} {ccold:13.2f} {c304 / ccold:8.1%} {rss:12.1f}")
    print(f"{'':10} (cold: {s['cold_items']:.0f} items in {s['cold_wall']:.0f}s; steady: {s['steady_items']:.0f} new items)")
PY
