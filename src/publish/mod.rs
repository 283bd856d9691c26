//! Owns every rendered output. Renders once per change of the store, never per
//! request, and hands `http` ready-made [`Representation`]s: the bytes in identity,
//! gzip and brotli encodings, each with its strong ETag, plus Last-Modified.
//!
//! A [`Snapshot`] is one state of the river. The main outputs (`/feed.xml`,
//! `/atom.xml`, `/feed.json`, `/`, `/opml`) are rendered eagerly when it is built.
//! Views (a tag, a source, a `?limit`, or a feed for another Host) are rendered on
//! their first request and kept in a small bounded cache that lives as long as the
//! snapshot, so their cost is also per change, not per request.
//!
//! Self links: with `[server] public_url` every document is built on it. Without it,
//! documents name the Host the reader used. The eager feeds are built for the listen
//! address (what a local client sends); any other Host is a view like the others,
//! rendered once per change and Host and cached. The cache keeps the views used
//! last: a client cycling through made-up Host names or `?limit` values costs a
//! render per request (at most [`MAX_CONCURRENT_RENDERS`] at once), but cannot push
//! out the views other readers keep asking for, nor grow memory.
//!
//! Reads the store (`latest`, `latest_where`, `source_state`, `subscribe`); the
//! formats themselves are `render`'s pure functions. `app` runs [`Publisher::run`];
//! `http` reads the [`Snapshot`] from a watch channel.

pub mod body;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use hyper::header::HeaderValue;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use url::Url;

use crate::config::Config;
use crate::item::{SourceId, StoredItem};
use crate::render::{self, FeedInfo, PageInfo, SourceEntry};
use crate::store::{Store, StoreError};

/// 1 second: with thousands of sources the store changes many times a second;
/// readers see a new river at most this often.
pub const RENDER_DEBOUNCE: Duration = Duration::from_secs(1);
/// 64 views per snapshot: every tag and source in a large config gets its turn, and a
/// client cycling through `?limit` values or Host names cannot grow memory.
pub const MAX_CACHED_VIEWS: usize = 64;
/// 2 view renders at once: a burst of first requests for new views cannot take more
/// than the two cores of a small machine from serving.
pub const MAX_CONCURRENT_RENDERS: usize = 2;
/// 20 000 items scanned at most for a tag or source view: about 50 ms, and a quiet
/// source's feed stays cheap however large the store grows.
pub const MAX_VIEW_SCAN: usize = 20_000;
/// gzip level 9: compressed once per change, served many times, so the smallest
/// output is worth the extra milliseconds.
pub const GZIP_LEVEL: u32 = 9;
/// Brotli quality 5: all five outputs of a 100-item river render and compress in
/// about 80 ms (quality 9: 250 ms, on a debounced change that can come every second),
/// and the RSS is still 9% smaller than with gzip -9 (44 KB against 48 KB of 143 KB).
pub const BROTLI_QUALITY: u32 = 5;
/// Brotli window of 4 MiB (2^22): larger than any document we render.
const BROTLI_WINDOW: u32 = 22;

/// One of the five output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Rss,
    Atom,
    Json,
    Html,
    Opml,
}

impl Format {
    /// Every format, in the order of [`Snapshot`]'s eager outputs.
    pub const ALL: [Format; 5] = [
        Format::Rss,
        Format::Atom,
        Format::Json,
        Format::Html,
        Format::Opml,
    ];

    /// The `Content-Type` readers expect.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Rss => "application/rss+xml; charset=utf-8",
            Format::Atom => "application/atom+xml; charset=utf-8",
            Format::Json => "application/feed+json; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Opml => "text/x-opml; charset=utf-8",
        }
    }

    /// Whether the document names its own absolute URL (and so the Host it was
    /// requested with, when no `public_url` is set). The page and the OPML list use
    /// relative or foreign links only.
    pub fn names_itself(self) -> bool {
        matches!(self, Format::Rss | Format::Atom | Format::Json)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which items a view shows.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The whole river.
    All,
    /// Items of the sources that carry this tag in `feeds.toml`.
    Tag(String),
    /// Items of one source, by its slug (`SourceId::slug`).
    Source(String),
}

