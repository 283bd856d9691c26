#!/usr/bin/env bash
# The "latest news" page in a real browser (not run by CI): headless Chromium renders
# tributary's `/` at phone and desktop widths, saves a screenshot of each, and checks
# from the rendered DOM that every served item is on the page, in order.
#
#   bench/screenshot.sh [OUT_DIR]   # as root: installs Debian's chromium when missing
#
# Starts the loopback fixture farm (20 feeds) and tributary on it (100 items, times
# in Europe/Moscow). Screenshots go to OUT_DIR (default target/screenshots):
# phone.png (390 px wide) and desktop.png (1280 px wide).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

OUT=$(mkdir -p "${1:-$REPO/target/screenshots}" && cd "${1:-$REPO/target/screenshots}" && pwd)
need_debian_package chromium chromium
(cd "$REPO" && cargo build --release --quiet)
start_farm 'timezone = "Europe/Moscow"'
start_tributary 100

url="http://$TRIBUTARY_ADDR/"
# Chromium refuses to run as root without --no-sandbox; the page is our own, on loopback.
browser() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --no-first-run --user-data-dir="$WORK/chromium" "$@" 2>>"$WORK/chromium.log"
}
browser --window-size=390,1600 --screenshot="$OUT/phone.png" "$url" >/dev/null
browser --window-size=1280,1000 --screenshot="$OUT/desktop.png" "$url" >/dev/null
browser --dump-dom "$url" >"$WORK/dom.html"
curl -fsS "http://$TRIBUTARY_ADDR/feed.json" >"$WORK/feed.json"

python3 - "$WORK/dom.html" "$WORK/feed.json" "$OUT" <<'PY'
import html.parser, json, os, sys
dom, feed_json, out = sys.argv[1:4]

class Links(html.parser.HTMLParser):
    """The headline links of the item lines (a time stamp, then the headline), in
    document order; the list of sources has no time stamps."""
    def __init__(self):
        super().__init__()
        self.after_time = False
        self.links = []
    def handle_starttag(self, tag, attrs):
        if tag == "time":
            self.after_time = True
        elif tag == "a" and self.after_time:
            self.links.append(dict(attrs).get("href"))
            self.after_time = False
    def handle_endtag(self, tag):
        if tag == "li" and self.after_time:  # an item without a link
            self.links.append(None)
            self.after_time = False

parser = Links()
parser.feed(open(dom, encoding="utf-8").read())
served = [item.get("url") for item in json.load(open(feed_json))["items"]]
ok = parser.links == served
print("rendered page: %d item links, tributary serves %d, same order: %s"
      % (len(parser.links), len(served), ok))
for name in ("phone.png", "desktop.png"):
    path = os.path.join(out, name)
    size = os.path.getsize(path) if os.path.exists(path) else 0
    print("%s: %d bytes" % (path, size))
    ok = ok and size > 0
print("screenshot check:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
