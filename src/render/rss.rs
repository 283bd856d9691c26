//! RSS 2.0 (the rss crate): `/feed.xml`, `/tags/{tag}.xml`, `/sources/{id}.xml`.
//!
//! Every item keeps its origin: `<source url="...">name</source>`, and the source's
//! tags as categories. The channel links to itself with `atom:link rel="self"`.
//! Titles (the channel's, the items', the sources' names) are plain text, and written
//! so that a reader that renders them as HTML shows that text (`render::html_title`).
//! Called by `publish` through [`render_rss`].

use rss::extension::Extension;
use rss::extension::dublincore::DublinCoreExtension;
use rss::{Category, Channel, Guid, Source};

use super::{FeedInfo, categories, html_title, item_guid};
use crate::item::StoredItem;

/// Renders `items` (newest first) as an RSS 2.0 document.
pub fn render_rss(items: &[StoredItem], info: &FeedInfo) -> Vec<u8> {
    let channel = Channel {
        title: html_title(&info.title).into_owned(),
        link: info.link.clone(),
        description: info.description.clone(),
        language: Some(info.language.clone()),
        last_build_date: items.first().map(|i| i.timestamp.to_rfc2822()),
        generator: Some(super::GENERATOR.to_string()),
        ttl: Some(info.ttl_minutes.to_string()),
        namespaces: [("atom".to_string(), ATOM_NAMESPACE.to_string())].into(),
        extensions: [("atom".to_string(), links(&info.self_url, &info.hubs))].into(),
        items: items.iter().map(rss_item).collect(),
        ..Channel::default()
    };
    super::xml_chars_only(
        channel
            .write_to(Vec::new())
            .expect("writing XML to memory cannot fail"),
    )
}

/// The Atom namespace, of the channel's `atom:link`.
const ATOM_NAMESPACE: &str = "http://www.w3.org/2005/Atom";

/// `<atom:link href="…" rel="self" type="application/rss+xml"/>`, as the rss crate's
/// extensions hold it. Written as a plain extension element rather than through the
/// crate's `atom` feature, which would build atom_syndication with its builders
/// (derive_builder and its proc macros) for this one element.
/// `atom:link rel="self"` (RSS 2.0 has no element for a feed's own URL) and one
/// `atom:link rel="hub"` per WebSub hub, as rss extensions.
fn links(self_url: &str, hubs: &[String]) -> std::collections::BTreeMap<String, Vec<Extension>> {
    let link = |attrs: &[(&str, &str)]| Extension {
        name: "atom:link".to_string(),
        attrs: attrs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        ..Extension::default()
    };
    let own = link(&[
        ("href", self_url),
        ("rel", "self"),
        ("type", "application/rss+xml"),
    ]);
    let hubs = hubs
        .iter()
        .map(|hub| link(&[("href", hub), ("rel", "hub")]));
    [(
        "link".to_string(),
        std::iter::once(own).chain(hubs).collect(),
    )]
    .into()
}

