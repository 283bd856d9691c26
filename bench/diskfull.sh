#!/usr/bin/env bash
# Disk full: the daemon's store on a small tmpfs that runs out of space while the
# daemon polls a live fixture farm (new items every minute or so).
#
#   sudo bench/diskfull.sh            (root only: it mounts a tmpfs)
#
# 1. tmpfs of STORE_MB (default 4) as the store; the daemon polls every 60 s (the
#    shortest interval there is) and serves the first round's items.
# 2. The tmpfs is filled up to the last byte (a filler file, as another writer on the
#    same disk would); the daemon polls again and its store writes fail.
#    Checks: the daemon logs the store error, keeps running, and /feed.xml still
#    answers 200 with the same items as before.
# 3. Space returns (filler removed, tmpfs remounted at 64 MB). Checks: the daemon
#    stores and serves new items without a restart.
# Every wait is bounded (ROUND_SECONDS per poll round); the farm, the daemon and the
# mount are cleaned up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "diskfull.sh: needs root to mount a tmpfs" >&2; exit 1; }

STORE_MB=${STORE_MB:-4}
# Longest wait for one poll round (the interval is 60 s, plus fetch time and jitter).
ROUND_SECONDS=${ROUND_SECONDS:-150}
export FARM_FEEDS=${FARM_FEEDS:-10}
export FARM_ITEMS=${FARM_ITEMS:-5}
export MAX_SECONDS=${MAX_SECONDS:-900}
. bench/lib.sh

STORE=$WORK/store
mkdir -p "$STORE"
mount -t tmpfs -o size="${STORE_MB}m" tributary-diskfull "$STORE"
trap 'kill $TRIBUTARY_PID $FARM_PID 2>/dev/null || true; wait 2>/dev/null || true; umount "$STORE" 2>/dev/null || umount -l "$STORE" 2>/dev/null || true; rm -rf "$WORK"' EXIT

# A live farm (about one new item per feed per minute) instead of lib.sh's frozen one.
[ -f "$FARM" ] || die "no fixture farm at $FARM (set FARM=path/to/feedfarm.py)"
port_is_free "$FARM_PORT" || die "port $FARM_PORT is taken; set FARM_PORT"
python3 "$FARM" --feeds "$FARM_FEEDS" --items "$FARM_ITEMS" --rate 1 --max-body 2000 \
  --port "$FARM_PORT" --max-seconds "$MAX_SECONDS" \
  --write-config "$WORK/farm.toml" >"$WORK/farm.log" 2>&1 &
FARM_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$FARM_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$FARM_PORT/healthz" >/dev/null || die "the farm did not start"
{
  printf '[server]\nlisten = "127.0.0.1:0"\n\n[store]\npath = "%s"\n\n' "$STORE"
  printf '[poll]\ninterval = "1m"\nmin_interval = "1m"\n\n[publish]\nmax_items = 1000\n\n'
  grep -v '^#' "$WORK/farm.toml" | sed '/^interval *=/d'
} >"$WORK/feeds.toml"

BIN=${TRIBUTARY_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/tributary}
[ -x "$BIN" ] || die "no release build at $BIN; run cargo build --release"

guids() { # the sorted guids /feed.xml serves, one a line; fails unless it answers 200
  local code
  code=$(curl -sS -o "$WORK/feed.xml" -w '%{http_code}' "http://$TRIBUTARY_ADDR/feed.xml") || return 1
  [ "$code" = 200 ] || { echo "GET /feed.xml answered $code" >&2; return 1; }
  grep -o '<guid[^>]*>[^<]*</guid>' "$WORK/feed.xml" | sed 's/<[^>]*>//g' | sort
}
alive() { kill -0 "$TRIBUTARY_PID" 2>/dev/null || die "the daemon exited: $(tail -20 "$WORK/tributary.log")"; }
rounds() { grep -c 'round done\|poll round' "$WORK/tributary.log" || true; }

echo "== 1. ${STORE_MB} MB tmpfs store, first round"
start_tributary $((FARM_FEEDS * FARM_ITEMS))
guids >"$WORK/before"
echo "serving $(wc -l <"$WORK/before") items; store uses $(du -sk "$STORE" | cut -f1) KB"

echo "== 2. the disk fills up"
dd if=/dev/zero of="$STORE/filler" bs=64k status=none 2>/dev/null || true
df -k "$STORE" | tail -1
mark=$(wc -c <"$WORK/tributary.log")
failed=
for _ in $(seq $((ROUND_SECONDS * 10))); do
  alive
  if tail -c +"$mark" "$WORK/tributary.log" | grep -qiE 'no space left|store.*(error|fail)|(error|fail).*store'; then
    failed=yes
    break
  fi
  sleep 0.1
done
[ -n "$failed" ] || die "no store error logged within $ROUND_SECONDS s: $(tail -c +"$mark" "$WORK/tributary.log" | tail -20)"
echo "logged: $(tail -c +"$mark" "$WORK/tributary.log" | grep -iE 'no space left|store' | head -3)"
# A few more seconds on a full disk: the daemon must neither exit nor stop serving.
sleep 5
alive
guids >"$WORK/during" || die "/feed.xml fails while the disk is full"
cmp -s "$WORK/before" "$WORK/during" || {
  diff "$WORK/before" "$WORK/during" | head >&2
  die "/feed.xml changed while the disk was full"
}
echo "still serving the same $(wc -l <"$WORK/during") items with HTTP 200"
curl -sS "http://$TRIBUTARY_ADDR/healthz" -o /dev/null -w 'healthz: %{http_code}\n' || true
curl -sS "http://$TRIBUTARY_ADDR/readyz" -o /dev/null -w 'readyz: %{http_code}\n' || true

echo "== 3. space returns"
rm -f "$STORE/filler"
mount -o remount,size=64m "$STORE"
df -k "$STORE" | tail -1
recovered=
for _ in $(seq $((ROUND_SECONDS * 2 * 10))); do
  alive
  if guids >"$WORK/after" 2>/dev/null && [ -n "$(comm -13 "$WORK/before" "$WORK/after")" ]; then
    recovered=yes
    break
  fi
  sleep 0.1
done
[ -n "$recovered" ] || die "no new items within $((ROUND_SECONDS * 2)) s after space returned: $(tail -20 "$WORK/tributary.log")"
echo "recovered: $(comm -13 "$WORK/before" "$WORK/after" | wc -l) new items, $(wc -l <"$WORK/after") served"
echo "what the daemon said (first of each):"
for what in 'No space left' 'a store write failed' 'poll not stored' 'reopened the store'; do
  grep -m1 "$what" "$WORK/tributary.log" | cut -c1-240 || echo "  (nothing about: $what)"
done
echo "diskfull.sh: ok"
