#!/usr/bin/env bash
# WebSub benchmark: how soon a publisher's push is in tributary's /feed.xml, and what
# a pushed item costs in CPU against a polled one. Loopback only, every loop bounded.
#
#   bench/websub.sh [PUSHES] [RATE]      (defaults: 1000 pushes, 20 a second)
#
# flask-websub's hub and publisher (tests/websub_hub.py; pip install flask-websub
# celery) serve 100 topics; the release build of tributary subscribes to each.
# 1. Quiet pushes: one every 1.5 s (QUIET of them, default 20), each waited for in
#    /feed.xml: the latency of a push that finds the river idle.
# 2. A stream: PUSHES pushes at RATE a second over the 100 sources (4 publishers at
#    once), /feed.xml watched every 10 ms: the latency under load, where the river is
#    rendered at most once a second. CPU of the daemon over the stream / items.
# 3. The same 100 sources polled instead (websub = false, interval 1m) by a second
#    daemon: one new item in each, the CPU of the poll round that brings them / 100.
# Prints median and p99 of both latencies and the CPU per item of each way, side by
# side. Latency runs from the start of the publisher's ping to the hub to the first
# /feed.xml that shows the item.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PUSHES=${1:-1000}
RATE=${2:-20}
QUIET=${QUIET:-20}
SOURCES=100
TRIBUTARY_PORT=${TRIBUTARY_PORT:-18911}
[ "$PUSHES" -le 1000 ] || die "at most 1000 pushes"

python3 -c 'import flask_websub.hub, celery' 2>/dev/null ||
  die "flask-websub is missing: python3 -m pip install flask-websub celery"
port_is_free "$TRIBUTARY_PORT" || die "port $TRIBUTARY_PORT is taken; set TRIBUTARY_PORT"
if [ -z "${TRIBUTARY_BIN:-}" ]; then (cd "$REPO" && cargo build --release --quiet); fi
BIN=${TRIBUTARY_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tributary}

# The hub: its port is the first line it prints.
python3 "$REPO/tests/websub_hub.py" --storage "$WORK/hub.db" --max-seconds "$MAX_SECONDS" \
  </dev/null >"$WORK/hub.out" 2>"$WORK/hub.log" &
EXTRA_PIDS="$!"
for _ in $(seq 100); do [ -s "$WORK/hub.out" ] && break; sleep 0.1; done
HUB_PORT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$WORK/hub.out") ||
  die "the hub did not start: $(cat "$WORK/hub.log")"
HUB="http://127.0.0.1:$HUB_PORT"
for n in $(seq 0 $((SOURCES - 1))); do
  curl -fsS -X POST "$HUB/admin/entry?feed=f$n&id=0&title=start-$n" >/dev/null
done

# $1: store dir, $2: extra source lines.
write_config() {
  {
    printf '[server]\nlisten = "127.0.0.1:%s"\npublic_url = "http://127.0.0.1:%s/"\n' "$TRIBUTARY_PORT" "$TRIBUTARY_PORT"
    printf '[store]\npath = "%s"\n[poll]\nconcurrency = 16\nper_host = 16\n[publish]\nmax_items = 100\n' "$1"
    for n in $(seq 0 $((SOURCES - 1))); do
      printf '[[source]]\nurl = "%s/feeds/f%s.xml"\n%s\n' "$HUB" "$n" "$2"
    done
  } >"$WORK/feeds.toml"
}

# Starts the daemon; waits until it serves.
start_daemon() {
  RUST_LOG=info timeout "$MAX_SECONDS" "$BIN" run --config "$WORK/feeds.toml" >"$WORK/tributary.log" 2>&1 &
  TRIBUTARY_PID=$!
  for _ in $(seq 300); do
    if curl -fsS "http://127.0.0.1:$TRIBUTARY_PORT/healthz" >/dev/null 2>&1; then
      # The daemon itself, not the `timeout` that runs it: its CPU and memory.
      DAEMON_PID=$(pgrep -P "$TRIBUTARY_PID" -n)
      return 0
    fi
    sleep 0.1
  done
  die "tributary did not start: $(tail -5 "$WORK/tributary.log")"
}

stop_daemon() {
  kill -TERM "$TRIBUTARY_PID"
  wait "$TRIBUTARY_PID" || true
  TRIBUTARY_PID=
}

write_config "$WORK/push-store" 'interval = "1h"'
start_daemon
python3 - "$HUB" "$SOURCES" <<'PY' || die "not every source subscribed: $(grep -i websub "$WORK/tributary.log" | tail -3)"
import json, sys, time, urllib.request
hub, sources = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 60
while time.time() < deadline:
    subs = json.load(urllib.request.urlopen(hub + "/admin/subscriptions"))
    if len(subs) >= sources:
        sys.exit(0)
    time.sleep(0.2)
sys.exit(1)
PY

python3 - "$HUB" "$TRIBUTARY_PORT" "$DAEMON_PID" "$SOURCES" "$QUIET" "$PUSHES" "$RATE" \
  >"$WORK/push.txt" <<'PY'
import concurrent.futures, json, os, re, statistics, sys, threading, time, urllib.parse, urllib.request
hub, port, pid, sources, quiet, pushes, rate = sys.argv[1], sys.argv[2], sys.argv[3], *map(int, sys.argv[4:])
river = f"http://127.0.0.1:{port}/feed.xml"
tick = os.sysconf("SC_CLK_TCK")

