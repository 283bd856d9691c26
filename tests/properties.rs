//! Properties of the pure stages, checked on generated feeds (proptest, fixed seed, a
//! few hundred cases each, so the run is fast and always the same):
//!
//! - normalizing never panics, whatever the document holds;
//! - normalized titles are plain text: a title marked as text is the source's text on
//!   one line; an HTML one holds no markup and no entity left undecoded;
//! - summaries and content hold only allow-listed tags and attributes, no
//!   `javascript:`/`data:` URL and no style that loads, runs or positions;
//! - the merged feed, rendered as RSS, Atom and JSON Feed and read back with feed-rs,
//!   keeps every item with its title and link;
//! - whatever text any field of an RSS, Atom or JSON Feed document holds, every output
//!   (RSS, Atom, JSON Feed, the page, OPML) is well-formed, strict XML 1.0 where it is
//!   XML, and no title or source name in it holds markup (OPML names are text).

use chrono::DateTime;
use chrono_tz::Tz;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use regex::Regex;
use scraper::{Html, Node};
use std::sync::LazyLock;
use tributary::ingest::normalize::{normalize_document, plain_text};
use tributary::ingest::sanitize;
use tributary::ingest::text::{looks_like_html, one_line};
use tributary::item::{Item, ItemId, Origin, SourceId, StoredItem};
use tributary::render::{self, FeedInfo};
use url::Url;

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Deterministic: every run checks the same cases; a failure is written into
        // this file as a #[test] by hand, not into a regressions file.
        rng_seed: RngSeed::Fixed(0x0072_6976_6572),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces of real feed text at its worst: markup, scripts, entities (once and twice
/// escaped), comments, CDATA openers, stray `<`/`&`, dangerous URLs, and any character.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ]{0,8}",
        1 => Just("<b>".to_string()),
        1 => Just("</b>".to_string()),
        1 => Just("<p>".to_string()),
        1 => Just("<script>alert(1)</script>".to_string()),
        1 => Just("<style>p{}</style>".to_string()),
        1 => Just("<img src=\"x\" onerror=\"alert(1)\">".to_string()),
        1 => Just("<img src=\"/a.png\" width=\"1\" height=\"1\">".to_string()),
        1 => Just("<a href=\"javascript:alert(1)\">x</a>".to_string()),
        1 => Just("<a href=\" JaVaScRiPt:alert(1)\">x</a>".to_string()),
        1 => Just("<a href=\"data:text/html;base64,PHNjcmlwdD4=\">x</a>".to_string()),
        1 => Just("<a href=\"/relative\" onclick=\"x()\" style=\"color:red\">r</a>".to_string()),
        1 => Just("<td colspan=\"2\" style=\"background: url(javascript:x); position: fixed; width: 10px\">".to_string()),
        1 => Just("<p style=\"color: red; width: expression(alert(1))\" align=\"center\">".to_string()),
        1 => Just("<iframe src=\"http://evil.example/\"></iframe>".to_string()),
        1 => Just("<svg><script>alert(1)</script></svg>".to_string()),
        1 => Just("<math><mi xlink:href=\"javascript:alert(1)\">x</mi></math>".to_string()),
        1 => Just("<form action=\"http://evil.example/\"><input name=\"p\"></form>".to_string()),
        1 => Just("<!-- comment -->".to_string()),
        1 => Just("<![CDATA[".to_string()),
        1 => Just("]]>".to_string()),
        1 => Just("&amp;".to_string()),
        1 => Just("&lt;".to_string()),
        1 => Just("&gt;".to_string()),
        1 => Just("&quot;".to_string()),
        1 => Just("&nbsp;".to_string()),
        1 => Just("&mdash;".to_string()),
        1 => Just("&#60;".to_string()),
        1 => Just("&#x3C;".to_string()),
        1 => Just("&amp;amp;".to_string()),
        1 => Just("&amp;lt;b&amp;gt;".to_string()),
        1 => Just("&lt;i&gt;".to_string()),
        1 => Just("&lt;/i&gt;".to_string()),
        1 => prop::sample::select(vec!["<", ">", "&", ";", "/", "!", "#", "\"", "'", "="])
            .prop_map(String::from),
        1 => any::<char>().prop_map(String::from),
    ]
}

fn feed_text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..10).prop_map(|parts| parts.concat())
}

