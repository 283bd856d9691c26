#!/usr/bin/env python3
"""feedfarm: N synthetic feeds served on loopback, for the scripts in bench/.

Python 3 (>= 3.8) standard library only. Every feed, item, date and URL is made up
and deterministic for a given --seed and --epoch; nothing is read from the network
or from disk, and the server refuses to bind anything but a loopback address.

    python3 bench/feedfarm.py --feeds 100 --items 20 --port 18901 \\
        [--rate 1] [--faults 0.05] [--write-config feeds.toml] [--max-seconds 600]

Endpoints:
  GET/HEAD /feeds/{i}.xml     feed i (0 <= i < N): RSS 2.0, Atom or RSS 1.0 (.json is an
                              alias; JSON Feed feeds are listed with .json)
           ?fault=KIND        serve this request with the fault KIND (see --fault-kinds)
  GET /feeds.toml             [[source]] list for tributary (what --write-config writes)
  GET /feeds.opml             OPML 2.0 list of the feeds
  GET /items/{i}/{k}          a small HTML page, the link of item k of feed i
  GET /stats[?reset=1]        JSON counters: requests, status codes, conditional requests,
                              304s, gzip answers, body bytes, faults served, requests
                              per feed, and the most feed requests in flight at once
  GET /healthz                "ok"

Time: feed i publishes a new item every 60/--rate seconds (at a per-feed phase), so
--rate K adds about K items per feed per minute; --rate 0 freezes every feed at
--epoch (the bytes are then the same on every run). A feed shows its newest --items
items. Each answer carries an ETag and a Last-Modified; If-None-Match or
If-Modified-Since that still match get a 304. With Accept-Encoding: gzip the body is
gzipped (each version compressed once).

Faults (--faults F: that fraction of the feeds, each given one kind drawn from
--fault-kinds; or one request with ?fault=KIND):
  slow       waits --slow-ms, then answers      trickle    the body in 8 pieces over --slow-ms
  http500    500                                http404    404
  http429    429 with Retry-After               flaky      every third request a 500
  redirect   301 to /moved/{i}.xml              truncated  Content-Length says more than is sent
  malformed  a tag left unclosed                garbage    random bytes with the feed's type
  huge       a valid feed padded to --huge-mb MB
Every wait and every loop is bounded; the server stops after --max-seconds.
"""
import argparse
import email.utils
import gzip
import ipaddress
import json
import random
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

FORMATS = ("rss2", "atom", "rdf", "json")
FAULTS = ("slow", "trickle", "http500", "http404", "http429", "flaky", "redirect",
          "truncated", "malformed", "garbage", "huge")
TYPES = {"rss2": "application/rss+xml", "atom": "application/atom+xml",
         "rdf": "application/rdf+xml", "json": "application/feed+json"}
LATIN = ("river delta harbour council budget election storm bridge library festival "
         "research vaccine orbit satellite market railway museum drought harvest "
         "startup compiler protocol kernel release patch museum archive gallery "
         "season league final record summit treaty border coast island mountain").split()
EXTRA = ("café naïve Zürich São Paulo München Ελλάδα 東京 北京 ★ — “quoted” 🚀 "
         "façade coöperate Ærø Łódź").split()
CYRILLIC = ("новости город река выборы бюджет погода мост библиотека фестиваль "
            "исследование рынок железная дорога музей урожай").split()


def rng(*key):
    """A Random seeded by the key: the same key gives the same draws on every run."""
    return random.Random(":".join(str(k) for k in key))


def words(r, n, cyrillic=False):
    pool = CYRILLIC if cyrillic else LATIN
    out = [r.choice(pool) for _ in range(n)]
    if not cyrillic and r.random() < 0.3:
        out[r.randrange(n)] = r.choice(EXTRA)
    return " ".join(out)


def http_date(ts):
    return email.utils.formatdate(ts, usegmt=True)


