"""Parses one feed document with feedparser and prints what the tests compare.

Usage: python3 feedparser_check.py FILE CONTENT_TYPE
Prints one JSON object: bozo, version, feed title and self link, and per entry the
title, link, id, published time (Unix seconds, UTC) and source. Exits 3 when
feedparser is not installed (.ci/run installs it).

No feedparser release (6.0.x) reads JSON Feed, so a JSON document is read here with
the standard library instead, checking JSON Feed 1.1's required fields and reporting
a problem as bozo, in the same shape.
"""
import calendar
import datetime
import json
import sys

try:
    import feedparser
except ImportError:
    sys.stderr.write(
        "feedparser is not installed; run: python3 -m pip install feedparser\n")
    sys.exit(3)


def json_feed(data):
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1) read with the stdlib."""
    problems = []
    doc = json.loads(data.decode("utf-8"))
    if doc.get("version") != "https://jsonfeed.org/version/1.1":
        problems.append("version is %r" % doc.get("version"))
    if not isinstance(doc.get("title"), str):
        problems.append("no title")
    if not isinstance(doc.get("items"), list):
        problems.append("no items")
    entries = []
    for item in doc.get("items") or []:
        if not isinstance(item.get("id"), str):
            problems.append("an item id is not a string")
        if not isinstance(item.get("content_html"), str) and not isinstance(item.get("content_text"), str):
            problems.append("an item has no content_html or content_text")
        published = item.get("date_published")
        source = item.get("_source") or {}
        entries.append({
            "title": item.get("title"),
            "link": item.get("url"),
            "id": item.get("id"),
            "published": int(datetime.datetime.fromisoformat(published.replace("Z", "+00:00")).timestamp()) if published else None,
            "source_title": source.get("name"),
            "source_href": source.get("url"),
        })
    return {
        "bozo": bool(problems),
        "bozo_exception": "; ".join(problems),
        "version": "json11",
        "feedparser": None,
        "title": doc.get("title"),
        "self": [doc.get("feed_url")],
        "entries": entries,
    }


def main():
    path, content_type = sys.argv[1], sys.argv[2]
    with open(path, "rb") as fh:
        data = fh.read()
    if "json" in content_type:
        print(json.dumps(json_feed(data), ensure_ascii=False))
        return
    doc = feedparser.parse(data, response_headers={"content-type": content_type})
    entries = []
    for entry in doc.entries:
        source = entry.get("source", {}) or {}
        published = entry.get("published_parsed")
        entries.append({
            "title": entry.get("title"),
            "link": entry.get("link"),
            "id": entry.get("id"),
            "published": calendar.timegm(published) if published else None,
            "source_title": source.get("title"),
            "source_href": source.get("href") or source.get("id"),
        })
    print(json.dumps({
        "bozo": bool(doc.bozo),
        "bozo_exception": str(doc.get("bozo_exception", "")),
        "version": doc.version,
        "feedparser": feedparser.__version__,
        "title": doc.feed.get("title"),
        "self": [l.get("href") for l in doc.feed.get("links", []) if l.get("rel") == "self"],
        "entries": entries,
    }, ensure_ascii=False))


main()
