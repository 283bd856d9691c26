//! Pure: where each entry of an XML feed lies in its bytes, so an entry the source
//! sent before, byte for byte, can be recognised without parsing it.
//!
//! A feed document that changed usually changed by one new entry on top; the others
//! are the bytes of the last poll. [`scan`] tokenizes the document (tags only, no
//! unescaping, about a microsecond an entry) and returns the byte range of every
//! entry (`<item>` of RSS 0.9x/1.0/2.0, `<entry>` of Atom) and a hash of what gives
//! an entry its meaning besides its own bytes: the prolog (XML declaration, DOCTYPE;
//! one that declares entities is not scanned) and the start tags of the elements
//! around the entries (namespaces, `xml:base`, `xml:lang`). [`without`] cuts entries out; what is left
//! is still a well-formed document of the same feed. The scheduler decides which
//! entries to cut (`scheduler::known`).
//!
//! A JSON Feed is scanned too: its entries are the elements of its `items` array,
//! their context every other member of the document, and cutting entries rewrites
//! the array with the others.
//!
//! Only a document that tokenizes cleanly from its prolog to its root's end tag,
//! valid UTF-8 without NUL or escape bytes (so its charset reads its remaining bytes
//! as it would read the whole), is scanned; anything else is read whole. A document in
//! another charset is scanned as the UTF-8 text it decodes to (`charset::to_utf8`,
//! by the scheduler).

mod layout;

use std::ops::Range;
use xxhash_rust::xxh3::Xxh3;

pub use layout::Layout;
use layout::Tracker;

/// The entries of a scanned document.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// Hash of the prolog and of the start tags of the entries' ancestors.
    pub context: u64,
    /// Byte range of each entry, start tag to end tag (a JSON Feed's item: the
    /// object), in document order.
    pub entries: Vec<Range<usize>>,
    /// A JSON Feed's `items` array, brackets included; `None` for XML.
    json_items: Option<Range<usize>>,
    /// Where this document's entries lie, for the next scan of the same source.
    pub layout: Option<Layout>,
    /// The run of the last document's entries stepped over, not tokenized.
    stepped: Option<Range<usize>>,
}

impl Scan {
    /// The fingerprint of entry `i`: its bytes in this document's context, under
    /// `seed` (what else the caller reads it with).
    pub fn fingerprint(&self, body: &[u8], i: usize, seed: u64) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(&body[self.entries[i].clone()], self.context ^ seed)
    }

    /// `body` without the entries numbered in `cut` (ascending): still a document of
    /// the same feed.
    pub fn cut(&self, body: &[u8], cut: &[usize]) -> Vec<u8> {
        let Some(array) = &self.json_items else {
            let ranges: Vec<_> = cut.iter().map(|&i| self.entries[i].clone()).collect();
            return without(body, &ranges);
        };
        // The kept items, comma-separated, in the array's place.
        let mut kept = Vec::with_capacity(body.len());
        kept.extend_from_slice(&body[..array.start]);
        kept.push(b'[');
        let mut first = true;
        for (i, entry) in self.entries.iter().enumerate() {
            if cut.binary_search(&i).is_err() {
                if !first {
                    kept.push(b',');
                }
                first = false;
                kept.extend_from_slice(&body[entry.clone()]);
            }
        }
        kept.push(b']');
        kept.extend_from_slice(&body[array.end..]);
        kept
    }
}

/// The entries of `body` and their context; `None` when the document is not one
/// this can vouch for (not UTF-8, not well-formed, no root element, JSON that is not
/// an object with one `items` array). `last` is where the entries of the source's
/// last document lay: the run of them this one repeats is stepped over, not
/// tokenized again (see [`layout`]); the scan comes out the same.
pub fn scan(body: &[u8], last: Option<&Layout>) -> Option<Scan> {
    if body.trim_ascii_start().starts_with(b"{") {
        return valid(body).then(|| scan_json(body))?;
    }
    let scan = scan_xml(body, last)?;
    // The run stepped over is the last document's bytes, checked then; it starts
    // and ends at a tag, between two characters.
    let run = scan.stepped.clone().unwrap_or(body.len()..body.len());
    (valid(&body[..run.start]) && valid(&body[run.end..])).then_some(scan)
}

