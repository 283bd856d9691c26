//! The words every other module uses: a source, an item, and their identities.
//!
//! `normalize` produces [`Item`]s, `store` keeps them as [`StoredItem`]s (an item plus
//! what the store decided about it: its place in time and its origin), and `render`
//! reads them back. Nothing here does I/O.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use url::Url;

/// Identity of a configured source: the URL as written in `feeds.toml`.
///
/// It stays the same when the server redirects, so a source keeps its items and its
/// state for as long as its line in the config is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceId(pub String);

impl SourceId {
    /// The source's public id, as in `/sources/{id}.xml`: 16 hex digits of a hash of
    /// the URL. URL-safe, short, and stable for as long as the URL in `feeds.toml` is.
    pub fn slug(&self) -> String {
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(self.0.as_bytes()))
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identity of an item within its source: the feed's guid/id, else its link, else a
/// hash of its title and date (see `normalize::item_id`). Never random, so the same
/// story parsed twice has the same id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ItemId(pub String);

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A media file attached to an item (podcast audio, images).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enclosure {
    pub url: String,
    #[serde(rename = "type")]
    pub mime_type: Option<String>,
    pub length: Option<u64>,
}

/// One normalized item, as `tributary inspect --json` prints it: titles are plain
/// text, links absolute, HTML sanitized, dates in UTC.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: ItemId,
    pub title: Option<String>,
    pub link: Option<String>,
    pub published: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub content: Option<String>,
    pub authors: Vec<String>,
    pub categories: Vec<String>,
    pub enclosures: Vec<Enclosure>,
    /// Where readers discuss the item: RSS `<comments>`, Atom `rel="replies"`.
    #[serde(default)]
    pub comments: Option<String>,
}

impl Item {
    /// The date the item claims for itself: published, else updated.
    pub fn claimed_date(&self) -> Option<DateTime<Utc>> {
        self.published.or(self.updated)
    }

    /// The item's link in the form that identifies a story across sources and
    /// GUID changes (see [`canonical_link`]).
    pub fn canonical_link(&self) -> Option<String> {
        let link = url::Url::parse(self.link.as_deref()?).ok()?;
        Some(canonical_link(&link))
    }

    /// The item's id without scheme and host when it is a URL (`http://a.example/p?id=1`
    /// → `/p?id=1`): a publisher moving to https or to another host keeps it. The
    /// fragment stays: `/diary.html#p01` and `#p02` are two entries. `None` for ids
    /// that are not URLs, or whose path says nothing (`/`).
    pub fn id_without_host(&self) -> Option<String> {
        let url = url::Url::parse(&self.id.0).ok()?;
        url.host()?;
        let mut rest = url.path().to_string();
        if let Some(query) = url.query() {
            rest.push('?');
            rest.push_str(query);
        }
        if let Some(fragment) = url.fragment() {
            rest.push('#');
            rest.push_str(fragment);
        }
        (rest.len() > 1).then_some(rest)
    }

    /// Drops, from every text of the item, the characters XML 1.0 cannot carry (see
    /// [`retain_xml_chars`]). Every field is named, so a new one does not compile until
    /// it is handled here.
    pub fn retain_xml_chars(&mut self) {
        let Item {
            id,
            title,
            link,
            published: _,
            updated: _,
            summary,
            content,
            authors,
            categories,
            enclosures,
            comments,
        } = self;
        retain_xml_chars(&mut id.0);
        for text in [title, link, summary, content, comments]
            .into_iter()
            .flatten()
        {
            retain_xml_chars(text);
        }
        for text in authors.iter_mut().chain(categories.iter_mut()) {
            retain_xml_chars(text);
        }
        for Enclosure {
            url,
            mime_type,
            length: _,
        } in enclosures
        {
            retain_xml_chars(url);
            if let Some(mime_type) = mime_type {
                retain_xml_chars(mime_type);
            }
        }
    }
}

/// Whether XML 1.0 allows `c` anywhere in a document (production [2] `Char`: tab, line
/// feed, carriage return, U+0020-U+D7FF, U+E000-U+FFFD, U+10000-U+10FFFF). Surrogates
/// cannot occur in a Rust string; U+FFFE and U+FFFF of the other planes are allowed.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{fffd}' | '\u{10000}'..)
}

