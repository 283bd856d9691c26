//! Pure: the newest stored items plus what a document says about itself become the
//! bytes of one output format. One file per format:
//!
//! - [`rss`]: RSS 2.0 (the rss crate), `/feed.xml` and its views;
//! - [`atom`]: Atom 1.0 (the atom_syndication crate), `/atom.xml`;
//! - [`json`]: JSON Feed 1.1, `/feed.json`;
//! - [`html`]: the "latest news" page, `/`;
//! - [`opml`]: the sources as OPML 2.0, `/opml`.
//!
//! Called by `publish` once per change of the river (or once per change and view),
//! never per request. Nothing here does I/O or reads the clock: the same input always
//! gives the same bytes, so an unchanged river keeps its ETag. Every item keeps its
//! origin (source name and feed URL) in every format.

pub mod atom;
pub mod html;
pub mod json;
pub mod opml;
pub mod rss;

pub use self::atom::render_atom;
pub use self::html::render_html;
pub use self::json::render_json;
pub use self::opml::render_opml;
pub use self::rss::render_rss;

use chrono_tz::Tz;

use crate::item::StoredItem;

/// `generator` of every output.
pub const GENERATOR: &str = concat!("tributary ", env!("CARGO_PKG_VERSION"));

/// What a feed document (RSS, Atom, JSON Feed) says about itself.
#[derive(Clone, Debug)]
pub struct FeedInfo {
    pub title: String,
    pub description: String,
    /// Where readers go for the human version (the channel `<link>`).
    pub link: String,
    /// The document's own absolute URL (`atom:link rel="self"`, Atom `<id>`, JSON Feed
    /// `feed_url`): readers use it to find the feed again and to tell feeds apart.
    pub self_url: String,
    /// Language of the document (`<language>`, `xml:lang`), e.g. `en`.
    pub language: String,
    /// How long readers may cache the feed, in minutes (`<ttl>`).
    pub ttl_minutes: u64,
    /// WebSub hubs to advertise (`atom:link rel="hub"`, JSON Feed `hubs`).
    pub hubs: Vec<String>,
}

/// A configured source as the page and the OPML list show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceEntry {
    /// The stable, URL-safe id of `/sources/{id}.xml` (see `SourceId::slug`).
    pub slug: String,
    /// Display name: the `name` in `feeds.toml`, else the feed's own title, else its URL.
    pub name: String,
    /// The feed URL, to subscribe to the source directly.
    pub url: String,
    pub tags: Vec<String>,
}

/// What the HTML page shows besides the items.
#[derive(Clone, Debug)]
pub struct PageInfo {
    pub title: String,
    pub description: String,
    pub language: String,
    /// Time stamps and day headings are in this zone.
    pub timezone: Tz,
    pub sources: Vec<SourceEntry>,
    /// Every tag used in `feeds.toml`, sorted, each with its views.
    pub tags: Vec<String>,
}

/// Where the page links to, relative to it: the whole river's feeds, and each
/// source's and tag's RSS feed. `publish`, which owns the URL space, gives them.
#[derive(Clone, Copy, Debug)]
pub struct PageLinks {
    pub rss: &'static str,
    pub atom: &'static str,
    pub json: &'static str,
    pub opml: &'static str,
    /// A source's RSS feed, by its slug.
    pub source_rss: fn(&str) -> String,
    /// A tag's RSS feed.
    pub tag_rss: fn(&str) -> String,
}