fn link() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        3 => "[a-z0-9]{1,8}".prop_map(|s| Some(format!("https://news.example/{s}"))),
        1 => "[a-z0-9]{1,8}".prop_map(|s| Some(format!("/relative/{s}"))),
        1 => Just(Some("javascript:alert(1)".to_string())),
        1 => Just(Some("data:text/html,hi".to_string())),
        1 => Just(None),
    ]
}

/// XML character data for any string: escaped as XML escapes it, with the characters
/// XML cannot carry at all written as character references (which the parser refuses
/// or the normalizer drops; both are fine here).
fn xml_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("&#{};", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

#[derive(Clone, Debug)]
struct GenItem {
    title: String,
    description: String,
    link: Option<String>,
    guid: Option<String>,
    cdata: bool,
}

fn gen_item() -> impl Strategy<Value = GenItem> {
    (
        feed_text(),
        feed_text(),
        link(),
        prop::option::of("[a-z0-9]{1,6}"),
        any::<bool>(),
    )
        .prop_map(|(title, description, link, guid, cdata)| GenItem {
            title,
            description,
            link,
            guid,
            cdata,
        })
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Rss,
    Atom,
    Json,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Rss), Just(Kind::Atom), Just(Kind::Json)]
}

/// A feed document of `kind` holding `items`.
fn document(kind: Kind, items: &[GenItem]) -> String {
    let text = |s: &str, cdata: bool| {
        if cdata && !s.contains("]]>") {
            format!("<![CDATA[{s}]]>")
        } else {
            xml_escape(s)
        }
    };
    match kind {
        Kind::Rss => {
            let mut doc = String::from(
                "<rss version=\"2.0\"><channel><title>T</title><link>https://news.example/</link>",
            );
            for item in items {
                doc.push_str("<item>");
                doc.push_str(&format!("<title>{}</title>", text(&item.title, item.cdata)));
                doc.push_str(&format!(
                    "<description>{}</description>",
                    text(&item.description, item.cdata)
                ));
                if let Some(link) = &item.link {
                    doc.push_str(&format!("<link>{}</link>", xml_escape(link)));
                }
                if let Some(guid) = &item.guid {
                    doc.push_str(&format!("<guid isPermaLink=\"false\">{guid}</guid>"));
                }
                doc.push_str("</item>");
            }
            doc.push_str("</channel></rss>");
            doc
        }
        Kind::Atom => {
            let mut doc = String::from(
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>T</title><id>urn:t</id>\
                 <updated>2026-01-01T00:00:00Z</updated><link href=\"https://news.example/\"/>",
            );
            for (n, item) in items.iter().enumerate() {
                doc.push_str("<entry>");
                // Atom says what a text is: HTML for odd items, plain text for even.
                let kind = if n % 2 == 1 { "html" } else { "text" };
                doc.push_str(&format!(
                    "<title type=\"{kind}\">{}</title>",
                    xml_escape(&item.title)
                ));
                doc.push_str(&format!(
                    "<content type=\"html\">{}</content>",
                    text(&item.description, item.cdata)
                ));
                if let Some(link) = &item.link {
                    doc.push_str(&format!("<link href=\"{}\"/>", xml_escape(link)));
                }
                let id = item.guid.clone().unwrap_or_default();
                doc.push_str(&format!(
                    "<id>{id}</id><updated>2026-01-01T00:00:00Z</updated>"
                ));
                doc.push_str("</entry>");
            }
            doc.push_str("</feed>");
            doc
        }
        Kind::Json => {
            let items: Vec<_> = items
                .iter()
                .map(|item| {
                    let mut value = serde_json::json!({
                        "id": item.guid.clone().unwrap_or_default(),
                        "title": item.title,
                        "content_html": item.description,
                    });
                    if let Some(link) = &item.link {
                        value["url"] = link.clone().into();
                    }
                    value
                })
                .collect();
            serde_json::json!({
                "version": "https://jsonfeed.org/version/1.1",
                "title": "T",
                "home_page_url": "https://news.example/",
                "items": items,
            })
            .to_string()
        }
    }
}

