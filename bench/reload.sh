#!/usr/bin/env bash
# Reload benchmark, quick: one daemon with SOURCES sources (default 100 000) whose
# loopback addresses serve nothing (every poll is refused at once, so the first
# cycle takes seconds, not the minutes of bench/scale.sh), then RELOADS SIGHUPs, each
# swapping a tenth of the sources for others. Prints for each reload the wall time
# from the signal to "sources reloaded", the daemon's CPU meanwhile, and the log's
# own split (read_ms: reading and checking the file; elapsed_ms: the whole reload,
# then the scheduler's part); then the medians and RSS.
#
#   bench/reload.sh                     SOURCES=20000 RELOADS=5 bench/reload.sh
#
# Every address is on loopback (127.0.0.1-8, FARM_PORT, where nothing listens);
# every wait is bounded, and the daemon stops after MAX_SECONDS at the latest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

SOURCES=${SOURCES:-100000}
HOSTS=8
RELOADS=${RELOADS:-5}
MAX_SECONDS=${MAX_SECONDS:-600}
BIN=${TRIBUTARY_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tributary}
[ -x "$BIN" ] || die "no release build at $BIN; run cargo build --release"
[ $((SOURCES % HOSTS)) = 0 ] || die "SOURCES must be a multiple of $HOSTS"
port_is_free "$FARM_PORT" || die "port $FARM_PORT is taken; set FARM_PORT"

for h in $(seq 1 "$HOSTS"); do
  python3 "$FARM" --host "127.0.0.$h" --port "$FARM_PORT" --feeds $((SOURCES / HOSTS)) \
    --items 3 --write-config "$WORK/farm$h.toml" --write-only
done
# $1 = 1: every tenth source under another URL (?v=2).
write_config() {
  {
    printf '[server]\nlisten = "127.0.0.1:0"\n\n[store]\npath = "%s/store"\n\n[poll]\ninterval = "1h"\n\n' "$WORK"
    cat "$WORK"/farm*.toml | grep -v '^#' | awk -v swap="$1" '/^url = / { n++; if (swap == 1 && n % 10 == 1) sub(/"$/, "?v=2\"") } { print }'
  } >"$WORK/feeds.toml.new"
  mv "$WORK/feeds.toml.new" "$WORK/feeds.toml"
}
write_config 0
echo "reload: $SOURCES sources, a tenth swapped by each of $RELOADS reloads; $BIN"

run_daemon "$WORK/feeds.toml"
for _ in $(seq 600); do
  grep -q 'every source polled once' "$WORK/tributary.log" && break
  kill -0 "$TRIBUTARY_PID" 2>/dev/null || die "tributary exited: $(tail -5 "$WORK/tributary.log")"
  sleep 0.5
done
grep -q 'every source polled once' "$WORK/tributary.log" || die "the first cycle did not end in 300 s"
sleep 3

TIMES=() CPUS=()
for r in $(seq 1 "$RELOADS"); do
  write_config $((r % 2))
  timed_reload
  TIMES+=("$RELOAD_SECONDS")
  CPUS+=("$RELOAD_CPU")
  echo "reload $r: ${TIMES[-1]} s, daemon CPU ${CPUS[-1]} s; $(tail -c +"$((RELOAD_MARK + 1))" "$WORK/tributary.log" | grep -E 'config reloaded|sources reloaded' | grep -oE '(read_ms|elapsed_ms|added|removed)=[0-9]+' | tr '\n' ' ')"
  sleep 3
done
echo "reload: median $(printf '%s\n' "${TIMES[@]}" | median) s, daemon CPU $(printf '%s\n' "${CPUS[@]}" | median) s; RSS $(rss_mb "$DAEMON_PID") MB"
kill -TERM "$DAEMON_PID"
wait "$TRIBUTARY_PID" 2>/dev/null || true
TRIBUTARY_PID=
