//! Bytes to a feed-rs document: charset decoding, the repairs feed-rs needs, and a
//! parse that contains any panic inside the parser.
//!
//! Called by `normalize::normalize_document` (daemon and `inspect` alike). feed-rs
//! cannot take the charset from HTTP and can panic on hostile input (see
//! DEPENDENCIES.md), so the bytes are decoded to UTF-8 here first and the parse runs
//! under `catch_unwind`.

use chrono_tz::Tz;
use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::LazyLock;

pub use crate::ingest::charset::{decode, decode_html};
use crate::ingest::dates::parse_date;
use crate::ingest::markup::repair_markup;

mod rss_dialect;
use rss_dialect::{ITUNES_SPELLINGS, RSS_SPELLINGS, SPELLING_FIXES, repair_rss_root};

/// Why a document could not be read as a feed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a feed: {0}")]
    Invalid(String),
    #[error("not a feed: the body is empty")]
    Empty,
    #[error("the feed parser crashed on this document: {0}")]
    Panicked(String),
    /// The document parsed, with no entries, but its text holds some: they were lost
    /// (a namespace or a structure the parser does not read), not absent.
    #[error("no entries could be read, yet the document holds {0}")]
    EntriesLost(String),
}

/// A parsed feed and what it says about how often to poll it.
pub struct Parsed {
    pub feed: feed_rs::model::Feed,
    pub hints: PollHints,
}

/// The publisher's own word on polling, from the channel head: RSS `<ttl>`,
/// `sy:updatePeriod`/`sy:updateFrequency`, `skipHours`, `skipDays`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollHints {
    /// The longest of `<ttl>` and the syndication module's period.
    pub interval: Option<std::time::Duration>,
    /// Hours (0-23, GMT) in which the feed is not updated.
    pub skip_hours: Vec<u8>,
    /// Days (0 = Monday) on which the feed is not updated.
    pub skip_days: Vec<u8>,
}

/// Decodes `body` to UTF-8 and parses it. `content_type` is the HTTP header, if any;
/// dates that name no zone are read in `zone` (the source's `timezone`).
///
/// feed-rs gets no base URI: relative links stay relative (unless an absolute
/// xml:base resolves them), so `normalize` can resolve them against the feed's own
/// link first and the document URL second.
pub fn parse_feed(body: &[u8], content_type: Option<&str>, zone: Tz) -> Result<Parsed, ParseError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    let text = decode(body, content_type);
    let text = repair(&text);
    let hints = poll_hints(&text);
    let parser = feed_rs::parser::Builder::new()
        .sanitize_content(false)
        // An empty id marks "the feed gave none"; normalize builds a stable one.
        .id_generator(|_, _, _| String::new())
        .timestamp_parser(move |text| parse_date(text, zone))
        .build();
    match catch_unwind(AssertUnwindSafe(|| parser.parse(text.as_bytes()))) {
        Ok(Ok(feed)) if feed.entries.is_empty() => match entries_in_text(&text) {
            Some(held) => Err(ParseError::EntriesLost(held)),
            None => Ok(Parsed { feed, hints }),
        },
        Ok(Ok(feed)) => Ok(Parsed { feed, hints }),
        Ok(Err(err)) => Err(ParseError::Invalid(err.to_string())),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(ParseError::Panicked(message))
        }
    }
}

/// What entries the text of a document clearly holds, said as the failure would say
/// it (`3 <item> elements`, `2 JSON Feed items`), or `None` when it holds none: item
/// and entry start tags outside comments and CDATA sections, or the objects of a
/// JSON Feed's `items` array.
fn entries_in_text(text: &str) -> Option<String> {
    static ENTRY: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(
            r"(?s)<!--.*?-->|<!\[CDATA\[.*?\]\]>|<(?:[A-Za-z_][\w.-]*:)?(item|entry)[\s>/]",
        )
        .expect("the entry pattern is valid")
    });
    if text.trim_start().starts_with('{') {
        let feed: serde_json::Value = serde_json::from_str(text).ok()?;
        let items = feed.get("items")?.as_array()?;
        let count = items.iter().filter(|item| item.is_object()).count();
        return (count > 0).then(|| format!("{count} JSON Feed items"));
    }
    let mut counts = [0usize; 2];
    for caps in ENTRY.captures_iter(text) {
        match caps.get(1).map(|name| name.as_str()) {
            Some("item") => counts[0] += 1,
            Some(_) => counts[1] += 1,
            None => {}
        }
    }
    let said: Vec<String> = [("item", counts[0]), ("entry", counts[1])]
        .iter()
        .filter(|(_, count)| *count > 0)
        .map(|(name, count)| {
            format!(
                "{count} <{name}> element{}",
                if *count == 1 { "" } else { "s" }
            )
        })
        .collect();
    (!said.is_empty()).then(|| said.join(" and "))
}