/// What an HTML parser reads as the start of markup: a start or end tag, a comment,
/// CDATA, a processing instruction. (A `<` or `</` before anything else is text.)
static MARKUP: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"</?[A-Za-z]|<!--|<!\[CDATA\[|<\?[A-Za-z]|<!DOCTYPE").unwrap());
/// The entities the generated text uses, in any of their spellings.
static ENTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"&(amp|lt|gt|quot|apos|nbsp|mdash|#[0-9]+|#[xX][0-9a-fA-F]+);").unwrap()
});

/// The problems `text` has as a plain-text title.
fn title_problems(title: &str) -> Option<String> {
    if let Some(m) = MARKUP.find(title) {
        return Some(format!("markup {:?} in {title:?}", m.as_str()));
    }
    if let Some(m) = ENTITY.find(title) {
        return Some(format!("undecoded entity {:?} in {title:?}", m.as_str()));
    }
    if title.chars().any(char::is_control) {
        return Some(format!("control character in {title:?}"));
    }
    // Read as HTML once more, it stays the same text: nothing left to decode or drop.
    if plain_text(title).as_deref() != Some(title) {
        return Some(format!(
            "{title:?} changes when read as HTML again: {:?}",
            plain_text(title)
        ));
    }
    None
}

static ALLOWED_TAGS: LazyLock<Vec<String>> = LazyLock::new(|| {
    // ammonia's default allow-list, and `<font>`.
    let builder = ammonia::Builder::default();
    let mut tags: Vec<String> = builder.clone_tags().iter().map(|t| t.to_string()).collect();
    tags.push("font".into());
    tags
});

/// The problems `html` has as sanitized HTML, read back with a real HTML parser.
fn html_problems(html: &str) -> Option<String> {
    let builder = ammonia::Builder::default();
    let tag_attributes = builder.clone_tag_attributes();
    let generic = builder.clone_generic_attributes();
    let fragment = Html::parse_fragment(html);
    for node in fragment.tree.nodes() {
        let Node::Element(element) = node.value() else {
            continue;
        };
        let name = element.name();
        // The parser's own wrappers around a fragment (ammonia never lets them through).
        if matches!(name, "html" | "head" | "body") {
            continue;
        }
        if !ALLOWED_TAGS.iter().any(|t| t == name) {
            return Some(format!("tag <{name}> in {html:?}"));
        }
        for (attribute, value) in element.attrs() {
            let allowed = generic.contains(attribute)
                || sanitize::GENERIC.contains(&attribute)
                || tag_attributes
                    .get(name)
                    .is_some_and(|set| set.contains(attribute))
                // ammonia adds rel="noopener noreferrer" to links itself.
                || (name == "a" && attribute == "rel");
            if !allowed {
                return Some(format!("attribute {attribute} on <{name}> in {html:?}"));
            }
            let lowered: String = value
                .chars()
                .filter(|c| !c.is_whitespace() && !c.is_control())
                .collect::<String>()
                .to_ascii_lowercase();
            if lowered.starts_with("javascript:") || lowered.starts_with("data:") {
                return Some(format!("URL {value:?} in {html:?}"));
            }
            if attribute == "style"
                && [
                    "url(",
                    "expression",
                    "\\",
                    "position",
                    "@",
                    "behavior",
                    "binding",
                ]
                .iter()
                .any(|bad| lowered.contains(bad))
            {
                return Some(format!("style {value:?} in {html:?}"));
            }
        }
    }
    None
}

