//! Pure: where each entry of an XML feed lies in its bytes, so an entry the source
//! sent before, byte for byte, can be recognised without parsing it.
//!
//! A feed document that changed usually changed by one new entry on top; the others
//! are the bytes of the last poll. [`scan`] tokenizes the document (quick-xml, no
//! unescaping, a few microseconds an entry) and returns the byte range of every
//! entry (`<item>` of RSS 0.9x/1.0/2.0, `<entry>` of Atom) and a hash of what gives
//! an entry its meaning besides its own bytes: the prolog (XML declaration, DOCTYPE
//! and its entities) and the start tags of the elements around the entries
//! (namespaces, `xml:base`, `xml:lang`). [`without`] cuts entries out; what is left
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

use std::ops::Range;
use xxhash_rust::xxh3::Xxh3;

use quick_xml::Reader;
use quick_xml::events::Event;

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
/// an object with one `items` array).
pub fn scan(body: &[u8]) -> Option<Scan> {
    if std::str::from_utf8(body).is_err() || body.iter().any(|b| matches!(b, 0 | 0x1b)) {
        return None;
    }
    if body.trim_ascii_start().starts_with(b"{") {
        return scan_json(body);
    }
    let mut reader = Reader::from_reader(body);
    let mut context = Xxh3::new();
    // The open elements: local name, start tag's bytes, hashed into the context yet.
    let mut open: Vec<(Vec<u8>, Range<usize>, bool)> = Vec::new();
    let mut entries = Vec::new();
    // The depth at which the current entry opened, and where.
    let mut entry: Option<(usize, usize)> = None;
    let mut rooted = false;
    loop {
        let before = usize::try_from(reader.buffer_position()).ok()?;
        let event = reader.read_event().ok()?;
        let after = usize::try_from(reader.buffer_position()).ok()?;
        match event {
            Event::Start(start) => {
                if entry.is_none() && is_entry(&open, start.local_name().into_inner().as_bytes()) {
                    hash_ancestors(&mut open, body, &mut context);
                    entry = Some((open.len(), before));
                }
                if open.is_empty() {
                    if rooted {
                        return None;
                    }
                    rooted = true;
                }
                open.push((
                    start.local_name().into_inner().as_bytes().to_vec(),
                    before..after,
                    false,
                ));
            }
            Event::Empty(start) => {
                if entry.is_none() && is_entry(&open, start.local_name().into_inner().as_bytes()) {
                    hash_ancestors(&mut open, body, &mut context);
                    entries.push(before..after);
                }
                if open.is_empty() {
                    return None;
                }
            }
            Event::End(_) => {
                open.pop()?;
                if let Some((depth, start)) = entry
                    && open.len() == depth
                {
                    entries.push(start..after);
                    entry = None;
                }
            }
            Event::Eof => break,
            // The prolog and what follows the root: declarations, DOCTYPE (entities),
            // processing instructions, comments.
            _ if open.is_empty() => context.update(&body[before..after]),
            _ => {}
        }
    }
    (rooted && open.is_empty()).then(|| Scan {
        context: context.digest(),
        entries,
        json_items: None,
    })
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
fn is_entry(open: &[(Vec<u8>, Range<usize>, bool)], local: &[u8]) -> bool {
    let path: Vec<&[u8]> = open.iter().map(|(name, _, _)| name.as_slice()).collect();
    match local {
        b"item" => matches!(
            path.as_slice(),
            [b"rss", b"channel"] | [b"RDF"] | [b"RDF", b"channel"]
        ),
        b"entry" => matches!(path.as_slice(), [b"feed"]),
        _ => false,
    }
}

/// Hashes the start tags of the open elements not hashed yet: an entry's ancestors.
fn hash_ancestors(open: &mut [(Vec<u8>, Range<usize>, bool)], body: &[u8], context: &mut Xxh3) {
    for (_, tag, hashed) in open.iter_mut().filter(|(_, _, hashed)| !*hashed) {
        context.update(&body[tag.clone()]);
        *hashed = true;
    }
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
        let scan = scan(body.as_bytes()).expect("scanned");
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
            assert_eq!(scan(body.as_bytes()), None, "{body}");
        }
        assert_eq!(
            scan(b"<rss><channel><item>\xe9</item></channel></rss>"),
            None
        );
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
        let found = scan(JSON.as_bytes()).unwrap();
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
            assert_eq!(scan(text.as_bytes()).unwrap().context, found.context);
        }
        // Another member outside the items changes the context; new items do not.
        let context = |body: &str| scan(body.as_bytes()).unwrap().context;
        assert_ne!(context(&JSON.replace("\"J\"", "\"K\"")), found.context);
        assert_eq!(
            context(&JSON.replace("{\"id\": \"3\"}", "{\"id\": \"4\"}, {\"id\": \"3\"}")),
            found.context
        );
    }

    #[test]
    fn the_context_is_the_prolog_and_the_ancestors_not_the_channel_text() {
        let context = |body: &str| scan(body.as_bytes()).unwrap().context;
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
            RSS.replace("<rss ", "<!DOCTYPE rss [<!ENTITY x \"y\">]><rss "),
        ] {
            assert_ne!(context(&changed), base, "{changed}");
        }
    }

    #[test]
    fn cutting_entries_leaves_the_rest_of_the_document() {
        let found = scan(RSS.as_bytes()).unwrap();
        let left = found.cut(RSS.as_bytes(), &[0, 1]);
        assert_eq!(left, without(RSS.as_bytes(), &found.entries[..2]));
        let left = String::from_utf8(left).unwrap();
        assert!(left.contains("<title>T</title>") && left.contains("<item/>"));
        assert!(!left.contains("One") && !left.contains("Two"));
        assert_eq!(spans(&left), ["<item/>"]);
        assert_eq!(scan(left.as_bytes()).unwrap().context, found.context);
    }
}
