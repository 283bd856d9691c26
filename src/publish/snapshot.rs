//! Snapshots: one rendered state of the river, its main outputs rendered eagerly,
//! its views on first request; and the [`Publisher`] that renders a new one after
//! every change of the store.

use std::sync::Arc;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::views::{FairShare, Generation, ViewCache};
use super::{
    Format, MAX_CONCURRENT_RENDERS, MAX_VIEW_SCAN, RENDER_DEBOUNCE, Representation, Scope, Site,
    View, ViewError,
};
use crate::config::source_name;
use crate::render::{PageInfo, SourceEntry};
use crate::store::{Store, StoreError};

/// One rendered state of the river: the main outputs, and the views rendered since.
pub struct Snapshot {
    /// Items in the merged river.
    pub items: usize,
    generation: Arc<Generation>,
    main: Vec<Arc<Representation>>,
    views: ViewCache,
    renders: Arc<Semaphore>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The eagerly rendered whole-river document in `format`, when it is the one this
    /// request wants: always with a `public_url`, else when the request's Host is the
    /// listen address (or absent) or the format does not name itself. The fast path.
    pub fn main(&self, format: Format, authority: Option<&str>) -> Option<&Arc<Representation>> {
        let site = &self.generation.site;
        let authority = authority.filter(|a| site.accepts(a));
        let fits = site.public_url.is_some()
            || !format.names_itself()
            || authority.is_none_or(|a| a == site.default_authority);
        fits.then(|| &self.main[format.index()])
    }

    /// The document for `view` as requested on `authority` (the Host header): the
    /// eager one when it fits, else from the view cache, rendering it on first use.
    pub async fn get(
        &self,
        view: &View,
        authority: Option<&str>,
    ) -> Result<Arc<Representation>, ViewError> {
        let generation = &self.generation;
        let authority = authority.filter(|a| generation.site.accepts(a));
        let view = View {
            limit: view.limit.filter(|&l| l != generation.site.max_items),
            ..view.clone()
        };
        match &view.scope {
            Scope::All => {}
            Scope::Tag(tag) if !generation.tags.contains_key(tag) => {
                return Err(ViewError::UnknownTag(tag.clone()));
            }
            Scope::Source(slug) if !generation.site.sources.iter().any(|s| &s.slug == slug) => {
                return Err(ViewError::UnknownSource(slug.clone()));
            }
            _ => {}
        }
        if view.scope == Scope::All
            && view.limit.is_none()
            && let Some(main) = self.main(view.format, authority)
        {
            return Ok(main.clone());
        }
        let host =
            (generation.site.public_url.is_none() && view.format.names_itself()).then(|| {
                authority
                    .unwrap_or(&generation.site.default_authority)
                    .to_string()
            });
        let slot = self.views.slot((view.clone(), host.clone()));
        let rendered = slot
            .get_or_try_init(|| async {
                let _permit = self
                    .renders
                    .acquire()
                    .await
                    .expect("the render semaphore is never closed");
                let generation = generation.clone();
                tokio::task::spawn_blocking(move || {
                    generation.render(&view, host.as_deref()).map(Arc::new)
                })
                .await?
                .map_err(ViewError::from)
            })
            .await?;
        Ok(rendered.clone())
    }
}

/// Builds snapshots from the store.
pub struct Publisher {
    pub store: Store,
    pub site: Arc<Site>,
    renders: Arc<Semaphore>,
}

impl Publisher {
    /// A publisher of `site` from `store`.
    pub fn new(store: Store, site: Site) -> Publisher {
        Publisher {
            store,
            site: Arc::new(site),
            renders: Arc::new(Semaphore::new(MAX_CONCURRENT_RENDERS)),
        }
    }