/// The merged feed's id for an item: the item's own id when it is its permalink, else
/// a URN built from the source and item ids, so two sources' "1" never clash and the
/// id never changes. Returns the id and whether it is a permalink.
pub fn item_guid(stored: &StoredItem) -> (String, bool) {
    let id = &stored.item.id.0;
    if stored.item.link.as_deref() == Some(id.as_str()) {
        return (id.clone(), true);
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(stored.origin.source.0.as_bytes());
    hasher.update(&[0]);
    hasher.update(id.as_bytes());
    (format!("urn:tributary:{:032x}", hasher.digest128()), false)
}

/// An item's title for formats that need one: its own, else its link, else a phrase
/// naming its source.
pub fn display_title(stored: &StoredItem) -> String {
    stored
        .item
        .title
        .clone()
        .or_else(|| stored.item.link.clone())
        .unwrap_or_else(|| format!("Untitled item from {}", stored.origin.name))
}

/// The item's categories followed by its source's tags, without repeats.
pub fn categories(stored: &StoredItem) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for name in stored
        .item
        .categories
        .iter()
        .chain(stored.origin.tags.iter())
    {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
    all
}

/// The entities HTML decodes in text even without their `;` (`&copy 2026` reads as
/// `© 2026`), from the HTML standard's table.
const LEGACY_ENTITIES: &[&str] = &[
    "AElig", "AMP", "Aacute", "Acirc", "Agrave", "Aring", "Atilde", "Auml", "COPY", "Ccedil",
    "ETH", "Eacute", "Ecirc", "Egrave", "Euml", "GT", "Iacute", "Icirc", "Igrave", "Iuml", "LT",
    "Ntilde", "Oacute", "Ocirc", "Ograve", "Oslash", "Otilde", "Ouml", "QUOT", "REG", "THORN",
    "Uacute", "Ucirc", "Ugrave", "Uuml", "Yacute", "aacute", "acirc", "acute", "aelig", "agrave",
    "amp", "aring", "atilde", "auml", "brvbar", "ccedil", "cedil", "cent", "copy", "curren", "deg",
    "divide", "eacute", "ecirc", "egrave", "eth", "euml", "frac12", "frac14", "frac34", "gt",
    "iacute", "icirc", "iexcl", "igrave", "iquest", "iuml", "laquo", "lt", "macr", "micro",
    "middot", "nbsp", "not", "ntilde", "oacute", "ocirc", "ograve", "ordf", "ordm", "oslash",
    "otilde", "ouml", "para", "plusmn", "pound", "quot", "raquo", "reg", "sect", "shy", "sup1",
    "sup2", "sup3", "szlig", "thorn", "times", "uacute", "ucirc", "ugrave", "uml", "uuml",
    "yacute", "yen", "yuml",
];

/// Whether an HTML reader would read plain `text` as something else: a `<` that opens
/// a tag, comment or declaration (`<b`, `</`, `<!`, `<?`), or a `&` that opens a
/// character reference (`&#…`, `&name;`, or one of [`LEGACY_ENTITIES`]). `AT&T`,
/// `Q&A` and `a < b` read as themselves.
pub fn reads_as_markup(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, &byte)| {
        let rest = &bytes[at + 1..];
        match byte {
            b'<' => rest.first().is_some_and(|&next| {
                next.is_ascii_alphabetic() || matches!(next, b'/' | b'!' | b'?')
            }),
            b'&' => {
                let name = rest
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric())
                    .count();
                rest.first() == Some(&b'#')
                    || (name > 0 && rest.get(name) == Some(&b';'))
                    || LEGACY_ENTITIES
                        .iter()
                        .any(|e| rest.starts_with(e.as_bytes()))
            }
            _ => false,
        }
    })
}

/// A plain-text title for an element that readers may render as HTML: RSS `<title>`
/// (feedparser takes it for HTML when it looks like HTML, many readers always do). Unchanged when HTML reads it as itself; else escaped for HTML, so once
/// the XML writer escapes it again it is still `&lt;blink&gt;` after XML decoding and
/// shows as `<blink>`, never as a tag. feedparser then reads it as HTML (`text/html`)
/// whose text is the title.
pub fn html_title(text: &str) -> std::borrow::Cow<'_, str> {
    let text = xml_text(text);
    if !reads_as_markup(&text) {
        return text;
    }
    let mut html = String::with_capacity(text.len() + 16);
    escape_markup(&text, &mut html);
    html.into()
}

/// `text` without the characters XML 1.0 forbids, which [`xml_chars_only`] would drop
/// from the output later: a title is judged as it will be read, so `<\u{0}b` is
/// written as the `<b` it becomes.
fn xml_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.chars().all(crate::item::is_xml_char) {
        text.into()
    } else {
        text.chars()
            .filter(|c| crate::item::is_xml_char(*c))
            .collect::<String>()
            .into()
    }
}

/// A plain-text title for JSON Feed, whose titles are plain text: written as it is,
/// except that a `<` that would open markup is followed by U+2060 WORD JOINER. A reader
/// that shows the title as text shows the same characters (the joiner has no width);
/// one that wrongly renders it as HTML shows a `<` too, and never a tag.
pub fn inert_title(text: &str) -> std::borrow::Cow<'_, str> {
    let text = xml_text(text);
    if !reads_as_markup(&text) || !text.contains('<') {
        return text;
    }
    let mut inert = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        inert.push(c);
        if c == '<'
            && chars
                .peek()
                .is_some_and(|n| n.is_ascii_alphabetic() || matches!(n, '/' | '!' | '?'))
        {
            inert.push('\u{2060}');
        }
    }
    inert.into()
}