fn normalize(kind: Kind, items: &[GenItem]) -> Option<tributary::ingest::normalize::Document> {
    let body = document(kind, items);
    let url = Url::parse("https://news.example/feed").unwrap();
    normalize_document(body.as_bytes(), None, Some(&url), Tz::UTC).ok()
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn normalizing_never_panics(
        kind in kind(),
        items in prop::collection::vec(gen_item(), 0..4),
        noise in prop::collection::vec(any::<u8>(), 0..64),
        at in any::<prop::sample::Index>(),
    ) {
        let mut body = document(kind, &items).into_bytes();
        // Also with raw bytes dropped in anywhere: broken UTF-8, stray markup.
        let url = Url::parse("https://news.example/feed").unwrap();
        let _ = normalize_document(&body, None, Some(&url), Tz::UTC);
        let at = at.index(body.len() + 1);
        body.splice(at..at, noise);
        let _ = normalize_document(&body, Some("text/xml; charset=utf-8"), Some(&url), Tz::UTC);
        let _ = normalize_document(&body, None, None, Tz::UTC);
    }

    #[test]
    fn titles_are_plain_text(kind in kind(), items in prop::collection::vec(gen_item(), 1..4)) {
        // Each item findable by its id.
        let items: Vec<GenItem> = items
            .into_iter()
            .enumerate()
            .map(|(n, item)| GenItem { guid: Some(format!("g{n}")), ..item })
            .collect();
        let Some(document) = normalize(kind, &items) else {
            return Ok(());
        };
        for item in &document.items {
            let (Some(title), Some(n)) = (&item.title, item.id.0.strip_prefix('g')) else {
                continue;
            };
            let n: usize = n.parse().unwrap();
            let source = &items[n].title;
            // A text title is the source's text on one line; an HTML one (Atom odd items,
            // RSS titles that look like HTML, as feedparser tells) is markup-free text.
            let text = match kind {
                Kind::Json => true,
                Kind::Atom => n.is_multiple_of(2),
                Kind::Rss => !looks_like_html(source),
            };
            // XML documents cannot carry some characters: the reading drops them.
            let line = match kind {
                Kind::Json => one_line(source),
                _ => one_line(&source.chars().filter(|c| tributary::item::is_xml_char(*c)).collect::<String>()),
            };
            if text && line.is_some() {
                prop_assert_eq!(Some(title), line.as_ref());
            } else if !text {
                prop_assert!(title_problems(title).is_none(), "{}", title_problems(title).unwrap());
            }
        }
    }

    #[test]
    fn plain_text_has_no_markup_or_entities(text in feed_text()) {
        if let Some(title) = plain_text(&text) {
            prop_assert!(title_problems(&title).is_none(), "{}", title_problems(&title).unwrap());
        }
    }

    #[test]
    fn summaries_and_content_are_sanitized(kind in kind(), items in prop::collection::vec(gen_item(), 1..4)) {
        let Some(document) = normalize(kind, &items) else {
            return Ok(());
        };
        for item in &document.items {
            for html in [&item.summary, &item.content].into_iter().flatten() {
                prop_assert!(html_problems(html).is_none(), "{}", html_problems(html).unwrap());
            }
            if let Some(link) = &item.link {
                prop_assert!(link.starts_with("http://") || link.starts_with("https://"), "{link}");
            }
        }
    }

    #[test]
    fn rendered_feeds_keep_every_item(
        items in prop::collection::vec((feed_text(), "[a-z0-9]{1,8}"), 0..8),
    ) {
        let origin = Origin {
            source: SourceId("https://news.example/feed".into()),
            name: "News & <more>".into(),
            url: "https://news.example/feed".into(),
            tags: vec!["world".into()],
        };
        // What the store hands the renderers: normalized titles and links, newest first.
        let stored: Vec<StoredItem> = items
            .iter()
            .enumerate()
            .map(|(n, (title, slug))| {
                let time = DateTime::from_timestamp(1_780_000_000 - n as i64 * 60, 0).unwrap();
                let link = format!("https://news.example/{n}/{slug}");
                StoredItem {
                    origin: origin.clone(),
                    item: Item {
                        id: ItemId(link.clone()),
                        title: plain_text(title),
                        link: Some(link),
                        published: Some(time),
                        updated: None,
                        summary: None,
                        content: None,
                        authors: Vec::new(),
                        categories: Vec::new(),
                        enclosures: Vec::new(),
                        comments: None,
                    },
                    first_seen: time,
                    timestamp: time,
                }
            })
            .collect();
        let info = FeedInfo {
            title: "River <&>".into(),
            description: "d".into(),
            link: "http://127.0.0.1:8080/".into(),
            self_url: "http://127.0.0.1:8080/feed.xml".into(),
            language: "en".into(),
            ttl_minutes: 15,
            hubs: Vec::new(),
        };
        for (format, bytes) in [
            ("RSS", render::render_rss(&stored, &info)),
            ("Atom", render::render_atom(&stored, &info)),
            ("JSON Feed", render::render_json(&stored, &info)),
        ] {
            let feed = feed_rs::parser::parse(bytes.as_slice());
            prop_assert!(feed.is_ok(), "{format} does not parse: {:?}\n{}", feed.err(), String::from_utf8_lossy(&bytes));
            let feed = feed.unwrap();
            prop_assert_eq!(feed.entries.len(), stored.len(), "{} item count", format);
            for (entry, stored) in feed.entries.iter().zip(&stored) {
                let title = entry.title.as_ref().map(|t| t.content.as_str());
                // JSON Feed titles are optional; RSS and Atom show a stand-in. Readers
                // render RSS titles as HTML, so a `<` that would open a tag is escaped
                // for HTML; JSON Feed puts a joiner after it.
                let expected = match format {
                    "JSON Feed" => stored.item.title.as_deref().map(|t| render::inert_title(t).into_owned()),
                    "RSS" | "Atom" => Some(render::html_title(&render::display_title(stored)).into_owned()),
                    _ => Some(render::display_title(stored)),
                };
                prop_assert_eq!(title, expected.as_deref(), "{} title", format);
                let link = entry.links.first().map(|l| l.href.as_str());
                prop_assert_eq!(link, stored.item.link.as_deref(), "{} link", format);
            }
        }
    }
}

