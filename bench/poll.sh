#!/usr/bin/env bash
# Poll benchmark: tributary against newsboat on the same loopback feed farm, same run.
#
#   bench/poll.sh [FEEDS] [ROUNDS]        (defaults: 1000 feeds, 3 rounds)
#
# For each round: a cold pass (empty store/cache: every feed fetched and parsed) and a
# warm pass (every feed answers 304), for `tributary poll` and `newsboat -x reload`
# with the same concurrency (tributary's [poll] concurrency = newsboat's
# reload-threads). Reports medians of wall time, CPU time (user+sys) and peak RSS,
# and the ratios. Then the daemon itself (`tributary run`) polls the same farm once
# cold, for its time to "every source polled once" and its peak RSS.
# All traffic stays on 127.0.0.1; every loop is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."

FEEDS=${1:-1000}
ROUNDS=${2:-3}
ITEMS=50
CONCURRENCY=16
PORT=${PORT:-8911}
FARM=${FARM:-bench/feedfarm.py}

command -v newsboat >/dev/null || { apt-get update -qq && apt-get install -y -qq newsboat; }
[ -f "$FARM" ] || { echo "feedfarm.py not found at $FARM (set FARM=...)" >&2; exit 1; }
# TRIBUTARY_BIN=path runs that build instead of building the release one.
if [ -z "${TRIBUTARY_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${TRIBUTARY_BIN:-$PWD/target/release/tributary}

WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

python3 "$FARM" --port "$PORT" --feeds "$FEEDS" --items "$ITEMS" --seed 1 --rate 0 \
  --epoch 1767225600 --max-seconds 3600 >"$WORK/farm.log" 2>&1 &
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/feeds.toml" >"$WORK/sources.toml"
grep -o 'http://127.0.0.1:[0-9]*/feeds/[0-9]*\.[a-z]*' "$WORK/sources.toml" >"$WORK/urls"

# All feeds share one loopback host standing in for many publishers, so the per-host
# cap is raised to the global one; otherwise both clients would not be comparable.
make_config() {
  printf '[server]\nlisten = "127.0.0.1:0"\n[store]\npath = "%s"\n[poll]\nconcurrency = %d\nper_host = %d\n\n' \
    "$1" "$CONCURRENCY" "$CONCURRENCY" >"$2"
  cat "$WORK/sources.toml" >>"$2"
}
printf 'reload-threads %d\n' "$CONCURRENCY" >"$WORK/newsboat.conf"

# The farm gzips a feed the first time a client asks for gzip, and both clients do:
# without this untimed pass, the first cold pass (tributary's) would pay the farm's
# compression of every feed and the clients after it would not.
python3 - "$WORK/urls" <<'PY'
import sys, urllib.request
for url in open(sys.argv[1]).read().split():
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    urllib.request.urlopen(request, timeout=10).read()
PY

# Runs a command under GNU time; prints "wall cpu maxrss_kb".
measure() {
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/time" "$@" >"$WORK/out" 2>&1 || {
    echo "failed: $*" >&2; tail -5 "$WORK/out" >&2; exit 1; }
  awk '{printf "%s %.2f %s\n", $1, $2 + $3, $4}' "$WORK/time"
}

# Requests and 304s the farm served since the last call.
farm_stats() {
  curl -sf "http://127.0.0.1:$PORT/stats" |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["feed_requests"], d["not_modified"])'
  curl -sf "http://127.0.0.1:$PORT/stats?reset=1" >/dev/null
}

: >"$WORK/results"
for round in $(seq 1 "$ROUNDS"); do
  rm -rf "$WORK/store" "$WORK/cache.db"
  make_config "$WORK/store" "$WORK/feeds.toml"
  farm_stats >/dev/null
  for pass in cold warm; do
    echo "tributary $pass $(measure "$BIN" poll --config "$WORK/feeds.toml") $(farm_stats)" >>"$WORK/results"
  done
  for pass in cold warm; do
    echo "newsboat $pass $(measure newsboat -u "$WORK/urls" -c "$WORK/cache.db" -C "$WORK/newsboat.conf" -x reload) $(farm_stats)" >>"$WORK/results"
  done
  echo "round $round done" >&2
done

# The daemon: one cold start to "every source polled once", and its peak RSS.
rm -rf "$WORK/store"
make_config "$WORK/store" "$WORK/feeds.toml"
RUST_LOG=info "$BIN" run --config "$WORK/feeds.toml" >"$WORK/daemon.log" 2>&1 &
DAEMON=$!
for _ in $(seq 1 600); do grep -q "every source polled once" "$WORK/daemon.log" && break; sleep 0.1; done
DAEMON_LINE=$(grep "every source polled once" "$WORK/daemon.log" || echo "not finished in 60 s")
DAEMON_HWM=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON/status")
kill -TERM "$DAEMON"; wait "$DAEMON" || true

python3 - "$WORK/results" "$FEEDS" "$CONCURRENCY" "$DAEMON_HWM" "$DAEMON_LINE" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
feeds, conc, hwm, daemon = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
def med(client, kind, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == client and r[1] == kind)
print(f"{feeds} feeds x 50 items, concurrency {conc}, {len(rows)//4} rounds, medians")
print(f"{'':22}{'wall s':>9}{'cpu s':>9}{'rss MB':>9}{'requests':>10}{'304s':>7}")
for client in ("tributary", "newsboat"):
    for kind in ("cold", "warm"):
        print(f"{client + ' ' + kind:22}{med(client, kind, 2):9.2f}{med(client, kind, 3):9.2f}"
              f"{med(client, kind, 4)/1024:9.1f}{med(client, kind, 5):10.0f}{med(client, kind, 6):7.0f}")
cold = med("newsboat", "cold", 2) / med("tributary", "cold", 2)
print(f"cold wall: newsboat / tributary = {cold:.1f}x")
print(f"cold cpu:  newsboat / tributary = {med('newsboat','cold',3)/med('tributary','cold',3):.1f}x")
print(f"warm cpu / cold cpu (tributary) = {100*med('tributary','warm',3)/med('tributary','cold',3):.1f}%")
print(f"daemon: {daemon.split('INFO')[-1].strip()}; peak RSS {int(hwm)/1024:.1f} MB")
PY
