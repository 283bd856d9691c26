#!/usr/bin/env bash
# Benchmark (not run by CI): tributary's /feed.xml with 100 items against nginx
# serving the very same bytes as a static file, on this machine, over loopback.
#
#   bench/serve.sh            # as root: installs wrk and nginx when missing
#   ROUNDS=5 DURATION=5s NGINX_PORT=18902 bench/serve.sh
#
# Three cases, each with wrk -t2 -c64 --latency, ROUNDS rounds, tributary and nginx
# alternating within each round (who goes first alternating too) so drift hits both
# alike:
#   plain        GET, no Accept-Encoding: the identity bytes
#   gzip         Accept-Encoding: gzip. tributary serves its precompressed gzip
#                variant; nginx serves the same .gz bytes with gzip_static on (no
#                compression per request on either side)
#   conditional  If-None-Match with the server's own ETag: 304, no body
# Prints per-run figures, then medians and the ratios tributary/nginx for requests
# per second (higher is better), p99 latency (lower is better) and the server's CPU
# time per request (user + system of all its processes and threads; lower is better).
# wrk shares the machine, so the CPU cost is what moves the other two.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
NGINX_PORT=${NGINX_PORT:-18902}

need_debian_package wrk wrk
need_debian_package nginx nginx
port_is_free "$NGINX_PORT" || die "port $NGINX_PORT is taken; set NGINX_PORT"
(cd "$REPO" && cargo build --release --quiet)

start_farm
start_tributary 100
TRIB="http://$TRIBUTARY_ADDR/feed.xml"

# The same bytes as static files: identity, and tributary's own gzip variant.
mkdir -p "$WORK/www" "$WORK/nginx-tmp"
curl -fsS -o "$WORK/www/feed.xml" "$TRIB"
curl -fsS -H 'Accept-Encoding: gzip' -o "$WORK/www/feed.xml.gz" "$TRIB"
touch -r "$WORK/www/feed.xml" "$WORK/www/feed.xml.gz"
chmod -R a+rX "$WORK/www"
items=$(grep -o '<item>' "$WORK/www/feed.xml" | wc -l)
[ "$items" = 100 ] || die "expected 100 items in /feed.xml, got $items"

cat >"$WORK/nginx.conf" <<CONF
worker_processes auto;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  client_body_temp_path $WORK/nginx-tmp/body;
  proxy_temp_path $WORK/nginx-tmp/proxy;
  fastcgi_temp_path $WORK/nginx-tmp/fastcgi;
  uwsgi_temp_path $WORK/nginx-tmp/uwsgi;
  scgi_temp_path $WORK/nginx-tmp/scgi;
  types { application/rss+xml xml; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/www;
    gzip_static on;
    open_file_cache max=16;
  }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK" -g 'daemon off;' &
EXTRA_PIDS=$!
NGINX="http://127.0.0.1:$NGINX_PORT/feed.xml"
for _ in $(seq 50); do curl -fsS -o /dev/null "$NGINX" 2>/dev/null && break; sleep 0.1; done

etag() { curl -fsS -o /dev/null -D - "$1" | tr -d '\r' | awk 'tolower($1)=="etag:"{print $2}'; }
TRIB_ETAG=$(etag "$TRIB")
NGINX_ETAG=$(etag "$NGINX")

# Each case must answer as described before it is measured.
check() { # url header expected-status expected-encoding expected-bytes
  local out
  out=$(curl -sS -o /dev/null -w '%{http_code} %{size_download}' -D "$WORK/h" -H "$2" "$1")
  local enc
  enc=$(tr -d '\r' <"$WORK/h" | awk 'tolower($1)=="content-encoding:"{print $2}')
  [ "$out" = "$3 $5" ] && [ "$enc" = "$4" ] || die "$1 with '$2': got '$out' '$enc', want '$3 $5' '$4'"
}
size=$(stat -c %s "$WORK/www/feed.xml")
gz_size=$(stat -c %s "$WORK/www/feed.xml.gz")
for url in "$TRIB" "$NGINX"; do
  check "$url" 'X-Case: plain' 200 '' "$size"
  check "$url" 'Accept-Encoding: gzip' 200 gzip "$gz_size"
done
check "$TRIB" "If-None-Match: $TRIB_ETAG" 304 '' 0
check "$NGINX" "If-None-Match: $NGINX_ETAG" 304 '' 0
echo "feed.xml: $items items, $size bytes, gzip $gz_size bytes; $(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds"