/// Any text at its worst for an output: markup (escaped any number of times), the
/// characters XML 1.0 forbids, bidi overrides, CDATA closers, any character.
fn any_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => fragment(),
        1 => ".{0,6}",
        1 => prop::sample::select(vec![
            "\u{1}", "\u{8}", "\u{b}", "\u{c}", "\u{1f}", "\u{fffe}", "\u{ffff}", "\u{202e}",
            "\u{2066}", "\u{85}", "<blink>", "</title>", "]]>", "&amp;amp;amp;lt;img src=x onerror=alert(1)&amp;amp;amp;gt;",
            "<!--", "<?xml", "<![CDATA[x]]>",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|parts| parts.concat())
}

/// Every text field a feed and its entries have.
#[derive(Clone, Debug)]
struct Fields {
    feed_title: String,
    feed_description: String,
    title: String,
    summary: String,
    content: String,
    author: String,
    category: String,
    link_tail: String,
    guid: String,
    mime_type: String,
}

fn fields() -> impl Strategy<Value = Fields> {
    (
        (any_text(), any_text(), any_text(), any_text(), any_text()),
        (any_text(), any_text(), any_text(), any_text(), any_text()),
    )
        .prop_map(
            |((feed_title, feed_description, title, summary, content), rest)| {
                let (author, category, link_tail, guid, mime_type) = rest;
                Fields {
                    feed_title,
                    feed_description,
                    title,
                    summary,
                    content,
                    author,
                    category,
                    link_tail,
                    guid,
                    mime_type,
                }
            },
        )
}

/// A document of `kind` with `f` in every field (XML escaped as XML escapes it; a
/// character XML cannot carry makes the XML documents unreadable, which is fine).
fn full_document(kind: Kind, f: &Fields) -> String {
    let e = xml_escape;
    let link = format!("https://news.example/{}", f.link_tail);
    match kind {
        Kind::Rss => format!(
            "<rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\" \
             xmlns:dc=\"http://purl.org/dc/elements/1.1/\"><channel><title>{}</title>\
             <link>https://news.example/</link><description>{}</description><item>\
             <title>{}</title><description>{}</description><content:encoded>{}</content:encoded>\
             <dc:creator>{}</dc:creator><category>{}</category><link>{}</link><guid>{}</guid>\
             <enclosure url=\"https://news.example/a.mp3\" type=\"{}\" length=\"1\"/>\
             </item></channel></rss>",
            e(&f.feed_title),
            e(&f.feed_description),
            e(&f.title),
            e(&f.summary),
            e(&f.content),
            e(&f.author),
            e(&f.category),
            e(&link),
            e(&f.guid),
            e(&f.mime_type),
        ),
        Kind::Atom => format!(
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title type=\"text\">{}</title>\
             <subtitle>{}</subtitle><id>urn:f</id><updated>2026-01-01T00:00:00Z</updated>\
             <entry><title type=\"text\">{}</title><summary type=\"html\">{}</summary>\
             <content type=\"html\">{}</content><author><name>{}</name></author>\
             <category term=\"{}\"/><link href=\"{}\"/><id>{}</id>\
             <link rel=\"enclosure\" href=\"https://news.example/a.mp3\" type=\"{}\"/>\
             <updated>2026-01-01T00:00:00Z</updated></entry></feed>",
            e(&f.feed_title),
            e(&f.feed_description),
            e(&f.title),
            e(&f.summary),
            e(&f.content),
            e(&f.author),
            e(&f.category),
            e(&link),
            e(&f.guid),
            e(&f.mime_type),
        ),
        Kind::Json => serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1",
            "title": f.feed_title,
            "description": f.feed_description,
            "home_page_url": "https://news.example/",
            "items": [{
                "id": f.guid,
                "url": link,
                "title": f.title,
                "summary": f.summary,
                "content_html": f.content,
                "authors": [{"name": f.author}],
                "tags": [f.category],
                "attachments": [{"url": "https://news.example/a.mp3", "mime_type": f.mime_type}],
            }],
        })
        .to_string(),
    }
}

