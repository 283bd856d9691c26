//! Snapshots: one rendered state of the river, its main outputs rendered eagerly,
//! its views on first request; and the [`Publisher`] that renders a new one after
//! every change of the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::views::{FairShare, Generation, ViewCache};
use super::{
    Format, MAX_CONCURRENT_RENDERS, MAX_VIEW_SCAN, Representation, Scope, Site, View, ViewError,
};
use crate::config::source_name;
use crate::render::{PageInfo, SourceEntry};
use crate::store::{Store, StoreError};

/// One state of the river: the main outputs and the views, each rendered on its first
/// request (the OPML list is carried over from the last snapshot while the sources
/// stay the same).
pub struct Snapshot {
    /// Where `/opml` is kept for the next snapshots once rendered, with the hash of
    /// what this one lists.
    opml: (u128, KeptSlot),
    /// Items in the merged river.
    pub items: usize,
    generation: Arc<Generation>,
    main: [OnceCell<Arc<Representation>>; 5],
    views: ViewCache,
    renders: Arc<Semaphore>,
    /// Nanoseconds spent building this snapshot and rendering its main outputs.
    spent: AtomicU64,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

impl Snapshot {
    /// The site this snapshot was rendered for (titles, sources, hubs).
    pub fn site(&self) -> &Arc<Site> {
        &self.generation.site
    }

    /// Whether the whole-river document in `format` is the one a request on
    /// `authority` wants: always with a `public_url`, else when the request's Host is
    /// the listen address (or absent) or the format does not name itself.
    fn fits(&self, format: Format, authority: Option<&str>) -> bool {
        let site = &self.generation.site;
        let authority = authority.filter(|a| site.accepts(a));
        site.public_url.is_some()
            || !format.names_itself()
            || authority.is_none_or(|a| a == site.default_authority)
    }

    /// The whole-river document in `format`, when it [fits](Snapshot::fits) the
    /// request and was rendered already: the fast path. [`Snapshot::get`] renders it.
    pub fn main(&self, format: Format, authority: Option<&str>) -> Option<&Arc<Representation>> {
        self.fits(format, authority)
            .then(|| self.main[format.index()].get())
            .flatten()
    }

    /// How many of the main outputs are rendered so far.
    pub fn rendered(&self) -> usize {
        self.main.iter().filter(|main| main.initialized()).count()
    }

    /// What this snapshot cost so far: building it, rendering its main outputs and
    /// compressing them. The next snapshot waits in proportion (see
    /// [`render_pause`](super::render_pause)).
    pub fn cost(&self) -> Duration {
        let compressing: Duration = self
            .main
            .iter()
            .filter_map(OnceCell::get)
            .map(|main| main.compressing())
            .sum();
        Duration::from_nanos(self.spent.load(Ordering::Relaxed)) + compressing
    }

    fn spend(&self, took: Duration) {
        let took = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.spent.fetch_add(took, Ordering::Relaxed);
    }

    /// The document for `view` as requested on `authority` (the Host header): the
    /// main one when it fits, else from the view cache; rendered on first use.
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
        if view.scope == Scope::All && view.limit.is_none() && self.fits(view.format, authority) {
            let main = self.main[view.format.index()]
                .get_or_try_init(|| async {
                    let started = std::time::Instant::now();
                    let rendered = self.render(View::main(view.format), None).await?;
                    self.spend(started.elapsed());
                    if view.format == Format::Opml {
                        let (key, kept) = &self.opml;
                        *kept.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some((*key, rendered.clone()));
                    }
                    Ok::<_, ViewError>(rendered)
                })
                .await?;
            return Ok(main.clone());
        }
        let host =
            (generation.site.public_url.is_none() && view.format.names_itself()).then(|| {
                authority
                    .unwrap_or(&generation.site.default_authority)
                    .to_string()
            });
        let slot = self.views.slot((view.clone(), host.clone()));
        let rendered = slot.get_or_try_init(|| self.render(view, host)).await?;
        Ok(rendered.clone())
    }

    /// Renders `view` for `host` on a blocking thread, [`MAX_CONCURRENT_RENDERS`] at
    /// once.
    async fn render(
        &self,
        view: View,
        host: Option<String>,
    ) -> Result<Arc<Representation>, ViewError> {
        let _permit = self
            .renders
            .acquire()
            .await
            .expect("the render semaphore is never closed");
        let generation = self.generation.clone();
        tokio::task::spawn_blocking(move || generation.render(&view, host.as_deref()).map(Arc::new))
            .await?
            .map_err(ViewError::from)
    }
}