    /// Renders the current river: reads the store and renders every main output.
    /// Blocking; call it from a blocking thread.
    pub fn render(&self) -> Result<Snapshot, StoreError> {
        let site = self.site.clone();
        let items = match site.max_per_source {
            None => self.store.latest(site.max_items)?,
            Some(_) => {
                let mut fair = FairShare::new(site.max_per_source);
                self.store
                    .latest_where(site.max_items, MAX_VIEW_SCAN, |item| fair.admit(item))?
            }
        };
        let mut sources = Vec::with_capacity(site.sources.len());
        for source in &site.sources {
            let title = match &source.name {
                Some(_) => None,
                None => self.store.source_state(&source.id)?.title,
            };
            let name = source_name(source.name.as_deref(), title.as_deref())
                .unwrap_or_else(|| source.url.clone());
            sources.push(SourceEntry {
                slug: source.slug.clone(),
                name,
                url: source.url.clone(),
                tags: source.tags.clone(),
            });
        }
        let tags = site.tags();
        let page = PageInfo {
            title: site.title.clone(),
            description: site.description.clone(),
            language: site.language.clone(),
            timezone: site.timezone,
            sources,
            tags: tags.keys().cloned().collect(),
        };
        let generation = Arc::new(Generation {
            site,
            store: self.store.clone(),
            items,
            page,
            tags,
        });
        let main = Format::ALL
            .iter()
            .map(|&format| generation.render(&View::main(format), None).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Snapshot {
            items: generation.items.len(),
            generation,
            main,
            views: ViewCache::new(),
            renders: self.renders.clone(),
        })
    }