/// How far into a document an XML declaration is looked for after junk.
const JUNK_BEFORE_DECLARATION: usize = 64 * 1024;

/// Repairs that let feed-rs read real feeds. XML: junk before the declaration and the
/// declaration itself are dropped (the text is UTF-8 now, and keeping
/// `encoding="windows-1251"` would decode it twice), stray `<` and `&` are escaped
/// ([`repair_markup`]), raw control characters that XML forbids are removed, an `<rss>`
/// root without its `version` attribute or in a namespace of its own is read as RSS 2.0
/// (see [`repair_rss_root`]), RSS 0.9 is read as the RSS 1.0 it nearly is, and module
/// namespaces feed-rs knows under another name are renamed ([`NAMESPACE_FIXES`]). JSON
/// Feed: see [`repair_json`].
fn repair(text: &str) -> Cow<'_, str> {
    if text.trim_start().starts_with('{') {
        return repair_json(text).map_or(Cow::Borrowed(text), Cow::Owned);
    }
    let trimmed = text.trim_start();
    // Junk before the XML declaration (a PHP warning printed ahead of the feed) is no
    // part of the document: the declaration can only come first.
    let head = &trimmed[..trimmed.floor_char_boundary(JUNK_BEFORE_DECLARATION)];
    let trimmed = match head.find("<?xml") {
        Some(at) if at > 0 => &trimmed[at..],
        _ => trimmed,
    };
    // A slice, not a copy: the document may be tens of megabytes.
    let mut text = match trimmed.find("?>") {
        Some(end) if trimmed.starts_with("<?xml") => Cow::Borrowed(&trimmed[end + 2..]),
        _ => Cow::Borrowed(text),
    };
    if let Cow::Owned(repaired) = repair_markup(&text) {
        text = Cow::Owned(repaired);
    }
    let mut markers = Markers::find(&text);
    if markers.has(Marker::NonCharacter) || has_forbidden_control(&text) {
        text = Cow::Owned(
            text.chars()
                .filter(|c| {
                    (*c >= ' ' || matches!(c, '\t' | '\n' | '\r'))
                        && !matches!(c, '\u{fffe}' | '\u{ffff}')
                })
                .collect(),
        );
        markers = Markers::find(&text);
    }
    if markers.has(Marker::CharacterReference)
        && let Cow::Owned(fixed) = drop_forbidden_references(&text)
    {
        text = Cow::Owned(fixed);
        markers = Markers::find(&text);
    }
    if let Some(fixed) = repair_rss_root(&text) {
        text = Cow::Owned(fixed);
    }
    for (marker, right) in NAMESPACE_FIXES {
        if markers.has(marker) {
            text = Cow::Owned(text.replace(marker.text(), right));
        }
    }
    for (marker, spellings, right) in SPELLING_FIXES.iter() {
        if markers.has(*marker) {
            text = Cow::Owned(spellings.replace_all(&text, *right).into_owned());
        }
    }
    if markers.has(Marker::YandexFullText) || markers.has(Marker::TurboContent) {
        text = Cow::Owned(full_text_as_content(&text));
    }
    text
}

/// Whether `text` holds a control character that XML forbids (all below U+0020 but
/// tab and line breaks). Checked 64 bytes at a time without an early exit inside each
/// block, which the compiler turns into vector instructions: a byte-by-byte `any`
/// costs about as much as the rest of the repairs on a long document.
fn has_forbidden_control(text: &str) -> bool {
    let forbidden = |b: &u8| *b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r');
    text.as_bytes()
        .chunks(64)
        .any(|block| block.iter().fold(false, |seen, b| seen | forbidden(b)))
}

