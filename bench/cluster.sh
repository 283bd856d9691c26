#!/usr/bin/env bash
# Several tributary nodes on one PostgreSQL: 1, 2 and 3 nodes (release build) poll the
# same farm of FEEDS feeds spread over HOSTS loopback addresses (127.0.0.10 and up,
# one bench/feedfarm.py each), each run on a fresh database. Per run: the cold cycle's
# wall time (start to every item stored), polls/s of each node (its sources over its
# first round, from its log), PostgreSQL's CPU time per 1000 items stored, and each
# node's RSS. Then newest-100 on ITEMS_1M items in PostgreSQL (the query the river
# runs, server time, median of 20) beside `cargo bench --bench store`'s sled figure.
#
#   bench/cluster.sh                     # FEEDS=10000 HOSTS=50 FARM_ITEMS=10
#   FEEDS=2000 NODES="1 3" bench/cluster.sh
#
# Needs PostgreSQL's binaries (Debian: postgresql; as root, the server runs as
# nobody), python3 and curl. Loopback only; every wait is bounded.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

FEEDS=${FEEDS:-10000}
HOSTS=${HOSTS:-50}
NODES=${NODES:-"1 2 3"}
ITEMS_1M=${ITEMS_1M:-1000000}
FARM_ITEMS=${FARM_ITEMS:-10}
BIN=${TRIBUTARY_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/tributary}
[ -x "$BIN" ] || die "no release build at $BIN; run cargo build --release"
need_debian_package curl curl

PGBIN=$(dirname "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")
[ -x "$PGBIN/initdb" ] || die "PostgreSQL is not installed (apt-get install postgresql)"
as_pg() { if [ "$(id -u)" = 0 ]; then setpriv --reuid 65534 --regid 65534 --clear-groups -- "$@"; else "$@"; fi; }
PGPORT=${PGPORT:-18990}
port_is_free "$PGPORT" || die "port $PGPORT is taken; set PGPORT"
mkdir -p "$WORK/pg" && [ "$(id -u)" != 0 ] || chown 65534:65534 "$WORK/pg"
as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 --locale=C >/dev/null
as_pg "$PGBIN/postgres" -D "$WORK/pg/data" -k "$WORK/pg" -p "$PGPORT" -c listen_addresses= \
  -c shared_buffers=256MB -c max_connections=200 >"$WORK/pg.log" 2>&1 &
PG_PID=$!
EXTRA_PIDS="$PG_PID"
psql_() { psql -X -q -t -A -h "$WORK/pg" -p "$PGPORT" -U postgres "$@"; }
for _ in $(seq 100); do psql_ -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.1; done
psql_ -c 'SELECT 1' >/dev/null || die "PostgreSQL did not start: $(tail -3 "$WORK/pg.log")"

# The farm: HOSTS farms of FEEDS/HOSTS feeds, one per loopback address. They serve
# every run: each run may take up to MAX_SECONDS, so they live that long per run and
# one more (a farm that stopped after MAX_SECONDS in all cut the last runs short).
per_host=$((FEEDS / HOSTS))
runs=$(wc -w <<<"$NODES")
farm_seconds=$((MAX_SECONDS * (runs + 1) > 86400 ? 86400 : MAX_SECONDS * (runs + 1)))
: >"$WORK/sources.toml"
for h in $(seq 0 $((HOSTS - 1))); do
  addr=127.0.0.$((10 + h)) port=$((FARM_PORT + h))
  python3 "$FARM" --host "$addr" --port "$port" --feeds "$per_host" --items "$FARM_ITEMS" --rate 0 \
    --epoch 1767225600 --seed "$h" --max-seconds "$farm_seconds" \
    --write-config "$WORK/farm-$h.toml" >"$WORK/farm-$h.log" 2>&1 &
  EXTRA_PIDS="$EXTRA_PIDS $!"
done
for h in $(seq 0 $((HOSTS - 1))); do
  for _ in $(seq 100); do [ -s "$WORK/farm-$h.toml" ] && break; sleep 0.1; done
  grep -v '^#' "$WORK/farm-$h.toml" >>"$WORK/sources.toml"
done
want_items=$((per_host * HOSTS * FARM_ITEMS))

# Every farm answers (or the bench stops: a run against a dead farm measures nothing).
farms_answer() {
  local h
  for h in $(seq 0 $((HOSTS - 1))); do
    curl -fsS -m 5 "http://127.0.0.$((10 + h)):$((FARM_PORT + h))/healthz" >/dev/null 2>&1 ||
      die "the farm on 127.0.0.$((10 + h)) stopped answering: $(tail -2 "$WORK/farm-$h.log")"
  done
}