/// Builds snapshots from the store.
pub struct Publisher {
    pub store: Store,
    pub site: Arc<Site>,
    renders: Arc<Semaphore>,
    /// The last `/opml`, by a hash of what it lists: it changes with the sources, not
    /// with the items, and with 100 000 sources it is megabytes to render and
    /// compress, so a new snapshot takes it over unless the list changed. A snapshot
    /// of another list renders it on its first request, and keeps it here.
    opml: KeptSlot,
}

/// The last `/opml` and the hash of what it lists.
type KeptOpml = (u128, Arc<Representation>);
/// Where the last `/opml` is kept, shared by the publisher and its snapshots.
type KeptSlot = Arc<Mutex<Option<KeptOpml>>>;

impl Publisher {
    /// A publisher of `site` from `store`.
    pub fn new(store: Store, site: Arc<Site>) -> Publisher {
        Publisher {
            store,
            site,
            renders: Arc::new(Semaphore::new(MAX_CONCURRENT_RENDERS)),
            opml: Arc::default(),
        }
    }

    /// The hash of what `/opml` of `generation` lists, and the last `/opml` when it
    /// lists the same.
    fn opml(&self, generation: &Generation) -> (u128, Option<Arc<Representation>>) {
        let page = &generation.page;
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(page.title.as_bytes());
        for source in &page.sources {
            for text in [&source.slug, &source.name, &source.url]
                .into_iter()
                .chain(&source.tags)
            {
                hasher.update(&(text.len() as u64).to_le_bytes());
                hasher.update(text.as_bytes());
            }
            hasher.update(&(source.tags.len() as u64).to_le_bytes());
        }
        let key = hasher.digest128();
        let kept = self.opml.lock().unwrap_or_else(|e| e.into_inner());
        let opml = kept
            .as_ref()
            .filter(|(kept_key, _)| *kept_key == key)
            .map(|(_, opml)| opml.clone());
        (key, opml)
    }