/// What [`repair`] looks for in a document, found in one pass over it instead of one
/// pass each (a document can be megabytes, and most need none of the repairs).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Marker {
    /// U+FFFE or U+FFFF, which XML forbids.
    NonCharacter,
    /// `&#`: a numeric character reference, maybe to a code point XML forbids.
    CharacterReference,
    /// RSS 0.9's namespace.
    Rss09Namespace,
    /// The content module's namespace without its trailing slash.
    ContentNamespace,
    /// Dublin Core's namespace without its trailing slash.
    DublinCoreNamespace,
    /// The DCMI terms namespace (`dcterms:`), which refines Dublin Core's elements.
    DublinCoreTermsNamespace,
    /// RSS 2.0 in a namespace of its own: UserLand's (0.9x and 2.0) or Harvard's.
    RssNamespaceAlias,
    /// MediaRSS's namespace without its trailing slash.
    MediaRssNamespace,
    /// The iTunes namespace spelled otherwise than `http://www.itunes.com/dtds/podcast-1.0.dtd`
    /// (Apple's own documents wrote `DTDs/PodCast`; XML namespaces are case-sensitive).
    ItunesNamespace,
    YandexFullText,
    TurboContent,
}

impl Marker {
    const ALL: [Marker; 11] = [
        Marker::NonCharacter,
        Marker::CharacterReference,
        Marker::Rss09Namespace,
        Marker::ContentNamespace,
        Marker::DublinCoreNamespace,
        Marker::DublinCoreTermsNamespace,
        Marker::RssNamespaceAlias,
        Marker::MediaRssNamespace,
        Marker::ItunesNamespace,
        Marker::YandexFullText,
        Marker::TurboContent,
    ];

    /// The marker's text (for [`Marker::NonCharacter`], the first of its two).
    fn text(self) -> &'static str {
        match self {
            Marker::NonCharacter => "\u{fffe}",
            Marker::CharacterReference => "&#",
            Marker::Rss09Namespace => "\"http://my.netscape.com/rdf/simple/0.9/\"",
            Marker::ContentNamespace => "\"http://purl.org/rss/1.0/modules/content\"",
            Marker::DublinCoreNamespace => "\"http://purl.org/dc/elements/1.1\"",
            Marker::DublinCoreTermsNamespace => "\"http://purl.org/dc/terms/\"",
            Marker::RssNamespaceAlias => "\"http://backend.userland.com/rss2\"",
            Marker::MediaRssNamespace => "\"http://search.yahoo.com/mrss\"",
            Marker::ItunesNamespace => "\"http://www.itunes.com/DTDs/PodCast-1.0.dtd\"",
            Marker::YandexFullText => "<yandex:full-text>",
            Marker::TurboContent => "<turbo:content>",
        }
    }

    /// The pattern [`Markers::find`] searches for.
    fn pattern(self) -> String {
        match self {
            Marker::NonCharacter => "\u{fffe}|\u{ffff}".to_string(),
            Marker::RssNamespaceAlias => RSS_SPELLINGS.to_string(),
            Marker::ItunesNamespace => ITUNES_SPELLINGS.to_string(),
            marker => regex::escape(marker.text()),
        }
    }
}

/// Namespaces that feed-rs only knows under another name: the name it knows. feed-rs
/// reads the DCMI terms that refine Dublin Core's elements (`issued`, `modified`,
/// `created`) under Dublin Core's namespace; its other terms have the same names and
/// meanings as the elements they refine.
const NAMESPACE_FIXES: [(Marker, &str); 5] = [
    (Marker::Rss09Namespace, "\"http://purl.org/rss/1.0/\""),
    (
        Marker::ContentNamespace,
        "\"http://purl.org/rss/1.0/modules/content/\"",
    ),
    (
        Marker::DublinCoreNamespace,
        "\"http://purl.org/dc/elements/1.1/\"",
    ),
    (
        Marker::DublinCoreTermsNamespace,
        "\"http://purl.org/dc/elements/1.1/\"",
    ),
    (
        Marker::MediaRssNamespace,
        "\"http://search.yahoo.com/mrss/\"",
    ),
];

/// The [`Marker`]s present in a document.
struct Markers(regex::SetMatches);