# Sum of user+system CPU ticks of this PostgreSQL's processes (the postmaster and
# its children; not every postgres of the machine, which a shared one runs more of).
pg_ticks() {
  local total=0 pid
  local postmaster
  postmaster=$(head -1 "$WORK/pg/data/postmaster.pid")
  for pid in $postmaster $(pgrep -P "$postmaster" || true); do
    [ -r "/proc/$pid/stat" ] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

printf '%-6s %-10s %-28s %-16s %-22s\n' nodes cold_s polls_per_s_per_node pg_cpu_ms_per_1k rss_mb_per_node
for n in $NODES; do
  farms_answer
  db=bench_$n
  psql_ -c "CREATE DATABASE $db" >/dev/null
  pids=()
  before=$(pg_ticks)
  started=$(date +%s.%N)
  for i in $(seq 1 "$n"); do
    {
      printf '[server]\nlisten = "127.0.0.1:0"\n\n[store]\nbackend = "postgres"\n'
      printf 'url = "host=%s port=%s user=postgres dbname=%s"\nnode_id = "n%s"\n' "$WORK/pg" "$PGPORT" "$db" "$i"
      printf '\n[poll]\nconcurrency = 64\n\n[publish]\nmax_items = 100\n\n'
      cat "$WORK/sources.toml"
    } >"$WORK/node-$n-$i.toml"
    RUST_LOG=info timeout "$MAX_SECONDS" "$BIN" run --config "$WORK/node-$n-$i.toml" >"$WORK/node-$n-$i.log" 2>&1 &
    pids+=($!)
  done
  EXTRA_PIDS="$EXTRA_PIDS ${pids[*]}"
  stored=0
  for _ in $(seq $((MAX_SECONDS * 2))); do
    stored=$(psql_ -d "$db" -c "SELECT count(*) FROM items" 2>/dev/null || echo 0)
    [ "$stored" -ge "$want_items" ] && break
    sleep 0.5
  done
  cold=$(echo "$(date +%s.%N) - $started" | bc)
  ticks=$(( $(pg_ticks) - before ))
  rates=() rss=()
  for i in $(seq 1 "$n"); do
    line=$(grep 'every source polled once' "$WORK/node-$n-$i.log" | head -1 || true)
    sources=$(grep -o 'sources=[0-9]*' <<<"$line" | cut -d= -f2)
    ms=$(grep -o 'elapsed_ms=[0-9]*' <<<"$line" | cut -d= -f2)
    if [ -n "$ms" ] && [ "$ms" -gt 0 ]; then rates+=("$((sources * 1000 / ms))"); else rates+=(-); fi
    # The node under `timeout`: its child.
    node=$(pgrep -P "${pids[$((i - 1))]}" | head -1 || true)
    rss+=("$(( $(awk '/VmRSS/ {print $2}' "/proc/${node:-0}/status" 2>/dev/null || echo 0) / 1024 ))")
  done
  cpu_ms=$(( ticks * 1000 / hz ))
  printf '%-6s %-10.1f %-28s %-16s %-22s\n' "$n" "$cold" "${rates[*]}" \
    "$(( cpu_ms * 1000 / (stored > 0 ? stored : 1) ))" "${rss[*]}"
  if [ "$stored" -lt "$want_items" ]; then
    echo "  (only $stored of $want_items items stored within $MAX_SECONDS s; partitions held:" \
      "$(psql_ -d "$db" -c "SELECT string_agg(owner || '=' || n, ' ') FROM (SELECT owner, count(*) n
         FROM leases WHERE expires_at > now() GROUP BY owner) o"))"
  fi
  farms_answer
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
done

# newest-100 with ITEMS_1M items: the last run's rows, copied with new keys.
db=bench_1m
psql_ -c "CREATE DATABASE $db" >/dev/null
last=bench_$(echo "$NODES" | awk '{print $NF}')
psql_ -d "$db" -c "CREATE TABLE items (key bytea PRIMARY KEY, source text NOT NULL, body bytea NOT NULL)"
psql_ -d "$last" -c "COPY (SELECT source, body FROM items) TO STDOUT" >"$WORK/items.copy"
rows=$(wc -l <"$WORK/items.copy")
reps=$(( (ITEMS_1M + rows - 1) / rows ))
psql_ -d "$db" -c "CREATE TEMP TABLE t (source text, body bytea); COPY t FROM STDIN;
  INSERT INTO items SELECT int8send(g) || int8send(u.n), u.source, u.body
  FROM generate_series(1, $reps) g, (SELECT row_number() OVER () AS n, source, body FROM t) u;
  ANALYZE items" <"$WORK/items.copy" >/dev/null
times=$(for _ in $(seq 20); do
  psql_ -d "$db" -c "EXPLAIN (ANALYZE, FORMAT JSON) SELECT key, body FROM items ORDER BY key DESC LIMIT 100" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Execution Time"])'
done | sort -n)
echo "newest-100 in PostgreSQL with $(psql_ -d "$db" -c 'SELECT count(*) FROM items') items: median $(sed -n 10p <<<"$times") ms (server time, 20 runs)"
echo "newest-100 in sled: cargo bench --bench store (ITEMS=$ITEMS_1M) prints it beside"
