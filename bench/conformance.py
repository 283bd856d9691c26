#!/usr/bin/env python3
"""Scores `tributary inspect FILE --json` against feedparser's own test suite.

Each document of feedparser's suite (tests/wellformed, tests/illformed, tests/encoding,
tests/entities of the feedparser 6.0.12 source distribution) carries a header comment
with an `Expect:` line: a Python expression over feedparser's result, such as
`not bozo and entries[0]['title'] == 'Example'`. This script reads every document with
tributary, maps tributary's JSON reading onto a feedparser-shaped dict, evaluates the
expression against it and classifies the case:

  pass      the expression holds for tributary's reading
  fail      the expression touches only fields tributary maps and is false (or raises a
            KeyError/IndexError on them), or tributary reads nothing or fails where
            feedparser reads the document
  unmapped  the expression touches something tributary does not model (see MAPPED and
            UNMAPPED_NAMES below): *_detail dicts, geo, cloud, image, textinput,
            publisher, license, raw date strings, `version`, `encoding`, `namespaces`,
            HTTP headers, or only `bozo` (tributary reads leniently and reports no
            well-formedness flag, so `not bozo and X` is scored on X alone). When a
            mapped field is absent from our reading, the expression is evaluated on
            feedparser's own result too: if it goes on to unmapped fields there, the
            case is unmapped (`entries[0]['authors'][0]['url']` with no authors of
            ours). A document where we find no entries and feedparser finds some
            fails whatever the expression is about.
  skipped   the test's own `SkipUnless:` condition does not hold

How each field is mapped, and the comparisons that are not plain equality:

  feed.title, entries[i].title   tributary keeps titles as plain text; feedparser keeps
      HTML when it takes a title for HTML (its title_detail.type). When feedparser's type
      is text/html or application/xhtml+xml, the text of feedparser's value (tags
      dropped, entities decoded) is compared with ours; when it is text/plain, the values
      are compared as they are. Whitespace runs compare equal to one space either way
      (tributary collapses them in plain text).
  feed.subtitle (description, tagline)   our feed description (plain text), compared as
      titles are, against feedparser's subtitle_detail.type.
  entries[i].summary (description), entries[i].content[0].value   tributary's summary and
      content are sanitized HTML. They compare equal to feedparser's value when both
      parse (html.parser) to the same sequence of start tags with their attributes (in
      any order), end tags and text; only serialization is normalized: `<br/>` is
      `<br>`, end tags of void elements are ignored, adjacent text runs are joined,
      character references are decoded, an attribute without value equals one with
      value "". A dropped or changed attribute, tag or text is a difference. When
      feedparser's type is text/plain its value is HTML-escaped first. feedparser copies
      an entry's content into its summary when there is no summary; the mapping does the
      same with ours.
  entries[i].id (guid)   our id, except the `hash:` ids tributary makes up for entries
      without guid and link (feedparser has no id there).
  feed.link, entries[i].link, feed.id, feed.language   as they are.
  *_parsed dates   time.gmtime of our UTC date (feedparser's are UTC struct_time too).
      The raw date strings (published, updated) are unmapped.
  entries[i].author   our first author; authors[j] = {'name': ...}. feedparser writes
      a name with an email as `name (email)`; tributary keeps the name, which is
      compared with the name part.
  entries[i].tags[j].term, category   our categories. tributary keeps a category's label
      when it has one: where feedparser's tag j has a label, ours is tags[j].label and
      tags[j].term is unmapped.
  entries[i].enclosures[j]   {href, type, length} with length as a string (feedparser's
      is). entries[i].links   the alternate link first ({rel: alternate, href}: its
      type is not kept), then enclosures ({rel: enclosure, href, type, length}), then the
      comments link ({rel: replies, href}). When feedparser's links of the entry include
      other relations (self, related, via, license, edit...), which tributary does not
      keep, `links` is unmapped for that entry: positions cannot line up.
  entries[i].comments   our comments link.
  A whole dict compared with `==` must use mapped keys only.

Documents whose path contains `http` are read by feedparser's own suite over HTTP, with
the headers their `Header:` lines name; this script does the same on a loopback port
and runs `tributary inspect http://127.0.0.1:PORT/...` for them.

Usage:
  conformance.py [--bin target/debug/tributary] [--only wellformed/atom10 ...]
                 [--out DIR] [--jobs 2] [--suite DIR | --tarball FILE]
                 [--baseline OLD/results.json]

With --baseline, the cases whose class changed since that run are listed in
changes.md (pass -> fail first) and counted under the table.
"""

import argparse
import ast
import calendar
import concurrent.futures
import datetime
import glob
import html
import html.parser
import http.server
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import traceback

FEEDPARSER_VERSION = "6.0.12"

