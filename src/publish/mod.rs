//! Owns every rendered output. Renders once per change of the store, never per
//! request, and hands `http` ready-made [`Representation`]s: the bytes in identity,
//! gzip and brotli encodings, each with its strong ETag, plus Last-Modified.
//!
//! A [`Snapshot`] is one state of the river. The main outputs (`/feed.xml`,
//! `/atom.xml`, `/feed.json`, `/`) are rendered on their first request and kept as long
//! as the snapshot (`/opml`, which changes with the sources, is carried over). Views (a
//! tag, a source, a `?limit`, or a feed for another Host) are rendered on their first
//! request too and kept in a small bounded cache that lives as long as the snapshot,
//! so their cost is also per change, not per request. Each document is compressed
//! in an encoding when that encoding is first asked for.
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
//! formats themselves are `render`'s pure functions. `daemon` runs [`Publisher::run`];
//! `http` reads the [`Snapshot`] from a watch channel.
//!
//! The files: [`urls`] (the URL space), `representation` (a document in every
//! encoding), `site` (what the outputs say about the river), `snapshot` (one
//! rendered state, and the [`Publisher`] that makes them), `views` (rendering a
//! view, and the cache of views rendered), [`body`] (where large documents live).

pub mod body;
mod representation;
mod site;
mod snapshot;
pub mod urls;
mod views;

use std::time::Duration;

use crate::store::StoreError;

pub use representation::{Representation, Variant};
pub use site::{Site, SiteSource};
pub use snapshot::{Publisher, Snapshot};

/// 1 second: with thousands of sources the store changes many times a second;
/// readers see a new river at most this often.
pub const RENDER_DEBOUNCE: Duration = Duration::from_secs(1);
/// 10 seconds: the longest a change waits to be rendered (see [`render_pause`]).
pub const MAX_RENDER_PAUSE: Duration = Duration::from_secs(10);

/// The pause between a change of the store and its new snapshot: [`RENDER_DEBOUNCE`],
/// or 40 times what the snapshot served until then cost (its build, and the renders
/// and compression its readers asked for), up to [`MAX_RENDER_PAUSE`]. Rendering and
/// compressing all five outputs takes 80 ms for a 100-item river, and with hundreds of
/// sources publishing the store changes every second: rendering each second cost more
/// than polling, parsing and storing together. So renders take at most about 2.5% of
/// one core, while a new item still reaches readers within seconds of its poll
/// (sources are polled minutes apart).
pub fn render_pause(last_render: Duration) -> Duration {
    (last_render * 40).clamp(RENDER_DEBOUNCE, MAX_RENDER_PAUSE)
}
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
/// Documents larger than this (`/opml` of 100 000 sources is 18 MB) are compressed at
/// [`LARGE_GZIP_LEVEL`] and [`LARGE_BROTLI_QUALITY`]: at gzip -9 and brotli 5 they
/// took seconds, before the daemon could serve at all.
pub const LARGE_DOCUMENT: usize = 1024 * 1024;
/// gzip level 1 for large documents: several times faster than 9, and lists of
/// sources still shrink about tenfold.
pub const LARGE_GZIP_LEVEL: u32 = 1;
/// Brotli quality 1 for large documents.
pub const LARGE_BROTLI_QUALITY: u32 = 1;

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
        let mut path = urls::path(self.format, &self.scope);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_pause_in_proportion_to_their_cost() {
        let ms = Duration::from_millis;
        assert_eq!(render_pause(ms(3)), RENDER_DEBOUNCE);
        assert_eq!(render_pause(ms(80)), ms(3200));
        assert_eq!(render_pause(ms(900)), MAX_RENDER_PAUSE);
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
