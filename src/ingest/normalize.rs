//! Pure: a fetched document becomes a [`Document`] of normalized [`Item`]s.
//!
//! Called by the scheduler for every fetched body and by `tributary inspect`, so both
//! see exactly the same items. Takes no clock and does no I/O: the store decides an
//! item's place in time from the dates kept here.
//!
//! What normalizing means: a stable id for every item, titles as plain text, links
//! absolute, summary and content sanitized HTML (nothing that runs in a reader).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use feed_rs::model::{Entry, Feed, FeedType, Link, LinkTarget};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use url::Url;

use crate::ingest::parse::{ParseError, PollHints, parse_feed};
pub(crate) use crate::ingest::sanitize::Sanitizer;
pub use crate::ingest::text::plain_text;
use crate::ingest::text::{Marking, line_text};
use crate::item::{Enclosure, Item, ItemId, identity_link};

/// A feed as `tributary inspect --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Document {
    pub feed: FeedInfo,
    pub items: Vec<Item>,
    /// What the publisher says about polling (`<ttl>`, `sy:*`, `skipHours`, `skipDays`).
    pub poll_hints: PollHints,
    /// Entries left out beyond [`MAX_ENTRIES`], the oldest first.
    #[serde(skip_serializing_if = "is_zero")]
    pub left_out: usize,
    /// How many entries the parser read from the document.
    #[serde(skip)]
    pub entries: usize,
    /// Of each item, the index of the entry it was read from.
    #[serde(skip)]
    pub entry_of: Vec<usize>,
}

/// 1 000 entries: more than any real feed carries, and what one store transaction can
/// hold without its memory growing with whatever a hostile feed sends (a 100 000-item
/// feed took gigabytes); the merged river shows only the newest anyway.
pub const MAX_ENTRIES: usize = 1000;

