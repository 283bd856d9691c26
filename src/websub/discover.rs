//! Pure: where a feed's hub is and what its topic is called (WebSub §4). The HTTP
//! `Link` header first (`<URL>; rel="hub"`, `rel="self"`), then the document: Atom
//! and RSS `atom:link` (any `link` element with a `rel` of `hub` or `self` and an
//! `href`, before the first entry or item), JSON Feed `hubs` and `feed_url`.
//!
//! Called by the scheduler on every new body of a source that may subscribe; the
//! subscriber acts on what changed.

use quick_xml::events::{BytesStart, Event};
use url::Url;

/// At most 64 KiB of a document are looked at: hub links sit in the feed's head.
const HEAD_BYTES: usize = 64 * 1024;

/// What a feed advertises: its hubs and its topic URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hubs {
    pub hubs: Vec<Url>,
    pub topic: Option<Url>,
}

/// The hubs and the topic of a fetched feed: from `link_header`, else from `body`;
/// relative references resolve against `base`.
pub fn discover(body: &[u8], link_header: Option<&str>, base: &Url) -> Hubs {
    let mut found = link_header
        .map(|header| from_link_header(header, base))
        .unwrap_or_default();
    if found.hubs.is_empty() || found.topic.is_none() {
        let head = &body[..body.len().min(HEAD_BYTES)];
        let in_document = if head.trim_ascii_start().starts_with(b"{") {
            from_json(body, base)
        } else {
            from_xml(head, base)
        };
        if found.hubs.is_empty() {
            found.hubs = in_document.hubs;
        }
        found.topic = found.topic.or(in_document.topic);
    }
    found
}

/// `rel="hub"` and `rel="self"` of an HTTP `Link` header (RFC 8288).
pub fn from_link_header(header: &str, base: &Url) -> Hubs {
    let mut found = Hubs::default();
    for link in split_links(header) {
        let Some((target, params)) = link
            .trim()
            .strip_prefix('<')
            .and_then(|rest| rest.split_once('>'))
        else {
            continue;
        };
        let rels = params.split(';').filter_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("rel")
                .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
        });
        for rel in rels {
            note(&mut found, &rel, target.trim(), base);
        }
    }
    found
}

