#!/usr/bin/env bash
# Benchmark (not run by CI): how soon a change of the river reaches the subscribers
# of tributary's built-in WebSub hub, over loopback.
#
#   bench/websub-out.sh                      # 100 subscribers, 30 changes
#   SUBSCRIBERS=100 CHANGES=30 GAP=1 bench/websub-out.sh
#
# tributary (release build) serves the fixture farm's river with `hub = "builtin"`;
# bench/websub_subscribers.py subscribes SUBSCRIBERS callbacks (a third each to
# /feed.xml, /atom.xml and /feed.json, all with a secret) and records each
# delivery's arrival time and whether its X-Hub-Signature verifies. Each change is
# a new `[publish] title` ("Bench river N") applied with SIGHUP: it changes every
# feed's bytes at once, as new items do, without waiting for a poll. A polled change
# adds the wait for the poll and the 1 s render debounce, which are not measured.
# Latency = arrival at a subscriber - the moment SIGHUP was sent; printed: median,
# p99 and max over every delivery, and per change the median time to the first and
# to the last subscriber (the fan-out), plus missing and badly signed deliveries.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SUBSCRIBERS=${SUBSCRIBERS:-100}
CHANGES=${CHANGES:-30}
# Seconds between changes, after the previous one was delivered (or gave up).
GAP=${GAP:-1}
# Seconds a change may take to reach every subscriber before it counts as missing.
DELIVERY_LIMIT=${DELIVERY_LIMIT:-10}

# TRIBUTARY_BIN=path runs another build (lib.sh), without building the release one.
[ -n "${TRIBUTARY_BIN:-}" ] || (cd "$REPO" && cargo build --release --quiet)
start_farm $'hub = "builtin"\nhub_allow_private = true\ntitle = "Bench river 0"'
start_tributary 100
base="http://$TRIBUTARY_ADDR"

python3 "$REPO/bench/websub_subscribers.py" --hub "$base/hub" \
  --topic "$base/feed.xml" --topic "$base/atom.xml" --topic "$base/feed.json" \
  --count "$SUBSCRIBERS" --secret "bench secret" --marker 'Bench river ' \
  --max-seconds "$MAX_SECONDS" >"$WORK/deliveries.log" 2>"$WORK/subscribers.err" &
EXTRA_PIDS=$!
for _ in $(seq 700); do
  grep -q '^ready' "$WORK/deliveries.log" && break
  kill -0 "$EXTRA_PIDS" 2>/dev/null || die "the subscribers failed: $(cat "$WORK/subscribers.err")"
  sleep 0.1
done
grep -q '^ready' "$WORK/deliveries.log" || die "the subscribers were not verified in time"
sleep 1 # the hub stores each subscription once its callback has answered

# lib.sh runs tributary under timeout(1), which would pass a SIGHUP on to its whole
# process group (two reloads) once, then die of the next: signal tributary itself.
daemon_pid=$(pgrep -P "$TRIBUTARY_PID" | head -1)
[ -n "$daemon_pid" ] || die "cannot find tributary's process under timeout ($TRIBUTARY_PID)"

: >"$WORK/changes.log"
for n in $(seq "$CHANGES"); do
  sed -i "s/^title = \"Bench river [0-9]*\"/title = \"Bench river $n\"/" "$WORK/feeds.toml"
  echo "$n $(date +%s.%N)" >>"$WORK/changes.log"
  kill -HUP "$daemon_pid"
  for _ in $(seq $((DELIVERY_LIMIT * 20))); do
    [ "$(grep -c "^delivery [0-9]* $n " "$WORK/deliveries.log" || true)" -ge "$SUBSCRIBERS" ] && break
    sleep 0.05
  done
  sleep "$GAP"
done

python3 - "$WORK/changes.log" "$WORK/deliveries.log" "$SUBSCRIBERS" <<'PY'
import statistics, sys
changes = {int(n): float(t) for n, t in (line.split() for line in open(sys.argv[1]))}
subscribers = int(sys.argv[3])
latencies, per_change, bad = [], {}, 0
for line in open(sys.argv[2]):
    parts = line.split()
    if parts[0] != "delivery" or not parts[2].isdigit() or int(parts[2]) not in changes:
        continue
    n, at, ok = int(parts[2]), float(parts[3]), parts[4] == "1"
    bad += not ok
    latency = (at - changes[n]) * 1000
    latencies.append(latency)
    per_change.setdefault(n, []).append(latency)
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
expected = subscribers * len(changes)
print(f"{len(changes)} changes x {subscribers} subscribers: {len(latencies)} of {expected} deliveries, {bad} with a bad signature")
if latencies:
    print(f"latency per delivery (ms): median {statistics.median(latencies):.1f}  p99 {pct(latencies, 99):.1f}  max {max(latencies):.1f}")
    first = [min(v) for v in per_change.values()]
    last = [max(v) for v in per_change.values()]
    print(f"per change (ms): first subscriber median {statistics.median(first):.1f}, last subscriber median {statistics.median(last):.1f} (p99 {pct(last, 99):.1f})")
    print(f"fan-out: the last subscriber's median is {statistics.median(last) / statistics.median(first):.2f}x the first's")
PY
# KEEP_LOGS=dir keeps tributary's log, the changes and the deliveries there.
if [ -n "${KEEP_LOGS:-}" ]; then
  mkdir -p "$KEEP_LOGS" && cp "$WORK"/*.log "$KEEP_LOGS"/
fi