/// One thing `http` can ask for: a format, a scope and how many items.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct View {
    pub format: Format,
    pub scope: Scope,
    /// `?limit=N`; `None` is `[publish] max_items`. `http` checks the bounds.
    pub limit: Option<usize>,
}

impl View {
    /// The whole river in `format`, at its default length.
    pub fn main(format: Format) -> View {
        View {
            format,
            scope: Scope::All,
            limit: None,
        }
    }

    /// The path (relative to the base URL) that serves this view, for self links.
    fn path(&self) -> String {
        let ext = match self.format {
            Format::Rss => "xml",
            Format::Atom => "atom",
            Format::Json => "json",
            Format::Html | Format::Opml => "",
        };
        let mut path = match (&self.scope, self.format) {
            (Scope::All, Format::Rss) => "feed.xml".to_string(),
            (Scope::All, Format::Atom) => "atom.xml".to_string(),
            (Scope::All, Format::Json) => "feed.json".to_string(),
            (Scope::All, Format::Html) => String::new(),
            (_, Format::Opml) => "opml".to_string(),
            (Scope::Tag(tag), _) => format!("tags/{}.{ext}", render::html::tag_path(tag)),
            (Scope::Source(slug), _) => format!("sources/{slug}.{ext}"),
        };
        if let Some(limit) = self.limit {
            path.push_str(&format!("?limit={limit}"));
        }
        path
    }
}

/// Why a view cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("no tag `{0}` in feeds.toml")]
    UnknownTag(String),
    #[error("no source with id `{0}`")]
    UnknownSource(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("rendering stopped: {0}")]
    Render(#[from] tokio::task::JoinError),
}

/// One encoding of a rendered document.
#[derive(Clone, Debug)]
pub struct Variant {
    pub body: Bytes,
    /// Strong ETag of these bytes: the content hash, with `-gz` or `-br` for the
    /// compressed variants (different bytes need different strong validators).
    pub etag: HeaderValue,
}

/// A rendered document in every encoding, with its validators as ready header values.
#[derive(Debug)]
pub struct Representation {
    pub format: Format,
    pub content_type: HeaderValue,
    /// 32 hex digits of the identity bytes' hash: what every variant's ETag is built on.
    pub hash: String,
    /// The newest item's time; `None` for an empty view and for the OPML list, which
    /// changes with the config, not with items.
    pub last_modified: Option<DateTime<Utc>>,
    pub last_modified_header: Option<HeaderValue>,
    pub identity: Variant,
    pub gzip: Variant,
    pub brotli: Variant,
    /// How many items the document holds.
    pub items: usize,
}

impl Representation {
    /// Compresses `body` both ways and computes the validators.
    pub fn new(
        format: Format,
        body: Vec<u8>,
        last_modified: Option<DateTime<Utc>>,
        items: usize,
    ) -> Self {
        let hash = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&body));
        let variant = |body: Bytes, suffix: &str| Variant {
            body,
            etag: HeaderValue::from_str(&format!("\"{hash}{suffix}\""))
                .expect("hex digits in quotes are a valid header value"),
        };
        let gzip = gzip(&body);
        let brotli = brotli(&body);
        let [body, gzip, brotli] = body::file_backed([body, gzip, brotli]);
        Representation {
            format,
            content_type: HeaderValue::from_static(format.content_type()),
            last_modified_header: last_modified.map(|t| {
                HeaderValue::from_str(&httpdate::fmt_http_date(t.into()))
                    .expect("an HTTP date is a valid header value")
            }),
            last_modified,
            identity: variant(body, ""),
            gzip: variant(gzip, "-gz"),
            brotli: variant(brotli, "-br"),
            hash,
            items,
        }
    }
}

fn gzip(body: &[u8]) -> Vec<u8> {
    // GzEncoder writes mtime 0, so the same input always gives the same bytes.
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 4),
        flate2::Compression::new(GZIP_LEVEL),
    );
    encoder
        .write_all(body)
        .expect("compressing into memory cannot fail");
    encoder
        .finish()
        .expect("compressing into memory cannot fail")
}