/// Escapes text for XML and HTML element content and quoted attribute values.
pub fn escape_markup(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// `document` without the characters XML 1.0 does not allow. Normalizing already drops
/// them from every item; this guards the bytes of every XML and HTML output against
/// items stored before it did. One scan of the bytes, a copy only when one is found:
/// the forbidden characters are the C0 controls but tab and line breaks (single bytes
/// in UTF-8, never inside another character) and U+FFFE, U+FFFF (`EF BF BE`/`BF`).
pub fn xml_chars_only(document: Vec<u8>) -> Vec<u8> {
    let forbidden = |bytes: &[u8], at: usize| match bytes[at] {
        b'\t' | b'\n' | b'\r' => 0,
        0..0x20 => 1,
        0xef if bytes[at + 1..].starts_with(&[0xbf])
            && matches!(bytes.get(at + 2), Some(0xbe | 0xbf)) =>
        {
            3
        }
        _ => 0,
    };
    if !(0..document.len()).any(|at| forbidden(&document, at) > 0) {
        return document;
    }
    let mut kept = Vec::with_capacity(document.len());
    let mut at = 0;
    while at < document.len() {
        match forbidden(&document, at) {
            0 => {
                kept.push(document[at]);
                at += 1;
            }
            skip => at += skip,
        }
    }
    kept
}

/// Test data shared by the format modules' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;
    use crate::item::{Enclosure, Item, ItemId, Origin, SourceId};
    use chrono::DateTime;

    pub fn stored(id: &str, link: Option<&str>, secs: i64) -> StoredItem {
        StoredItem {
            origin: Origin {
                source: SourceId("http://a.example/rss".into()),
                name: "A & B".into(),
                url: "http://a.example/rss".into(),
                tags: vec!["world".into()],
            },
            item: Item {
                id: ItemId(id.into()),
                title: Some(format!("Title <{id}>")),
                link: link.map(String::from),
                published: None,
                updated: None,
                summary: Some("<p>sum\u{7f}mary</p>".into()),
                content: Some("<p>full</p>".into()),
                authors: vec!["Anna".into()],
                categories: vec!["Tech".into(), "world".into()],
                enclosures: vec![Enclosure {
                    url: "http://a.example/a.mp3".into(),
                    mime_type: Some("audio/mpeg".into()),
                    length: Some(10),
                }],
                comments: None,
            },
            first_seen: DateTime::from_timestamp(secs, 0).unwrap(),
            timestamp: DateTime::from_timestamp(secs, 0).unwrap(),
        }
    }

    pub fn info() -> FeedInfo {
        FeedInfo {
            title: "Latest".into(),
            link: "http://127.0.0.1:8080/".into(),
            self_url: "http://127.0.0.1:8080/feed.xml".into(),
            description: "d".into(),
            language: "en".into(),
            ttl_minutes: 15,
            hubs: Vec::new(),
        }
    }

    /// The links `publish` gives the page, written out.
    pub fn links() -> PageLinks {
        PageLinks {
            rss: "feed.xml",
            atom: "atom.xml",
            json: "feed.json",
            opml: "opml",
            source_rss: |slug| format!("sources/{slug}.xml"),
            tag_rss: |tag| format!("tags/{tag}.xml"),
        }
    }

    pub fn page(timezone: Tz) -> PageInfo {
        PageInfo {
            title: "Latest <news>".into(),
            description: "d".into(),
            language: "en".into(),
            timezone,
            sources: vec![SourceEntry {
                slug: SourceId("http://a.example/rss".into()).slug(),
                name: "A & B".into(),
                url: "http://a.example/rss".into(),
                tags: vec!["world".into()],
            }],
            tags: vec!["world".into()],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{info, links, page, stored};
    use super::*;

    /// A title that is text, of the kind a page about HTML has.
    const TEXT_TITLE: &str = "History of the <blink> tag & <img src=x onerror=alert(1)> &amp;";

    #[test]
    fn a_title_holding_angle_brackets_reads_as_text_in_every_output() {
        let mut item = stored("1", Some("http://a.example/1"), 10);
        item.item.title = Some(TEXT_TITLE.into());
        item.origin.name = "<i>Wire</i>".into();
        let items = [item];
        // RSS: after XML decoding it is HTML whose text is the title.
        let rss = ::rss::Channel::read_from(&render_rss(&items, &info())[..]).unwrap();
        let title = rss.items[0].title.as_deref().unwrap();
        assert_eq!(
            title,
            "History of the &lt;blink&gt; tag &amp; &lt;img src=x onerror=alert(1)&gt; &amp;amp;"
        );
        let source = rss.items[0].source.as_ref().unwrap();
        assert_eq!(source.title.as_deref(), Some("&lt;i&gt;Wire&lt;/i&gt;"));
        // Atom: HTML whose text is the title, marked as HTML.
        let atom = atom_syndication::Feed::read_from(&render_atom(&items, &info())[..]).unwrap();
        assert_eq!(
            atom.entries[0].title.value,
            rss.items[0].title.as_deref().unwrap()
        );
        assert_eq!(
            atom.entries[0].title.r#type,
            atom_syndication::TextType::Html
        );
        let plain = [stored("2", None, 10)];
        let atom = atom_syndication::Feed::read_from(&render_atom(&plain, &info())[..]).unwrap();
        assert_eq!(atom.entries[0].title.value, "Title <2>");
        assert_eq!(
            atom.entries[0].title.r#type,
            atom_syndication::TextType::Text
        );
        // JSON Feed: the same characters, with an invisible joiner after each `<`.
        let json: serde_json::Value =
            serde_json::from_slice(&render_json(&items, &info())).unwrap();
        let title = json["items"][0]["title"].as_str().unwrap();
        assert_eq!(title.replace('\u{2060}', ""), TEXT_TITLE);
        assert!(!title.contains("<b") && !title.contains("<i"), "{title}");
        assert_eq!(
            json["items"][0]["_source"]["name"],
            "<\u{2060}i>Wire<\u{2060}/i>"
        );
        // The page and the OPML list escape it.
        let html = String::from_utf8(render_html(&items, &page(chrono_tz::UTC), &links())).unwrap();
        assert!(html.contains(
            "<bdi>History of the &lt;blink&gt; tag &amp; &lt;img src=x onerror=alert(1)&gt; &amp;amp;</bdi>"
        ));
        assert!(!html.contains("<img"), "{html}");
        let mut listed = page(chrono_tz::UTC);
        listed.sources[0].name = "<b>Wire</b>".into();
        let opml = String::from_utf8(render_opml(&listed)).unwrap();
        // OPML names are text, as `import-opml` reads them back.
        assert!(opml.contains("text=\"&lt;b&gt;Wire&lt;/b&gt;\""), "{opml}");
    }

    #[test]
    fn text_that_reads_as_itself_is_written_as_it_is() {
        for text in [
            "Tom & Jerry",
            "a < b && c > d",
            "I <3 feeds",
            "AT&T",
            "Q&A",
            "&",
        ] {
            assert!(!reads_as_markup(text), "{text}");
            assert_eq!(html_title(text), text);
            assert_eq!(inert_title(text), text);
        }
        for text in [
            "<b",
            "</",
            "<!--",
            "<?x",
            "&amp;",
            "&#60;",
            "&copy 2026",
            "&x;",
        ] {
            assert!(reads_as_markup(text), "{text}");
        }
    }

    #[test]
    fn no_output_carries_a_character_xml_forbids() {
        let mut item = stored("1\u{1}", Some("http://a.example/1"), 10);
        item.item.title = Some("Ti\u{0}t\u{1f}le\u{fffe}\u{ffff}".into());
        item.item.summary = Some("<p>a\u{b}b\u{c}</p>".into());
        item.origin.name = "N\u{8}ame".into();
        let items = [item];
        let mut listed = page(chrono_tz::UTC);
        listed.sources[0].name = "N\u{8}ame\u{ffff}".into();
        for (format, bytes) in [
            ("RSS", render_rss(&items, &info())),
            ("Atom", render_atom(&items, &info())),
            ("HTML", render_html(&items, &listed, &links())),
            ("OPML", render_opml(&listed)),
        ] {
            let text = String::from_utf8(bytes).unwrap();
            assert!(
                text.chars().all(crate::item::is_xml_char),
                "{format}: {text:?}"
            );
            assert!(text.contains("Name"), "{format}: {text}");
        }
        let rss = ::rss::Channel::read_from(&render_rss(&items, &info())[..]).unwrap();
        assert_eq!(rss.items[0].title.as_deref(), Some("Title"));
        assert_eq!(
            xml_chars_only(b"a\x01b\xef\xbf\xbec\xef\xbf\xbd".to_vec()),
            b"abc\xef\xbf\xbd"
        );
    }

    #[test]
    fn headlines_and_source_names_are_isolated_on_the_page() {
        let mut item = stored("1", Some("http://a.example/1"), 10);
        item.item.title = Some("\u{202e}evil".into());
        item.origin.name = "\u{2067}Wire".into();
        let html =
            String::from_utf8(render_html(&[item], &page(chrono_tz::UTC), &links())).unwrap();
        assert!(html.contains("<bdi>\u{202e}evil</bdi></a>"), "{html}");
        assert!(
            html.contains("<span class=\"src\"><bdi>\u{2067}Wire</bdi></span>"),
            "{html}"
        );
    }
}