    /// A snapshot of the current river: reads the store; the main outputs are
    /// rendered when first asked for. Blocking; call it from a blocking thread.
    pub fn render(&self) -> Result<Snapshot, StoreError> {
        let started = std::time::Instant::now();
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
            let title = match source.name() {
                Some(_) => None,
                None => self.store.source_state(source.id())?.title,
            };
            let name =
                source_name(source.name(), title.as_deref()).unwrap_or_else(|| source.url.clone());
            sources.push(SourceEntry {
                slug: source.slug.clone(),
                name,
                url: source.url.clone(),
                tags: source.tags().to_vec(),
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
        let main: [OnceCell<Arc<Representation>>; 5] = Default::default();
        let (key, opml) = self.opml(&generation);
        if let Some(opml) = opml {
            main[Format::Opml.index()]
                .set(opml)
                .expect("a new cell is empty");
        }
        let snapshot = Snapshot {
            opml: (key, self.opml.clone()),
            items: generation.items.len(),
            generation,
            main,
            views: ViewCache::new(),
            renders: self.renders.clone(),
            spent: AtomicU64::new(0),
        };
        snapshot.spend(started.elapsed());
        Ok(snapshot)
    }

    /// Re-renders after every change of the store (after a pause of
    /// [`render_pause`](super::render_pause)) and at once for every new [`Site`] sent on `sites` (a
    /// reload: titles, sources, tags), until `token` is cancelled. Every change gives a
    /// new snapshot, so views rendered from older items are dropped with the old one.
    pub async fn run(
        self,
        snapshot: watch::Sender<Arc<Snapshot>>,
        mut sites: watch::Receiver<Arc<Site>>,
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
                    site,
                    renders: publisher.renders.clone(),
                    opml: publisher.opml.clone(),
                });
            } else if sites_open && sites.has_changed().is_err() {
                sites_open = false;
                continue;
            } else {
                // In proportion to what the snapshot served now cost, renders its
                // readers asked for included.
                let pause = super::render_pause(snapshot.borrow().cost());
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
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
            let rendered = tokio::task::spawn_blocking(move || renderer.render()).await;
            match rendered {
                Ok(Ok(next)) => {
                    debug!(
                        items = next.items,
                        elapsed_ms = next.cost().as_millis() as u64,
                        "a new snapshot of the river"
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
        let site = Site::from_config(config, "127.0.0.1:1".into(), 1);
        Publisher::new(store, Arc::new(site))
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
        let rss = main_of(&snapshot, Format::Rss).await;
        let rendered = String::from_utf8(rss.identity.body.to_vec()).unwrap();
        assert_eq!(rendered.matches("<item>").count(), 4);
    }

    #[tokio::test]
    async fn the_opml_list_is_rendered_when_asked_for_and_again_only_when_the_sources_change() {
        let store = Store::temporary().unwrap();
        let one = config("[[source]]\nurl = \"http://wire.example/\"\nname = \"Wire\"\n");
        let publisher = publisher(&one, store.clone());
        let kept = |publisher: &Publisher| {
            let snapshot = publisher.render().unwrap();
            snapshot.main(Format::Opml, None).cloned()
        };
        assert!(
            kept(&publisher).is_none(),
            "rendered before it was asked for"
        );
        let first = main_of(&publisher.render().unwrap(), Format::Opml).await;
        assert!(Arc::ptr_eq(&first, &kept(&publisher).unwrap()));
        assert!(Arc::ptr_eq(&first, &kept(&publisher).unwrap()));
        // Renamed (a reload): a new list, not rendered until asked for.
        let renamed = config("[[source]]\nurl = \"http://wire.example/\"\nname = \"Wire 2\"\n");
        let publisher = Publisher {
            site: Arc::new(Site::from_config(&renamed, "127.0.0.1:1".into(), 1)),
            ..publisher
        };
        assert!(kept(&publisher).is_none());
        let second = main_of(&publisher.render().unwrap(), Format::Opml).await;
        assert!(!Arc::ptr_eq(&first, &second));
        let text = String::from_utf8(second.identity.body.to_vec()).unwrap();
        assert!(text.contains("text=\"Wire 2\""), "{text}");
        assert!(Arc::ptr_eq(&second, &kept(&publisher).unwrap()));
    }

    #[tokio::test]
    async fn feeds_advertise_their_hubs_and_themselves() {
        let config = config(
            "[server]\npublic_url = \"https://news.example/\"\n[publish]\nhubs = [\"https://hub.example/\"]\nhub = \"builtin\"\n[[source]]\nurl = \"http://wire.example/\"\ntags = [\"t\"]\n",
        );
        let snapshot = publisher(&config, Store::temporary().unwrap())
            .render()
            .unwrap();
        let text = |r: &Representation| String::from_utf8(r.identity.body.to_vec()).unwrap();
        let rss = text(&*main_of(&snapshot, Format::Rss).await);
        assert!(
            rss.contains(r#"<atom:link href="https://hub.example/" rel="hub">"#),
            "{rss}"
        );
        assert!(rss.contains(r#"<atom:link href="https://news.example/hub" rel="hub">"#));
        let atom = text(&*main_of(&snapshot, Format::Atom).await);
        assert!(
            atom.contains(r#"<link href="https://news.example/hub" rel="hub"/>"#),
            "{atom}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&text(&*main_of(&snapshot, Format::Json).await)).unwrap();
        assert_eq!(json["hubs"][0]["type"], "WebSub");
        assert_eq!(json["hubs"][1]["url"], "https://news.example/hub");
        let tag = View {
            format: Format::Atom,
            scope: Scope::Tag("t".into()),
            limit: None,
        };
        let tag = snapshot.get(&tag, None).await.unwrap();
        assert_eq!(
            tag.links.as_ref().unwrap(),
            r#"<https://hub.example/>; rel="hub", <https://news.example/hub>; rel="hub", <https://news.example/tags/t.atom>; rel="self""#
        );
        // The page names no hub; a config without hubs advertises none.
        assert!(main_of(&snapshot, Format::Html).await.links.is_none());
        let plain = config_plain();
        let snapshot = publisher(&plain, Store::temporary().unwrap())
            .render()
            .unwrap();
        let rss = main_of(&snapshot, Format::Rss).await;
        assert!(rss.links.is_none());
        assert!(!text(&rss).contains("rel=\"hub\""));
    }

    /// The whole-river document in `format`, rendered if it was not yet.
    async fn main_of(snapshot: &Snapshot, format: Format) -> Arc<Representation> {
        snapshot.get(&View::main(format), None).await.unwrap()
    }

    #[tokio::test]
    async fn a_river_is_rendered_and_compressed_only_as_readers_ask_for_it() {
        let config = config_plain();
        let snapshot = publisher(&config, Store::temporary().unwrap())
            .render()
            .unwrap();
        assert_eq!(snapshot.rendered(), 0);
        assert!(snapshot.main(Format::Rss, None).is_none());
        let built = snapshot.cost();
        let rss = main_of(&snapshot, Format::Rss).await;
        assert_eq!((snapshot.rendered(), rss.encodings()), (1, 1));
        assert!(Arc::ptr_eq(&rss, snapshot.main(Format::Rss, None).unwrap()));
        assert!(Arc::ptr_eq(&rss, &main_of(&snapshot, Format::Rss).await));
        let rendered = snapshot.cost();
        assert!(rendered > built);
        rss.gzip();
        assert_eq!(snapshot.rendered(), 1);
        assert!(snapshot.cost() > rendered, "compressing counts too");
    }

    fn config_plain() -> Config {
        config("[[source]]\nurl = \"http://wire.example/\"\n")
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
            snapshot.main(Format::Rss, None).unwrap()
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