/// `text` without the characters XML 1.0 does not allow (controls other than tab and
/// line breaks, U+FFFE, U+FFFF): one JSON Feed carrying them would otherwise make every
/// merged XML document unreadable. Costs one scan when there are none.
pub fn retain_xml_chars(text: &mut String) {
    if !text.chars().all(is_xml_char) {
        text.retain(is_xml_char);
    }
}

/// Where an item came from, kept with every stored item so the merged feed can
/// attribute it even after its source has left `feeds.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub source: SourceId,
    /// The source's display name: its `name` in `feeds.toml`, else the feed's title.
    pub name: String,
    /// The feed URL readers can subscribe to (RSS 2.0 `<source url>`).
    pub url: String,
    /// The source's tags from `feeds.toml`, published as categories.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// An item as the store keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredItem {
    pub origin: Origin,
    pub item: Item,
    /// When tributary first saw the item; never changes on later polls, so an item
    /// without a date keeps its place in the river.
    pub first_seen: DateTime<Utc>,
    /// The item's place in time (see `store::timestamp_for`).
    pub timestamp: DateTime<Utc>,
}

/// What tributary remembers about a source between polls (and across restarts).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceState {
    /// Validators for the next conditional GET.
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// The feed's own title, the display name when `feeds.toml` gives none.
    pub title: Option<String>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// Failures since the last success; 0 when healthy.
    pub consecutive_failures: u32,
    pub last_error: Option<String>,
    /// When the source is due again, so a restart does not poll everything at once.
    pub next_poll: Option<DateTime<Utc>>,
    /// Where the source is polled now, after a permanent redirect seen on several
    /// polls in a row; `None` means its configured URL.
    #[serde(default)]
    pub effective_url: Option<String>,
    /// The feed found behind the configured URL when that answered with a web page
    /// (autodiscovery); polled from then on instead of the page.
    #[serde(default)]
    pub discovered_feed: Option<String>,
    /// A permanent redirect target seen on `redirect_streak` polls in a row.
    #[serde(default)]
    pub redirect_candidate: Option<String>,
    #[serde(default)]
    pub redirect_streak: u32,
    /// Set by 410 Gone to the fingerprint of the source's config: not polled again
    /// until that config changes.
    #[serde(default)]
    pub gone: Option<u64>,
    /// Hash of the last parsed body: a byte-identical body is not parsed again.
    #[serde(default)]
    pub body_hash: Option<u64>,
    /// The interval adaptive polling learned from the source's publishing rate.
    #[serde(default)]
    pub learned_interval: Option<std::time::Duration>,
    /// The feed's own polling hints: `<ttl>`/`sy:updatePeriod`, `skipHours`, `skipDays`.
    #[serde(default)]
    pub feed_hint: Option<std::time::Duration>,
    #[serde(default)]
    pub skip_hours: Vec<u8>,
    #[serde(default)]
    pub skip_days: Vec<u8>,
}

/// Query parameters that only track the reader: dropped from links used as identity.
const TRACKING_PARAMETERS: &[&str] = &[
    "fbclid",
    "gclid",
    "dclid",
    "yclid",
    "msclkid",
    "mc_cid",
    "mc_eid",
    "igshid",
    "_hsenc",
    "_hsmi",
    "_openstat",
    "from_rss",
];

/// A link as an entry's id when the entry has none of its own: its [`canonical_link`]
/// with its fragment kept, since diaries and podcasts give each entry of one page its
/// own anchor (`/2006/01/01.html#p01`, `#p02`).
pub fn identity_link(link: &Url) -> String {
    let canonical = canonical_link(link);
    match link.fragment() {
        Some(fragment) => format!("{canonical}#{fragment}"),
        None => canonical,
    }
}

/// A link in the form that identifies a story: scheme and host in lower case and
/// the default port dropped (the url crate does both), no fragment, and no tracking
/// parameters (`utm_*` and [`TRACKING_PARAMETERS`]). The published link keeps them.
pub fn canonical_link(link: &Url) -> String {
    let mut canonical = link.clone();
    canonical.set_fragment(None);
    if canonical.query().is_some() {
        let kept: Vec<(String, String)> = canonical
            .query_pairs()
            .filter(|(key, _)| {
                let key = key.to_ascii_lowercase();
                !key.starts_with("utm_") && !TRACKING_PARAMETERS.contains(&key.as_str())
            })
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            canonical.set_query(None);
        } else {
            canonical.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    canonical.to_string()
}