impl Markers {
    fn find(text: &str) -> Markers {
        // Match i is `Marker::ALL[i]`, whose discriminant is i.
        static SET: LazyLock<regex::RegexSet> = LazyLock::new(|| {
            regex::RegexSet::new(Marker::ALL.map(Marker::pattern))
                .expect("the markers are valid patterns")
        });
        Markers(SET.matches(text))
    }

    fn has(&self, marker: Marker) -> bool {
        self.0.matched(marker as usize)
    }
}

/// Removes character references to code points XML forbids (`&#x0;`, `&#8;`,
/// `&#xFFFE;`, surrogates): feed-rs rejects the whole document for one of them, and
/// written back out they would make the merged feed ill-formed. Borrowed when there
/// was none.
fn drop_forbidden_references(text: &str) -> Cow<'_, str> {
    static REFERENCE: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"&#(?:[xX][0-9a-fA-F]{1,8}|[0-9]{1,10});")
            .expect("the character reference pattern is valid")
    });
    if !references(text).any(is_forbidden_reference) {
        return Cow::Borrowed(text);
    }
    REFERENCE.replace_all(text, |caps: &regex::Captures<'_>| {
        if is_forbidden_reference(&caps[0]) {
            String::new()
        } else {
            caps[0].to_string()
        }
    })
}

/// The numeric character references in `text`, as `&#(?:[xX][0-9a-fA-F]{1,8}|[0-9]{1,10});`
/// finds them left to right, without running a regex over the whole document (nearly
/// every document holds some, and nearly none a forbidden one).
fn references(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("&#").filter_map(move |(at, _)| {
        let rest = &text.as_bytes()[at + 2..];
        let (start, max, digit): (usize, usize, fn(&u8) -> bool) = match rest.first() {
            Some(b'x' | b'X') => (1, 8, u8::is_ascii_hexdigit),
            _ => (0, 10, u8::is_ascii_digit),
        };
        let digits = rest[start..].iter().take_while(|b| digit(b)).count();
        let end = start + digits;
        ((1..=max).contains(&digits) && rest.get(end) == Some(&b';'))
            .then(|| &text[at..at + 2 + end + 1])
    })
}

/// Whether a reference (`&#...;`, as [`drop_forbidden_references`] matched it) names
/// a code point that XML forbids.
fn is_forbidden_reference(reference: &str) -> bool {
    let digits = &reference[2..reference.len() - 1];
    let code = match digits.strip_prefix(['x', 'X']) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => digits.parse::<u32>().ok(),
    };
    match code {
        Some(c) => {
            (c < 0x20 && !matches!(c, 0x9 | 0xA | 0xD))
                || (0xD800..=0xDFFF).contains(&c)
                || c == 0xFFFE
                || c == 0xFFFF
                || c > 0x10FFFF
        }
        None => true,
    }
}

/// The full-text elements Russian publishers use (`yandex:full-text`,
/// `turbo:content`) become `content:encoded`, which feed-rs reads as the content.
fn full_text_as_content(text: &str) -> String {
    let mut fixed = text.to_string();
    for tag in ["yandex:full-text", "turbo:content"] {
        fixed = fixed
            .replace(&format!("<{tag}>"), "<content:encoded>")
            .replace(&format!("</{tag}>"), "</content:encoded>");
    }
    const CONTENT_NS: &str = "http://purl.org/rss/1.0/modules/content/";
    if !fixed.contains("xmlns:content=")
        && let Some(at) = fixed.find("<rss")
    {
        fixed.insert_str(at + 4, &format!(" xmlns:content=\"{CONTENT_NS}\""));
    }
    fixed
}

/// JSON Feed as publishers write it, made acceptable to feed-rs: the version URL
/// with `http:`, a numeric item `id` (JSON Feed 1.1 asks readers to take it as a
/// string), and `tags` written as one comma-separated string. `None` when nothing
/// needed repair or the text is not JSON at all.
fn repair_json(text: &str) -> Option<String> {
    use serde_json::Value;
    let mut feed: Value = serde_json::from_str(text).ok()?;
    let mut changed = false;
    if let Some(Value::String(version)) = feed.get_mut("version")
        && let Some(rest) = version.strip_prefix("http://jsonfeed.org/")
    {
        *version = format!("https://jsonfeed.org/{rest}");
        changed = true;
    }
    if let Some(Value::Array(items)) = feed.get_mut("items") {
        for item in items {
            if let Some(id) = item.get_mut("id")
                && id.is_number()
            {
                *id = Value::String(id.to_string());
                changed = true;
            }
            if let Some(tags) = item.get_mut("tags")
                && let Value::String(joined) = tags
            {
                let split = joined
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(|t| Value::String(t.to_string()))
                    .collect();
                *tags = Value::Array(split);
                changed = true;
            }
        }
    }
    changed.then(|| feed.to_string())
}