/// Whether `text` is UTF-8 without NUL or escape bytes.
fn valid(text: &[u8]) -> bool {
    std::str::from_utf8(text).is_ok() && memchr::memchr2(0, 0x1b, text).is_none()
}

/// An element open around the scan's position.
struct Open {
    /// Its qualified name, where it lies in the body.
    name: Range<usize>,
    /// Its start tag.
    tag: Range<usize>,
    /// Whether its start tag is in the context yet.
    hashed: bool,
}

/// What a piece of markup is, once read.
enum Markup {
    Start {
        name: Range<usize>,
        empty: bool,
    },
    End {
        name: Range<usize>,
    },
    /// A comment, processing instruction, CDATA section or DOCTYPE.
    Other,
}

/// An XML document's entries. A tokenizer of its own rather than quick-xml's: it
/// needs only tags, and quick-xml's events (one per character reference in escaped
/// HTML, each name checked as UTF-8) made the scan a tenth of a steady daemon's CPU.
/// It is stricter than an XML parser needs to be where that is cheap (every `&`
/// starts a well-formed reference, no `<` in an attribute value, end tags match):
/// whatever it refuses is read whole.
fn scan_xml(body: &[u8], last: Option<&Layout>) -> Option<Scan> {
    let mut context = Xxh3::new();
    let mut open: Vec<Open> = Vec::new();
    let mut entries = Vec::new();
    // The depth at which the current entry opened, and where.
    let mut entry: Option<(usize, usize)> = None;
    let mut rooted = false;
    let mut layout = Tracker::new(last);
    let mut at = 0;
    loop {
        let lt = memchr::memchr(b'<', &body[at..]).map(|i| at + i);
        let text = at..lt.unwrap_or(body.len());
        references(&body[text.clone()])?;
        if open.is_empty() {
            // The prolog and what follows the root.
            context.update(&body[text]);
        }
        let Some(lt) = lt else { break };
        let (markup, end) = markup(body, lt, rooted)?;
        match markup {
            Markup::Start { name, empty } => {
                let local = local_name(&body[name.clone()]);
                if entry.is_none() && is_entry(&open, body, local) {
                    let hashed = hash_ancestors(&mut open, body, &mut context);
                    layout.started(&open, body, hashed);
                    if empty {
                        if let Some(next) = layout.ended(body, &mut entries, lt..end, &open) {
                            at = next;
                            continue;
                        }
                    } else {
                        entry = Some((open.len(), lt));
                    }
                }
                if open.is_empty() {
                    if rooted || empty {
                        return None;
                    }
                    rooted = true;
                }
                if !empty {
                    open.push(Open {
                        name,
                        tag: lt..end,
                        hashed: false,
                    });
                }
            }
            Markup::End { name } => {
                let opened = open.pop()?;
                if body[opened.name] != body[name] {
                    return None;
                }
                if let Some((depth, start)) = entry
                    && open.len() == depth
                {
                    entry = None;
                    if let Some(next) = layout.ended(body, &mut entries, start..end, &open) {
                        at = next;
                        continue;
                    }
                }
            }
            Markup::Other if open.is_empty() => context.update(&body[lt..end]),
            Markup::Other => {}
        }
        at = end;
    }
    if !rooted || !open.is_empty() {
        return None;
    }
    let (layout, stepped) = layout.finish(body, &entries);
    Some(Scan {
        context: context.digest(),
        entries,
        json_items: None,
        layout,
        stepped,
    })
}