/// The links of a `Link` header: split at commas outside `<...>` and quotes.
fn split_links(header: &str) -> Vec<&str> {
    let (mut links, mut start, mut in_target, mut in_quotes) = (Vec::new(), 0, false, false);
    for (i, c) in header.char_indices() {
        match c {
            '<' if !in_quotes => in_target = true,
            '>' if !in_quotes => in_target = false,
            '"' if !in_target => in_quotes = !in_quotes,
            ',' if !in_target && !in_quotes => {
                links.push(&header[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    links.push(&header[start..]);
    links
}

/// Takes `href` as a hub or the topic when `rels` (space-separated) names one.
fn note(found: &mut Hubs, rels: &str, href: &str, base: &Url) {
    let Some(url) = base
        .join(href)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
    else {
        return;
    };
    for rel in rels.split_ascii_whitespace() {
        match rel {
            "hub" if !found.hubs.contains(&url) => found.hubs.push(url.clone()),
            "self" if found.topic.is_none() => found.topic = Some(url.clone()),
            _ => {}
        }
    }
}

/// `link` elements with `rel` and `href` before the first entry or item.
fn from_xml(head: &[u8], base: &Url) -> Hubs {
    let mut found = Hubs::default();
    let mut reader = quick_xml::Reader::from_reader(head);
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e) | Event::Empty(e)) => match e.local_name().as_ref() {
                "entry" | "item" => break,
                "link" => link_element(&e, &mut found, base),
                _ => {}
            },
            Ok(Event::Eof) | Err(_) => break,
            Ok(_) => {}
        }
        buf.clear();
    }
    found
}

fn link_element(e: &BytesStart, found: &mut Hubs, base: &Url) {
    let (mut rel, mut href) = (None, None);
    for attribute in e.attributes().flatten() {
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map(|v| v.into_owned())
            .unwrap_or_default();
        match attribute.key.local_name().as_ref() {
            "rel" => rel = Some(value.to_ascii_lowercase()),
            "href" => href = Some(value),
            _ => {}
        }
    }
    if let (Some(rel), Some(href)) = (rel, href) {
        note(found, &rel, href.trim(), base);
    }
}

/// JSON Feed: `hubs` (objects with a `url`) and `feed_url`.
fn from_json(body: &[u8], base: &Url) -> Hubs {
    #[derive(serde::Deserialize)]
    struct Feed {
        feed_url: Option<String>,
        #[serde(default)]
        hubs: Vec<Hub>,
    }
    #[derive(serde::Deserialize)]
    struct Hub {
        url: Option<String>,
    }
    let mut found = Hubs::default();
    let Ok(feed) = serde_json::from_slice::<Feed>(body) else {
        return found;
    };
    for hub in feed.hubs.iter().filter_map(|h| h.url.as_deref()) {
        note(&mut found, "hub", hub, base);
    }
    if let Some(url) = feed.feed_url {
        note(&mut found, "self", &url, base);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://a.example/news/feed.xml").unwrap()
    }

    fn urls(list: &[&str]) -> Vec<Url> {
        list.iter().map(|u| Url::parse(u).unwrap()).collect()
    }

    #[test]
    fn the_link_header_names_hub_and_self() {
        let header = r#"<https://hub.example/>; rel="hub", </news/feed.xml?x=1,2>; rel=self, <https://b.example/>; rel="alternate hub""#;
        let found = from_link_header(header, &base());
        assert_eq!(
            found.hubs,
            urls(&["https://hub.example/", "https://b.example/"])
        );
        assert_eq!(
            found.topic.unwrap().as_str(),
            "https://a.example/news/feed.xml?x=1,2"
        );
    }

    #[test]
    fn atom_and_rss_links_in_the_head_are_read() {
        let atom = br#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
<link rel="alternate" href="/"/><link rel="hub" href="https://hub.example/"/>
<link rel="self" href="feed.xml"/><entry><link rel="hub" href="https://late.example/"/></entry></feed>"#;
        let found = discover(atom, None, &base());
        assert_eq!(found.hubs, urls(&["https://hub.example/"]));
        assert_eq!(
            found.topic.unwrap().as_str(),
            "https://a.example/news/feed.xml"
        );
        let rss = br#"<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel>
<atom:link rel="self" href="https://a.example/rss"/><atom:link href="https://pubsubhubbub.example/" rel="hub"/>
<link>https://a.example/</link><item><title>x</title></item></channel></rss>"#;
        let found = discover(rss, None, &base());
        assert_eq!(found.hubs, urls(&["https://pubsubhubbub.example/"]));
        assert_eq!(found.topic.unwrap().as_str(), "https://a.example/rss");
    }

    #[test]
    fn json_feed_hubs_are_read() {
        let json = br#"{"version":"https://jsonfeed.org/version/1.1","feed_url":"https://a.example/feed.json",
"hubs":[{"type":"WebSub","url":"https://hub.example/"}],"items":[]}"#;
        let found = discover(json, None, &base());
        assert_eq!(found.hubs, urls(&["https://hub.example/"]));
        assert_eq!(found.topic.unwrap().as_str(), "https://a.example/feed.json");
    }

    #[test]
    fn the_header_comes_first_and_the_document_fills_in() {
        let atom = br#"<feed xmlns="http://www.w3.org/2005/Atom"><link rel="hub" href="https://doc-hub.example/"/><link rel="self" href="https://a.example/self"/></feed>"#;
        let found = discover(
            atom,
            Some("<https://header-hub.example/>; rel=hub"),
            &base(),
        );
        assert_eq!(found.hubs, urls(&["https://header-hub.example/"]));
        assert_eq!(found.topic.unwrap().as_str(), "https://a.example/self");
    }

    #[test]
    fn a_feed_without_a_hub_has_none_and_bad_urls_are_skipped() {
        let found = discover(
            b"<rss version=\"2.0\"><channel><link>https://a.example/</link></channel></rss>",
            None,
            &base(),
        );
        assert_eq!(found, Hubs::default());
        let found = from_link_header(
            "<javascript:alert(1)>; rel=hub, garbage, <>; rel=self",
            &base(),
        );
        assert!(found.hubs.is_empty());
        // `<>` is the base itself.
        assert_eq!(found.topic, Some(base()));
    }
}
