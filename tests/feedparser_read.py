"""Reads feed documents with Python's feedparser and prints what the differential
check (tests/fidelity.rs) compares with `tributary inspect --json`.

Usage: python3 feedparser_read.py FILE...
Prints one JSON array, one object per FILE, in order:

  {"path", "bozo", "version",
   "feed": {"title", "link"},
   "entries": [{"title", "link", "id", "published", "updated", "published_raw",
                "updated_raw", "summary", "content"}]}

Titles are text: when feedparser took a title for HTML (its title_detail.type), the
text of that HTML (tags dropped, entities decoded); whitespace runs are one space.
Dates are Unix seconds (feedparser's *_parsed are UTC); `*_raw` is the date as
written, so a date feedparser could not read shows as raw without seconds.
`updated` is the entry's own updated date, not feedparser's fallback to published.
`summary` and `content` say whether the entry has that text (non-blank);
feedparser copies content into summary when there is no summary: that copy does not
count as a summary. Exits 3 when feedparser is not installed.

No feedparser release (6.0.x) reads JSON Feed: a FILE that holds a JSON object is read
here with the standard library instead, by JSON Feed 1.1 (and 1.0), into the same
shape, with "version": "json" (see `json-feed` in tests/fidelity/DIFFERENCES.md).
"""
import calendar
import datetime
import html.parser
import json
import sys

try:
    import feedparser
except ImportError:
    sys.stderr.write(
        "feedparser is not installed; run: python3 -m pip install feedparser\n")
    sys.exit(3)

HTML_TYPES = ("text/html", "application/xhtml+xml")


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def text(value, detail):
    """A title as text, whitespace runs as one space; None when blank."""
    if value is None:
        return None
    if (detail or {}).get("type") in HTML_TYPES:
        parser = _Text()
        parser.feed(value)
        parser.close()
        value = "".join(parser.parts)
    value = " ".join(value.split())
    return value or None


def seconds(parsed):
    return calendar.timegm(parsed) if parsed else None


def own(entry, key):
    """entry[key] without FeedParserDict's fallback from updated to published."""
    return dict.get(entry, key)


def blank(value):
    return not (value or "").strip()


def read_entry(entry):
    contents = own(entry, "content") or []
    content = next((c.get("value") for c in contents if not blank(c.get("value"))), None)
    summary = own(entry, "summary")
    copied = summary is not None and contents and summary == contents[0].get("value")
    return {
        "title": text(own(entry, "title"), own(entry, "title_detail")),
        "link": own(entry, "link") or None,
        "id": own(entry, "id") or None,
        "published": seconds(own(entry, "published_parsed")),
        "updated": seconds(own(entry, "updated_parsed")),
        "published_raw": own(entry, "published"),
        "updated_raw": own(entry, "updated"),
        "summary": not blank(summary) and not copied,
        "content": content is not None,
    }


def json_seconds(value):
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return int(stamp.timestamp())


def json_text(value):
    return " ".join(value.split()) or None if isinstance(value, str) else None


def json_entry(item):
    ident = item.get("id")
    return {
        "title": json_text(item.get("title")),
        "link": item.get("url") if isinstance(item.get("url"), str) else None,
        "id": str(ident) if isinstance(ident, (str, int, float)) and str(ident) else None,
        "published": json_seconds(item.get("date_published")),
        "updated": json_seconds(item.get("date_modified")),
        "published_raw": item.get("date_published"),
        "updated_raw": item.get("date_modified"),
        "summary": isinstance(item.get("summary"), str) and not blank(item["summary"]),
        "content": any(isinstance(item.get(k), str) and not blank(item[k])
                       for k in ("content_html", "content_text")),
    }


def json_feed(path, doc):
    items = doc.get("items") if isinstance(doc.get("items"), list) else []
    return {
        "path": path,
        "bozo": not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"),
        "version": "json",
        "feed": {
            "title": json_text(doc.get("title")),
            "link": doc.get("home_page_url") if isinstance(doc.get("home_page_url"), str) else None,
        },
        "entries": [json_entry(i) for i in items if isinstance(i, dict)],
    }


def as_json(path):
    """The document as a JSON object, or None when it is not one."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not data.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return None
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def read(path):
    doc = as_json(path)
    if doc is not None:
        return json_feed(path, doc)
    doc = feedparser.parse(path)
    feed = doc.get("feed", {})
    return {
        "path": path,
        "bozo": bool(doc.get("bozo")),
        "version": doc.get("version") or "",
        "feed": {
            "title": text(feed.get("title"), feed.get("title_detail")),
            "link": feed.get("link") or None,
        },
        "entries": [read_entry(e) for e in doc.get("entries", [])],
    }


def main():
    print(json.dumps([read(path) for path in sys.argv[1:]], ensure_ascii=False))


main()