/// The markup that starts at `lt` (a `<`) and the position just past it; `None`
/// when it is not well-formed. A DOCTYPE is taken only before the root, a CDATA
/// section only in it, and a DOCTYPE that declares entities not at all.
fn markup(body: &[u8], lt: usize, rooted: bool) -> Option<(Markup, usize)> {
    let rest = &body[lt..];
    let past = |from: usize, end: &[u8]| {
        memchr::memmem::find(&body[lt + from..], end).map(|i| lt + from + i + end.len())
    };
    if rest.starts_with(b"<!--") {
        return Some((Markup::Other, past(4, b"-->")?));
    }
    if rest.starts_with(b"<![CDATA[") {
        return Some((Markup::Other, past(9, b"]]>").filter(|_| rooted)?));
    }
    if rest.starts_with(b"<?") {
        return Some((Markup::Other, past(2, b"?>")?));
    }
    if rest.starts_with(b"<!DOCTYPE") && !rooted {
        // Declared entities are expanded under one budget for the whole document:
        // whether an entry's references expand depends on the entries before it.
        let end = doctype(body, lt + 9)?;
        return memchr::memmem::find(&body[lt..end], b"<!ENTITY")
            .is_none()
            .then_some((Markup::Other, end));
    }
    if let Some(after) = rest.strip_prefix(b"</") {
        let name = name_length(after);
        let close = after[name..].trim_ascii_start();
        let end = body.len() - close.len() + 1;
        let name = lt + 2..lt + 2 + name;
        return (!name.is_empty() && close.first() == Some(&b'>'))
            .then_some((Markup::End { name }, end));
    }
    let name = lt + 1..lt + 1 + name_length(&rest[1..]);
    if name.is_empty()
        || !matches!(
            body.get(name.end),
            Some(b'/' | b'>' | b' ' | b'\t' | b'\r' | b'\n')
        )
    {
        return None;
    }
    // The attributes: quoted values may hold `>` and `/`, but no `<`; outside them a
    // `/` may only close an empty element.
    let mut at = name.end;
    loop {
        let found = at + memchr::memchr3(b'>', b'"', b'\'', &body[at..])?;
        let between = &body[at..found];
        let slash = memchr::memchr(b'/', between);
        if memchr::memchr(b'<', between).is_some() {
            return None;
        }
        if body[found] == b'>' {
            let empty = slash.is_some();
            return (slash.is_none_or(|slash| at + slash == found - 1))
                .then_some((Markup::Start { name, empty }, found + 1));
        }
        if slash.is_some() {
            return None;
        }
        let close = found + 1 + memchr::memchr(body[found], &body[found + 1..])?;
        let value = &body[found + 1..close];
        if memchr::memchr(b'<', value).is_some() {
            return None;
        }
        references(value)?;
        at = close + 1;
    }
}

/// The length of the name at the start of `tag`: up to a space or a byte no name
/// holds.
fn name_length(tag: &[u8]) -> usize {
    tag.iter()
        .position(|b| {
            b.is_ascii_whitespace()
                || matches!(b, b'/' | b'>' | b'<' | b'"' | b'\'' | b'=' | b'&' | b';')
        })
        .unwrap_or(tag.len())
}

/// The position past a DOCTYPE whose keyword ends at `from`: its internal subset
/// (between `[` and `]`, where quoted strings and comments may hold either) and `>`.
fn doctype(body: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    let mut subset = false;
    loop {
        match *body.get(at)? {
            quote @ (b'"' | b'\'') => at += 1 + memchr::memchr(quote, &body[at + 1..])?,
            b'<' if subset && body[at..].starts_with(b"<!--") => {
                at += 4 + memchr::memmem::find(&body[at + 4..], b"-->")? + 2;
            }
            b'[' if !subset => subset = true,
            b']' if subset => subset = false,
            b'>' if !subset => return Some(at + 1),
            _ => {}
        }
        at += 1;
    }
}

/// `Some` when every `&` in `text` starts a well-formed reference: `&name;`,
/// `&#digits;` or `&#xhex;`.
fn references(text: &[u8]) -> Option<()> {
    let mut at = 0;
    while let Some(amp) = memchr::memchr(b'&', &text[at..]) {
        let rest = &text[at + amp + 1..];
        let (digits, allowed): (usize, fn(&u8) -> bool) = match rest {
            [b'#', b'x', ..] => (2, u8::is_ascii_hexdigit),
            [b'#', ..] => (1, u8::is_ascii_digit),
            _ => (0, |b| {
                b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
            }),
        };
        let length = rest[digits..].iter().take_while(|b| allowed(b)).count();
        if length == 0 || rest.get(digits + length) != Some(&b';') {
            return None;
        }
        at += amp + 1 + digits + length + 1;
    }
    Some(())
}

/// The local part of a qualified name: what follows its prefix.
fn local_name(name: &[u8]) -> &[u8] {
    memchr::memchr(b':', name).map_or(name, |colon| &name[colon + 1..])
}

