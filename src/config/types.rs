//! The checked configuration: what the rest of tributary receives from `feeds.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

use super::{
    DEFAULT_CONCURRENCY, DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_INTERVAL,
    DEFAULT_MIN_INTERVAL, DEFAULT_PER_HOST, DEFAULT_TIMEOUT,
};
use crate::fetch::{ClientOptions, RequestOptions};
use crate::ingest::filter::Filter;
use crate::ingest::scrape::Rules;
use crate::item::SourceId;
use chrono_tz::Tz;

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from, for log lines and reload.
    pub path: PathBuf,
    pub listen: SocketAddr,
    /// Where readers reach tributary (`[server] public_url`), ending in `/`. Self links
    /// are built on it; `None` means "from the request's Host header".
    pub public_url: Option<Url>,
    /// `[server] hostnames`: more names readers reach tributary by (lowercase,
    /// `name` or `name:port`). Without `public_url`, documents name the Host a reader
    /// asked for only when it is one of these, `public_url`'s, the listen address,
    /// `localhost`, `127.0.0.1` or `[::1]`; any other Host gets the documents of the
    /// listen address.
    pub hostnames: Vec<String>,
    /// `[server] send_timeout`: how long a response may wait for a reader that has
    /// stopped reading before the connection is closed.
    pub send_timeout: Duration,
    /// `[server] admin_listen`: where `/metrics`, `/sources`, `/healthz`, `/readyz`
    /// and the admin POSTs are served instead of `listen`, which then serves only
    /// what readers need.
    pub admin_listen: Option<SocketAddr>,
    /// `[server] metrics`: `false` serves no `/metrics`.
    pub metrics: bool,
    pub store_path: PathBuf,
    /// `[store] cache_mb` in bytes: sled's page cache.
    pub store_cache_bytes: u64,
    pub retention: Retention,
    pub poll: PollConfig,
    pub publish: PublishConfig,
    /// The sources polled: every `[[source]]` but those with `enabled = false`.
    pub sources: Vec<SourceConfig>,
    /// The sources with `enabled = false`: kept in the file, listed by `/sources`
    /// as disabled, never polled.
    pub disabled: Vec<SourceConfig>,
    /// `[config] watch`: reload when the file itself changes, not only on SIGHUP.
    pub watch: bool,
    /// `[server] per_source_metrics`: whether `/metrics` has series for each source.
    pub per_source_metrics: PerSourceMetrics,
    /// `[store] backend = "postgres"`: the store shared by several nodes; `None` for
    /// the embedded store at `store_path`.
    pub cluster: Option<super::ClusterConfig>,
    /// What `sources` and `disabled` were read from, for a reload to take over the
    /// unchanged ones ([`super::reload`]); `None` when the file was read whole.
    pub texts: Option<Arc<super::SourceTexts>>,
}

/// Whether `/metrics` carries series for each source (`[server] per_source_metrics`),
/// or only their sums: with 100 000 sources the per-source series make a scrape of
/// tens of megabytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PerSourceMetrics {
    /// Per source up to [`PER_SOURCE_METRICS_AUTO_LIMIT`] sources, sums beyond.
    #[default]
    Auto,
    On,
    Off,
}

/// Most sources that get series of their own under `per_source_metrics = "auto"`.
pub const PER_SOURCE_METRICS_AUTO_LIMIT: usize = 1000;

impl PerSourceMetrics {
    /// Whether `sources` sources get series of their own.
    pub fn applies_to(self, sources: usize) -> bool {
        match self {
            PerSourceMetrics::Auto => sources <= PER_SOURCE_METRICS_AUTO_LIMIT,
            PerSourceMetrics::On => true,
            PerSourceMetrics::Off => false,
        }
    }
}

/// How long items are kept (`[store] max_age`, `max_items`).
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    pub max_age: Duration,
    pub max_items: usize,
}

/// How often a source is polled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interval {
    /// Every this long (publisher hints may lengthen it up to `max_interval`).
    Fixed(Duration),
    /// Learned from how often the source publishes, within `min_interval` and
    /// `max_interval` (see `scheduler::plan`).
    Auto,
}

/// How sources are fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PollConfig {
    /// Interval for sources that set none.
    pub interval: Interval,
    /// Bounds of adaptive intervals and publisher hints.
    pub min_interval: Duration,
    pub max_interval: Duration,
    /// Fetches in flight at once, over all sources.
    pub concurrency: usize,
    /// Fetches in flight at once to one host.
    pub per_host: usize,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Cap on a response body after decompression.
    pub max_body_bytes: usize,
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            interval: Interval::Auto,
            min_interval: DEFAULT_MIN_INTERVAL,
            max_interval: DEFAULT_MAX_INTERVAL,
            concurrency: DEFAULT_CONCURRENCY,
            per_host: DEFAULT_PER_HOST,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What the merged feed looks like.
#[derive(Clone, Debug)]
pub struct PublishConfig {
    pub title: String,
    pub description: String,
    /// The channel `<link>`: where readers go for the human version.
    pub link: Option<Url>,
    pub max_items: usize,
    /// Most of the merged feed's slots one source may hold; `None`: no cap.
    pub max_per_source: Option<usize>,
    /// Language tag of the outputs, e.g. `en` or `ru`.
    pub language: String,
    /// The zone of the HTML page's time stamps and day headings.
    pub timezone: chrono_tz::Tz,
    /// WebSub: the hubs the feeds advertise and notify, and the built-in hub.
    pub push: super::push::PushConfig,
}

