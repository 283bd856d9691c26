//! Pure: the newest stored items plus channel details become an RSS 2.0 document.
//!
//! Called by `publish` once per change of the river, never per request. Every item
//! keeps its origin: `<source url="...">name</source>`, and the source's tags as
//! categories.

use rss::extension::dublincore::DublinCoreExtension;
use rss::{Category, Channel, Guid, Source};

use crate::item::StoredItem;

/// What the merged feed says about itself.
#[derive(Clone, Debug)]
pub struct ChannelInfo {
    pub title: String,
    pub link: String,
    pub description: String,
    /// How long readers may cache the feed, in minutes (`<ttl>`).
    pub ttl_minutes: u64,
}

/// `generator` of every output.
pub const GENERATOR: &str = concat!("tributary ", env!("CARGO_PKG_VERSION"));

/// Renders `items` (newest first) as an RSS 2.0 document.
pub fn render_rss(items: &[StoredItem], channel: &ChannelInfo) -> Vec<u8> {
    let rss_items = items.iter().map(rss_item).collect();
    let channel = Channel {
        title: channel.title.clone(),
        link: channel.link.clone(),
        description: channel.description.clone(),
        last_build_date: items.first().map(|i| i.timestamp.to_rfc2822()),
        generator: Some(GENERATOR.to_string()),
        ttl: Some(channel.ttl_minutes.to_string()),
        items: rss_items,
        ..Channel::default()
    };
    channel
        .write_to(Vec::new())
        .expect("writing XML to memory cannot fail")
}

fn rss_item(stored: &StoredItem) -> rss::Item {
    let item = &stored.item;
    let origin = &stored.origin;
    let (guid, is_permalink) = guid(stored);
    let mut categories: Vec<Category> = item
        .categories
        .iter()
        .chain(origin.tags.iter().filter(|t| !item.categories.contains(t)))
        .map(|name| Category {
            name: name.clone(),
            domain: None,
        })
        .collect();
    categories.dedup_by(|a, b| a.name == b.name);
    // RSS 2.0 needs a title or a description; an item with neither shows its link.
    let title = item
        .title
        .clone()
        .or_else(|| (item.summary.is_none() && item.content.is_none()).then(|| untitled(stored)));
    rss::Item {
        title,
        link: item.link.clone(),
        description: item.summary.clone().or_else(|| item.content.clone()),
        content: item.content.clone().filter(|_| item.summary.is_some()),
        guid: Some(Guid {
            value: guid,
            permalink: is_permalink,
        }),
        pub_date: Some(stored.timestamp.to_rfc2822()),
        categories,
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
            title: Some(origin.name.clone()),
        }),
        dublin_core_ext: (!item.authors.is_empty()).then(|| DublinCoreExtension {
            creators: item.authors.clone(),
            ..DublinCoreExtension::default()
        }),
        ..rss::Item::default()
    }
}

/// The merged feed's guid: the item's own id when it is its permalink, else a URN
/// built from the source and item ids, so two sources' "1" never clash and the guid
/// never changes.
fn guid(stored: &StoredItem) -> (String, bool) {
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

fn untitled(stored: &StoredItem) -> String {
    stored
        .item
        .link
        .clone()
        .unwrap_or_else(|| format!("Untitled item from {}", stored.origin.name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{Enclosure, Item, ItemId, Origin, SourceId};
    use chrono::DateTime;

    fn stored(id: &str, link: Option<&str>, secs: i64) -> StoredItem {
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
            },
            first_seen: DateTime::from_timestamp(secs, 0).unwrap(),
            timestamp: DateTime::from_timestamp(secs, 0).unwrap(),
        }
    }

    fn channel() -> ChannelInfo {
        ChannelInfo {
            title: "Latest".into(),
            link: "http://127.0.0.1:8080/".into(),
            description: "d".into(),
            ttl_minutes: 15,
        }
    }

    #[test]
    fn rendered_feed_reads_back_with_every_field() {
        let items = vec![
            stored("http://a.example/2", Some("http://a.example/2"), 2_000),
            stored("guid-1", Some("http://a.example/1"), 1_000),
        ];
        let bytes = render_rss(&items, &channel());
        let parsed = Channel::read_from(&bytes[..]).unwrap();
        assert_eq!(parsed.items.len(), 2);
        let first = &parsed.items[0];
        assert_eq!(first.title.as_deref(), Some("Title <http://a.example/2>"));
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
    fn same_items_render_the_same_bytes() {
        let items = vec![stored("x", None, 5)];
        assert_eq!(
            render_rss(&items, &channel()),
            render_rss(&items, &channel())
        );
    }
}