impl Document {
    /// A document of `items`: the one way normalizing and scraping finish one, so
    /// every string of the feed and its items holds only characters XML 1.0 allows,
    /// whatever the input format (a JSON Feed can carry any character).
    pub fn new(mut feed: FeedInfo, mut items: Vec<Item>, left_out: usize) -> Document {
        feed.retain_xml_chars();
        for item in &mut items {
            item.retain_xml_chars();
        }
        Document {
            feed,
            entries: items.len() + left_out,
            entry_of: (0..items.len()).collect(),
            items,
            poll_hints: PollHints::default(),
            left_out,
        }
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// What the feed says about itself.
#[derive(Clone, Debug, Default, Serialize)]
pub struct FeedInfo {
    pub title: Option<String>,
    pub link: Option<String>,
    pub id: Option<String>,
    pub updated: Option<DateTime<Utc>>,
    pub description: Option<String>,
    pub language: Option<String>,
}

impl FeedInfo {
    /// Drops the characters XML 1.0 cannot carry from every text (see
    /// [`retain_xml_chars`](crate::item::retain_xml_chars)).
    fn retain_xml_chars(&mut self) {
        let FeedInfo {
            title,
            link,
            id,
            updated: _,
            description,
            language,
        } = self;
        for text in [title, link, id, description, language]
            .into_iter()
            .flatten()
        {
            crate::item::retain_xml_chars(text);
        }
    }
}

/// Parses and normalizes one fetched document. `url` is where it came from (the final
/// URL after redirects), the base for relative links; dates that name no zone are
/// read in `zone`.
pub fn normalize_document(
    body: &[u8],
    content_type: Option<&str>,
    url: Option<&Url>,
    zone: Tz,
) -> Result<Document, ParseError> {
    let parsed = parse_feed(body, content_type, zone)?;
    let mut document = normalize(parsed.feed, url);
    document.poll_hints = parsed.hints;
    Ok(document)
}

/// Normalizes a parsed feed.
pub fn normalize(feed: Feed, document_url: Option<&Url>) -> Document {
    let feed_link = pick_link(&feed.links, false).and_then(|href| absolute(&href, document_url));
    // Relative links resolve against the feed's own link, else the document URL.
    let base = feed_link.clone().or_else(|| document_url.cloned());
    // Atom says exactly whether a text is plain or HTML; elsewhere the declared types
    // are guesses by feed-rs, and real RSS descriptions are HTML.
    let trust_plain = matches!(feed.feed_type, FeedType::Atom);
    // JSON Feed attachments come from feed-rs as untyped links with a media type.
    let json = matches!(feed.feed_type, FeedType::JSON);
    let format = Format {
        trust_plain,
        json,
        rss: !(trust_plain || json),
    };

    let info = FeedInfo {
        title: feed.title.as_ref().and_then(|t| title(t, format)),
        link: feed_link.as_ref().map(Url::to_string),
        id: Some(feed.id.trim().to_string()).filter(|id| !id.is_empty()),
        updated: feed.updated,
        description: feed
            .description
            .as_ref()
            .and_then(|t| plain_text(head(&t.content, MAX_HTML_BYTES))),
        language: feed.language.clone().filter(|l| !l.trim().is_empty()),
    };

    let count = feed.entries.len();
    let mut entries: Vec<(usize, Entry)> = feed.entries.into_iter().enumerate().collect();
    let left_out = count.saturating_sub(MAX_ENTRIES);
    if left_out > 0 {
        // The newest are kept; undated entries after dated ones, in document order.
        entries.sort_by_key(|(_, e)| std::cmp::Reverse(e.published.or(e.updated)));
        entries.truncate(MAX_ENTRIES);
    }
    let items = entries
        .into_iter()
        .map(|(index, entry)| {
            let own_id = !entry.id.trim().is_empty();
            (normalize_entry(entry, base.as_ref(), format), own_id, index)
        })
        .collect();
    let (items, entry_of) = distinct(items);
    let mut document = Document::new(info, items, left_out);
    document.entries = count;
    document.entry_of = entry_of;
    document
}

/// The document's items, each entry once. A feed that repeats an id keeps its first
/// occurrence (the one nearest the top): the publisher says it is one entry. Entries
/// without an id of their own (`false` beside them) that share a link are told apart
/// by their title and date instead (a diary or a podcast whose every entry links to
/// one page), and only the ones alike in all three are one entry.
/// Returns the items with the entry index each came with (the third of each triple).
fn distinct(items: Vec<(Item, bool, usize)>) -> (Vec<Item>, Vec<usize>) {
    let mut per_link: HashMap<ItemId, usize> = HashMap::new();
    for (item, own_id, _) in &items {
        if !own_id {
            *per_link.entry(item.id.clone()).or_default() += 1;
        }
    }
    let mut seen = HashSet::new();
    items
        .into_iter()
        .map(|(mut item, own_id, index)| {
            if !own_id && item.link.is_some() && per_link[&item.id] > 1 {
                item.id = shared_link_id(&item);
            }
            (item, index)
        })
        .filter(|(item, _)| seen.insert(item.id.clone()))
        .unzip()
}

/// The id of an entry that has none and shares its link with other entries: a hash
/// of the link, its title and its date, the same on every poll.
fn shared_link_id(item: &Item) -> ItemId {
    let date = item.claimed_date().map(|d| d.to_rfc3339());
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in [
        Some(item.id.0.as_str()),
        item.title.as_deref(),
        date.as_deref(),
    ] {
        hasher.update(part.unwrap_or("").as_bytes());
        hasher.update(&[0]);
    }
    ItemId(format!("hash:{:032x}", hasher.digest128()))
}

/// What the document's format says about its texts.
#[derive(Clone, Copy)]
struct Format {
    /// Atom: each text says exactly whether it is plain or HTML; elsewhere the declared
    /// types are guesses by feed-rs, and real RSS descriptions are HTML.
    trust_plain: bool,
    /// JSON Feed: titles are plain text; attachments come from feed-rs as untyped
    /// links with a media type.
    json: bool,
    /// RSS 0.9x, 1.0, 2.0: a title is text unless it looks like HTML.
    rss: bool,
}

/// A title as plain text (see `ingest::text`), cut to [`MAX_TITLE_CHARS`].
fn title(text: &feed_rs::model::Text, format: Format) -> Option<String> {
    let marking = if format.rss {
        Marking::Guess
    } else if format.json || text.content_type.subty() == "plain" {
        Marking::Text
    } else {
        Marking::Html
    };
    let source = head(&text.content, crate::ingest::text::MAX_TITLE_BYTES);
    line_text(source, marking).map(|t| clip(t, MAX_TITLE_CHARS))
}

fn normalize_entry(entry: Entry, feed_base: Option<&Url>, format: Format) -> Item {
    let Format {
        trust_plain, json, ..
    } = format;
    let entry_base = entry
        .base
        .as_deref()
        .and_then(|b| absolute(b, feed_base))
        .or_else(|| feed_base.cloned());
    let link = pick_link(&entry.links, json).and_then(|href| absolute(&href, entry_base.as_ref()));
    let title = entry.title.as_ref().and_then(|t| title(t, format));
    // Relative URLs in an item's HTML are meant relative to the item's page (the
    // feed's xml:base when it sets one).
    let html_base = match &entry.base {
        Some(_) => entry_base.clone(),
        None => link.clone().or(entry_base.clone()),
    };
    let sanitizer = Sanitizer::new(html_base.as_ref());
    let summary = entry.summary.as_ref().and_then(|text| {
        let plain = trust_plain && text.content_type.subty() == "plain";
        sanitizer.clean(head(&text.content, MAX_HTML_BYTES), plain)
    });
    let content = entry.content.as_ref().and_then(|content| {
        let plain = trust_plain && content.content_type.subty() == "plain";
        sanitizer.clean(head(content.body.as_deref()?, MAX_HTML_BYTES), plain)
    });
    let id = item_id(&entry.id, link.as_ref(), title.as_deref(), &entry, &summary);
    // A headline is what readers scan: an item without one gets the first words of
    // its text.
    let title = title.or_else(|| {
        let text = summary.as_deref().or(content.as_deref())?;
        headline_from(&plain_text(text)?)
    });

    let authors = entry
        .authors
        .iter()
        .filter_map(|person| {
            let name = person.name.as_deref().and_then(plain_text);
            name.or_else(|| person.email.clone())
        })
        .collect::<Vec<_>>();
    let mut categories = Vec::new();
    for category in &entry.categories {
        let label = category.label.as_deref().unwrap_or(&category.term);
        if let Some(label) = plain_text(label)
            && !categories.contains(&label)
        {
            categories.push(label);
        }
    }

    Item {
        id,
        title,
        link: link.map(String::from),
        published: entry.published,
        updated: entry.updated,
        summary,
        content,
        authors,
        categories,
        enclosures: enclosures(&entry, entry_base.as_ref(), json),
        comments: comments_link(&entry.links)
            .and_then(|href| absolute(&href, entry_base.as_ref()))
            .map(String::from),
    }
}

/// The item's identity: its guid/id, else its link (canonical, fragment kept), else a hash of its
/// title, date and summary. Never random (feed-rs would make one up on every parse).
fn item_id(
    feed_id: &str,
    link: Option<&Url>,
    title: Option<&str>,
    entry: &Entry,
    summary: &Option<String>,
) -> ItemId {
    let feed_id = feed_id.trim();
    if !feed_id.is_empty() {
        return ItemId(feed_id.to_string());
    }
    if let Some(link) = link {
        return ItemId(identity_link(link));
    }
    let date = entry.published.or(entry.updated).map(|d| d.to_rfc3339());
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in [title, date.as_deref(), summary.as_deref()] {
        hasher.update(part.unwrap_or("").as_bytes());
        hasher.update(&[0]);
    }
    ItemId(format!("hash:{:032x}", hasher.digest128()))
}

/// 12 words (at most 120 characters): enough to recognize a story in a list.
/// 1 000 characters: longer than any headline; a longer title is cut, so one source
/// cannot bloat every output of the merged feed with it.
pub const MAX_TITLE_CHARS: usize = 1000;
/// 256 KiB of HTML per summary or content: a long article fits; beyond it the text is
/// cut before sanitizing, which closes whatever markup the cut left open.
pub const MAX_HTML_BYTES: usize = 256 * 1024;

/// `text` cut to `max` characters, with an ellipsis when something was cut.
fn clip(mut text: String, max: usize) -> String {
    if let Some((at, _)) = text.char_indices().nth(max) {
        text.truncate(at);
        text.push('…');
    }
    text
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn head(text: &str, max: usize) -> &str {
    &text[..text.floor_char_boundary(max)]
}

const HEADLINE_WORDS: usize = 12;
const HEADLINE_CHARS: usize = 120;

/// The first words of `text`, with an ellipsis when cut.
fn headline_from(text: &str) -> Option<String> {
    let mut headline = String::new();
    let mut cut = false;
    for (i, word) in text.split_whitespace().enumerate() {
        if i == HEADLINE_WORDS || headline.chars().count() + word.chars().count() > HEADLINE_CHARS {
            cut = true;
            break;
        }
        if i > 0 {
            headline.push(' ');
        }
        headline.push_str(word);
    }
    if headline.is_empty() {
        return None;
    }
    if cut {
        headline.push('…');
    }
    Some(headline)
}

/// The link a reader should follow: the first `alternate` (or untyped) link, else the
/// first link that is not an enclosure or a self-reference.
fn pick_link(links: &[Link], json: bool) -> Option<String> {
    // Comments pages and feeds are not the story (feed-rs lists them as untyped links).
    let candidates = || {
        links
            .iter()
            .filter(|l| !is_attachment(l, json) && l.target.is_none())
            .filter(|l| l.rel.as_deref() != Some("replies"))
    };
    candidates()
        .find(|l| matches!(l.rel.as_deref(), None | Some("alternate")))
        .or_else(|| candidates().find(|l| !matches!(l.rel.as_deref(), Some("self" | "hub"))))
        .map(|l| l.href.trim().to_string())
        .filter(|href| !href.is_empty())
}

/// The discussion page: RSS `<comments>`, else an Atom `rel="replies"` link (an HTML
/// one first; a replies feed otherwise).
fn comments_link(links: &[Link]) -> Option<String> {
    let replies = || links.iter().filter(|l| l.rel.as_deref() == Some("replies"));
    links
        .iter()
        .find(|l| l.target == Some(LinkTarget::Comments))
        .or_else(|| replies().find(|l| l.media_type.as_deref() == Some("text/html")))
        .or_else(|| replies().next())
        .map(|l| l.href.trim().to_string())
        .filter(|href| !href.is_empty())
}

/// `href` as an absolute http(s) URL, resolved against `base` when relative.
/// Anything else (`javascript:`, `data:`, unparsable) is dropped.
pub(crate) fn absolute(href: &str, base: Option<&Url>) -> Option<Url> {
    let href = href.trim();
    let url = match Url::parse(href) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => base?.join(href).ok()?,
        Err(_) => return None,
    };
    matches!(url.scheme(), "http" | "https").then_some(url)
}

/// An enclosure (`rel="enclosure"`), or a JSON Feed attachment.
fn is_attachment(link: &Link, json: bool) -> bool {
    link.rel.as_deref() == Some("enclosure") || (json && link.media_type.is_some())
}

fn enclosures(entry: &Entry, base: Option<&Url>, json: bool) -> Vec<Enclosure> {
    let mut found: Vec<Enclosure> = Vec::new();
    let mut add = |url: Option<Url>, mime_type: Option<String>, length: Option<u64>| {
        if let Some(url) = url
            && !found.iter().any(|e| e.url == url.as_str())
        {
            found.push(Enclosure {
                url: url.to_string(),
                mime_type,
                length,
            });
        }
    };
    for media in &entry.media {
        for content in &media.content {
            let url = content
                .url
                .as_ref()
                .and_then(|u| absolute(u.as_str(), base));
            let mime = content.content_type.as_ref().map(|m| m.to_string());
            add(url, mime, content.size);
        }
    }
    for link in entry.links.iter().filter(|l| is_attachment(l, json)) {
        add(
            absolute(&link.href, base),
            link.media_type.clone(),
            link.length,
        );
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::canonical_link;

    fn doc(body: &str, url: &str) -> Document {
        normalize_document(
            body.as_bytes(),
            None,
            Some(&Url::parse(url).unwrap()),
            Tz::UTC,
        )
        .unwrap()
    }

    #[test]
    fn titles_are_plain_text() {
        assert_eq!(
            plain_text("  <b>Breaking</b>:\n Tom &amp; Jerry&nbsp;&mdash; <script>x()</script>ok "),
            Some("Breaking: Tom & Jerry — ok".to_string())
        );
        assert_eq!(
            plain_text("a < b && c > d"),
            Some("a < b && c > d".to_string())
        );
        assert_eq!(plain_text("  <br/> "), None);
    }

    #[test]
    fn comments_links_are_kept_and_never_taken_for_the_story() {
        let rss = r#"<rss version="2.0"><channel><title>T</title><link>https://news.example/</link>
            <item><guid>1</guid><title>One</title><comments>/one#comments</comments><link>/one</link></item>
            <item><guid>2</guid><title>Two</title><comments>https://forum.example/t/2</comments></item>
            </channel></rss>"#;
        let items = doc(rss, "https://news.example/rss").items;
        assert_eq!(items[0].link.as_deref(), Some("https://news.example/one"));
        assert_eq!(
            items[0].comments.as_deref(),
            Some("https://news.example/one#comments")
        );
        assert_eq!(items[1].link, None);
        assert_eq!(
            items[1].comments.as_deref(),
            Some("https://forum.example/t/2")
        );
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id><updated>2026-02-06T10:00:00Z</updated>
            <entry><id>urn:a:1</id><title>One</title><updated>2026-02-06T10:00:00Z</updated>
              <link rel="replies" type="application/atom+xml" href="/1/comments.atom"/>
              <link rel="replies" type="text/html" href="/1#comments"/>
              <link href="/1"/></entry></feed>"#;
        let items = doc(atom, "https://blog.example/feed.atom").items;
        assert_eq!(items[0].link.as_deref(), Some("https://blog.example/1"));
        assert_eq!(
            items[0].comments.as_deref(),
            Some("https://blog.example/1#comments")
        );
    }

    #[test]
    fn ids_fall_back_to_link_then_hash_and_are_stable() {
        let body = r#"<rss version="2.0"><channel><title>T</title><link>https://news.example/</link>
            <item><guid>g-1</guid><title>One</title></item>
            <item><title>Two</title><link>/two</link></item>
            <item><title>Three</title><pubDate>Fri, 06 Feb 2026 22:20:00 +0300</pubDate></item>
            </channel></rss>"#;
        let first = doc(body, "https://news.example/rss");
        let ids: Vec<_> = first.items.iter().map(|i| i.id.0.clone()).collect();
        assert_eq!(ids[0], "g-1");
        assert_eq!(ids[1], "https://news.example/two");
        assert!(ids[2].starts_with("hash:"));
        let again = doc(body, "https://news.example/rss");
        assert_eq!(again.items[2].id, first.items[2].id);
    }

    #[test]
    fn links_are_absolute_and_html_is_sanitized() {
        let body = r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://blog.example/a/">
            <title>B</title><id>urn:b</id><updated>2026-02-06T10:00:00Z</updated>
            <entry><id>urn:1</id><title type="html">&lt;i&gt;Hi&lt;/i&gt;</title>
              <updated>2026-02-06T10:00:00Z</updated>
              <link href="post.html"/>
              <content type="html">&lt;p onclick="x()"&gt;Hello &lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;&lt;img src="pic.png"&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;iframe src="https://evil.example"&gt;&lt;/iframe&gt;&lt;/p&gt;</content>
            </entry></feed>"#;
        let document = doc(body, "https://blog.example/feed.atom");
        let item = &document.items[0];
        assert_eq!(item.title.as_deref(), Some("Hi"));
        assert_eq!(
            item.link.as_deref(),
            Some("https://blog.example/a/post.html")
        );
        let content = item.content.as_deref().unwrap();
        assert!(!content.contains("script"), "{content}");
        assert!(!content.contains("onclick"), "{content}");
        assert!(!content.contains("javascript"), "{content}");
        assert!(!content.contains("iframe"), "{content}");
        assert!(
            content.contains("https://blog.example/a/pic.png"),
            "{content}"
        );
    }

    #[test]
    fn authors_categories_and_enclosures_are_kept() {
        let body = r#"<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>P</title>
            <item><guid>e1</guid><title>Ep</title><dc:creator>Anna</dc:creator>
            <category>World</category><category>World</category><category>Tech</category>
            <enclosure url="https://cdn.example/ep1.mp3" type="audio/mpeg" length="1234"/></item>
            </channel></rss>"#;
        let item = doc(body, "https://pod.example/rss").items.remove(0);
        assert_eq!(item.authors, vec!["Anna"]);
        assert_eq!(item.categories, vec!["World", "Tech"]);
        assert_eq!(
            item.enclosures,
            vec![Enclosure {
                url: "https://cdn.example/ep1.mp3".into(),
                mime_type: Some("audio/mpeg".into()),
                length: Some(1234)
            }]
        );
    }

    #[test]
    fn plain_atom_text_is_escaped_not_parsed() {
        let body = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id>
            <entry><id>urn:1</id><title>T</title><updated>2026-02-06T10:00:00Z</updated>
            <summary type="text">if a &lt; b then "c"</summary></entry></feed>"#;
        let item = doc(body, "https://a.example/feed").items.remove(0);
        assert_eq!(
            item.summary.as_deref(),
            Some("if a &lt; b then &quot;c&quot;")
        );
    }

    #[test]
    fn canonical_links_drop_tracking_and_fragments() {
        let cases = [
            (
                "HTTPS://News.Example:443/a?utm_source=rss&id=7#top",
                "https://news.example/a?id=7",
            ),
            (
                "http://news.example:80/a?fbclid=x&yclid=y",
                "http://news.example/a",
            ),
            (
                "https://news.example/a?b=1&gclid=z&c=2",
                "https://news.example/a?b=1&c=2",
            ),
        ];
        for (link, expected) in cases {
            assert_eq!(
                canonical_link(&Url::parse(link).unwrap()),
                expected,
                "{link}"
            );
        }
    }

    #[test]
    fn untitled_items_get_a_headline_and_pixels_are_dropped() {
        let body = r#"<rss version="2.0"><channel><title>T</title><link>https://t.example/</link>
            <item><guid>1</guid><description><![CDATA[<p>One two three four five six seven eight nine ten eleven twelve thirteen</p><img src="/px.gif" width="1" height="1"><img src="/photo.jpg" width="600" height="1">]]></description></item>
            <item><link>https://t.example/a?utm_medium=rss</link><description>Short text.</description></item>
            </channel></rss>"#;
        let items = doc(body, "https://t.example/rss").items;
        assert_eq!(
            items[0].title.as_deref(),
            Some("One two three four five six seven eight nine ten eleven twelve…")
        );
        let summary = items[0].summary.as_deref().unwrap();
        assert!(!summary.contains("px.gif"), "{summary}");
        assert!(summary.contains("photo.jpg"), "{summary}");
        assert_eq!(items[1].title.as_deref(), Some("Short text."));
        assert_eq!(items[1].id.0, "https://t.example/a");
        assert_eq!(
            items[1].link.as_deref(),
            Some("https://t.example/a?utm_medium=rss")
        );
    }

    #[test]
    fn only_the_newest_entries_are_kept() {
        let items: String = (0..MAX_ENTRIES + 5)
            .map(|i| {
                let date = if i == 3 {
                    "Mon, 01 Jun 2026 10:00:00 GMT"
                } else {
                    ""
                };
                format!(
                    "<item><title>n{i}</title><guid>g{i}</guid><pubDate>{date}</pubDate></item>"
                )
            })
            .collect();
        let document = doc(
            &format!("<rss version=\"2.0\"><channel><title>t</title>{items}</channel></rss>"),
            "https://example.org/feed",
        );
        assert_eq!(document.items.len(), MAX_ENTRIES);
        assert_eq!(document.left_out, 5);
        // The dated one first, then the undated ones in document order.
        assert_eq!(document.items[0].id.0, "g3");
        assert_eq!(document.items[1].id.0, "g0");
        assert_eq!(
            document.items.last().unwrap().id.0,
            format!("g{}", MAX_ENTRIES - 1)
        );
    }

    #[test]
    fn huge_titles_and_bodies_are_cut() {
        let title = "T".repeat(1 << 20);
        let body = format!("&lt;p&gt;{}&lt;/p&gt;", "b".repeat(1 << 20));
        let document = doc(
            &format!(
                "<rss version=\"2.0\"><channel><title>{title}</title><item><title>{title}</title><guid>1</guid><description>{body}</description></item></channel></rss>"
            ),
            "https://example.org/feed",
        );
        let item = &document.items[0];
        let item_title = item.title.as_deref().unwrap();
        assert_eq!(item_title.chars().count(), MAX_TITLE_CHARS + 1);
        assert!(item_title.ends_with('…'));
        assert_eq!(
            document.feed.title.as_deref().unwrap().chars().count(),
            MAX_TITLE_CHARS + 1
        );
        let summary = item.summary.as_deref().unwrap();
        assert!(summary.len() <= MAX_HTML_BYTES + 16, "{}", summary.len());
        assert!(summary.starts_with("<p>bbb") && summary.ends_with("</p>"));
    }

    #[test]
    fn titles_are_read_as_their_format_marks_them() {
        let atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><title type="text">Feed &lt;tt&gt;</title><id>urn:a</id>
            <entry><id>urn:1</id><title type="text">History of the &lt;blink&gt; tag</title><updated>2026-02-06T10:00:00Z</updated></entry>
            <entry><id>urn:2</id><title type="html">&lt;b&gt;Bold&lt;/b&gt; &amp;amp; &amp;lt;i&amp;gt;x</title><updated>2026-02-06T10:00:00Z</updated></entry>
            <entry><id>urn:3</id><title>AT&amp;amp;T &lt;3</title><updated>2026-02-06T10:00:00Z</updated></entry>
            </feed>"#;
        let document = doc(atom, "https://a.example/feed");
        let titles: Vec<_> = document
            .items
            .iter()
            .map(|i| i.title.clone().unwrap())
            .collect();
        assert_eq!(
            titles,
            ["History of the <blink> tag", "Bold & x", "AT&amp;T <3"]
        );
        assert_eq!(document.feed.title.as_deref(), Some("Feed <tt>"));
        // RSS does not say: text unless it looks like HTML, as feedparser reads it.
        let escaped = |depth: usize| format!("&{}lt;", "amp;".repeat(depth));
        let rss = format!(
            r#"<rss version="2.0"><channel><title>R</title>
            <item><guid>1</guid><title>History of the &lt;blink&gt; tag</title></item>
            <item><guid>2</guid><title>&lt;b&gt;Bold&lt;/b&gt; news</title></item>
            <item><guid>3</guid><title>Tom &amp;amp; Jerry</title></item>
            <item><guid>4</guid><title>a {e4}img src=x onerror=alert(1){g4} b</title></item>
            <item><guid>5</guid><title>a {e1}b{g1}c{e1}/b{g1}</title></item>
            </channel></rss>"#,
            e4 = escaped(4),
            g4 = escaped(4).replace("lt;", "gt;"),
            e1 = escaped(1),
            g1 = escaped(1).replace("lt;", "gt;"),
        );
        let titles: Vec<_> = doc(&rss, "https://r.example/rss")
            .items
            .into_iter()
            .map(|i| i.title.unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "History of the <blink> tag",
                "Bold news",
                "Tom & Jerry",
                "a b",
                "a c"
            ]
        );
        let json = serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1",
            "title": "J &amp; <J>",
            "items": [{"id": "1", "title": "Use <br> &amp; <p>", "content_text": "t"}],
        });
        let document = doc(&json.to_string(), "https://j.example/feed.json");
        assert_eq!(
            document.items[0].title.as_deref(),
            Some("Use <br> &amp; <p>")
        );
        assert_eq!(document.feed.title.as_deref(), Some("J &amp; <J>"));
    }