# ---------------------------------------------------------------------------------
# What is mapped. Keys are feedparser's real keys (after its aliases are resolved).

MAPPED = {
    "root": {"feed", "entries"},
    "feed": {"title", "link", "subtitle", "id", "updated_parsed", "language"},
    "entry": {
        "title",
        "link",
        "links",
        "id",
        "summary",
        "content",
        "published_parsed",
        "updated_parsed",
        "author",
        "authors",
        "tags",
        "category",
        "enclosures",
        "comments",
    },
    "content": {"value"},
    # An enclosure link; the alternate link and the comments link keep no type.
    "link": {"rel", "href", "type", "length"},
    "altlink": {"rel", "href"},
    "enclosure": {"href", "type", "length"},
    "tag": {"term"},
    # A category with a label: tributary keeps the label, not the term.
    "labeltag": {"label"},
    "other": set(),
    "author": {"name"},
}

# feedparser's aliases (feedparser.util.FeedParserDict.keymap).
KEYMAP = {
    "channel": "feed",
    "items": "entries",
    "guid": "id",
    "date": "updated",
    "date_parsed": "updated_parsed",
    "description": ["summary", "subtitle"],
    "description_detail": ["summary_detail", "subtitle_detail"],
    "url": ["href"],
    "modified": "updated",
    "modified_parsed": "updated_parsed",
    "issued": "published",
    "issued_parsed": "published_parsed",
    "copyright": "rights",
    "copyright_detail": "rights_detail",
    "tagline": "subtitle",
    "tagline_detail": "subtitle_detail",
}

# Names of feedparser's result that tributary has no counterpart for.
UNMAPPED_NAMES = {
    "version",
    "encoding",
    "namespaces",
    "headers",
    "etag",
    "modified",
    "href",
    "status",
    "bozo_exception",
    "locals",
}


class Unmapped(Exception):
    """The expression reached a field tributary does not model."""


class Recorder:
    def __init__(self):
        self.touched = []  # (path, key, value repr)
        self.unmapped = None

    def note(self, path, key, value):
        if path:
            self.touched.append((path, key, value))


def _short(value, limit=300):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


class FPDict(dict):
    """A feedparser-shaped dict (aliases as feedparser's) that records what is read and
    raises Unmapped on keys tributary does not model at that place."""

    def __init__(self, kind, path, recorder, items=(), unmapped=()):
        super().__init__(items)
        self._kind = kind
        self._path = path
        self._rec = recorder
        self._unmapped = set(unmapped)

    def _real(self, key):
        if key == "category":
            return "category"
        real = KEYMAP.get(key, key)
        if isinstance(real, list):
            for k in real:
                if k in MAPPED[self._kind]:
                    return k
            return real[0]
        return real

    def _check(self, key):
        real = self._real(key)
        if real not in MAPPED[self._kind] or real in self._unmapped:
            self._rec.unmapped = f"{self._path}.{key}"
            raise Unmapped(self._rec.unmapped)
        return real

    def __getitem__(self, key):
        real = self._check(key)
        if real == "category":
            tags = dict.get(self, "tags") or []
            if not tags:
                self._rec.note(self._path, key, None)
                raise KeyError("category")
            value = tags[0]["term"]
        elif real == "enclosures":
            value = [
                FPDict("enclosure", f"{self._path}.enclosures[{i}]", self._rec,
                       [(k, v) for k, v in dict.items(link) if k != "rel"])
                for i, link in enumerate(
                    l for l in dict.get(self, "links", []) if dict.get(l, "rel") == "enclosure")
            ]
        elif real == "updated_parsed" and not dict.__contains__(self, real):
            # feedparser falls back to published_parsed (its issue 328).
            value = dict.get(self, "published_parsed")
            if value is None:
                self._rec.note(self._path, key, None)
                raise KeyError(key)
        else:
            if not dict.__contains__(self, real):
                self._rec.note(self._path, key, None)
                raise KeyError(key)
            value = dict.__getitem__(self, real)
        self._rec.note(self._path, key, _short(value))
        return value

    def __contains__(self, key):
        real = self._check(key)
        if real in ("updated_parsed",):
            present = dict.__contains__(self, real)
        else:
            try:
                self[key]
                present = True
            except KeyError:
                present = False
        self._rec.note(self._path, f"{key} in", present)
        return present

    def get(self, key, default=None):
        try:
            return self[key]
        except KeyError:
            return default

    def __getattr__(self, key):
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key)

    def __eq__(self, other):
        if not isinstance(other, dict):
            return NotImplemented
        for key in other:
            self._check(key)
        equal = set(dict.keys(self)) == set(other) and all(
            dict.__getitem__(self, k) == v for k, v in other.items())
        self._rec.note(self._path, "==", equal)
        return equal

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def keys(self):
        self._rec.unmapped = f"{self._path}.keys()"
        raise Unmapped(self._rec.unmapped)

    def __iter__(self):
        self._rec.unmapped = f"{self._path} iterated"
        raise Unmapped(self._rec.unmapped)

    __hash__ = object.__hash__