# CPU time so far, in clock ticks, of every process of a server.
TICKS_PER_SECOND=$(getconf CLK_TCK)
server_ticks() { # server
  local pids
  if [ "$1" = tributary ]; then
    pids=$(pgrep -P "$TRIBUTARY_PID" || echo "$TRIBUTARY_PID") # tributary runs under timeout
  else
    pids="$EXTRA_PIDS $(pgrep -P "$EXTRA_PIDS" || true)" # nginx's master and workers
  fi
  for pid in $pids; do cat "/proc/$pid/stat"; done | awk '{sum += $14 + $15} END {print sum}'
}

results="$WORK/results.tsv"
: >"$results"
run() { # server case url header...
  local server=$1 case=$2 url=$3
  shift 3
  local args=()
  for h in "$@"; do args+=(-H "$h"); done
  local out before after
  before=$(server_ticks "$server")
  out=$(timeout 60 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${args[@]}" "$url")
  after=$(server_ticks "$server")
  local rps p99 errors requests cpu
  rps=$(awk '/^Requests\/sec:/{print $2}' <<<"$out")
  requests=$(awk '/ requests in /{print $1}' <<<"$out")
  cpu=$(awk -v t=$((after - before)) -v n="$requests" -v hz="$TICKS_PER_SECOND" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
  p99=$(awk '$1=="99%"{print $2}' <<<"$out")
  errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" | tr -s ' ' | tr '\n' ';' || true)
  printf '%s\t%s\t%s\t%s\t%s\n' "$server" "$case" "$rps" "$p99" "$cpu" >>"$results"
  printf '  %-10s %-12s %12s req/s  p99 %9s  %7s us CPU/req  %s\n' "$server" "$case" "$rps" "$p99" "$cpu" "$errors"
}
# Both servers run one case each in turn, the one going first alternating by round:
# whatever favours the first (or second) run of a pair favours each server alike.
pair() { # case header-for-tributary header-for-nginx
  if [ $((round % 2)) = 1 ]; then
    run tributary "$1" "$TRIB" "$2"
    run nginx "$1" "$NGINX" "$3"
  else
    run nginx "$1" "$NGINX" "$3"
    run tributary "$1" "$TRIB" "$2"
  fi
}
for round in $(seq "$ROUNDS"); do
  echo "round $round"
  pair plain 'X-Case: plain' 'X-Case: plain'
  pair gzip 'Accept-Encoding: gzip' 'Accept-Encoding: gzip'
  pair conditional "If-None-Match: $TRIB_ETAG" "If-None-Match: $NGINX_ETAG"
done

python3 - "$results" <<'PY'
import statistics, sys
def micros(text):
    for unit, factor in (("us", 1), ("ms", 1e3), ("s", 1e6)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    raise ValueError(text)
rows = [line.split("\t") for line in open(sys.argv[1]).read().splitlines()]
median = {}
for server in ("tributary", "nginx"):
    for case in ("plain", "gzip", "conditional"):
        runs = [r for r in rows if r[0] == server and r[1] == case]
        median[server, case] = (
            statistics.median(float(r[2]) for r in runs),
            statistics.median(micros(r[3].strip()) for r in runs),
            statistics.median(float(r[4]) for r in runs),
        )
print()
print("%-12s %14s %14s %12s %12s %10s %10s %22s %13s %13s %10s" % ("case", "tributary r/s", "nginx r/s", "trib p99", "nginx p99", "r/s ratio", "p99 ratio", "per-round r/s ratios", "trib CPU/req", "nginx CPU/req", "CPU ratio"))
for case in ("plain", "gzip", "conditional"):
    t, n = median["tributary", case], median["nginx", case]
    # The k-th run of each server in a case belong to the same round.
    rounds = zip(
        (float(r[2]) for r in rows if r[0] == "tributary" and r[1] == case),
        (float(r[2]) for r in rows if r[0] == "nginx" and r[1] == case),
    )
    paired = [a / b for a, b in rounds]
    spread = "%.2f (%.2f-%.2f)" % (statistics.median(paired), min(paired), max(paired))
    print("%-12s %14.0f %14.0f %10.0fus %10.0fus %10.2f %10.2f %22s %11.2fus %11.2fus %10.2f" % (case, t[0], n[0], t[1], n[1], t[0] / n[0], t[1] / n[1], spread, t[2], n[2], t[2] / n[2]))
print("\nmedians of the rounds; r/s ratio = tributary/nginx (>= 1 is the target), p99 ratio = tributary/nginx (<= 1 is the target);")
print("per-round r/s ratios: the median (and range) of each round's tributary/nginx, which drift between rounds does not move;")
print("CPU/req: the server's user + system time per request served (median of the rounds); CPU ratio = tributary/nginx")
PY
