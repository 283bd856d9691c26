"""Reads feed documents with Python's feedparser and prints what the differential
check (tests/fidelity.rs) compares with `tributary inspect --json`.

Usage: python3 feedparser_read.py FILE...
Prints one JSON array, one object per FILE, in order:

  {"path", "bozo", "version",
   "feed": {"title", "title_unescaped", "link"},
   "entries": [{"title", "title_unescaped", "link", "id", "published", "updated",
                "published_raw", "updated_raw", "summary", "summary_substance",
                "content", "content_substance", "content_type"}]}

Titles are text: when feedparser took a title for HTML (its title_detail.type), the
text of that HTML (tags dropped, entities decoded); whitespace runs are one space.
`title_unescaped` is that text with the character references a publisher left in it
decoded (`&amp;` -> `&`), when that changes it.
Dates are Unix seconds (feedparser's *_parsed are UTC); `*_raw` is the date as
written, so a date feedparser could not read shows as raw without seconds.
`updated` is the entry's own updated date, not feedparser's fallback to published.
`summary` and `content` say whether the entry has that text (non-blank);
feedparser copies content into summary when there is no summary: that copy (a summary
without summary_detail) does not count as a summary. `*_substance` says whether the
HTML holds more than tracking pixels (text, or an image that is not 0/1 pixel wide and
high, or other media). `content_type` is the type feedparser gave the content;
`content_repeats_summary` says whether its text is the summary's text. Exits 3 when feedparser is not installed.

No feedparser release (6.0.x) reads JSON Feed: a FILE that holds a JSON object is read
here with the standard library instead, by JSON Feed 1.1 (and 1.0), into the same
shape, with "version": "json" (see `json-feed` in tests/fidelity/DIFFERENCES.md).
"""
import calendar
import datetime
import html
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


def unescaped(title):
    if title is None:
        return None
    decoded = " ".join(html.unescape(title).split())
    return decoded if decoded != title else None


MEDIA = {"video", "audio", "iframe", "object", "embed", "svg", "math", "picture"}


class _Substance(html.parser.HTMLParser):
    """Whether HTML holds text or media beyond 1x1 tracking images."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = False

    def handle_data(self, data):
        if data.strip():
            self.found = True

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        tiny = all((attrs.get(a) or "").strip() in ("0", "1") for a in ("width", "height"))
        if tag in MEDIA or (tag == "img" and not tiny):
            self.found = True


def plain(value):
    """The text of HTML, whitespace runs as one space."""
    parser = _Text()
    parser.feed(value or "")
    parser.close()
    return " ".join("".join(parser.parts).split())


def substance(value):
    if blank(value):
        return False
    parser = _Substance()
    parser.feed(value)
    parser.close()
    return parser.found


def seconds(parsed):
    return calendar.timegm(parsed) if parsed else None


def own(entry, key):
    """entry[key] without FeedParserDict's fallback from updated to published."""
    return dict.get(entry, key)


def blank(value):
    return not (value or "").strip()


def read_entry(entry):
    contents = own(entry, "content") or []
    content = next((c for c in contents if not blank(c.get("value"))), None)
    summary = own(entry, "summary")
    own_summary = "summary_detail" in entry and not blank(summary)
    title = text(own(entry, "title"), own(entry, "title_detail"))
    return {
        "title": title,
        "title_unescaped": unescaped(title),
        "link": own(entry, "link") or None,
        "id": own(entry, "id") or None,
        "published": seconds(own(entry, "published_parsed")),
        "updated": seconds(own(entry, "updated_parsed")),
        "published_raw": own(entry, "published"),
        "updated_raw": own(entry, "updated"),
        "summary": own_summary,
        "summary_substance": own_summary and substance(summary),
        "content": content is not None,
        "content_substance": content is not None and substance(content.get("value")),
        "content_type": content.get("type") if content else None,
        "content_repeats_summary": content is not None and own_summary
        and plain(content.get("value")) == plain(summary),
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
    title = json_text(item.get("title"))
    summary = isinstance(item.get("summary"), str) and not blank(item["summary"])
    html_content = item.get("content_html") if isinstance(item.get("content_html"), str) else ""
    text_content = item.get("content_text") if isinstance(item.get("content_text"), str) else ""
    return {
        "title": title,
        "title_unescaped": unescaped(title),
        "link": item.get("url") if isinstance(item.get("url"), str) else None,
        "id": str(ident) if isinstance(ident, (str, int, float)) and str(ident) else None,
        "published": json_seconds(item.get("date_published")),
        "updated": json_seconds(item.get("date_modified")),
        "published_raw": item.get("date_published"),
        "updated_raw": item.get("date_modified"),
        "summary": summary,
        "summary_substance": summary,
        "content": not blank(html_content) or not blank(text_content),
        "content_substance": substance(html_content) or not blank(text_content),
        "content_type": "text/html" if not blank(html_content) else
        "text/plain" if not blank(text_content) else None,
        "content_repeats_summary": False,
    }


def json_feed(path, doc):
    items = doc.get("items") if isinstance(doc.get("items"), list) else []
    return {
        "path": path,
        "bozo": not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"),
        "version": "json",
        "feed": {
            "title": json_text(doc.get("title")),
            "title_unescaped": unescaped(json_text(doc.get("title"))),
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
            "title_unescaped": unescaped(text(feed.get("title"), feed.get("title_detail"))),
            "link": feed.get("link") or None,
        },
        "entries": [read_entry(e) for e in doc.get("entries", [])],
    }


def main():
    print(json.dumps([read(path) for path in sys.argv[1:]], ensure_ascii=False))


main()