def iso_date(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Feed:
    """The fixed traits of one feed: format, charset, publishing phase, fault."""

    def __init__(self, farm, i):
        a = farm.args
        r = rng(a.seed, "feed", i)
        self.i = i
        self.fmt = r.choices(FORMATS, weights=(60, 25, 8, 7))[0]
        self.charset = "utf-8"
        if self.fmt == "rss2" and r.random() < a.cp1251:
            self.charset = "windows-1251"
        self.phase = r.random() * farm.period
        self.fault = None
        if r.random() < a.faults and farm.fault_kinds:
            self.fault = r.choice(farm.fault_kinds)
        self.title = "Feed %d: %s" % (i, words(r, 3, self.charset != "utf-8").title())
        self.path = "/feeds/%d.%s" % (i, "json" if self.fmt == "json" else "xml")
        self.ctype = "%s; charset=%s" % (TYPES[self.fmt], self.charset)


class Farm:
    def __init__(self, args):
        self.args = args
        self.base = "http://%s:%d" % (args.host if ":" not in args.host else "[%s]" % args.host,
                                      args.port)
        self.started = time.time()
        self.epoch = args.epoch if args.epoch is not None else int(self.started)
        # Seconds between two items of a feed; a frozen farm still dates its items an hour apart.
        self.period = 60.0 / args.rate if args.rate > 0 else 3600.0
        self.fault_kinds = [k for k in args.fault_kinds.split(",") if k]
        for k in self.fault_kinds:
            if k not in FAULTS:
                raise SystemExit("feedfarm: unknown fault kind %r (known: %s)" % (k, ",".join(FAULTS)))
        self.feeds = [Feed(self, i) for i in range(args.feeds)]
        self.lock = threading.Lock()
        self.versions = {}  # (feed, newest item, fault) -> [body, gzipped body or None]
        self.flaky = {}     # feed -> requests seen
        self.inflight = 0
        self.reset_stats()

    # ---- time -----------------------------------------------------------
    def now(self):
        """The feeds' clock: the epoch plus the time served so far (frozen at rate 0)."""
        if self.args.rate <= 0:
            return self.epoch
        return self.epoch + (time.time() - self.started)

    def newest(self, feed):
        return int((self.now() - feed.phase) // self.period)

    def published(self, feed, k):
        return feed.phase + k * self.period

    # ---- documents ------------------------------------------------------
    def item(self, feed, k):
        r = rng(self.args.seed, "item", feed.i, k)
        cyr = feed.charset != "utf-8" and r.random() < 0.5
        title = words(r, r.randint(3, 9), cyr).capitalize()
        paragraphs, size = [], 0
        limit = r.randint(200, max(200, self.args.max_body))
        while size < limit and len(paragraphs) < 20:
            p = "<p>%s <a href=\"%s/items/%d/%d\">%s</a> %s.</p>" % (
                escape(words(r, 12, cyr)), self.base, feed.i, k, escape(words(r, 2, cyr)),
                escape(words(r, 10, cyr)))
            if r.random() < 0.2:
                p += "<p><em>%s</em> &amp; <strong>%s</strong></p>" % (
                    escape(words(r, 3, cyr)), escape(words(r, 3, cyr)))
            paragraphs.append(p)
            size += len(p)
        return {
            "id": "urn:feedfarm:%d:%d:%d" % (self.args.seed, feed.i, k),
            "link": "%s/items/%d/%d" % (self.base, feed.i, k),
            "title": title,
            "html": "".join(paragraphs)[: max(200, self.args.max_body)],
            "author": words(r, 2).title() if r.random() < 0.7 else "",
            "tags": [r.choice(LATIN) for _ in range(r.randint(0, 3))],
            "ts": self.published(feed, k),
        }

    def render(self, feed, newest, pad_to=0):
        items = [self.item(feed, k) for k in range(newest, newest - self.args.items, -1)]
        if pad_to:  # "huge": one more (older) item whose body is pad_to bytes
            filler = self.item(feed, newest - self.args.items)
            filler["html"] = "<p>%s</p>" % ("x" * pad_to)
            items.append(filler)
        if feed.fmt == "json":
            doc = {"version": "https://jsonfeed.org/version/1.1", "title": feed.title,
                   "home_page_url": self.base + "/", "feed_url": self.base + feed.path,
                   "items": [dict({"id": it["id"], "url": it["link"], "title": it["title"],
                                   "content_html": it["html"],
                                   "date_published": iso_date(it["ts"])},
                                  **({"authors": [{"name": it["author"]}]} if it["author"] else {}),
                                  **({"tags": it["tags"]} if it["tags"] else {}))
                             for it in items]}
            return json.dumps(doc, ensure_ascii=False).encode("utf-8")
        text = getattr(self, "_" + feed.fmt)(feed, items)
        return text.encode(feed.charset, "xmlcharrefreplace")

    def _rss2(self, feed, items):
        out = ['<?xml version="1.0" encoding="%s"?>\n<rss version="2.0" '
               'xmlns:dc="http://purl.org/dc/elements/1.1/" '
               'xmlns:content="http://purl.org/rss/1.0/modules/content/">\n<channel>\n'
               "<title>%s</title>\n<link>%s/</link>\n<description>feedfarm feed %d</description>\n"
               % (feed.charset, escape(feed.title), self.base, feed.i)]
        for it in items:
            out.append("<item>\n<title>%s</title>\n<link>%s</link>\n"
                       '<guid isPermaLink="false">%s</guid>\n<pubDate>%s</pubDate>\n'
                       % (escape(it["title"]), it["link"], it["id"], http_date(it["ts"])))
            if it["author"]:
                out.append("<dc:creator>%s</dc:creator>\n" % escape(it["author"]))
            out.extend("<category>%s</category>\n" % t for t in it["tags"])
            if it["id"].endswith(("0", "5")):  # some bodies in CDATA, as many feeds do
                out.append("<content:encoded><![CDATA[%s]]></content:encoded>\n" % it["html"])
            else:
                out.append("<description>%s</description>\n" % escape(it["html"]))
            out.append("</item>\n")
        out.append("</channel>\n</rss>\n")
        return "".join(out)

    def _atom(self, feed, items):
        updated = iso_date(items[0]["ts"]) if items else iso_date(self.epoch)
        out = ['<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">\n'
               "<title>%s</title>\n<id>urn:feedfarm:%d:%d</id>\n<updated>%s</updated>\n"
               "<link rel=\"self\" href=%s/>\n"
               % (escape(feed.title), self.args.seed, feed.i, updated,
                  quoteattr(self.base + feed.path))]
        for it in items:
            ts = iso_date(it["ts"])
            out.append("<entry>\n<title>%s</title>\n<id>%s</id>\n<link href=%s/>\n"
                       "<published>%s</published>\n<updated>%s</updated>\n"
                       % (escape(it["title"]), it["id"], quoteattr(it["link"]), ts, ts))
            if it["author"]:
                out.append("<author><name>%s</name></author>\n" % escape(it["author"]))
            out.extend("<category term=%s/>\n" % quoteattr(t) for t in it["tags"])
            out.append('<content type="html">%s</content>\n</entry>\n' % escape(it["html"]))
        out.append("</feed>\n")
        return "".join(out)

    def _rdf(self, feed, items):
        out = ['<?xml version="1.0" encoding="utf-8"?>\n'
               '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
               'xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
               "<channel rdf:about=%s>\n<title>%s</title>\n<link>%s/</link>\n"
               "<description>feedfarm feed %d</description>\n<items><rdf:Seq>\n"
               % (quoteattr(self.base + feed.path), escape(feed.title), self.base, feed.i)]
        out.extend("<rdf:li rdf:resource=%s/>\n" % quoteattr(it["link"]) for it in items)
        out.append("</rdf:Seq></items>\n</channel>\n")
        for it in items:
            out.append("<item rdf:about=%s>\n<title>%s</title>\n<link>%s</link>\n"
                       "<dc:date>%s</dc:date>\n<description>%s</description>\n"
                       % (quoteattr(it["link"]), escape(it["title"]), it["link"],
                          iso_date(it["ts"]), escape(it["html"])))
            if it["author"]:
                out.append("<dc:creator>%s</dc:creator>\n" % escape(it["author"]))
            out.append("</item>\n")
        out.append("</rdf:RDF>\n")
        return "".join(out)

    def version(self, feed, fault):
        """[body, gzipped, etag, last-modified ts] of the feed as it is now, built once."""
        newest = self.newest(feed)
        key = (feed.i, fault if fault in ("malformed", "garbage", "huge") else None)
        with self.lock:
            kept = self.versions.get(key)
        if kept is not None and kept[0] == newest:
            return kept[1]
        if fault == "garbage":
            r = rng(self.args.seed, "garbage", feed.i, newest)
            body = bytes(r.randrange(256) for _ in range(4096))
        elif fault == "huge":
            body = self.render(feed, newest, pad_to=self.args.huge_mb * 1024 * 1024)
        else:
            body = self.render(feed, newest)
            if fault == "malformed":
                body = body.replace(b"</title>", b"", 2)
        etag = '"ff-%d-%d-%d-%x"' % (self.args.seed, feed.i, newest, len(body))
        v = [body, None, etag, int(self.published(feed, newest))]
        with self.lock:  # only the newest version of a feed is kept
            self.versions[key] = (newest, v)
        return v

    def gzipped(self, v):
        if v[1] is None:
            v[1] = gzip.compress(v[0], 6, mtime=0)
        return v[1]

    # ---- lists ----------------------------------------------------------
    def toml(self):
        lines = ["# written by bench/feedfarm.py: %d feeds, seed %d, %d items each, faults %g"
                 % (len(self.feeds), self.args.seed, self.args.items, self.args.faults), ""]
        for f in self.feeds:
            lines.append("# format %s, charset %s, fault %s" % (f.fmt, f.charset, f.fault or "none"))
            lines += ["[[source]]", "name = %s" % json.dumps(f.title, ensure_ascii=False),
                      'url = "%s%s"' % (self.base, f.path), ""]
        return "\n".join(lines)

    def opml(self):
        rows = "".join('<outline type="rss" text=%s xmlUrl=%s/>\n'
                       % (quoteattr(f.title), quoteattr(self.base + f.path)) for f in self.feeds)
        return ('<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0">\n'
                "<head><title>feedfarm</title></head>\n<body>\n%s</body>\n</opml>\n" % rows)

    def urls(self):
        return "".join(self.base + f.path + "\n" for f in self.feeds)

    # ---- stats ----------------------------------------------------------
    def reset_stats(self):
        with self.lock:
            self.stats = {"requests": 0, "feed_requests": 0, "conditional_requests": 0,
                          "not_modified": 0, "gzip_responses": 0, "body_bytes": 0,
                          "status": {}, "faults_served": {}, "per_feed": {},
                          "inflight_max": self.inflight, "since": time.time()}

    def count(self, status, nbytes=0, feed=None, cond=False, gz=False, fault=None):
        with self.lock:
            s = self.stats
            s["requests"] += 1
            s["body_bytes"] += nbytes
            s["status"][str(status)] = s["status"].get(str(status), 0) + 1
            if feed is None:
                return
            s["feed_requests"] += 1
            s["per_feed"][str(feed)] = s["per_feed"].get(str(feed), 0) + 1
            s["conditional_requests"] += cond
            s["not_modified"] += status == 304
            s["gzip_responses"] += gz
            if fault:
                s["faults_served"][fault] = s["faults_served"].get(fault, 0) + 1


FEED_PATH = re.compile(r"^/(feeds|moved)/(\d+)\.(xml|json)$")
ITEM_PATH = re.compile(r"^/items/(\d+)/(-?\d+)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may sit idle (or a request stall) before it is closed
    farm = None  # set by main()

    def version_string(self):
        return "feedfarm"

    def log_message(self, fmt, *args):
        if self.farm.args.log:
            sys.stderr.write("feedfarm: %s\n" % (fmt % args))

    def do_GET(self):
        self.route(head=False)

    def do_HEAD(self):
        self.route(head=True)

    def reply(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=(), head=False,
              length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def route(self, head):
        farm, url = self.farm, urlsplit(self.path)
        query = parse_qs(url.query)
        m = FEED_PATH.match(url.path)
        if m:
            with farm.lock:
                farm.inflight += 1
                farm.stats["inflight_max"] = max(farm.stats["inflight_max"], farm.inflight)
            try:
                return self.feed(int(m.group(2)), m.group(1), query.get("fault", [None])[0], head)
            finally:
                with farm.lock:
                    farm.inflight -= 1
        if url.path == "/stats":
            if "reset" in query:
                farm.reset_stats()
            with farm.lock:
                body = json.dumps(farm.stats, indent=1, sort_keys=True).encode()
            return self.reply(200, body, "application/json", head=head)
        if url.path == "/healthz":
            return self.reply(200, b"ok\n", head=head)
        if url.path == "/feeds.toml":
            farm.count(200)
            return self.reply(200, farm.toml().encode(), "application/toml; charset=utf-8", head=head)
        if url.path in ("/feeds.opml", "/opml"):
            farm.count(200)
            return self.reply(200, farm.opml().encode(), "text/x-opml; charset=utf-8", head=head)
        m = ITEM_PATH.match(url.path)
        if m:
            body = ("<!DOCTYPE html><title>Item %s of feed %s</title><p>feedfarm item page</p>\n"
                    % (m.group(2), m.group(1))).encode()
            farm.count(200, len(body))
            return self.reply(200, body, "text/html; charset=utf-8", head=head)
        farm.count(404)
        return self.reply(404, b"not found\n", head=head)

    def feed(self, i, prefix, fault, head):
        farm, a = self.farm, self.farm.args
        if i >= len(farm.feeds) or (fault is not None and fault not in FAULTS):
            farm.count(404, feed=i)
            return self.reply(404, b"no such feed or fault\n", head=head)
        feed = farm.feeds[i]
        fault = fault or feed.fault
        if fault == "flaky":
            with farm.lock:
                n = farm.flaky[i] = farm.flaky.get(i, 0) + 1
            if n % 3 == 0:
                farm.count(500, feed=i, fault=fault)
                return self.reply(500, b"flaky upstream\n", head=head)
        elif fault in ("http500", "http404"):
            status = int(fault[4:])
            farm.count(status, feed=i, fault=fault)
            return self.reply(status, b"fault %s\n" % fault.encode(), head=head)
        elif fault == "http429":
            farm.count(429, feed=i, fault=fault)
            return self.reply(429, b"slow down\n", headers=[("Retry-After", str(a.retry_after))],
                              head=head)
        elif fault == "redirect" and prefix == "feeds":
            farm.count(301, feed=i, fault=fault)
            target = "%s/moved/%d.%s" % (farm.base, i, feed.path.rsplit(".", 1)[1])
            return self.reply(301, b"moved\n", headers=[("Location", target)], head=head)
        elif fault == "slow":
            time.sleep(a.slow_ms / 1000.0)

        v = farm.version(feed, fault)
        gz = a.gzip and "gzip" in self.headers.get("Accept-Encoding", "")
        etag = v[2][:-1] + '-gz"' if gz else v[2]  # one ETag per representation
        headers = [("ETag", etag), ("Last-Modified", http_date(v[3])), ("Vary", "Accept-Encoding")]
        inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
        cond = inm is not None or ims is not None
        if cond and a.conditional and fault not in ("garbage", "truncated"):
            if inm is not None:
                tags = {t.strip().replace("W/", "", 1).replace('-gz"', '"') for t in inm.split(",")}
                fresh = "*" in tags or v[2] in tags
            else:
                try:
                    fresh = email.utils.parsedate_to_datetime(ims).timestamp() >= v[3]
                except (TypeError, ValueError, IndexError):
                    fresh = False
            if fresh:
                farm.count(304, feed=i, cond=True, fault=fault)
                self.send_response(304)
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                return
        body = farm.gzipped(v) if gz else v[0]
        if gz:
            headers.append(("Content-Encoding", "gzip"))
        farm.count(200, 0 if head else len(body), feed=i, cond=cond, gz=gz, fault=fault)
        if head:
            return self.reply(200, body, feed.ctype, headers, head=True)
        if fault == "truncated":  # promise the whole body, send 60% of it, hang up
            self.reply(200, body[: len(body) * 6 // 10], feed.ctype, headers, length=len(body))
            self.close_connection = True
            return
        if fault == "trickle":
            self.send_response(200)
            self.send_header("Content-Type", feed.ctype)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers:
                self.send_header(name, value)
            self.end_headers()
            step = max(1, -(-len(body) // 8))
            for start in range(0, len(body), step):  # 8 pieces at most
                self.wfile.write(body[start:start + step])
                self.wfile.flush()
                time.sleep(a.slow_ms / 8000.0)
            return
        self.reply(200, body, feed.ctype, headers)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    p.add_argument("--port", type=int, default=18901)
    p.add_argument("--feeds", type=int, default=100, help="number of feeds N")
    p.add_argument("--items", type=int, default=20, help="items in each feed")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=0.0,
                   help="new items per feed per minute; 0 freezes the feeds at --epoch")
    p.add_argument("--epoch", type=int, default=None,
                   help="unix time the feeds' clock starts at (default: now)")
    p.add_argument("--max-body", type=int, default=3000, help="most characters of one item's HTML")
    p.add_argument("--cp1251", type=float, default=0.05,
                   help="fraction of the RSS 2.0 feeds served in windows-1251")
    p.add_argument("--faults", type=float, default=0.0, help="fraction of the feeds that misbehave")
    p.add_argument("--fault-kinds", default=",".join(FAULTS), help="kinds the faulty feeds draw from")
    p.add_argument("--slow-ms", type=int, default=3000, help="delay of the slow and trickle faults")
    p.add_argument("--retry-after", type=int, default=120, help="Retry-After seconds of http429")
    p.add_argument("--huge-mb", type=int, default=16, help="size of a huge feed (at most 256)")
    p.add_argument("--no-gzip", dest="gzip", action="store_false", help="never gzip")
    p.add_argument("--no-conditional", dest="conditional", action="store_false",
                   help="ignore If-None-Match and If-Modified-Since (never 304)")
    p.add_argument("--write-config", metavar="FILE", help="write the feeds.toml [[source]] list")
    p.add_argument("--write-opml", metavar="FILE", help="write an OPML list")
    p.add_argument("--write-urls", metavar="FILE", help="write one URL a line")
    p.add_argument("--write-only", action="store_true", help="write the lists above and exit")
    p.add_argument("--max-seconds", type=float, default=3600,
                   help="stop serving after this long (at most a day)")
    p.add_argument("--log", action="store_true", help="log every request on stderr")
    a = p.parse_args(argv)
    if not ipaddress.ip_address(a.host).is_loopback:
        p.error("refusing to listen on %s: loopback addresses only" % a.host)
    if not 0 < a.max_seconds <= 86400:
        p.error("--max-seconds must be in (0, 86400]")
    if not (0 <= a.feeds <= 1000000 and 1 <= a.items <= 10000 and 0 < a.huge_mb <= 256):
        p.error("--feeds, --items or --huge-mb out of range")
    return a


def main(argv=None):
    a = parse_args(argv)
    farm = Farm(a)
    for path, text in ((a.write_config, farm.toml), (a.write_opml, farm.opml), (a.write_urls, farm.urls)):
        if path:
            with open(path, "w", encoding="utf-8") as out:
                out.write(text())
    if a.write_only:
        return
    Server.address_family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
    Handler.farm = farm
    server = Server((a.host, a.port), Handler)
    stopper = threading.Timer(a.max_seconds, server.shutdown)
    stopper.daemon = True
    stopper.start()
    sys.stderr.write("feedfarm: %d feeds x %d items on %s, rate %g/min, faults %g, for %gs at most\n"
                     % (a.feeds, a.items, farm.base, a.rate, a.faults, a.max_seconds))
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