fn brotli(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() / 4);
    {
        let mut writer =
            brotli::CompressorWriter::new(&mut out, 64 * 1024, BROTLI_QUALITY, BROTLI_WINDOW);
        writer
            .write_all(body)
            .expect("compressing into memory cannot fail");
    }
    out
}

/// What the outputs say about the river: from the config, replaced on reload.
#[derive(Clone, Debug)]
pub struct Site {
    pub title: String,
    pub description: String,
    /// `[publish] link`: the human page, when it is not tributary's own `/`.
    pub link: Option<Url>,
    /// `[server] public_url`, ending in `/`.
    pub public_url: Option<Url>,
    /// The Host the eager feeds are built for when there is no `public_url`: the
    /// listen address, as a local client writes it.
    pub default_authority: String,
    pub language: String,
    pub timezone: chrono_tz::Tz,
    pub ttl_minutes: u64,
    pub max_items: usize,
    /// `[publish] max_per_source`: most slots of the river (and of a tag view) one
    /// source may hold.
    pub max_per_source: Option<usize>,
    pub sources: Vec<SiteSource>,
}

/// A configured source as publishing needs it.
#[derive(Clone, Debug)]
pub struct SiteSource {
    pub id: SourceId,
    pub slug: String,
    /// The `name` from `feeds.toml`; the feed's own title fills in when it is `None`.
    pub name: Option<String>,
    pub url: String,
    pub tags: Vec<String>,
}

impl Site {
    /// The site described by `config`, served on `default_authority`.
    pub fn from_config(config: &Config, default_authority: String, ttl_minutes: u64) -> Site {
        Site {
            title: config.publish.title.clone(),
            description: config.publish.description.clone(),
            link: config.publish.link.clone(),
            public_url: config.public_url.clone(),
            default_authority,
            language: config.publish.language.clone(),
            timezone: config.publish.timezone,
            ttl_minutes,
            max_items: config.publish.max_items,
            max_per_source: config.publish.max_per_source,
            sources: config
                .sources
                .iter()
                .map(|s| SiteSource {
                    slug: s.id.slug(),
                    id: s.id.clone(),
                    name: s.name.clone(),
                    url: s.url.to_string(),
                    tags: s.tags.clone(),
                })
                .collect(),
        }
    }

    /// Every tag used in `feeds.toml`, sorted, with the sources that carry it.
    pub fn tags(&self) -> BTreeMap<String, Vec<SourceId>> {
        let mut tags: BTreeMap<String, Vec<SourceId>> = BTreeMap::new();
        for source in &self.sources {
            for tag in &source.tags {
                tags.entry(tag.clone()).or_default().push(source.id.clone());
            }
        }
        tags
    }

    /// The base URL documents are built on, ending in `/`.
    fn base(&self, authority: Option<&str>) -> String {
        match &self.public_url {
            Some(url) => url.to_string(),
            None => format!(
                "http://{}/",
                authority.unwrap_or(self.default_authority.as_str())
            ),
        }
    }
}

/// Key of a lazily rendered view: the view, and the Host when it matters.
type CacheKey = (View, Option<String>);
type CacheSlot = Arc<OnceCell<Arc<Representation>>>;

/// What one snapshot renders from: the items, and the site as it was then.
struct Generation {
    site: Arc<Site>,
    store: Store,
    items: Vec<StoredItem>,
    page: PageInfo,
    tags: BTreeMap<String, Vec<SourceId>>,
}

/// One rendered state of the river: the main outputs, and the views rendered since.
pub struct Snapshot {
    /// Items in the merged river.
    pub items: usize,
    generation: Arc<Generation>,
    main: Vec<Arc<Representation>>,
    views: Mutex<Vec<(CacheKey, CacheSlot)>>,
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
        let slot = self.slot((view.clone(), host.clone()));
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