/// Reads [`PollHints`] from the channel head (everything before the first item), with
/// a plain text scan: these elements hold only numbers and names.
fn poll_hints(text: &str) -> PollHints {
    static FIRST_ITEM: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r#"<item|<entry|"items""#).expect("the item pattern is valid")
    });
    let head_end = FIRST_ITEM.find(text).map_or(text.len(), |m| m.start());
    let head = &text[..head_end];
    let ttl = element_text(head, "ttl")
        .and_then(|t| t.parse::<u64>().ok())
        .map(|minutes| std::time::Duration::from_secs(minutes.saturating_mul(60)));
    let period = element_text(head, "sy:updatePeriod").and_then(|p| match p.as_str() {
        "hourly" => Some(3600u64),
        "daily" => Some(86_400),
        "weekly" => Some(7 * 86_400),
        "monthly" => Some(30 * 86_400),
        "yearly" => Some(365 * 86_400),
        _ => None,
    });
    let frequency = element_text(head, "sy:updateFrequency")
        .and_then(|f| f.parse::<u64>().ok())
        .filter(|f| *f > 0)
        .unwrap_or(1);
    let syndication = period.map(|p| std::time::Duration::from_secs(p / frequency));
    let skip_hours = element_text(head, "skipHours")
        .map(|block| {
            children_text(&block, "hour")
                .iter()
                .filter_map(|h| h.parse::<u8>().ok())
                .map(|h| h % 24)
                .collect()
        })
        .unwrap_or_default();
    let skip_days = element_text(head, "skipDays")
        .map(|block| {
            children_text(&block, "day")
                .iter()
                .filter_map(|d| {
                    [
                        "monday",
                        "tuesday",
                        "wednesday",
                        "thursday",
                        "friday",
                        "saturday",
                        "sunday",
                    ]
                    .iter()
                    .position(|name| d.eq_ignore_ascii_case(name))
                    .map(|i| i as u8)
                })
                .collect()
        })
        .unwrap_or_default();
    PollHints {
        interval: ttl.max(syndication),
        skip_hours,
        skip_days,
    }
}

/// The trimmed text between `<name>` and `</name>`, first occurrence.
fn element_text(text: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&close)?;
    Some(text[start..end].trim().to_string())
}

