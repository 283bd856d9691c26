//! Atom 1.0 (the atom_syndication crate, the rss crate's sibling): `/atom.xml` and the
//! `.atom` views.
//!
//! Every entry carries a `<source>` naming its origin feed (title, id and self link),
//! as RFC 4287 §4.2.11 intends for aggregated entries. Titles are plain text, written
//! as `type="html"` when HTML would read them otherwise. Called by `publish` through
//! [`render_atom`].

use atom_syndication::{
    Category, Content, Entry, Feed, FixedDateTime, Generator, Link, Person, Source, Text,
};
use chrono::{DateTime, Utc};

use super::{FeedInfo, categories, display_title, item_guid};
use crate::item::StoredItem;

/// Renders `items` (newest first) as an Atom 1.0 document.
///
/// `updated` of an empty feed is the Unix epoch: Atom requires the element, and a
/// clock reading would change the bytes (and the ETag) of an unchanged river.
pub fn render_atom(items: &[StoredItem], info: &FeedInfo) -> Vec<u8> {
    let updated = items
        .first()
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |i| i.timestamp);
    let feed = Feed {
        title: title_text(&info.title),
        id: info.self_url.clone(),
        updated: fixed(updated),
        // A feed needs an author unless every entry has one; the river speaks for itself.
        authors: vec![Person {
            name: info.title.clone(),
            uri: Some(info.link.clone()),
            ..Person::default()
        }],
        generator: Some(Generator {
            value: "tributary".to_string(),
            uri: None,
            version: Some(env!("CARGO_PKG_VERSION").to_string()),
        }),
        links: [
            Link {
                href: info.self_url.clone(),
                rel: "self".to_string(),
                mime_type: Some("application/atom+xml".to_string()),
                ..Link::default()
            },
            Link {
                href: info.link.clone(),
                rel: "alternate".to_string(),
                mime_type: Some("text/html".to_string()),
                ..Link::default()
            },
        ]
        .into_iter()
        .chain(info.hubs.iter().map(|hub| Link {
            href: hub.clone(),
            rel: "hub".to_string(),
            ..Link::default()
        }))
        .collect(),
        subtitle: Some(Text::plain(info.description.clone())),
        entries: items.iter().map(entry).collect(),
        lang: Some(info.language.clone()),
        ..Feed::default()
    };
    super::xml_chars_only(
        feed.write_to(Vec::new())
            .expect("writing XML to memory cannot fail"),
    )
}

fn entry(stored: &StoredItem) -> Entry {
    let item = &stored.item;
    let origin = &stored.origin;
    let mut links: Vec<Link> = item
        .link
        .iter()
        .map(|href| Link {
            href: href.clone(),
            rel: "alternate".to_string(),
            ..Link::default()
        })
        .collect();
    links.extend(item.enclosures.iter().map(|e| Link {
        href: e.url.clone(),
        rel: "enclosure".to_string(),
        mime_type: e.mime_type.clone(),
        length: e.length.map(|l| l.to_string()),
        ..Link::default()
    }));
    Entry {
        title: title_text(&display_title(stored)),
        id: item_guid(stored).0,
        updated: fixed(item.updated.unwrap_or(stored.timestamp)),
        published: Some(fixed(stored.timestamp)),
        authors: item
            .authors
            .iter()
            .map(|name| Person {
                name: name.clone(),
                ..Person::default()
            })
            .collect(),
        categories: categories(stored)
            .into_iter()
            .map(|term| Category {
                term,
                ..Category::default()
            })
            .collect(),
        links,
        summary: item.summary.clone().map(Text::html),
        content: item.content.clone().map(|value| Content {
            value: Some(value),
            content_type: Some("html".to_string()),
            ..Content::default()
        }),
        source: Some(Source {
            title: title_text(&origin.name),
            id: origin.url.clone(),
            // What we know of the origin feed's age: it held this item then.
            updated: fixed(stored.timestamp),
            links: vec![Link {
                href: origin.url.clone(),
                rel: "self".to_string(),
                ..Link::default()
            }],
            ..Source::default()
        }),
        ..Entry::default()
    }
}

/// A plain-text title as an Atom text construct: `type="text"`, unless HTML would read
/// it as something else (see `render::html_title`); then `type="html"`, escaped for
/// HTML, so that readers which render every title as HTML show it as text too.
fn title_text(title: &str) -> Text {
    let html = super::html_title(title);
    if super::reads_as_markup(title) || html != title {
        Text::html(html.into_owned())
    } else {
        Text::plain(title.to_string())
    }
}

fn fixed(time: DateTime<Utc>) -> FixedDateTime {
    time.fixed_offset()
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{info, stored};
    use super::*;

    #[test]
    fn entries_read_back_with_their_source() {
        let items = vec![
            stored("http://a.example/2", Some("http://a.example/2"), 2_000),
            stored("guid-1", None, 1_000),
        ];
        let bytes = render_atom(&items, &info());
        let feed = Feed::read_from(&bytes[..]).unwrap();
        assert_eq!(feed.id, "http://127.0.0.1:8080/feed.xml");
        assert_eq!(feed.lang.as_deref(), Some("en"));
        assert_eq!(feed.entries.len(), 2);
        let first = &feed.entries[0];
        assert_eq!(first.id, "http://a.example/2");
        // HTML would read the `<` as a tag: the title is HTML whose text it is.
        assert_eq!(first.title.value, "Title &lt;http://a.example/2&gt;");
        assert_eq!(first.title.r#type, atom_syndication::TextType::Html);
        assert_eq!(first.links[0].href, "http://a.example/2");
        assert_eq!(first.links[1].rel, "enclosure");
        let source = first.source.as_ref().unwrap();
        assert_eq!(source.title.value, "A & B");
        assert_eq!(source.id, "http://a.example/rss");
        assert!(feed.entries[1].id.starts_with("urn:tributary:"));
        assert_eq!(feed.updated.timestamp(), 2_000);
    }
}
