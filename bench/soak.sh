#!/usr/bin/env bash
# Soak (not run by CI): the daemon polls FEEDS feedfarm sources, FAULTS of them
# misbehaving (500s, 404s, 429s, slow and trickling bodies, truncated bodies, malformed
# XML, garbage, huge feeds, redirects, flaky answers) and new items arriving all the time, while wrk drives /feed.xml
# with CONNECTIONS connections for DURATION. Every connection revalidates with the
# ETag of the last answer it got, the way a feed reader does, so the mix is 200s
# whenever the river changed and 304s otherwise.
#
#   bench/soak.sh                       # as root: installs wrk when missing
#   FEEDS=1000 FAULTS=0.05 DURATION=60 CONNECTIONS=256 bench/soak.sh
#
# Prints the status counts (anything but 200/304 fails the run), latency
# percentiles, and the daemon's RSS sampled every second; fails when RSS grew over
# the last half of the run by more than RSS_GROWTH_MB (default 8).
# All traffic stays on 127.0.0.1; every loop is bounded.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FEEDS=${FEEDS:-1000}
FAULTS=${FAULTS:-0.05}
DURATION=${DURATION:-60}
CONNECTIONS=${CONNECTIONS:-256}
THREADS=${THREADS:-2}
RSS_GROWTH_MB=${RSS_GROWTH_MB:-8}

need_debian_package wrk wrk
(cd "$REPO" && cargo build --release --quiet)

# --rate 10: every feed publishes an item every 6 s, so the river keeps
# changing under the readers. Every source is polled each minute, all on one host.
FARM_FEEDS=$FEEDS FARM_ITEMS=20 FARM_ARGS="--rate 10 --faults $FAULTS --slow-ms 2000 --huge-mb 4" \
  start_farm '' "$(printf '[poll]\ninterval = "1m"\nmin_interval = "1m"\nconcurrency = 16\nper_host = 16\ntimeout = "10s"')"
start_tributary 1
PID=$(pgrep -P "$TRIBUTARY_PID" -x tributary || echo "$TRIBUTARY_PID")
TRIB="http://$TRIBUTARY_ADDR/feed.xml"
echo "soak: $FEEDS sources ($FAULTS misbehaving), wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s on $TRIB, daemon pid $PID"

cat >"$WORK/reader.lua" <<'LUA'
-- Each connection sends the ETag of the last 200 it got; counts answers by status.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) etag = nil; counts = {} end
function request()
  if etag then
    return wrk.format("GET", nil, { ["If-None-Match"] = etag, ["Accept-Encoding"] = "gzip" })
  end
  return wrk.format("GET", nil, { ["Accept-Encoding"] = "gzip" })
end
function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status == 200 then etag = headers["ETag"] or headers["etag"] end
end
function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d %d\n", status, n)) end
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("latency p%s %.0f us\n", p, latency:percentile(p)))
  end
  io.write(string.format("errors connect %d read %d write %d timeout %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
LUA

# RSS every second, in the background, for as long as wrk runs (bounded).
: >"$WORK/rss"
(
  for _ in $(seq $((DURATION + 5))); do
    awk '/^VmRSS:/{print $2}' "/proc/$PID/status" >>"$WORK/rss" 2>/dev/null || break
    sleep 1
  done
) &
SAMPLER=$!
timeout $((DURATION + 30)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
  -s "$WORK/reader.lua" "$TRIB" >"$WORK/wrk.txt"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
cat "$WORK/wrk.txt"
kill -0 "$PID" 2>/dev/null || die "the daemon died during the soak: $(tail -5 "$WORK/tributary.log")"
panics=$(grep -c 'panicked' "$WORK/tributary.log" || true)
# The scheduler's summary lines (one per period) count the polls that stored items.
fetched=$(grep -o 'with_news=[0-9]*' "$WORK/tributary.log" | awk -F= '{n += $2} END {print n + 0}')
echo "fetches that stored items during the run (summaries logged so far): $fetched"
failed=$(curl -fsS "http://$TRIBUTARY_ADDR/sources.json" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["sources"] if isinstance(d,dict) else d; print(sum(1 for x in s if x.get("consecutive_failures",0)>0))' 2>/dev/null || echo "?")

python3 - "$WORK/wrk.txt" "$WORK/rss" "$RSS_GROWTH_MB" "$panics" "$failed" <<'PY'
import statistics, sys
wrk, rss_file, limit, panics, failed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
statuses = {}
for line in open(wrk):
    if line.startswith("status "):
        _, code, n = line.split()
        statuses[int(code)] = int(n)
rss = [int(x) / 1024 for x in open(rss_file).read().split()]
half = len(rss) // 2
first_half, last_half = rss[:half], rss[half:]
# Growth over the last half: the median of its last quarter of samples against
# the median of its first quarter, so one spike does not decide.
q = max(1, len(last_half) // 4)
growth = statistics.median(last_half[-q:]) - statistics.median(last_half[:q])
print()
print("answers:", ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())))
print(f"RSS MB: start {rss[0]:.1f}, peak {max(rss):.1f}, at half {rss[half]:.1f}, end {rss[-1]:.1f}; "
      f"growth over the last half {growth:+.1f} MB ({len(rss)} samples)")
print("RSS samples MB:", " ".join(f"{x:.0f}" for x in rss))
print(f"panics in the log: {panics}; sources failing at the end: {failed}")
bad = {c: n for c, n in statuses.items() if c not in (200, 304)}
ok = not bad and panics == 0 and growth <= limit and statuses
print("PASS" if ok else f"FAIL: other answers {bad}, growth {growth:.1f} MB (limit {limit}), panics {panics}")
sys.exit(0 if ok else 1)
PY
