//! JSON Feed 1.1 (<https://jsonfeed.org/version/1.1>): `/feed.json` and the `.json`
//! views.
//!
//! JSON Feed has no element for an item's origin, so each item carries the
//! `_source` extension (`{"name", "url"}`; extensions start with an underscore and
//! readers that do not know them ignore them). Called by `publish` through
//! [`render_json`].
//!
//! Titles are plain text, as JSON Feed says; since some readers render them as HTML
//! anyway, a `<` that would open a tag is followed by an invisible U+2060 WORD JOINER
//! (`render::inert_title`): the same text to a reader that follows the spec, no tag
//! to one that does not.

use chrono::SecondsFormat;
use serde::Serialize;
use std::borrow::Cow;

use super::{FeedInfo, categories, inert_title, item_guid};
use crate::item::StoredItem;

/// The version URL every JSON Feed 1.1 document starts with.
pub const VERSION: &str = "https://jsonfeed.org/version/1.1";

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: Cow<'a, str>,
    home_page_url: &'a str,
    feed_url: &'a str,
    description: &'a str,
    language: &'a str,
    /// WebSub hubs (JSON Feed 1.1 `hubs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hubs: Vec<Hub<'a>>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct Hub<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    url: &'a str,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<Cow<'a, str>>,
    /// Required in one of its two forms; the body, else the summary, else nothing to
    /// show but the title.
    content_html: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<String>,
    date_published: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    date_modified: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    authors: Vec<Author<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
    _source: SourceExt<'a>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Attachment<'a> {
    url: &'a str,
    mime_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_in_bytes: Option<u64>,
}

#[derive(Serialize)]
struct SourceExt<'a> {
    name: Cow<'a, str>,
    url: &'a str,
}

/// Renders `items` (newest first) as a JSON Feed 1.1 document.
pub fn render_json(items: &[StoredItem], info: &FeedInfo) -> Vec<u8> {
    let feed = JsonFeed {
        version: VERSION,
        title: inert_title(&info.title),
        home_page_url: &info.link,
        feed_url: &info.self_url,
        description: &info.description,
        language: &info.language,
        hubs: info
            .hubs
            .iter()
            .map(|url| Hub {
                kind: "WebSub",
                url,
            })
            .collect(),
        items: items.iter().map(json_item).collect(),
    };
    serde_json::to_vec_pretty(&feed).expect("serializing plain structs cannot fail")
}

fn json_item(stored: &StoredItem) -> JsonItem<'_> {
    let item = &stored.item;
    let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    JsonItem {
        id: item_guid(stored).0,
        url: item.link.as_deref(),
        title: item.title.as_deref().map(inert_title),
        content_html: item
            .content
            .as_deref()
            .or(item.summary.as_deref())
            .unwrap_or(""),
        // `summary` is plain text in JSON Feed; ours is HTML, so it is only given when
        // the body is separate, as markup-free text.
        summary: item
            .summary
            .as_deref()
            .filter(|_| item.content.is_some())
            .map(strip_tags),
        date_published: rfc3339(stored.timestamp),
        date_modified: item.updated.filter(|u| *u != stored.timestamp).map(rfc3339),
        authors: item.authors.iter().map(|name| Author { name }).collect(),
        tags: categories(stored),
        attachments: item
            .enclosures
            .iter()
            .map(|e| Attachment {
                url: &e.url,
                mime_type: e.mime_type.as_deref().unwrap_or("application/octet-stream"),
                size_in_bytes: e.length,
            })
            .collect(),
        _source: SourceExt {
            name: inert_title(&stored.origin.name),
            url: &stored.origin.url,
        },
    }
}

/// Sanitized HTML as plain text: tags dropped, the common entities decoded.
fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{info, stored};
    use super::*;

    #[test]
    fn has_every_required_field() {
        let items = vec![stored(
            "http://a.example/2",
            Some("http://a.example/2"),
            2_000,
        )];
        let doc: serde_json::Value = serde_json::from_slice(&render_json(&items, &info())).unwrap();
        assert_eq!(doc["version"], VERSION);
        assert_eq!(doc["title"], "Latest");
        assert_eq!(doc["feed_url"], "http://127.0.0.1:8080/feed.xml");
        let item = &doc["items"][0];
        assert_eq!(item["id"], "http://a.example/2");
        assert_eq!(item["content_html"], "<p>full</p>");
        assert_eq!(item["summary"], "sum\u{7f}mary");
        assert_eq!(item["date_published"], "1970-01-01T00:33:20Z");
        assert_eq!(item["_source"]["name"], "A & B");
        assert_eq!(item["attachments"][0]["mime_type"], "audio/mpeg");
        assert_eq!(item["tags"], serde_json::json!(["Tech", "world"]));
    }

    #[test]
    fn strip_tags_keeps_the_text() {
        assert_eq!(strip_tags("<p>a &amp; <b>b</b></p>"), "a & b");
    }
}