# ---------------------------------------------------------------------------------
# Comparisons that normalize representation only.

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "param", "source", "track", "wbr"}


class _Events(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.events = []

    def _text(self, data):
        if self.events and self.events[-1][0] == "text":
            self.events[-1] = ("text", self.events[-1][1] + data)
        else:
            self.events.append(("text", data))

    def handle_starttag(self, tag, attrs):
        self.events.append(("start", tag, tuple(sorted((k, v or "") for k, v in attrs))))

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.events.append(("end", tag))

    def handle_endtag(self, tag):
        if tag not in VOID:
            self.events.append(("end", tag))

    def handle_data(self, data):
        self._text(data)

    def handle_comment(self, data):
        # Comments are not content: ammonia drops them, feedparser keeps them.
        pass


def html_events(text):
    parser = _Events()
    parser.feed(text)
    parser.close()
    return [e for e in parser.events if not (e[0] == "text" and e[1] == "")]


LAST = threading.local()


def html_difference(ours, theirs):
    """What kind of difference two event sequences show, for grouping failures."""
    def shape(events, attrs):
        return [(e[0], e[1], e[2] if attrs else ()) if e[0] == "start" else
                (e[0], e[1]) if e[0] != "text" else ("text",) for e in events]
    if shape(ours, False) == shape(theirs, False):
        texts = [e[1] for e in ours if e[0] == "text"] == [e[1] for e in theirs if e[0] == "text"]
        if not texts:
            return "html text differs"
        ours_attrs = {a for e in ours if e[0] == "start" for a in e[2]}
        theirs_attrs = {a for e in theirs if e[0] == "start" for a in e[2]}
        if ours_attrs < theirs_attrs:
            return "html attribute dropped"
        return "html attribute differs"
    ours_tags = [e[1] for e in ours if e[0] == "start"]
    theirs_tags = [e[1] for e in theirs if e[0] == "start"]
    if set(ours_tags) < set(theirs_tags):
        return "html element dropped"
    if set(ours_tags) > set(theirs_tags):
        return "html element kept"
    return "html differs"


def html_text(text):
    return " ".join(
        "".join(e[1] for e in html_events(text) if e[0] == "text").split())


def collapse(text):
    return " ".join(text.split())


class PlainText(str):
    """Our plain-text title: equal to feedparser's value by its text when feedparser
    took the title for HTML, as it is otherwise (whitespace runs as one space)."""

    html_kind = False

    def __eq__(self, other):
        if not isinstance(other, str):
            return NotImplemented
        theirs = html_text(other) if self.html_kind else collapse(other)
        return collapse(str(self)) == theirs

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = str.__hash__


class Html(str):
    """Our sanitized HTML: equal to feedparser's value when both parse to the same
    tag/attribute/text events."""

    plain_kind = False

    def __eq__(self, other):
        if not isinstance(other, str):
            return NotImplemented
        theirs = html.escape(other, quote=False) if self.plain_kind else other
        ours, expected = html_events(str(self)), html_events(theirs)
        if ours != expected:
            LAST.html_diff = html_difference(ours, expected)
        return ours == expected

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = str.__hash__


class Author(PlainText):
    """Our author (a display name): feedparser writes a name with an email as
    `name (email)`; tributary keeps the name, which is compared with the name part."""

    def __eq__(self, other):
        if isinstance(other, str):
            found = re.fullmatch(r"(.+) \(([^()@\s]+@[^()\s]+)\)", other)
            if found:
                other = found.group(1)
        return PlainText.__eq__(self, other)

    __ne__ = PlainText.__ne__
    __hash__ = str.__hash__


def plain(value, detail):
    if value is None:
        return None
    out = PlainText(value)
    kind = (detail or {}).get("type") or "text/plain"
    out.html_kind = kind in ("text/html", "application/xhtml+xml")
    return out


def htmlish(value, detail):
    if value is None:
        return None
    out = Html(value)
    out.plain_kind = ((detail or {}).get("type") or "") == "text/plain"
    return out


def parsed_date(text):
    if not text:
        return None
    stamp = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return time.gmtime(calendar.timegm(stamp.utctimetuple()))


# ---------------------------------------------------------------------------------
# tributary's reading -> feedparser's shape.

def map_document(doc, fp, rec):
    """`doc` is tributary's inspect JSON, `fp` feedparser's result for the same
    document (used only for the types it gave to texts: title_detail and friends)."""
    fp_feed = fp.get("feed", {}) if fp else {}
    fp_entries = fp.get("entries", []) if fp else []
    info = doc.get("feed") or {}
    feed = FPDict("feed", "feed", rec)
    put(feed, "title", plain(info.get("title"), fp_feed.get("title_detail")))
    put(feed, "link", info.get("link"))
    put(feed, "subtitle", plain(info.get("description"), fp_feed.get("subtitle_detail")))
    put(feed, "id", info.get("id"))
    put(feed, "language", info.get("language"))
    put(feed, "updated_parsed", parsed_date(info.get("updated")))
    entries = []
    for i, item in enumerate(doc.get("items") or []):
        fpe = fp_entries[i] if i < len(fp_entries) else {}
        entries.append(map_item(item, fpe, f"entries[{i}]", rec))
    root = FPDict("root", "", rec)
    dict.__setitem__(root, "feed", feed)
    dict.__setitem__(root, "entries", entries)
    return root


def put(d, key, value):
    if value is not None:
        dict.__setitem__(d, key, value)


def map_item(item, fpe, path, rec):
    e = FPDict("entry", path, rec)
    put(e, "title", plain(item.get("title"), fpe.get("title_detail")))
    put(e, "link", item.get("link"))
    ident = item.get("id")
    if ident and not ident.startswith("hash:"):
        put(e, "id", ident)
    fp_content = (fpe.get("content") or [{}])[0]
    content = item.get("content")
    summary = item.get("summary")
    if summary is not None:
        put(e, "summary", htmlish(summary, fpe.get("summary_detail")))
    elif content is not None:
        put(e, "summary", htmlish(content, fpe.get("summary_detail") or fp_content))
    if content is not None:
        value = htmlish(content, fp_content)
        dict.__setitem__(e, "content",
                         [FPDict("content", f"{path}.content[0]", rec, [("value", value)])])
    put(e, "published_parsed", parsed_date(item.get("published")))
    put(e, "updated_parsed", parsed_date(item.get("updated")))
    authors = item.get("authors") or []
    if authors:
        put(e, "author", Author(authors[0]))
        dict.__setitem__(e, "authors", [
            FPDict("author", f"{path}.authors[{j}]", rec, [("name", a)])
            for j, a in enumerate(authors)])
    categories = item.get("categories") or []
    fp_tags = fpe.get("tags") or []
    if categories:
        tags = []
        for j, c in enumerate(categories):
            labelled = j < len(fp_tags) and fp_tags[j].get("label")
            kind, key = ("labeltag", "label") if labelled else ("tag", "term")
            tags.append(FPDict(kind, f"{path}.tags[{j}]", rec, [(key, PlainText(c))]))
        dict.__setitem__(e, "tags", tags)
    links = []
    if item.get("link"):
        links.append([("rel", "alternate"), ("href", item["link"])])
    for enc in item.get("enclosures") or []:
        fields = [("rel", "enclosure"), ("href", enc.get("url"))]
        if enc.get("type") is not None:
            fields.append(("type", enc["type"]))
        if enc.get("length") is not None:
            fields.append(("length", str(enc["length"])))
        links.append(fields)
    if item.get("comments"):
        links.append([("rel", "replies"), ("href", item["comments"])])
        put(e, "comments", item["comments"])
    dict.__setitem__(e, "links", [
        FPDict("link" if dict(fields)["rel"] == "enclosure" else "altlink",
               f"{path}.links[{j}]", rec, fields) for j, fields in enumerate(links)])
    # Links of other relations (self, related, via, license, edit...) are not kept:
    # positions in feedparser's list then say nothing about ours.
    kept = ("alternate", "enclosure", "replies")
    if any(link.get("rel") not in kept for link in fpe.get("links") or []):
        e._unmapped.add("links")
    return e


def shadow_document(fp, rec):
    """feedparser's own result in the same tracked shape: evaluating an expression on it
    shows which fields the expression reads when the data is there."""
    kept = ("alternate", "enclosure", "replies")

    def conv(value, kind, path):
        if isinstance(value, dict):
            out = FPDict(kind, path, rec)
            for key, v in value.items():
                dict.__setitem__(out, key, child(key, v, kind, f"{path}.{key}"))
            return out
        if isinstance(value, list):
            return [conv(v, kind, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    def child(key, value, parent, path):
        if parent == "entry" and key == "links":
            return [conv(l, "link" if l.get("rel") == "enclosure" else "altlink",
                         f"{path}[{i}]") for i, l in enumerate(value)]
        if parent == "entry" and key == "tags":
            return [conv(t, "labeltag" if t.get("label") else "tag", f"{path}[{i}]")
                    for i, t in enumerate(value)]
        kinds = {("entry", "content"): "content", ("entry", "authors"): "author"}
        return conv(value, kinds.get((parent, key), "other"), path)

    feed = conv(dict(fp.get("feed", {})), "feed", "feed")
    entries = []
    for i, e in enumerate(fp.get("entries", [])):
        entry = conv(dict(e), "entry", f"entries[{i}]")
        if any(l.get("rel") not in kept for l in e.get("links") or []):
            entry._unmapped.add("links")
        entries.append(entry)
    return feed, entries


# ---------------------------------------------------------------------------------
# The expression.

skip_re = re.compile(rb"SkipUnless:\s*(.*?)\n")
desc_re = re.compile(rb"Description:\s*(.*?)\s*Expect:\s*(.*)\s*-->")
header_re = re.compile(rb"^Header:\s+([^:]+):(.+)$", re.MULTILINE)


def convert_to_utf8(data):
    """As feedparser's runtests.py, to read the header of UTF-16/32 documents."""
    if data[:4] == b"\x00\x00\xfe\xff":
        return data[4:].decode("utf-32be").encode("utf-8")
    if data[:4] == b"\xff\xfe\x00\x00":
        return data[4:].decode("utf-32le").encode("utf-8")
    if data[:2] == b"\xfe\xff":
        return data[2:].decode("utf-16be").encode("utf-8")
    if data[:2] == b"\xff\xfe":
        return data[2:].decode("utf-16le").encode("utf-8")
    if data[:4] == b"\x00\x00\x00\x3c":
        return data.decode("utf-32be").encode("utf-8")
    if data[:4] == b"\x3c\x00\x00\x00":
        return data.decode("utf-32le").encode("utf-8")
    if data[:4] == b"\x00\x3c\x00\x3f":
        return data.decode("utf-16be").encode("utf-8")
    if data[:4] == b"\x3c\x00\x3f\x00":
        return data.decode("utf-16le").encode("utf-8")
    if data[:3] == b"\xef\xbb\xbf":
        return data[3:]
    return data


def is_bozo_test(node):
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    bozo = {"bozo", "bozo_exception"}
    return bool(names & bozo) and names <= bozo | {"isinstance", "str", "type"}


def strip_bozo(expr):
    """The expression without its `bozo` / `not bozo` conjuncts, or None when nothing
    else is left."""
    tree = ast.parse(expr, mode="eval")
    body = tree.body
    parts = body.values if isinstance(body, ast.BoolOp) and isinstance(body.op, ast.And) \
        else [body]
    kept = [p for p in parts if not is_bozo_test(p)]
    if not kept:
        return None
    new = kept[0] if len(kept) == 1 else ast.BoolOp(op=ast.And(), values=kept)
    return ast.fix_missing_locations(ast.Expression(body=new))


def static_unmapped(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in UNMAPPED_NAMES | {"bozo"}:
            return node.id
    return None


EVAL_GLOBALS = {"time": time, "datetime": datetime, "__builtins__": __builtins__}


def evaluate(expr, doc, fp, port, shadow=True):
    """(class, reason, touched) for one Expect expression on tributary's reading."""
    if port:
        expr = expr.replace("127.0.0.1:8097", f"127.0.0.1:{port}").replace(
            "localhost:8097", f"127.0.0.1:{port}")
    tree = strip_bozo(expr)
    if tree is None:
        return "unmapped", "bozo only", []
    name = static_unmapped(tree)
    if name:
        return "unmapped", name, []
    rec = Recorder()
    LAST.html_diff = None
    root = map_document(doc or {}, fp, rec)
    env = {"feed": root["feed"], "entries": root["entries"],
           "channel": root["feed"], "items": root["entries"]}
    code = compile(tree, "<expect>", "eval")
    try:
        result = eval(code, dict(EVAL_GLOBALS), env)
    except Unmapped as err:
        return "unmapped", str(err), rec.touched
    except (KeyError, IndexError, AttributeError, TypeError) as err:
        # Something we map is absent. When, with feedparser's data present, the
        # expression goes on to fields we do not map, the case is about those.
        if shadow and fp is not None:
            feed, entries = shadow_document(fp, Recorder())
            try:
                eval(code, dict(EVAL_GLOBALS), {"feed": feed, "entries": entries,
                                                "channel": feed, "items": entries})
            except Unmapped as beyond:
                return "unmapped", f"{beyond} (ours: {type(err).__name__} {err})", rec.touched
            except Exception:
                pass
        return "fail", f"{type(err).__name__}: {err}", rec.touched
    if not result and LAST.html_diff:
        return "fail", LAST.html_diff, rec.touched
    return ("pass" if result else "fail"), "", rec.touched


# ---------------------------------------------------------------------------------
# Running.

def locate_suite(args):
    if args.suite:
        return args.suite
    cache = args.cache
    root = os.path.join(cache, f"feedparser-{FEEDPARSER_VERSION}")
    if os.path.isdir(os.path.join(root, "tests", "wellformed")):
        return root
    os.makedirs(cache, exist_ok=True)
    tarball = args.tarball or os.path.join(cache, f"feedparser-{FEEDPARSER_VERSION}.tar.gz")
    if not os.path.exists(tarball):
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
             "--no-deps", "--dest", cache, f"feedparser=={FEEDPARSER_VERSION}"],
            check=True)
    with tarfile.open(tarball) as tar:
        try:
            tar.extractall(cache, filter="data")
        except TypeError:  # Python before 3.12 has no extraction filters
            tar.extractall(cache)
    return root


def load_feedparser(suite):
    """feedparser itself, from the suite's own sources when they import (they need
    sgmllib3k), else the installed one; None when there is none."""
    sys.path.insert(0, suite)
    try:
        import feedparser  # noqa: F401
        return feedparser
    except ImportError:
        sys.path.pop(0)
        try:
            import feedparser  # noqa: F401
            return feedparser
        except ImportError:
            return None


class Handler(http.server.SimpleHTTPRequestHandler):
    """Serves the suite with the headers each document's `Header:` lines name, as
    feedparser's runtests.py does."""

    def send_head(self):
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return None
        with open(path, "rb") as f:
            blob = f.read()
        headers = {k.decode().strip(): v.decode().strip() for k, v in header_re.findall(blob)}
        status = int(headers.pop("Status", 200))
        self.send_response(status)
        ctype = headers.pop("Content-type", None) or self.guess_type(path)
        self.send_header("Content-type", ctype)
        self.send_header("Content-Length", str(len(blob)))
        for k, v in headers.items():
            if k == "Content-Location" or k == "Location":
                v = v.replace("8097", str(self.server.server_port))
            self.send_header(k, v)
        self.end_headers()
        import io
        return io.BytesIO(blob)

    def log_message(self, *args):
        pass


def serve(directory):
    handler = lambda *a, **k: Handler(*a, directory=directory, **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def collect(suite, only):
    files = []
    for pattern in ("wellformed/*/*.xml", "illformed/*.xml", "illformed/*/*.xml",
                    "encoding/*.xml", "entities/*.xml"):
        files += glob.glob(os.path.join(suite, "tests", pattern))
    rel = sorted(os.path.relpath(f, os.path.join(suite, "tests")) for f in files)
    if only:
        rel = [r for r in rel if any(r.startswith(o.rstrip("/")) for o in only)]
    return rel


def folder_of(rel):
    parts = rel.split("/")
    return "/".join(parts[:2]) if parts[0] in ("wellformed", "illformed") and len(parts) > 2 \
        else parts[0]


def run_inspect(binary, target, timeout):
    try:
        proc = subprocess.run([binary, "inspect", target, "--json"], capture_output=True,
                              timeout=timeout, env={**os.environ, "RUST_BACKTRACE": "0"})
    except subprocess.TimeoutExpired:
        return None, "timeout"
    if proc.returncode != 0:
        err = proc.stderr.decode("utf-8", "replace").strip()
        crashed = proc.returncode < 0 or "panicked" in err
        last = (err.splitlines() or ["exit %d" % proc.returncode])[-1]
        last = last.replace(target + ": ", "").replace("tributary: ", "")
        return None, ("CRASH " if crashed else "") + last
    try:
        return json.loads(proc.stdout), None
    except ValueError as err:
        return None, f"bad JSON: {err}"


def fp_reads(fp):
    if not fp:
        return False
    return bool(fp.get("entries")) or bool(fp.get("feed", {}).get("title"))


def score_one(rel, suite, fp_mod, binary, port, timeout):
    path = os.path.join(suite, "tests", rel)
    with open(path, "rb") as f:
        data = f.read()
    header = convert_to_utf8(data) if "encoding" in rel else data
    case = {"path": rel, "folder": folder_of(rel)}
    found = desc_re.search(header)
    if not found and data[:4] == b"\x4c\x6f\xa7\x94":
        # EBCDIC ("<?xm" in code page 037): its header is readable once decoded.
        header = data.decode("cp037").encode("utf-8")
        found = desc_re.search(header)
    if not found:
        case.update(cls="skipped", reason="no Expect header")
        return case
    description, expect = [s.strip().decode("utf-8") for s in found.groups()]
    case.update(description=description, expect=expect)
    skip = skip_re.search(header)
    if skip:
        try:
            if not eval(skip.group(1).strip().decode(), {"feedparser": fp_mod, "sys": sys}):
                raise NotImplementedError
        except Exception:
            case.update(cls="skipped", reason="SkipUnless: " + skip.group(1).decode())
            return case
    is_http = "http" in rel
    target = f"http://127.0.0.1:{port}/tests/{rel}" if is_http else path
    doc, error = run_inspect(binary, target, timeout)
    fp = None
    if fp_mod is not None:
        try:
            fp = fp_mod.parse(target)
        except Exception:
            fp = None
    case["ours"] = None if doc is None else {"feed": doc.get("feed"), "items": doc.get("items")}
    if error:
        case["error"] = error
    if error and fp_reads(fp):
        case.update(cls="fail", klass="crash" if error.startswith("CRASH") else "error",
                    reason=error)
        return case
    # Where we find no entries and feedparser finds some, the case fails whatever
    # else it is about: the document was not read.
    lost = bool(doc is not None and not doc.get("items") and fp and fp.get("entries"))
    cls, reason, touched = evaluate(expect, doc, fp, port if is_http else None,
                                    shadow=not lost)
    case.update(cls=cls, reason=reason, touched=touched)
    if cls == "fail":
        case["klass"] = fail_class(doc, fp, touched, error, reason)
    return case


def real_name(path, key):
    """feedparser's own name for an alias (`tagline`, `description`, `guid`...)."""
    suffix = " in" if key.endswith(" in") else ""
    key = key[: -len(suffix)] if suffix else key
    real = KEYMAP.get(key, key)
    if isinstance(real, list):
        real = "subtitle" if path == "feed" and key == "description" else real[0]
    return real + suffix


def fail_class(doc, fp, touched, error, reason):
    if error:
        return "error"
    if doc is not None and not doc.get("items") and fp and fp.get("entries"):
        return "no entries"
    keys = [(re.sub(r"\[\d+\]", "[]", p) + "." + real_name(p, k)).lstrip(".")
            for p, k, _ in touched if p not in ("",)]
    if not keys:
        return "other"
    last = keys[-1].replace(" in", "")
    if touched[-1][2] is None and not touched[-1][1].endswith(" in"):
        last += " (absent)"
    if reason.startswith("html "):
        last += ": " + reason
    return last


def default_cache(here):
    """target/conformance in the repository (bench/../target), else beside the script."""
    repo = os.path.dirname(here)
    if os.path.basename(here) == "bench" and os.path.exists(os.path.join(repo, "Cargo.toml")):
        return os.path.join(repo, "target", "conformance")
    return os.path.join(here, "cache")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", default="target/debug/tributary")
    ap.add_argument("--only", action="append", default=[],
                    help="path prefix inside tests/, e.g. wellformed/atom10 (repeatable)")
    ap.add_argument("--out", default=None, help="directory for the reports")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--suite", help="an extracted feedparser source tree")
    ap.add_argument("--tarball", help="the feedparser sdist")
    ap.add_argument("--cache", default=os.environ.get("CONFORMANCE_CACHE") or default_cache(here),
                    help="where the feedparser sdist is downloaded and extracted")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--baseline", metavar="RESULTS_JSON",
                    help="the results.json of an earlier run: print which cases changed")
    args = ap.parse_args()

    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        sys.exit(f"no tributary binary at {binary}: run `cargo build` or pass --bin")
    suite = os.path.abspath(locate_suite(args))
    fp_mod = load_feedparser(suite)
    if fp_mod is None:
        print("warning: feedparser is not importable; title/summary types default to "
              "plain text/HTML, and `error` cases cannot be told from unreadable ones",
              file=sys.stderr)
    files = collect(suite, args.only)
    server = serve(suite)
    port = server.server_port
    started = time.time()
    lock = threading.Lock()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(score_case_safe, rel, suite, fp_mod, binary, port,
                               args.timeout, lock) for rel in files]
        cases = [f.result() for f in futures]
    server.shutdown()
    elapsed = time.time() - started
    out = args.out or os.path.join(os.getcwd(), "conformance-report")
    os.makedirs(out, exist_ok=True)
    summary = render_summary(cases, binary, elapsed)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary)
    with open(os.path.join(out, "failures.md"), "w") as f:
        f.write(render_failures(cases))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(cases, f, indent=1, default=str)
    if args.baseline:
        changes = render_changes(cases, args.baseline)
        with open(os.path.join(out, "changes.md"), "w") as f:
            f.write(changes)
        summary += "\n" + changes.split("\n\n")[0] + "\n"
    if not args.quiet:
        print(summary)
        print(f"reports: {out}/summary.md, failures.md, results.json"
              + (", changes.md" if args.baseline else ""))


