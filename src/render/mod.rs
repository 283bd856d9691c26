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