    /// Re-renders after every change of the store (at most once per
    /// [`RENDER_DEBOUNCE`]) and at once for every new [`Site`] sent on `sites` (a
    /// reload: titles, sources, tags), until `token` is cancelled. Every change gives a
    /// new snapshot, so views rendered from older items are dropped with the old one.
    pub async fn run(
        self,
        snapshot: watch::Sender<Arc<Snapshot>>,
        mut sites: watch::Receiver<Site>,
        token: CancellationToken,
    ) {
        let mut changes = self.store.subscribe();
        sites.mark_unchanged();
        let mut sites_open = true;
        let mut publisher = Arc::new(self);
        loop {
            let reloaded = tokio::select! {
                _ = token.cancelled() => break,
                changed = changes.changed() => if changed.is_err() { break } else { false },
                changed = sites.changed(), if sites_open => changed.is_ok(),
            };
            if reloaded {
                let site = sites.borrow_and_update().clone();
                publisher = Arc::new(Publisher {
                    store: publisher.store.clone(),
                    site: Arc::new(site),
                    renders: publisher.renders.clone(),
                });
            } else if sites_open && sites.has_changed().is_err() {
                sites_open = false;
                continue;
            } else {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(RENDER_DEBOUNCE) => {}
                }
            }
            changes.mark_unchanged();
            // What readers are about to be shown must survive a crash or a power cut:
            // flush (fsync) before it is served, at most once per debounce.
            if let Err(err) = publisher.store.flush().await {
                warn!(error = %err, "cannot flush the store; not publishing unflushed items");
                continue;
            }
            let renderer = publisher.clone();
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || renderer.render()).await {
                Ok(Ok(next)) => {
                    debug!(
                        items = next.items,
                        rss_bytes = next.main[0].identity.body.len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "rendered every output"
                    );
                    snapshot.send_replace(Arc::new(next));
                }
                Ok(Err(err)) => warn!(error = %err, "cannot render the merged feed"),
                Err(err) => warn!(error = %err, "rendering the merged feed panicked"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::item::StoredItem;
    use crate::publish::MAX_CACHED_VIEWS;
    use chrono::DateTime;

    fn config(text: &str) -> Config {
        crate::config::parse(std::path::Path::new("feeds.toml"), text, None).unwrap()
    }

    /// A publisher of `config`'s site, served on 127.0.0.1:1.
    fn publisher(config: &Config, store: Store) -> Publisher {
        Publisher::new(store, Site::from_config(config, "127.0.0.1:1".into(), 1))
    }

    #[tokio::test]
    async fn one_source_holds_at_most_max_per_source_slots() {
        use crate::item::{Item, ItemId, Origin, SourceState};
        let config = config(
            "[publish]\nmax_items = 5\nmax_per_source = 2\n[[source]]\nurl = \"http://wire.example/\"\ntags = [\"t\"]\n[[source]]\nurl = \"http://quiet.example/\"\ntags = [\"t\"]\n",
        );
        let store = Store::temporary().unwrap();
        let now = DateTime::from_timestamp(1_000_000, 0).unwrap();
        for (source, count, start) in [(&config.sources[0], 10, 500), (&config.sources[1], 3, 0)] {
            let origin = Origin {
                source: source.id.clone(),
                name: source.url.to_string(),
                url: source.url.to_string(),
                tags: source.tags.clone(),
            };
            let items: Vec<Item> = (0..count)
                .map(|i| Item {
                    id: ItemId(format!("{}{i}", source.url)),
                    title: Some(format!("{i}")),
                    link: None,
                    published: DateTime::from_timestamp(start + i, 0),
                    updated: None,
                    summary: None,
                    content: None,
                    authors: vec![],
                    categories: vec![],
                    enclosures: vec![],
                    comments: None,
                })
                .collect();
            store
                .record_fetch(&origin, &items, &SourceState::default(), now)
                .unwrap();
        }
        let snapshot = publisher(&config, store).render().unwrap();
        // The wire's 10 newer items take 2 slots, and so do the quiet source's 3: a
        // capped river is shorter than max_items when few sources have items.
        let per_source = |items: &[StoredItem]| {
            let wire = items
                .iter()
                .filter(|i| i.origin.source == config.sources[0].id)
                .count();
            (wire, items.len() - wire)
        };
        assert_eq!(per_source(&snapshot.generation.items), (2, 2));
        let view = |scope| View {
            format: Format::Rss,
            scope,
            limit: None,
        };
        let tag = snapshot
            .get(&view(Scope::Tag("t".into())), None)
            .await
            .unwrap();
        assert_eq!(tag.items, 4);
        // A source's own view is not capped.
        let wire = snapshot
            .get(&view(Scope::Source(config.sources[0].id.slug())), None)
            .await
            .unwrap();
        assert_eq!(wire.items, 5);
        let rendered = String::from_utf8(snapshot.main[0].identity.body.to_vec()).unwrap();
        assert_eq!(rendered.matches("<item>").count(), 4);
    }

    #[tokio::test]
    async fn views_render_once_and_the_ones_in_use_stay_cached() {
        let config = config("[[source]]\nurl = \"http://wire.example/\"\ntags = [\"t\"]\n");
        let snapshot = publisher(&config, Store::temporary().unwrap())
            .render()
            .unwrap();
        let tag = View {
            format: Format::Atom,
            scope: Scope::Tag("t".into()),
            limit: None,
        };
        let first = snapshot.get(&tag, None).await.unwrap();
        assert!(Arc::ptr_eq(
            &first,
            &snapshot.get(&tag, None).await.unwrap()
        ));
        // Another of the server's names gets its own document, rendered once too; a
        // name that is not the server's gets the listen address's.
        let elsewhere = snapshot.get(&tag, Some("localhost:1")).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &elsewhere));
        assert!(Arc::ptr_eq(
            &elsewhere,
            &snapshot.get(&tag, Some("localhost:1")).await.unwrap()
        ));
        assert!(Arc::ptr_eq(
            &first,
            &snapshot.get(&tag, Some("news.example")).await.unwrap()
        ));
        // The listen address and no Host at all get the eager whole-river document.
        let main = View::main(Format::Rss);
        assert!(Arc::ptr_eq(
            &snapshot.get(&main, Some("127.0.0.1:1")).await.unwrap(),
            &snapshot.main[0]
        ));
        // A client cycling through many more views than the cache holds does not push
        // out the view readers keep asking for, and the cache stays bounded.
        for (n, host) in (1..=3 * MAX_CACHED_VIEWS).zip(["localhost", "127.0.0.1"].iter().cycle()) {
            let churn = View {
                limit: Some(n),
                ..main.clone()
            };
            snapshot.get(&churn, Some(host)).await.unwrap();
            assert!(
                Arc::ptr_eq(&first, &snapshot.get(&tag, None).await.unwrap()),
                "{n}"
            );
        }
        assert_eq!(snapshot.views.len(), MAX_CACHED_VIEWS);
    }
}