/// A JSON Feed: each element of the top-level `items` array is an entry, and the
/// context is everything else (every other member, in its bytes). Only valid JSON
/// whose top-level object names `items` once, as an array, is scanned.
fn scan_json(body: &[u8]) -> Option<Scan> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    let mut json = Json { body, at: 0 };
    json.space();
    json.expect(b'{')?;
    let mut items: Option<(Range<usize>, Vec<Range<usize>>)> = None;
    json.space();
    if !json.eat(b'}') {
        loop {
            json.space();
            let key = json.string()?;
            json.space();
            json.expect(b':')?;
            json.space();
            if &body[key] == b"\"items\"" {
                if items.is_some() {
                    return None;
                }
                items = Some(json.array()?);
            } else {
                json.value()?;
            }
            json.space();
            if !json.eat(b',') {
                json.expect(b'}')?;
                break;
            }
        }
    }
    let (array, entries) = items?;
    let mut context = Xxh3::new();
    context.update(b"json\xff");
    context.update(&body[..array.start]);
    context.update(&[0xff]);
    context.update(&body[array.end..]);
    Some(Scan {
        context: context.digest(),
        entries,
        json_items: Some(array),
        layout: None,
        stepped: None,
    })
}

/// A cursor over a JSON document already known to be valid.
struct Json<'a> {
    body: &'a [u8],
    at: usize,
}

impl Json<'_> {
    fn space(&mut self) {
        while self.body.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.body.get(self.at) == Some(&byte);
        self.at += usize::from(found);
        found
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.eat(byte).then_some(())
    }

    /// A string, quotes included.
    fn string(&mut self) -> Option<Range<usize>> {
        let start = self.at;
        self.expect(b'"')?;
        loop {
            match self.body.get(self.at)? {
                b'"' => break,
                b'\\' => self.at += 2,
                _ => self.at += 1,
            }
        }
        self.at += 1;
        Some(start..self.at)
    }

    /// Any value: a string, an object or array (whatever it nests), a number or a
    /// literal.
    fn value(&mut self) -> Option<()> {
        match self.body.get(self.at)? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.body.get(self.at)? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => depth -= 1,
                        _ => {}
                    }
                    self.at += 1;
                    if depth == 0 {
                        break;
                    }
                }
            }
            _ => {
                let start = self.at;
                while self
                    .body
                    .get(self.at)
                    .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
                {
                    self.at += 1;
                }
                (self.at > start).then_some(())?;
            }
        }
        Some(())
    }

    /// An array: its range, brackets included, and each element's.
    fn array(&mut self) -> Option<(Range<usize>, Vec<Range<usize>>)> {
        let start = self.at;
        self.expect(b'[')?;
        let mut elements = Vec::new();
        self.space();
        if !self.eat(b']') {
            loop {
                self.space();
                let element = self.at;
                self.value()?;
                elements.push(element..self.at);
                self.space();
                if !self.eat(b',') {
                    self.expect(b']')?;
                    break;
                }
            }
        }
        Some((start..self.at, elements))
    }
}

/// Whether an element named `local` inside `open` is an entry: an `item` in an RSS
/// channel (or at the top of an RDF document) or an `entry` of an Atom feed.
fn is_entry(open: &[Open], body: &[u8], local: &[u8]) -> bool {
    let name = |i: usize| local_name(&body[open[i].name.clone()]);
    match (local, open.len()) {
        (b"item", 1) => name(0) == b"RDF",
        (b"item", 2) => name(1) == b"channel" && matches!(name(0), b"rss" | b"RDF"),
        (b"entry", 1) => name(0) == b"feed",
        _ => false,
    }
}

/// Hashes the start tags of the open elements not hashed yet: an entry's ancestors.
/// Says whether there were any.
fn hash_ancestors(open: &mut [Open], body: &[u8], context: &mut Xxh3) -> bool {
    let mut any = false;
    for element in open.iter_mut().filter(|element| !element.hashed) {
        context.update(&body[element.tag.clone()]);
        element.hashed = true;
        any = true;
    }
    any
}