def render_changes(cases, baseline_path):
    """The cases whose class changed since an earlier run, regressions first."""
    with open(baseline_path) as f:
        before = {c["path"]: c for c in json.load(f)}
    moved = {}
    for c in cases:
        old = before.get(c["path"])
        if old and old["cls"] != c["cls"]:
            moved.setdefault((old["cls"], c["cls"]), []).append(c)
    order = sorted(moved, key=lambda k: (k[0] != "pass", k))
    head = ", ".join(f"{a} -> {b}: {len(moved[(a, b)])}" for a, b in order) or "no case changed"
    out = [f"changes since {baseline_path}: {head}", ""]
    for a, b in order:
        out.append(f"## {a} -> {b} ({len(moved[(a, b)])})")
        out.append("")
        for c in moved[(a, b)]:
            note = c.get("klass") or c.get("reason") or ""
            out.append(f"- `{c['path']}` {note}".rstrip())
        out.append("")
    return "\n".join(out)


def score_case_safe(rel, suite, fp_mod, binary, port, timeout, lock):
    # feedparser is not thread-safe in every version: its reads take a lock.
    try:
        return score_one(rel, suite, LockedFP(fp_mod, lock) if fp_mod else None,
                         binary, port, timeout)
    except Exception:
        return {"path": rel, "folder": folder_of(rel), "cls": "fail", "klass": "scorer error",
                "expect": "",
                "reason": traceback.format_exc(limit=3)}