fn rss_item(stored: &StoredItem) -> rss::Item {
    let item = &stored.item;
    let origin = &stored.origin;
    let (guid, is_permalink) = item_guid(stored);
    // RSS 2.0 needs a title or a description; an item with neither shows its link.
    let title = item.title.clone().or_else(|| {
        (item.summary.is_none() && item.content.is_none()).then(|| super::display_title(stored))
    });
    // Titles are plain text; readers take an RSS title for HTML.
    let title = title.map(|t| html_title(&t).into_owned());
    rss::Item {
        title,
        link: item.link.clone(),
        comments: item.comments.clone(),
        // Readers show `description` as the item's text and prefer `content:encoded`
        // for the full article when they know it; without a summary both carry it.
        description: item.summary.clone().or_else(|| item.content.clone()),
        content: item.content.clone(),
        guid: Some(Guid {
            value: guid,
            permalink: is_permalink,
        }),
        pub_date: Some(stored.timestamp.to_rfc2822()),
        categories: categories(stored)
            .into_iter()
            .map(|name| Category { name, domain: None })
            .collect(),
        enclosure: item.enclosures.first().map(|e| rss::Enclosure {
            url: e.url.clone(),
            length: e.length.unwrap_or(0).to_string(),
            mime_type: e
                .mime_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_string()),
        }),
        source: Some(Source {
            url: origin.url.clone(),
            title: Some(html_title(&origin.name).into_owned()),
        }),
        dublin_core_ext: (!item.authors.is_empty()).then(|| DublinCoreExtension {
            creators: item.authors.clone(),
            ..DublinCoreExtension::default()
        }),
        ..rss::Item::default()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{info, stored};
    use super::*;

    #[test]
    fn rendered_feed_reads_back_with_every_field() {
        let items = vec![
            stored("http://a.example/2", Some("http://a.example/2"), 2_000),
            stored("guid-1", Some("http://a.example/1"), 1_000),
        ];
        let mut items = items;
        items[1].item.comments = Some("http://a.example/1#comments".into());
        let bytes = render_rss(&items, &info());
        let parsed = Channel::read_from(&bytes[..]).unwrap();
        assert_eq!(parsed.items.len(), 2);
        assert_eq!(parsed.items[0].comments, None);
        assert_eq!(
            parsed.items[1].comments.as_deref(),
            Some("http://a.example/1#comments")
        );
        assert_eq!(parsed.language.as_deref(), Some("en"));
        assert_eq!(
            parsed.namespaces.get("atom").map(String::as_str),
            Some(ATOM_NAMESPACE)
        );
        let self_link = &parsed.extensions["atom"]["link"][0].attrs;
        assert_eq!(self_link["rel"], "self");
        assert_eq!(self_link["href"], "http://127.0.0.1:8080/feed.xml");
        assert_eq!(self_link["type"], "application/rss+xml");
        let first = &parsed.items[0];
        // Read as HTML by many readers: the title's `<` is escaped for HTML too.
        assert_eq!(
            first.title.as_deref(),
            Some("Title &lt;http://a.example/2&gt;")
        );
        assert_eq!(first.guid.as_ref().unwrap().value, "http://a.example/2");
        assert!(first.guid.as_ref().unwrap().permalink);
        let second = &parsed.items[1];
        assert!(
            second
                .guid
                .as_ref()
                .unwrap()
                .value
                .starts_with("urn:tributary:")
        );
        assert!(!second.guid.as_ref().unwrap().permalink);
        let source = second.source.as_ref().unwrap();
        assert_eq!(source.url, "http://a.example/rss");
        assert_eq!(source.title.as_deref(), Some("A & B"));
        let categories: Vec<_> = second.categories.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(categories, ["Tech", "world"]);
        assert_eq!(second.content.as_deref(), Some("<p>full</p>"));
        assert_eq!(second.enclosure.as_ref().unwrap().length, "10");
        assert_eq!(second.dublin_core_ext.as_ref().unwrap().creators, ["Anna"]);
        assert_eq!(
            second.pub_date.as_deref(),
            Some("Thu, 1 Jan 1970 00:16:40 +0000")
        );
        assert_eq!(
            parsed.last_build_date.as_deref(),
            Some("Thu, 1 Jan 1970 00:33:20 +0000")
        );
    }

    #[test]
    fn full_content_is_content_encoded_with_or_without_a_summary() {
        let mut items = vec![
            stored("only-content", None, 2),
            stored("summary-only", None, 1),
        ];
        items[0].item.summary = None;
        items[0].item.content = Some("<p>the whole article</p>".into());
        items[1].item.summary = Some("a summary".into());
        items[1].item.content = None;
        let parsed = Channel::read_from(&render_rss(&items, &info())[..]).unwrap();
        let only_content = &parsed.items[0];
        assert_eq!(
            only_content.content.as_deref(),
            Some("<p>the whole article</p>")
        );
        assert_eq!(
            only_content.description.as_deref(),
            Some("<p>the whole article</p>")
        );
        let summary_only = &parsed.items[1];
        assert_eq!(summary_only.content, None);
        assert_eq!(summary_only.description.as_deref(), Some("a summary"));
    }

    #[test]
    fn same_items_render_the_same_bytes() {
        let items = vec![stored("x", None, 5)];
        assert_eq!(render_rss(&items, &info()), render_rss(&items, &info()));
    }
}