/// One `[[source]]`.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub id: SourceId,
    pub url: Url,
    /// Display name; `None` means "use the feed's own title".
    pub name: Option<String>,
    pub tags: Vec<String>,
    pub interval: Interval,
    /// Extra headers, basic auth, User-Agent.
    pub request: RequestOptions,
    /// Where dates that name no zone are read (`timezone = "Europe/Moscow"`); UTC
    /// by default.
    pub timezone: Tz,
    /// A feed, or a web page read with selectors (`kind = "html"`).
    pub kind: SourceKind,
    /// `include` / `exclude` / `filter_on`: which items of the source are stored.
    pub filter: Filter,
    /// `max_items`: most items of this source the store keeps (retention trims the
    /// oldest beyond it); `None`: only the store-wide limits apply.
    pub max_items: Option<usize>,
    /// `secret_query`: query parameters of its URL whose values are never shown, on
    /// top of [`super::shown::DEFAULT_SECRET_QUERY`] (lowercase).
    pub secret_query: Vec<String>,
    /// `websub` (default true): subscribe to the hub the feed names, when
    /// `[server] public_url` gives the hub a callback to reach; `false` polls only.
    pub websub: bool,
}

/// Sources as the running daemon's parts hold them: one list per loaded config,
/// shared (each part clones the reference, and a source kept by a reload can be held
/// by reference too), so a reload of 100 000 sources neither copies them for each
/// part nor keeps a second copy of those it keeps.
pub type SharedSources = Arc<[Arc<SourceConfig>]>;

/// `sources` made a [`SharedSources`] list (moved, not copied).
pub fn share(sources: Vec<SourceConfig>) -> SharedSources {
    sources.into_iter().map(Arc::new).collect()
}

/// What a source's URL serves (`kind` in `feeds.toml`).
#[derive(Clone, Debug)]
pub enum SourceKind {
    /// RSS, Atom or JSON Feed; a web page is searched for the feed it advertises.
    Feed,
    /// A web page whose "latest news" list is read with `[source.selectors]`.
    Html(Box<Rules>),
}

impl Config {
    /// The shortest interval any source can be polled at: how long readers of the
    /// merged feed may cache it.
    pub fn shortest_interval(&self) -> Duration {
        self.shortest_interval_of(&self.sources)
            .map_or(self.poll.min_interval, |source| self.interval_floor(source))
    }

    /// The source of `sources` polled most often under this config's `[poll]`.
    pub fn shortest_interval_of<'a>(
        &self,
        sources: impl IntoIterator<Item = &'a SourceConfig>,
    ) -> Option<&'a SourceConfig> {
        sources
            .into_iter()
            .min_by_key(|source| self.interval_floor(source))
    }

    /// The shortest wait between two polls of `source`.
    fn interval_floor(&self, source: &SourceConfig) -> Duration {
        match source.interval {
            Interval::Fixed(every) => every,
            Interval::Auto => self.poll.min_interval,
        }
    }
}

impl SourceConfig {
    /// The source's URL as every output, label, log line and message shows it
    /// ([`super::shown_url`]): no user or password, secret query values as `***`.
    pub fn shown_url(&self) -> String {
        self.show(self.url.as_str())
    }

    /// Another URL of this source (where it moved, the feed behind its page), shown
    /// by the same rule.
    pub fn show(&self, url: &str) -> String {
        super::shown_url(url, &self.secret_query).into_owned()
    }

    /// `text` (an error message) without the secrets the source's URL carries.
    pub fn scrub(&self, text: &str) -> String {
        super::shown::scrub(text, self.url.as_str(), &self.secret_query)
    }

    /// The name the merged feed, the status page and the log show for the source:
    /// [`source_name`], else its host.
    pub fn display_name(&self, title: Option<&str>) -> String {
        source_name(self.name.as_deref(), title)
            .unwrap_or_else(|| self.url.host_str().unwrap_or("unknown").to_string())
    }
}

/// The one rule for a source's name: its `name` in `feeds.toml`, else the feed's own
/// `title` (unless blank). `None` leaves the last resort to the output: the host for
/// [`SourceConfig::display_name`], the full URL for the lists of sources (the page and
/// OPML, which `import-opml` reads back, dropping a name that only repeats the URL).
pub fn source_name(name: Option<&str>, title: Option<&str>) -> Option<String> {
    name.or(title.filter(|t| !t.trim().is_empty()))
        .map(str::to_string)
}

impl From<&PollConfig> for ClientOptions {
    fn from(poll: &PollConfig) -> ClientOptions {
        ClientOptions {
            timeout: poll.timeout,
            connect_timeout: poll.connect_timeout,
            max_body_bytes: poll.max_body_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_the_configured_one_else_the_title_else_the_host() {
        let text = "[[source]]\nurl = \"https://a.example/rss\"\nname = \"A\"\n[[source]]\nurl = \"https://b.example/rss\"\n";
        let config = super::super::parse(std::path::Path::new("feeds.toml"), text, None).unwrap();
        let (named, unnamed) = (&config.sources[0], &config.sources[1]);
        assert_eq!(named.display_name(Some("Feed A")), "A");
        assert_eq!(unnamed.display_name(Some("Feed B")), "Feed B");
        assert_eq!(unnamed.display_name(Some("  ")), "b.example");
        assert_eq!(unnamed.display_name(None), "b.example");
        assert_eq!(source_name(None, Some("")), None);
        assert_eq!(source_name(Some("A"), Some("T")).as_deref(), Some("A"));
    }
}