fn children_text(block: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    block
        .match_indices(&open)
        .filter_map(|(at, _)| {
            let start = at + open.len();
            let end = start + block[start..].find(&close)?;
            Some(block[start..end].trim().to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_marker_is_found_and_only_where_it_is() {
        for marker in Marker::ALL {
            let text = format!("<rss><channel>{}</channel></rss>", marker.text());
            let found = Markers::find(&text);
            for other in Marker::ALL {
                assert_eq!(found.has(other), other == marker, "{marker:?} in {text}");
            }
        }
        assert!(Markers::find("a\u{ffff}b").has(Marker::NonCharacter));
        let plain = Markers::find("<rss><channel><title>x</title></channel></rss>");
        assert!(Marker::ALL.iter().all(|marker| !plain.has(*marker)));
    }

    #[test]
    fn only_references_to_forbidden_code_points_are_forbidden() {
        for (reference, forbidden) in [
            ("&#65;", false),
            ("&#x41;", false),
            ("&#9;", false),
            ("&#xA;", false),
            ("&#x10FFFF;", false),
            ("&#0;", true),
            ("&#x8;", true),
            ("&#XD800;", true),
            ("&#65534;", true),
            ("&#xFFFF;", true),
            ("&#x110000;", true),
            ("&#99999999999;", true),
        ] {
            assert_eq!(is_forbidden_reference(reference), forbidden, "{reference}");
        }
        assert!(matches!(
            drop_forbidden_references("a &#65; b"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            drop_forbidden_references("a&#0;b&#65;c&#xFFFE;"),
            "ab&#65;c"
        );
    }

    #[test]
    fn references_are_found_as_the_reference_pattern_finds_them() {
        let pattern = regex::Regex::new(r"&#(?:[xX][0-9a-fA-F]{1,8}|[0-9]{1,10});").unwrap();
        for text in [
            "a &#65; b &#x41; &#X7f; c",
            "&#&#65;&#x;&#;&#x1g;&#12a;",
            "&#12345678901; &#1234567890; &#x123456789; &#x12345678;",
            "&#0;&#x0;&amp;#9;&#9",
            "é&#233;日&#x65E5;",
            "",
        ] {
            let expected: Vec<&str> = pattern.find_iter(text).map(|m| m.as_str()).collect();
            assert_eq!(references(text).collect::<Vec<_>>(), expected, "{text}");
        }
    }

    #[test]
    fn forbidden_controls_are_found_anywhere() {
        for at in [0, 1, 63, 64, 65, 127, 200] {
            for control in ['\0', '\u{7}', '\u{1f}'] {
                let mut text = "x".repeat(201);
                text.replace_range(at..at + 1, &control.to_string());
                assert!(has_forbidden_control(&text), "{at} {control:?}");
            }
        }
        assert!(!has_forbidden_control(&"a\tb\nc\rd é \u{7f}".repeat(40)));
    }

    #[test]
    fn cyrillic_feed_parses_without_mojibake() {
        let body = b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>\n<rss version=\"2.0\"><channel><title>\xcd\xee\xe2\xee\xf1\xf2\xe8</title><item><title>\xcf\xf0\xe8\xe2\xe5\xf2</title><guid>1</guid></item></channel></rss>";
        let feed = parse_feed(body, None, Tz::UTC).unwrap().feed;
        assert_eq!(feed.title.unwrap().content, "Новости");
        assert_eq!(feed.entries[0].title.as_ref().unwrap().content, "Привет");
    }

    #[test]
    fn references_to_forbidden_characters_are_dropped() {
        let body = "<rss version=\"2.0\"><channel><title>T\u{fffe}&#x0;&#8;&#xFFFE;&#55296;</title><item><title>A&#0;B &#x41;&#9;&amp;#x0;</title><link>http://x.example/1</link></item></channel></rss>".as_bytes();
        let parsed = parse_feed(body, None, Tz::UTC).unwrap();
        let title = parsed.feed.entries[0].title.as_ref().unwrap();
        assert_eq!(title.content, "AB A\t&#x0;");
        assert_eq!(parsed.feed.title.as_ref().unwrap().content, "T");
    }

    #[test]
    fn rss_without_version_and_control_characters_are_read() {
        let body = b"<rss><channel><title>T\x07</title><item><title>A\x00B</title><link>http://x.example/1</link></item></channel></rss>";
        let feed = parse_feed(body, None, Tz::UTC).unwrap().feed;
        assert_eq!(feed.entries[0].title.as_ref().unwrap().content, "AB");
    }

    #[test]
    fn rss_0_9_and_sloppy_namespaces_are_read() {
        let body = br#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://my.netscape.com/rdf/simple/0.9/"><channel><title>News</title><link>https://n.example/</link></channel><item><title>One</title><link>https://n.example/1</link></item></rdf:RDF>"#;
        let feed = parse_feed(body, None, Tz::UTC).unwrap().feed;
        assert_eq!(feed.title.unwrap().content, "News");
        assert_eq!(feed.entries.len(), 1);
        let body = br#"<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content"><channel><title>C</title><item><guid>1</guid><content:encoded>full</content:encoded></item></channel></rss>"#;
        let feed = parse_feed(body, None, Tz::UTC).unwrap().feed;
        assert_eq!(
            feed.entries[0].content.as_ref().unwrap().body.as_deref(),
            Some("full")
        );
    }

    #[test]
    fn rss_in_a_namespace_of_its_own_is_read() {
        for root in [
            r#"<rss xmlns="http://backend.userland.com/rss">"#,
            r#"<rss version="2.0" xmlns="http://backend.userland.com/rss2">"#,
            r#"<rss xmlns="http://backend.userland.com/rss2.1">"#,
            r#"<rss version="2.0" xmlns='http://blogs.law.harvard.edu/tech/rss'>"#,
            r#"<rss version="0.94" xmlns="http://example.com/made-up">"#,
        ] {
            let body = format!(
                "{root}<channel><description>About</description><item><title>One</title></item></channel></rss>"
            );
            let feed = parse_feed(body.as_bytes(), None, Tz::UTC).unwrap().feed;
            assert_eq!(feed.description.unwrap().content, "About", "{root}");
            assert_eq!(
                feed.entries[0].title.as_ref().unwrap().content,
                "One",
                "{root}"
            );
        }
        // A prefix bound to UserLand's namespace, beside a local element of the same name.
        let body = br#"<r:rss version="2.0" xmlns:r="http://backend.userland.com/rss2" xmlns:x="http://example.com/x"><r:channel><r:item><x:description>wrong</x:description><r:description>right</r:description></r:item></r:channel></r:rss>"#;
        let feed = parse_feed(body, None, Tz::UTC).unwrap().feed;
        let summary = feed.entries[0].summary.as_ref().unwrap();
        assert_eq!(summary.content, "right");
    }

    #[test]
    fn dcterms_and_module_namespace_spellings_are_read() {
        let body = br#"<rss version="2.0" xmlns:dcterms="http://purl.org/dc/terms/" xmlns:itunes="http://www.itunes.com/DTDs/PodCast-1.0.dtd" xmlns:media="http://search.yahoo.com/mrss"><channel>
            <dcterms:modified>2003-12-31T10:14:55Z</dcterms:modified>
            <item><dcterms:issued>2003-12-31T10:14:55Z</dcterms:issued><dcterms:modified>2004-01-01T00:00:00Z</dcterms:modified><itunes:author>Host</itunes:author><media:description>Media</media:description></item>
            </channel></rss>"#;
        let feed = parse_feed(body, None, Tz::UTC).unwrap().feed;
        let date = chrono::DateTime::parse_from_rfc3339("2003-12-31T10:14:55Z")
            .unwrap()
            .to_utc();
        assert_eq!(feed.updated, Some(date));
        let entry = &feed.entries[0];
        assert_eq!(entry.published, Some(date));
        assert_ne!(entry.updated, Some(date));
        assert_eq!(entry.authors[0].name.as_deref(), Some("Host"));
        assert_eq!(entry.summary.as_ref().unwrap().content, "Media");
        for spelling in [
            "https://www.itunes.com/dtds/podcast-1.0.dtd",
            "http://www.itunes.com/DTDs/Podcast-1.0.dtd",
            "http://www.itunes.com/dtds/Podcast-1.0.dtd",
        ] {
            let body = format!(
                r#"<rss version="2.0" xmlns:itunes="{spelling}"><channel><item><itunes:author>Host</itunes:author></item></channel></rss>"#
            );
            let feed = parse_feed(body.as_bytes(), None, Tz::UTC).unwrap().feed;
            assert_eq!(feed.entries[0].authors.len(), 1, "{spelling}");
        }
        // The canonical spelling is left as it is (and read).
        assert!(
            !Markers::find(r#"xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd""#)
                .has(Marker::ItunesNamespace)
        );
    }

    #[test]
    fn yandex_and_turbo_full_text_become_content() {
        let body = "<rss version=\"2.0\" xmlns:yandex=\"http://news.yandex.ru\"><channel><title>Y</title>\
            <item><guid>1</guid><description>Short</description><yandex:full-text>Whole story</yandex:full-text></item>\
            <item><guid>2</guid><turbo:content><![CDATA[<p>Turbo</p>]]></turbo:content></item></channel></rss>";
        let feed = parse_feed(body.as_bytes(), None, Tz::UTC).unwrap().feed;
        let content = |i: usize| feed.entries[i].content.as_ref().unwrap().body.clone();
        assert_eq!(content(0).as_deref(), Some("Whole story"));
        assert_eq!(content(1).as_deref(), Some("<p>Turbo</p>"));
    }

    #[test]
    fn json_feed_quirks_are_repaired() {
        let body = br#"{"version": "http://jsonfeed.org/version/1", "title": "J", "items": [{"id": 7, "tags": "a, b", "content_text": "x"}]}"#;
        let feed = parse_feed(body, None, Tz::UTC).unwrap().feed;
        assert_eq!(feed.entries[0].id, "7");
        let tags: Vec<_> = feed.entries[0]
            .categories
            .iter()
            .map(|c| c.term.as_str())
            .collect();
        assert_eq!(tags, ["a", "b"]);
    }

    #[test]
    fn publisher_hints_are_read_from_the_channel_head() {
        let body = br#"<rss version="2.0" xmlns:sy="http://purl.org/rss/1.0/modules/syndication/"><channel><title>H</title>
            <ttl>30</ttl><sy:updatePeriod>hourly</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>
            <skipHours><hour>0</hour><hour>1</hour><hour>23</hour></skipHours>
            <skipDays><day>Saturday</day><day>Sunday</day></skipDays>
            <item><guid>1</guid><ttl>999</ttl></item></channel></rss>"#;
        let hints = parse_feed(body, None, Tz::UTC).unwrap().hints;
        assert_eq!(
            hints.interval,
            Some(std::time::Duration::from_secs(30 * 60))
        );
        assert_eq!(hints.skip_hours, vec![0, 1, 23]);
        assert_eq!(hints.skip_days, vec![5, 6]);
        let plain = parse_feed(
            b"<rss version=\"2.0\"><channel><title>P</title></channel></rss>",
            None,
            Tz::UTC,
        );
        assert_eq!(plain.unwrap().hints, PollHints::default());
    }

    #[test]
    fn entries_the_parser_loses_are_a_failure_and_a_truly_empty_feed_is_not() {
        let lost = [
            // Items in a namespace that is not RSS's.
            (
                "<rss version=\"2.0\"><channel><title>T</title><x:item xmlns:x=\"http://example.org/\"><x:title>x</x:title></x:item><x:item xmlns:x=\"http://example.org/\"><x:title>y</x:title></x:item></channel></rss>",
                "2 <item> elements",
            ),
            // Entries in a namespace that is not Atom's.
            (
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>A</title><a:entry xmlns:a=\"http://example.org/\"><a:title>x</a:title></a:entry></feed>",
                "1 <entry> element",
            ),
        ];
        for (body, held) in lost {
            let err = parse_feed(body.as_bytes(), None, Tz::UTC).err();
            assert!(
                matches!(&err, Some(ParseError::EntriesLost(said)) if said == held),
                "{body}: {err:?}"
            );
        }
        let empty = [
            "<rss version=\"2.0\"><channel><title>Nothing yet</title></channel></rss>",
            "<rss version=\"2.0\"><channel><title>T</title><description><![CDATA[<item>]]></description><!-- <item> --></channel></rss>",
            "<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\"><channel><title>R</title><items><rdf:Seq/></items></channel></rdf:RDF>",
            "<feed xmlns=\"http://www.w3.org/2005/Atom\"><title>A</title></feed>",
            r#"{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": []}"#,
        ];
        for body in empty {
            let parsed = parse_feed(body.as_bytes(), None, Tz::UTC);
            assert!(parsed.is_ok_and(|p| p.feed.entries.is_empty()), "{body}");
        }
        assert_eq!(
            entries_in_text(r#"{"items": [{"title": "x"}, {"title": "y"}]}"#).as_deref(),
            Some("2 JSON Feed items")
        );
    }

    #[test]
    fn junk_before_the_declaration_is_dropped() {
        let body = "<br />\n<b>Warning</b>: Undefined variable in <b>/var/www/feed.php</b> on line <b>3</b><br />\n\
            <?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\"><channel><title>T</title>\
            <item><title>One</title><guid>1</guid></item></channel></rss>";
        let feed = parse_feed(body.as_bytes(), None, Tz::UTC).unwrap().feed;
        assert_eq!(feed.title.unwrap().content, "T");
        assert_eq!(feed.entries.len(), 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(parse_feed(b"<html><body>hi</body></html>", None, Tz::UTC).is_err());
        assert!(parse_feed(b"", None, Tz::UTC).is_err());
        assert!(parse_feed(b"\xff\xfe\x00", None, Tz::UTC).is_err());
        assert!(matches!(
            parse_feed(b" \r\n", None, Tz::UTC),
            Err(ParseError::Empty)
        ));
    }
}
