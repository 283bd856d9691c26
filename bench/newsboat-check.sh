#!/usr/bin/env bash
# A real feed reader against tributary (not run by CI): newsboat subscribes to
# /feed.xml (and /atom.xml), reloads, and must list every item tributary serves.
#
#   bench/newsboat-check.sh     # as root: installs newsboat when missing
#
# Starts the loopback fixture farm (20 feeds) and tributary on it (100 items), runs
# `newsboat -x reload` and `-x print-unread` per feed with a temporary urls file,
# config and cache, then compares the titles in newsboat's cache with tributary's
# JSON Feed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_debian_package newsboat newsboat
(cd "$REPO" && cargo build --release --quiet)
start_farm
start_tributary 100

export LANG=C.UTF-8 HOME="$WORK/home"
mkdir -p "$HOME"
printf 'auto-reload no\nmax-items 0\nshow-read-feeds yes\n' >"$WORK/newsboat.conf"
curl -fsS "http://$TRIBUTARY_ADDR/feed.json" >"$WORK/feed.json"
# One cache per feed: the RSS guids and the Atom ids of an item are the same, and
# newsboat keeps one article per id across all its feeds.
unread=()
for path in feed.xml atom.xml; do
  echo "http://$TRIBUTARY_ADDR/$path" >"$WORK/urls-$path"
  nb() { timeout 120 newsboat -u "$WORK/urls-$path" -C "$WORK/newsboat.conf" -c "$WORK/cache-$path.db" "$@"; }
  nb -x reload
  unread+=("$(nb -x print-unread)")
  echo "newsboat print-unread for /$path: ${unread[-1]}"
done

python3 - "$WORK" "$WORK/feed.json" "$TRIBUTARY_ADDR" "${unread[@]}" <<'PY'
import json, sqlite3, sys
work, feed_json, addr = sys.argv[1:4]
unread = sys.argv[4:]
served = [item["title"] for item in json.load(open(feed_json))["items"]]
ok = True
for path, said in zip(("/feed.xml", "/atom.xml"), unread):
    db = sqlite3.connect("%s/cache-%s.db" % (work, path[1:]))
    url = "http://%s%s" % (addr, path)
    rows = db.execute(
        "SELECT title FROM rss_item WHERE feedurl = ? ORDER BY pubDate DESC, id", (url,)
    ).fetchall()
    titles = [r[0] for r in rows]
    missing = [t for t in served if t not in titles]
    extra = [t for t in titles if t not in served]
    print("%s: newsboat lists %d items, tributary serves %d; missing %d, extra %d"
          % (path, len(titles), len(served), len(missing), len(extra)))
    for t in missing[:5]:
        print("  missing:", t)
    ok = ok and not missing and not extra and len(titles) == len(served)
    want = "%d unread articles" % len(served)
    if said.strip() != want:
        print("%s: print-unread says %r, expected %r" % (path, said.strip(), want))
        ok = False
print("newsboat check:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