class LockedFP:
    def __init__(self, mod, lock):
        self.mod, self.lock = mod, lock
        self.__version__ = getattr(mod, "__version__", "")

    def parse(self, target):
        with self.lock:
            return self.mod.parse(target)

    def __getattr__(self, name):
        return getattr(self.mod, name)


def render_summary(cases, binary, elapsed):
    folders = {}
    for c in cases:
        row = folders.setdefault(c["folder"], {"pass": 0, "fail": 0, "unmapped": 0, "skipped": 0})
        row[c["cls"]] += 1
    lines = ["| folder | cases | pass | fail | unmapped | skipped | mapped pass rate |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    total = {"pass": 0, "fail": 0, "unmapped": 0, "skipped": 0}
    for name in sorted(folders):
        row = folders[name]
        for k in total:
            total[k] += row[k]
        lines.append(table_row(name, row))
    lines.append(table_row("**total**", total))
    crashes = sum(1 for c in cases if "CRASH" in (c.get("error") or ""))
    head = (f"feedparser {FEEDPARSER_VERSION} test suite against {binary}\n"
            f"({len(cases)} documents, {elapsed:.0f} s; crashes: {crashes})\n\n")
    return head + "\n".join(lines) + "\n"


def table_row(name, row):
    mapped = row["pass"] + row["fail"]
    rate = f"{100 * row['pass'] / mapped:.1f}%" if mapped else "-"
    return (f"| {name} | {sum(row.values())} | {row['pass']} | {row['fail']} | "
            f"{row['unmapped']} | {row['skipped']} | {rate} |")


def render_failures(cases):
    fails = [c for c in cases if c["cls"] == "fail"]
    groups = {}
    for c in fails:
        groups.setdefault((c["folder"], c.get("klass", "other")), []).append(c)
    out = [f"# Failures ({len(fails)})", "",
           "Grouped by folder and by the last field the expression read (`error`: "
           "tributary rejected a document feedparser reads; `no entries`: tributary "
           "found no entry where feedparser found some).", ""]
    totals = {}
    for c in fails:
        totals[c.get("klass", "other")] = totals.get(c.get("klass", "other"), 0) + 1
    out.append("| class (all folders) | cases |")
    out.append("|---|---:|")
    for klass, n in sorted(totals.items(), key=lambda kv: -kv[1]):
        out.append(f"| {klass} | {n} |")
    out.append("")
    out.append("| folder | class | cases |")
    out.append("|---|---|---:|")
    for (folder, klass), group in sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
        out.append(f"| {folder} | {klass} | {len(group)} |")
    out.append("")
    for (folder, klass), group in sorted(groups.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
        out.append(f"## {folder}: {klass} ({len(group)})")
        out.append("")
        for c in group:
            out.append(f"- `{c['path']}`: {c.get('description', '')}")
            out.append(f"  - expect: `{c.get('expect', '')}`")
            if c.get("reason"):
                out.append(f"  - {c['reason']}")
            ours = [f"{p}.{k}={v}".lstrip(".") for p, k, v in c.get("touched") or []]
            if ours:
                out.append("  - ours: " + "; ".join(ours)[:600])
            elif c.get("error") and c.get("reason") != c.get("error"):
                out.append(f"  - tributary: {c['error'][:300]}")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    main()