def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick

def post(url, data=None):
    urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST"), timeout=10).read()

def push(n, title):
    feed = f"f{n % sources}"
    post(f"{hub}/admin/entry?feed={feed}&id={urllib.parse.quote(title)}&title={urllib.parse.quote(title)}")
    started = time.monotonic()
    form = urllib.parse.urlencode({"hub.mode": "publish", "hub.topic": f"{hub}/feeds/{feed}.xml"}).encode()
    post(hub + "/hub", form)
    return started

def titles():
    return set(re.findall(r"<title>([^<]*)</title>", urllib.request.urlopen(river, timeout=10).read().decode()))

def quantiles(values):
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(len(values) * 0.99))]

# 1. Quiet pushes, each waited for.
quiet_latencies = []
for i in range(quiet):
    time.sleep(1.5)
    title = f"quiet-{i}"
    started = push(i, title)
    deadline = started + 10
    while title not in titles():
        if time.monotonic() > deadline:
            sys.exit(f"{title} not in /feed.xml within 10 s")
        time.sleep(0.005)
    quiet_latencies.append(time.monotonic() - started)

# 2. A stream at `rate` a second, /feed.xml watched.
time.sleep(1.5)
seen, started_at, stop = {}, {}, threading.Event()
def watch():
    while not stop.is_set():
        now = time.monotonic()
        for title in titles():
            if title.startswith("stream-") and title not in seen:
                seen[title] = now
        time.sleep(0.01)
watcher = threading.Thread(target=watch)
watcher.start()
cpu_before = cpu()
begin = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    futures = {}
    for i in range(pushes):
        time.sleep(max(0.0, begin + i / rate - time.monotonic()))
        title = f"stream-{i}"
        futures[title] = pool.submit(push, i, title)
    for title, future in futures.items():
        started_at[title] = future.result()
deadline = time.monotonic() + 15
while len(seen) < pushes and time.monotonic() < deadline:
    time.sleep(0.05)
stop.set()
watcher.join()
cpu_stream = cpu() - cpu_before
missing = pushes - len(seen)
stream_latencies = [seen[t] - started_at[t] for t in seen]
qm, qp = quantiles(quiet_latencies)
sm, sp = quantiles(stream_latencies)
print(json.dumps({"quiet": [len(quiet_latencies), qm, qp], "stream": [len(stream_latencies), sm, sp],
                  "missing": missing, "cpu_per_push": cpu_stream / max(1, len(seen)),
                  "seconds": time.monotonic() - begin}))
PY
PUSH_RSS=$(awk '/VmHWM/ {print $2}' "/proc/$DAEMON_PID/status")
stop_daemon

# 3. Polled: the same sources without WebSub, every minute.
write_config "$WORK/poll-store" $'interval = "1m"\nwebsub = false'
start_daemon
python3 - "$HUB" "$TRIBUTARY_PORT" "$DAEMON_PID" "$SOURCES" >"$WORK/poll.txt" <<'PY'
import json, os, re, sys, time, urllib.parse, urllib.request
hub, port, pid, sources = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
river = f"http://127.0.0.1:{port}/feed.xml?limit=100"
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick
def titles():
    return set(re.findall(r"<title>([^<]*)</title>", urllib.request.urlopen(river, timeout=10).read().decode()))
# The cold round (every source read from scratch) first, then a quiet moment.
deadline = time.time() + 60
while sum(1 for t in titles() if t.startswith("stream-") or t.startswith("quiet-")) < 90 and time.time() < deadline:
    time.sleep(0.2)
time.sleep(3)
for n in range(sources):
    urllib.request.urlopen(urllib.request.Request(
        f"{hub}/admin/entry?feed=f{n}&id=polled-{n}&title=polled-{n}", method="POST")).read()
cpu_before = cpu()
deadline = time.time() + 90
while time.time() < deadline:
    if sum(1 for t in titles() if t.startswith("polled-")) >= sources:
        break
    time.sleep(0.5)
got = sum(1 for t in titles() if t.startswith("polled-"))
print(json.dumps({"items": got, "cpu_per_item": (cpu() - cpu_before) / max(1, got)}))
PY
stop_daemon

python3 - "$WORK/push.txt" "$WORK/poll.txt" "$PUSH_RSS" "$RATE" <<'PY'
import json, sys
push, poll = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
rss, rate = int(sys.argv[3]), sys.argv[4]
n, qm, qp = push["quiet"]
print(f"quiet pushes ({n}, 1.5 s apart):   median {qm*1000:7.1f} ms   p99 {qp*1000:7.1f} ms")
n, sm, sp = push["stream"]
print(f"stream ({n} pushes, {rate}/s, 100 sources): median {sm*1000:7.1f} ms   p99 {sp*1000:7.1f} ms   missing {push['missing']}")
print(f"CPU per pushed item: {push['cpu_per_push']*1000:6.2f} ms   (daemon peak RSS {rss/1024:.1f} MB)")
print(f"CPU per polled item: {poll['cpu_per_item']*1000:6.2f} ms   ({poll['items']} items, one poll round of 100 sources)")
print(f"pushed / polled CPU: {push['cpu_per_push']/poll['cpu_per_item']:.2f}")
PY
