#!/usr/bin/env bash
# Scale benchmark: one daemon polling SOURCES feeds (default 100 000) of HOSTS loopback
# fixture farms (127.0.0.1 .. 127.0.0.HOSTS, one bench/feedfarm.py each, so the
# per-host cap does not serialize them).
#
#   bench/scale.sh                      SOURCES=20000 HOSTS=4 bench/scale.sh
#
# Measures, on a release build:
#   config    `tributary check` of the file: wall time and peak RSS
#   cold      start on an empty store to /readyz 200 (its first cycle: every source
#             new), CPU per poll over that cycle, RSS after it
#   outputs   /metrics, /sources.json (first page, a page of 1000), /sources, /opml:
#             bytes and time (median of 5), and `tributary sources --json` walking
#             every page
#   reload    SIGHUP with a tenth of the sources replaced: time to "sources
#             reloaded" (median of RELOADS), RSS after
#   warm      restart on the same store (every source known, none due): time to the
#             listener, to /readyz 200 and to /feed.xml 200, RSS
# PARTS (default "check outputs reload warm") picks what runs after the cold start:
# PARTS=reload measures the cold start and the reloads only.
# Targets: warm ready within 10 s, RSS under 512 MB after the first cycle, reload under
# 2 s, /metrics under 1 MB. All traffic stays on loopback; every wait is bounded (the
# farms and the daemon stop after MAX_SECONDS at the latest).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SOURCES=${SOURCES:-100000}
HOSTS=${HOSTS:-8}
ITEMS=${ITEMS:-3}
RELOADS=${RELOADS:-3}
PARTS=${PARTS:-check outputs reload warm}
part() { case " $PARTS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
# The longest wait for the first cycle, in seconds.
CYCLE_SECONDS=${CYCLE_SECONDS:-900}
MAX_SECONDS=${MAX_SECONDS:-2400}
BIN=${TRIBUTARY_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tributary}
[ -x "$BIN" ] || die "no release build at $BIN; run cargo build --release"
[ $((SOURCES % HOSTS)) = 0 ] || die "SOURCES must be a multiple of HOSTS"
PER_HOST=$((SOURCES / HOSTS))
port_is_free "$FARM_PORT" || die "port $FARM_PORT is taken; set FARM_PORT"

peak_mb() { awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
# Waits (at most $2 seconds) until `curl $1` answers 200.
wait_200() {
  local deadline=$(($(date +%s) + $2))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$1" || true)" = 200 ]; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    kill -0 "$TRIBUTARY_PID" 2>/dev/null || die "tributary exited: $(tail -5 "$WORK/tributary.log")"
    sleep 0.05
  done
}
# Median bytes and milliseconds of 5 GETs of $1.
fetch_stats() {
  local sizes=() times=()
  for _ in 1 2 3 4 5; do
    read -r size time < <(curl -s -o /dev/null -w '%{size_download} %{time_total}\n' "$1")
    sizes+=("$size") times+=("$(awk -v t="$time" 'BEGIN { printf "%.1f", t * 1000 }')")
  done
  printf '%s bytes, %s ms' "$(printf '%s\n' "${sizes[@]}" | median)" "$(printf '%s\n' "${times[@]}" | median)"
}

echo "scale: $SOURCES sources on $HOSTS loopback hosts, $ITEMS items each; $BIN"

# The farms: feeds 0..PER_HOST-1 on each address; their [[source]] lists make the config.
for h in $(seq 1 "$HOSTS"); do
  python3 "$FARM" --host "127.0.0.$h" --port "$FARM_PORT" --feeds "$PER_HOST" --items "$ITEMS" \
    --max-body 300 --cp1251 0 --rate 0 --epoch "$(($(date +%s) - 86400))" \
    --max-seconds "$MAX_SECONDS" --write-config "$WORK/farm$h.toml" >"$WORK/farm$h.log" 2>&1 &
  EXTRA_PIDS="${EXTRA_PIDS:-} $!"
done
for h in $(seq 1 "$HOSTS"); do
  for _ in $(seq 200); do
    curl -fsS "http://127.0.0.$h:$FARM_PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS "http://127.0.0.$h:$FARM_PORT/healthz" >/dev/null || die "farm $h did not start: $(cat "$WORK/farm$h.log")"
done

head_text() {
  cat <<EOF
[server]
listen = "127.0.0.1:0"

[store]
path = "$WORK/store"
max_age = "3650d"
max_items = 1000000

[poll]
interval = "1h"
concurrency = 64
per_host = 16

EOF
}
# feeds.toml: every farm's sources; with $1 = 1, the first tenth of each farm's
# sources replaced by the same feeds under another URL (?v=2).
write_config() {
  {
    head_text
    for h in $(seq 1 "$HOSTS"); do
      grep -v '^#' "$WORK/farm$h.toml" | awk -v swap="${1:-0}" -v tenth=$((PER_HOST / 10)) '
        /^url = / { n++; if (swap == 1 && n <= tenth) sub(/"$/, "?v=2\"") } { print }'
    done
  } >"$WORK/feeds.toml.new"
  mv "$WORK/feeds.toml.new" "$WORK/feeds.toml"
}
write_config 0
echo "config: $(wc -c <"$WORK/feeds.toml") bytes, $(grep -c '^\[\[source\]\]' "$WORK/feeds.toml") sources"

# --- config --------------------------------------------------------------------
part check && read -r wall peak < <(/usr/bin/time -f '%e %M' "$BIN" check --config "$WORK/feeds.toml" 2>&1 >/dev/null | tail -1)
part check && echo "check: ${wall} s, peak RSS $((peak / 1024)) MB"

start() {
  STARTED=$(now)
  run_daemon "$WORK/feeds.toml"
  TRIBUTARY_ADDR=
  for _ in $(seq 1200); do
    TRIBUTARY_ADDR=$(grep -o 'listen=[0-9.:]*' "$WORK/tributary.log" | head -1 | cut -d= -f2 || true)
    [ -n "$TRIBUTARY_ADDR" ] && break
    kill -0 "$TRIBUTARY_PID" 2>/dev/null || die "tributary exited: $(tail -5 "$WORK/tributary.log")"
    sleep 0.05
  done
  [ -n "$TRIBUTARY_ADDR" ] || die "tributary did not listen within 60 s"
  LISTENING=$(since "$STARTED")
}
stop() {
  kill -TERM "$DAEMON_PID"
  for _ in $(seq 300); do kill -0 "$TRIBUTARY_PID" 2>/dev/null || break; sleep 0.1; done
  wait "$TRIBUTARY_PID" 2>/dev/null || true
  TRIBUTARY_PID=
}
polls() { curl -s "http://$TRIBUTARY_ADDR/metrics" | awk '/^tributary_poll_results_total/ { n += $2 } END { print n + 0 }'; }

# --- cold ----------------------------------------------------------------------
start
echo "cold: listening after ${LISTENING} s"
wait_200 "http://$TRIBUTARY_ADDR/readyz" "$CYCLE_SECONDS" || die "not ready within $CYCLE_SECONDS s: $(curl -s "http://$TRIBUTARY_ADDR/readyz")"
COLD=$(since "$STARTED")
CPU=$(cpu_seconds "$DAEMON_PID")
POLLS=$(polls)
echo "cold: ready (first cycle) after ${COLD} s; $POLLS polls, $(awk -v c="$CPU" -v p="$POLLS" 'BEGIN { printf "%.0f", c / p * 1e6 }') µs CPU per poll (${CPU} s in all, start-up included), $(awk -v p="$POLLS" -v t="$COLD" 'BEGIN { printf "%.0f", p / t }') polls/s"
sleep 3
echo "cold: RSS after the first cycle $(rss_mb "$DAEMON_PID") MB (peak $(peak_mb "$DAEMON_PID") MB); $(curl -s "http://$TRIBUTARY_ADDR/metrics" | grep -E '^tributary_(items|sources_failing) ' | tr '\n' ' ')"

# --- outputs -------------------------------------------------------------------
BASE="http://$TRIBUTARY_ADDR"
if part outputs; then
echo "/metrics: $(fetch_stats "$BASE/metrics")"
echo "/sources.json: $(fetch_stats "$BASE/sources.json")"
echo "/sources.json?limit=1000: $(fetch_stats "$BASE/sources.json?limit=1000")"
echo "/sources: $(fetch_stats "$BASE/sources")"
echo "/opml: $(fetch_stats "$BASE/opml")"
echo "/feed.xml: $(fetch_stats "$BASE/feed.xml")"
sed -i "s/^listen = .*/listen = \"$TRIBUTARY_ADDR\"/" "$WORK/feeds.toml"
T=$(now)
"$BIN" sources --json --config "$WORK/feeds.toml" >"$WORK/sources.json" 2>/dev/null
echo "tributary sources --json: $(since "$T") s, $(wc -c <"$WORK/sources.json") bytes, $(grep -c '"id"' "$WORK/sources.json") sources"
fi

# --- reload --------------------------------------------------------------------
TIMES=() CPUS=()
part reload || RELOADS=0
for r in $(seq 1 "$RELOADS"); do
  write_config $((r % 2))
  sed -i "s/^listen = .*/listen = \"$TRIBUTARY_ADDR\"/" "$WORK/feeds.toml"
  timed_reload
  TIMES+=("$RELOAD_SECONDS")
  CPUS+=("$RELOAD_CPU")
  echo "reload $r: ${TIMES[-1]} s (daemon CPU meanwhile ${CPUS[-1]} s): $(tail -c +"$((RELOAD_MARK + 1))" "$WORK/tributary.log" | grep -E 'config reloaded|sources reloaded' | sed -E 's/.*(config reloaded|sources reloaded)/\1/' | tr '\n' ' ')"
  sleep 2
done
part reload && echo "reload: median $(printf '%s\n' "${TIMES[@]}" | median) s, daemon CPU $(printf '%s\n' "${CPUS[@]}" | median) s; RSS after $(rss_mb "$DAEMON_PID") MB"
part warm || { stop; exit 0; }
# Back to the first file, and every source polled once under it, so the warm start
# below knows them all.
write_config 0
kill -HUP "$DAEMON_PID"
wait_200 "$BASE/readyz" 60
sleep 2
for _ in $(seq 600); do
  curl -s "$BASE/sources.json?limit=1000" | grep -q '"pending"' || break
  sleep 1
done

# --- warm ----------------------------------------------------------------------
stop
start
echo "warm: listening after ${LISTENING} s"
wait_200 "http://$TRIBUTARY_ADDR/readyz" 300 || die "warm: not ready within 300 s: $(curl -s "http://$TRIBUTARY_ADDR/readyz")"
echo "warm: ready after $(since "$STARTED") s (polls so far: $(polls))"
wait_200 "http://$TRIBUTARY_ADDR/feed.xml" 60
echo "warm: /feed.xml after $(since "$STARTED") s; RSS $(rss_mb "$DAEMON_PID") MB"
stop