/// Whether `bytes` is a well-formed XML 1.0 document, read strictly: UTF-8, only
/// characters XML allows, one root, matching end tags, well-formed attributes without
/// repeats, and no reference but the five predefined entities and character
/// references to allowed characters.
fn strict_xml(bytes: &[u8]) -> Result<(), String> {
    use quick_xml::events::Event;
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    if let Some(c) = text.chars().find(|c| !tributary::item::is_xml_char(*c)) {
        return Err(format!("character {c:?}"));
    }
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let (mut depth, mut roots) = (0usize, 0usize);
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("{e} at {}", reader.buffer_position()))?
        {
            event @ (Event::Start(_) | Event::Empty(_)) => {
                let (Event::Start(start) | Event::Empty(start)) = &event else {
                    unreachable!()
                };
                if depth == 0 {
                    roots += 1;
                }
                for attribute in start.attributes().with_checks(true) {
                    let attribute = attribute.map_err(|e| e.to_string())?;
                    attribute
                        .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                        .map_err(|e| e.to_string())?;
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::GeneralRef(reference) => {
                let name = reference.xml10_content();
                let known = matches!(name.as_ref(), "lt" | "gt" | "amp" | "quot" | "apos");
                let allowed = reference
                    .resolve_char_ref()
                    .map_err(|e| e.to_string())?
                    .is_some_and(tributary::item::is_xml_char);
                if !known && !allowed {
                    return Err(format!("reference &{name};"));
                }
            }
            Event::Text(t) if depth == 0 && !t.xml10_content().trim().is_empty() => {
                return Err("text outside the root".into());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if roots != 1 || depth != 0 {
        return Err(format!("{roots} roots, depth {depth} at the end"));
    }
    Ok(())
}

/// The titles of the outputs, as a reader that renders them as HTML parses them.
fn titles_hold_no_markup(format: &str, titles: &[String]) -> Result<(), String> {
    for title in titles {
        if let Some(m) = MARKUP.find(title) {
            return Err(format!(
                "{format}: markup {:?} in title {title:?}",
                m.as_str()
            ));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(64))]

    /// Whatever any field of any input holds, every output is well-formed (strict
    /// XML 1.0, valid JSON, a page of only the page's own elements) and no title or
    /// source name holds markup in any of them.
    #[test]
    fn every_output_is_well_formed_and_no_title_holds_markup(kind in kind(), f in fields()) {
        let body = full_document(kind, &f);
        let url = Url::parse("https://news.example/feed").unwrap();
        let Ok(document) = normalize_document(body.as_bytes(), None, Some(&url), Tz::UTC) else {
            return Ok(());
        };
        let name = document.feed.title.clone().unwrap_or_else(|| f.feed_title.clone());
        let origin = Origin {
            source: SourceId("https://news.example/feed".into()),
            name: name.clone(),
            url: "https://news.example/feed".into(),
            tags: vec![f.category.clone()],
        };
        let time = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let stored: Vec<StoredItem> = document
            .items
            .iter()
            .map(|item| StoredItem {
                origin: origin.clone(),
                item: item.clone(),
                first_seen: time,
                timestamp: time,
            })
            .collect();
        let info = FeedInfo {
            title: f.title.clone(),
            description: f.feed_description.clone(),
            link: "http://127.0.0.1:8080/".into(),
            self_url: "http://127.0.0.1:8080/feed.xml".into(),
            language: "en".into(),
            ttl_minutes: 15,
            hubs: Vec::new(),
        };
        let page = render::PageInfo {
            title: f.title.clone(),
            description: f.feed_description.clone(),
            language: "en".into(),
            timezone: Tz::UTC,
            sources: vec![render::SourceEntry {
                slug: origin.source.slug(),
                name: name.clone(),
                url: origin.url.clone(),
                tags: vec![f.category.clone()],
            }],
            tags: vec![f.category.clone()],
        };
        let links = render::PageLinks {
            rss: "feed.xml",
            atom: "atom.xml",
            json: "feed.json",
            opml: "opml",
            source_rss: |slug| format!("sources/{slug}.xml"),
            tag_rss: |tag| format!("tags/{tag}.xml"),
        };
        let rss = render::render_rss(&stored, &info);
        let atom = render::render_atom(&stored, &info);
        let opml = render::render_opml(&page);
        for (format, bytes) in [("RSS", &rss), ("Atom", &atom), ("OPML", &opml)] {
            let checked = strict_xml(bytes);
            prop_assert!(checked.is_ok(), "{format}: {:?}\n{}", checked, String::from_utf8_lossy(bytes));
        }
        // RSS: every title and source name, XML decoded, is what an HTML reader parses.
        let channel = rss::Channel::read_from(&rss[..]).unwrap();
        let mut titles = vec![channel.title.clone()];
        for item in &channel.items {
            titles.extend(item.title.clone());
            titles.extend(item.source.as_ref().and_then(|s| s.title.clone()));
        }
        let checked = titles_hold_no_markup("RSS", &titles);
        prop_assert!(checked.is_ok(), "{:?}", checked);
        // Atom: a title is text, or HTML that holds no markup.
        let feed = atom_syndication::Feed::read_from(&atom[..]).unwrap();
        let mut texts = vec![feed.title.clone()];
        for entry in &feed.entries {
            texts.push(entry.title.clone());
            texts.extend(entry.source.as_ref().map(|s| s.title.clone()));
        }
        let html: Vec<String> = texts
            .into_iter()
            .filter(|t| t.r#type != atom_syndication::TextType::Text)
            .map(|t| t.value)
            .collect();
        let checked = titles_hold_no_markup("Atom", &html);
        prop_assert!(checked.is_ok(), "{:?}", checked);
        // JSON Feed: valid, and its titles and source names hold no markup.
        let json: serde_json::Value = serde_json::from_slice(&render::render_json(&stored, &info)).unwrap();
        let mut titles = vec![json["title"].as_str().unwrap().to_string()];
        for item in json["items"].as_array().unwrap() {
            titles.extend(item["title"].as_str().map(String::from));
            titles.push(item["_source"]["name"].as_str().unwrap().to_string());
        }
        let checked = titles_hold_no_markup("JSON Feed", &titles);
        prop_assert!(checked.is_ok(), "{:?}", checked);
        // OPML: the names.
        let opml_text = String::from_utf8(opml).unwrap();
        let mut reader = quick_xml::Reader::from_str(&opml_text);
        let mut names = Vec::new();
        while let Ok(event) = reader.read_event() {
            match event {
                quick_xml::events::Event::Empty(outline) => {
                    for attribute in outline.attributes().flatten() {
                        if matches!(attribute.key.as_ref(), "text" | "title") {
                            names.push(attribute.normalized_value(quick_xml::XmlVersion::Explicit1_0).unwrap().into_owned());
                        }
                    }
                }
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        // OPML names are text (what `import-opml` reads back): written as they are.
        prop_assert_eq!(names.len(), 2);
        // The page: only its own elements, one headline link per item, only allowed
        // characters.
        let page_bytes = render::render_html(&stored, &page, &links);
        let page_text = String::from_utf8(page_bytes).unwrap();
        prop_assert!(page_text.chars().all(tributary::item::is_xml_char));
        let parsed = Html::parse_document(&page_text);
        let own = [
            "html", "head", "meta", "title", "link", "style", "body", "header", "h1", "p",
            "nav", "a", "main", "section", "h2", "ul", "li", "time", "bdi", "span", "footer",
        ];
        for node in parsed.tree.nodes() {
            if let Node::Element(element) = node.value() {
                prop_assert!(own.contains(&element.name()), "<{}> on the page:\n{}", element.name(), page_text);
            }
        }
        let bdi = parsed.tree.nodes().filter(|n| matches!(n.value(), Node::Element(e) if e.name() == "bdi")).count();
        prop_assert_eq!(bdi, 2 * stored.len() + 1);
    }
}