    /// The cache slot for `key`. The cache is ordered from least to most recently
    /// used; the least recently used slot makes room when it is full.
    fn slot(&self, key: CacheKey) -> CacheSlot {
        let mut views = self
            .views
            .lock()
            .expect("the view cache lock is never poisoned");
        if let Some(at) = views.iter().position(|(k, _)| *k == key) {
            let used = views.remove(at);
            let slot = used.1.clone();
            views.push(used);
            return slot;
        }
        if views.len() >= MAX_CACHED_VIEWS {
            views.remove(0);
        }
        let slot = CacheSlot::default();
        views.push((key, slot.clone()));
        slot
    }
}

impl Generation {
    /// Renders `view` with self links on `authority`.
    fn render(&self, view: &View, authority: Option<&str>) -> Result<Representation, StoreError> {
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
                        item.origin.source == source.id
                    })?,
                    None => Vec::new(),
                };
                let name = entry.map_or(slug.as_str(), |e| e.name.as_str());
                (items, format!("{} — {name}", site.title))
            }
        };
        let base = site.base(authority);
        let bytes = match view.format {
            Format::Html => render::render_html(&items, &self.page),
            Format::Opml => render::render_opml(&self.page),
            format => {
                let info = FeedInfo {
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
        Ok(Representation::new(
            view.format,
            bytes,
            last_modified,
            items.len(),
        ))
    }
}

/// Counts the slots each source holds while the newest items are picked, so a
/// source that publishes in bursts cannot fill the whole river: past its cap, its
/// older items leave room for other sources' items. A source's own view has no cap.
struct FairShare {
    cap: Option<usize>,
    taken: std::collections::HashMap<SourceId, usize>,
}

impl FairShare {
    fn new(cap: Option<usize>) -> FairShare {
        FairShare {
            cap,
            taken: Default::default(),
        }
    }

    /// Whether `item` gets a slot (and takes it).
    fn admit(&mut self, item: &StoredItem) -> bool {
        let Some(cap) = self.cap else {
            return true;
        };
        let taken = self.taken.entry(item.origin.source.clone()).or_default();
        *taken += 1;
        *taken <= cap
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
            let name = match &source.name {
                Some(name) => name.clone(),
                None => self
                    .store
                    .source_state(&source.id)?
                    .title
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| source.url.clone()),
            };
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
            views: Mutex::new(Vec::new()),
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

    #[test]
    fn compressed_variants_decompress_to_the_same_bytes_and_are_stable() {
        let body = b"<rss>hello hello hello hello</rss>".repeat(100);
        let a = Representation::new(Format::Rss, body.clone(), None, 0);
        let b = Representation::new(Format::Rss, body.clone(), None, 0);
        assert_eq!(a.gzip.body, b.gzip.body);
        assert_eq!(a.brotli.body, b.brotli.body);
        assert_eq!(a.identity.etag, b.identity.etag);
        let mut gunzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&a.gzip.body[..]),
            &mut gunzipped,
        )
        .unwrap();
        assert_eq!(gunzipped, body);
        let mut unbrotlied = Vec::new();
        brotli::BrotliDecompress(&mut &a.brotli.body[..], &mut unbrotlied).unwrap();
        assert_eq!(unbrotlied, body);
        assert_ne!(a.gzip.etag, a.identity.etag);
        assert_ne!(a.brotli.etag, a.gzip.etag);
    }

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
        // Another Host gets its own document, rendered once too.
        let elsewhere = snapshot.get(&tag, Some("news.example")).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &elsewhere));
        assert!(Arc::ptr_eq(
            &elsewhere,
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
        for (n, host) in (1..=3 * MAX_CACHED_VIEWS).zip(["a.example", "b.example"].iter().cycle()) {
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
        assert_eq!(snapshot.views.lock().unwrap().len(), MAX_CACHED_VIEWS);
    }

    #[test]
    fn view_paths() {
        let tag = View {
            format: Format::Atom,
            scope: Scope::Tag("a b".into()),
            limit: Some(5),
        };
        assert_eq!(tag.path(), "tags/a%20b.atom?limit=5");
        assert_eq!(View::main(Format::Json).path(), "feed.json");
        assert_eq!(View::main(Format::Html).path(), "");
    }
}