    #[test]
    fn no_text_keeps_a_character_xml_cannot_carry() {
        // Every character XML 1.0 forbids that JSON can carry, in every field.
        let bad: String = (1..0x20u32)
            .filter(|c| ![0x9, 0xa, 0xd].contains(c))
            .filter_map(char::from_u32)
            .chain(['\u{fffe}', '\u{ffff}'])
            .collect();
        let json = serde_json::json!({
            "version": "https://jsonfeed.org/version/1.1",
            "title": format!("Feed{bad}"),
            "home_page_url": format!("https://j.example/{bad}"),
            "description": format!("About{bad}"),
            "language": format!("en{bad}"),
            "items": [{
                "id": format!("id{bad}"),
                "url": format!("https://j.example/a{bad}"),
                "title": format!("Title{bad}"),
                "summary": format!("Sum{bad}mary"),
                "content_html": format!("<p>Con{bad}tent</p>"),
                "authors": [{"name": format!("Anna{bad}")}],
                "tags": [format!("tag{bad}")],
                "attachments": [{
                    "url": format!("https://j.example/a.mp3{bad}"),
                    "mime_type": format!("audio/mpeg{bad}"),
                }],
            }],
        });
        let document = doc(&json.to_string(), "https://j.example/feed.json");
        let item = &document.items[0];
        assert_eq!(item.id.0, "id");
        assert_eq!(item.title.as_deref(), Some("Title"));
        assert_eq!(item.authors, ["Anna"]);
        assert_eq!(item.categories, ["tag"]);
        assert_eq!(item.enclosures[0].mime_type.as_deref(), Some("audio/mpeg"));
        assert_eq!(document.feed.title.as_deref(), Some("Feed"));
        let text = serde_json::to_string(&document).unwrap();
        let decoded: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut strings = vec![];
        fn walk<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
            match v {
                serde_json::Value::String(s) => out.push(s),
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                serde_json::Value::Object(o) => o.values().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        walk(&decoded, &mut strings);
        assert!(strings.len() > 10);
        for text in strings {
            assert!(text.chars().all(crate::item::is_xml_char), "{text:?}");
        }
    }

    #[test]
    fn entries_without_ids_are_not_merged_by_their_link() {
        // A diary: one page a day, an anchor per entry, no guids.
        let diary: String = (1..=15)
            .map(|n| {
                format!("<item><title>Entry {n}</title><link>https://d.example/2006/01/01.html#p{n:02}</link></item>")
            })
            .collect();
        // A podcast whose every episode links to its page; the last one repeated.
        let podcast: String = (1..=15)
            .chain([15])
            .map(|n| {
                format!("<item><title>Episode {n}</title><link>https://pod.example/show?utm_source=rss</link><pubDate>Mon, {n:02} Jun 2026 10:00:00 GMT</pubDate></item>")
            })
            .collect();
        for (entries, first_id) in [
            (diary, "https://d.example/2006/01/01.html#p01"),
            (podcast, "hash:"),
        ] {
            let body =
                format!("<rss version=\"2.0\"><channel><title>D</title>{entries}</channel></rss>");
            let first = doc(&body, "https://d.example/rss");
            assert_eq!(first.items.len(), 15);
            assert!(
                first.items[0].id.0.starts_with(first_id),
                "{}",
                first.items[0].id
            );
            let ids: HashSet<_> = first.items.iter().map(|i| i.id.clone()).collect();
            assert_eq!(ids.len(), 15);
            // The same ids on the next poll.
            let again = doc(&body, "https://d.example/rss");
            assert!(
                again
                    .items
                    .iter()
                    .zip(&first.items)
                    .all(|(a, b)| a.id == b.id)
            );
        }
    }

    #[test]
    fn repeated_ids_keep_the_first() {
        let body = r#"<rss version="2.0"><channel><title>R</title>
            <item><guid>same</guid><title>first</title></item>
            <item><guid>same</guid><title>second</title></item></channel></rss>"#;
        let items = doc(body, "https://r.example/rss").items;
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].title.as_deref(), Some("first"));
    }
}