/// `body` without the byte ranges `cut` (in document order, not overlapping).
pub fn without(body: &[u8], cut: &[Range<usize>]) -> Vec<u8> {
    let mut kept = Vec::with_capacity(body.len());
    let mut from = 0;
    for range in cut {
        kept.extend_from_slice(&body[from..range.start]);
        from = range.end;
    }
    kept.extend_from_slice(&body[from..]);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title>
<lastBuildDate>Mon, 01 Jun 2026 10:00:00 GMT</lastBuildDate>
<item><title>One &amp; <![CDATA[a > b]]></title><guid>1</guid></item>
<item><title>Two</title><guid>2</guid><item>nested</item></item>
<item/>
</channel></rss>"#;

    fn spans(body: &str) -> Vec<&str> {
        let scan = scan(body.as_bytes(), None).expect("scanned");
        scan.entries.iter().map(|r| &body[r.clone()]).collect()
    }

    #[test]
    fn entries_are_found_whole_in_every_format() {
        assert_eq!(
            spans(RSS),
            [
                "<item><title>One &amp; <![CDATA[a > b]]></title><guid>1</guid></item>",
                "<item><title>Two</title><guid>2</guid><item>nested</item></item>",
                "<item/>"
            ]
        );
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><entry><id>1</id></entry><atom:entry xmlns:atom="http://www.w3.org/2005/Atom"><id>2</id></atom:entry></feed>"#;
        assert_eq!(
            spans(atom),
            [
                "<entry><id>1</id></entry>",
                r#"<atom:entry xmlns:atom="http://www.w3.org/2005/Atom"><id>2</id></atom:entry>"#
            ]
        );
        let rdf = r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"><channel><items><rdf:Seq><rdf:li resource="x"/></rdf:Seq></items></channel><item rdf:about="x"><title>X</title></item></rdf:RDF>"#;
        assert_eq!(
            spans(rdf),
            [r#"<item rdf:about="x"><title>X</title></item>"#]
        );
    }

    #[test]
    fn only_documents_that_tokenize_cleanly_are_scanned() {
        for body in [
            "{\"version\": \"https://jsonfeed.org/version/1.1\", \"items\": {}}",
            "{\"items\": [], \"items\": []}",
            "{\"items\": [{\"id\": 1},]}",
            "{\"title\": \"no items\"}",
            "[{\"items\": []}]",
            "<rss><channel><item><title>a & b</title></item></channel></rss>",
            "<rss><channel><item><title>x</item></channel></rss>",
            "<rss><channel><item>x</item></channel>",
            "<rss/><rss/>",
            "<rss><channel><item>\0</item></channel></rss>",
            "",
        ] {
            assert_eq!(scan(body.as_bytes(), None), None, "{body}");
        }
        assert_eq!(
            scan(b"<rss><channel><item>\xe9</item></channel></rss>", None),
            None
        );
    }

    #[test]
    fn markup_that_looks_like_an_entry_is_not_one() {
        let body = concat!(
            "\u{feff}<?xml version=\"1.0\"?>\n",
            "<!DOCTYPE rss [<!ATTLIST rss a CDATA \"]>\"><!-- ] > --><!ATTLIST item b CDATA '<item>'>]>\n",
            "<!-- <item>not one</item> -->\n<rss><channel>\n",
            "<item><description><![CDATA[</item><item>]]></description></item>\n",
            "<item><link href=\"/a>b/\" rel='x/y'/><!-- </item> --></item>\n",
            "</channel></rss>"
        );
        assert_eq!(
            spans(body),
            [
                "<item><description><![CDATA[</item><item>]]></description></item>",
                "<item><link href=\"/a>b/\" rel='x/y'/><!-- </item> --></item>"
            ]
        );
    }

    #[test]
    fn what_an_xml_parser_might_read_otherwise_is_not_scanned() {
        for body in [
            "<rss><channel><item>&amp</item></channel></rss>",
            "<rss><channel><item>&#x;</item></channel></rss>",
            "<rss><channel><item>&a b;</item></channel></rss>",
            "<rss><channel><item a=\"<b>\"></item></channel></rss>",
            "<rss><channel><item a=\"&\"></item></channel></rss>",
            "<rss><channel><item a=\"x></item></channel></rss>",
            "<rss><channel><it'em/></channel></rss>",
            "<rss><channel><item/ a=\"b\"></item></channel></rss>",
            "<rss><channel><item></ item></channel></rss>",
            "<rss><channel><![CDATA[x]]><!ELEMENT x></channel></rss>",
            "<![CDATA[x]]><rss/>",
            "<rss><channel><item>< /item></channel></rss>",
            "<rss><channel><item><!-- x </item></channel></rss>",
            "<rss></rss><!DOCTYPE rss>",
            "<!DOCTYPE rss [<!ENTITY e \"x\">]><rss><channel><item>&e;</item></channel></rss>",
        ] {
            assert_eq!(scan(body.as_bytes(), None), None, "{body}");
        }
        let fine =
            "<rss><channel><item a='1' b = \"2\" >&#38;&#x26;&x.y-z;</item ></channel></rss>";
        assert_eq!(spans(fine).len(), 1);
    }

    const JSON: &str = r#"{"version": "https://jsonfeed.org/version/1.1", "title": "J",
  "items": [ {"id": "1", "title": "a \"]}\\"}, {"id": "2", "tags": ["x", {"y": [1]}]},
    {"id": "3"} ], "home_page_url": "https://j.example/"}"#;

    #[test]
    fn json_feed_items_are_entries_and_cut_out_as_elements() {
        assert_eq!(
            spans(JSON),
            [
                r#"{"id": "1", "title": "a \"]}\\"}"#,
                r#"{"id": "2", "tags": ["x", {"y": [1]}]}"#,
                r#"{"id": "3"}"#
            ]
        );
        let found = scan(JSON.as_bytes(), None).unwrap();
        for (cut, left) in [
            (&[0, 1][..], vec![r#"{"id": "3"}"#]),
            (
                &[1],
                vec![r#"{"id": "1", "title": "a \"]}\\"}"#, r#"{"id": "3"}"#],
            ),
            (
                &[2],
                vec![
                    r#"{"id": "1", "title": "a \"]}\\"}"#,
                    r#"{"id": "2", "tags": ["x", {"y": [1]}]}"#,
                ],
            ),
            (&[0, 1, 2], vec![]),
        ] {
            let text = String::from_utf8(found.cut(JSON.as_bytes(), cut)).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text).expect(&text);
            assert_eq!(value["home_page_url"], "https://j.example/");
            assert_eq!(spans(&text), left, "{cut:?}");
            // The same context: what is left is the same feed.
            assert_eq!(scan(text.as_bytes(), None).unwrap().context, found.context);
        }
        // Another member outside the items changes the context; new items do not.
        let context = |body: &str| scan(body.as_bytes(), None).unwrap().context;
        assert_ne!(context(&JSON.replace("\"J\"", "\"K\"")), found.context);
        assert_eq!(
            context(&JSON.replace("{\"id\": \"3\"}", "{\"id\": \"4\"}, {\"id\": \"3\"}")),
            found.context
        );
    }

    #[test]
    fn the_context_is_the_prolog_and_the_ancestors_not_the_channel_text() {
        let context = |body: &str| scan(body.as_bytes(), None).unwrap().context;
        let base = context(RSS);
        // New channel text and new entries leave it.
        let later = RSS
            .replace("10:00:00", "11:00:00")
            .replace("<item/>", "<item><guid>3</guid></item>");
        assert_eq!(context(&later), base);
        // Another namespace, base or entity changes it.
        for changed in [
            RSS.replace("elements/1.1/", "elements/1.0/"),
            RSS.replace("<channel>", "<channel xml:base=\"https://b.example/\">"),
            RSS.replace("<rss ", "<!DOCTYPE rss SYSTEM \"rss.dtd\"><rss "),
        ] {
            assert_ne!(context(&changed), base, "{changed}");
        }
    }

    #[test]
    fn cutting_entries_leaves_the_rest_of_the_document() {
        let found = scan(RSS.as_bytes(), None).unwrap();
        let left = found.cut(RSS.as_bytes(), &[0, 1]);
        assert_eq!(left, without(RSS.as_bytes(), &found.entries[..2]));
        let left = String::from_utf8(left).unwrap();
        assert!(left.contains("<title>T</title>") && left.contains("<item/>"));
        assert!(!left.contains("One") && !left.contains("Two"));
        assert_eq!(spans(&left), ["<item/>"]);
        assert_eq!(scan(left.as_bytes(), None).unwrap().context, found.context);
    }
}
