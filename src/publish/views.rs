//! Views: rendering one (a format, a scope, a limit, for a Host) from a snapshot's
//! generation, and the bounded cache of the views rendered, which keeps the ones
//! used last.

use lru::LruCache;
use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use url::Url;

use super::{Format, MAX_CACHED_VIEWS, MAX_VIEW_SCAN, Representation, Scope, Site, View, urls};
use crate::item::{SourceId, StoredItem};
use crate::render::{self, FeedInfo, PageInfo};
use crate::store::{Store, StoreError};

/// Key of a lazily rendered view: the view, and the Host when it matters.
pub(super) type CacheKey = (View, Option<String>);
pub(super) type CacheSlot = Arc<OnceCell<Arc<Representation>>>;

/// What one snapshot renders from: the items, and the site as it was then.
pub(super) struct Generation {
    pub(super) site: Arc<Site>,
    pub(super) store: Store,
    pub(super) items: Vec<StoredItem>,
    pub(super) page: PageInfo,
    pub(super) tags: BTreeMap<String, Vec<SourceId>>,
}

/// The views a snapshot rendered, at most [`MAX_CACHED_VIEWS`]: the least recently
/// used makes room for a new one.
pub(super) struct ViewCache {
    views: Mutex<LruCache<CacheKey, CacheSlot>>,
}

impl ViewCache {
    /// An empty cache.
    pub(super) fn new() -> ViewCache {
        let capacity = NonZeroUsize::new(MAX_CACHED_VIEWS).expect("the cache holds views");
        ViewCache {
            views: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The cache slot for `key`, marked as used last; a new one when it is not
    /// cached.
    pub(super) fn slot(&self, key: CacheKey) -> CacheSlot {
        self.views
            .lock()
            .expect("the view cache lock is never poisoned")
            .get_or_insert(key, CacheSlot::default)
            .clone()
    }

    /// How many views are cached.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.views
            .lock()
            .expect("the view cache lock is never poisoned")
            .len()
    }
}

impl Generation {
    /// Renders `view` with self links on `authority`.
    pub(super) fn render(
        &self,
        view: &View,
        authority: Option<&str>,
    ) -> Result<Representation, StoreError> {
        let site = &self.site;
        let limit = view.limit.unwrap_or(site.max_items);
        let (items, title) = match &view.scope {
            Scope::All => (
                self.items[..limit.min(self.items.len())].to_vec(),
                site.title.clone(),
            ),
            Scope::Tag(tag) => {
                let sources = self.tags.get(tag).cloned().unwrap_or_default();
                let mut fair = FairShare::new(site.max_per_source);
                let items = self.store.latest_where(limit, MAX_VIEW_SCAN, |item| {
                    sources.contains(&item.origin.source) && fair.admit(item)
                })?;
                (items, format!("{} — {tag}", site.title))
            }
            Scope::Source(slug) => {
                let entry = self.page.sources.iter().find(|s| &s.slug == slug);
                let source = site.sources.iter().find(|s| &s.slug == slug);
                let items = match source {
                    Some(source) => self.store.latest_where(limit, MAX_VIEW_SCAN, |item| {
                        item.origin.source == *source.id()
                    })?,
                    None => Vec::new(),
                };
                let name = entry.map_or(slug.as_str(), |e| e.name.as_str());
                (items, format!("{} — {name}", site.title))
            }
        };
        let mut items = items;
        for item in &mut items {
            let shown = site.shown_origin(&item.origin.source, &item.origin.url);
            if let std::borrow::Cow::Owned(shown) = shown {
                item.origin.url = shown;
            }
        }
        let base = site.base(authority);
        let bytes = match view.format {
            Format::Html => render::render_html(&items, &self.page, &urls::PAGE_LINKS),
            Format::Opml => render::render_opml(&self.page),
            format => {
                let info = FeedInfo {
                    hubs: site.hub_urls(&base),
                    title,
                    description: site.description.clone(),
                    link: site
                        .link
                        .as_ref()
                        .map_or_else(|| base.clone(), Url::to_string),
                    self_url: format!("{base}{}", view.path()),
                    language: site.language.clone(),
                    ttl_minutes: site.ttl_minutes,
                };
                match format {
                    Format::Rss => render::render_rss(&items, &info),
                    Format::Atom => render::render_atom(&items, &info),
                    _ => render::render_json(&items, &info),
                }
            }
        };
        let last_modified = match view.format {
            Format::Opml => None,
            _ => items.first().map(|i| i.timestamp),
        };
        let mut representation =
            Representation::new(view.format, bytes, last_modified, items.len());
        if view.format.names_itself() {
            let self_url = format!("{base}{}", view.path());
            representation.links = links_header(&site.hub_urls(&base), &self_url);
        }
        Ok(representation)
    }
}

/// The HTTP `Link` header of a feed with WebSub hubs (WebSub §4): each hub, then
/// the feed's own URL as `rel="self"`; `None` without hubs.
fn links_header(hubs: &[String], self_url: &str) -> Option<hyper::header::HeaderValue> {
    if hubs.is_empty() {
        return None;
    }
    let mut value: Vec<String> = hubs.iter().map(|h| format!("<{h}>; rel=\"hub\"")).collect();
    value.push(format!("<{self_url}>; rel=\"self\""));
    // URLs as `url` writes them hold no control characters or spaces.
    hyper::header::HeaderValue::from_str(&value.join(", ")).ok()
}

/// Counts the slots each source holds while the newest items are picked, so a
/// source that publishes in bursts cannot fill the whole river: past its cap, its
/// older items leave room for other sources' items. A source's own view has no cap.
pub(super) struct FairShare {
    cap: Option<usize>,
    taken: std::collections::HashMap<SourceId, usize>,
}

impl FairShare {
    pub(super) fn new(cap: Option<usize>) -> FairShare {
        FairShare {
            cap,
            taken: Default::default(),
        }
    }

    /// Whether `item` gets a slot (and takes it).
    pub(super) fn admit(&mut self, item: &StoredItem) -> bool {
        let Some(cap) = self.cap else {
            return true;
        };
        let taken = self.taken.entry(item.origin.source.clone()).or_default();
        *taken += 1;
        *taken <= cap
    }
}
