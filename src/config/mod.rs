//! `feeds.toml`: reading it, checking it, and the defaults for everything it leaves out.
//!
//! [`load`] turns the file into a checked [`Config`] or a [`ConfigError`] that lists every
//! problem with its file, line and column. Nothing else in tributary reads the file;
//! `app` and `main` receive a `Config`.

pub mod add;
pub mod import;

use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;
use url::Url;

use crate::fetch::{AddressPolicy, RequestOptions};
use crate::ingest::filter::{Filter, FilterOn};
use crate::ingest::scrape::{Rules, RulesText};
use crate::item::SourceId;
use chrono_tz::Tz;

/// 127.0.0.1:8080: local only until the sysadmin decides to expose it.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// `./data` when systemd gives no `STATE_DIRECTORY`.
pub const DEFAULT_STORE_PATH: &str = "data";
/// 15 minutes: polite for most publishers, fresh enough for news; also where adaptive
/// polling starts before it has seen a source publish.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// 1 minute: polling faster than this only burdens the publisher.
pub const MIN_INTERVAL: Duration = Duration::from_secs(60);
/// 5 minutes: the shortest interval adaptive polling and publisher hints choose.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// 6 hours: the longest interval adaptive polling and publisher hints choose, so a
/// quiet source is still seen a few times a day.
pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// 2 requests at once to one host: polite to a publisher that hosts many feeds.
pub const DEFAULT_PER_HOST: usize = 2;
/// 16 fetches in flight: enough to poll thousands of sources per interval on one machine.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// 30 seconds for a whole response, body included: cuts servers that trickle bytes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// 10 seconds to connect.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// 16 MiB after decompression: larger than any real feed, small enough to stop a gzip bomb.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// 30 days: news older than a month has left every "latest" list.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(30 * 86_400);
/// 100 000 items: a few hundred MB on disk at most, whatever the sources publish.
pub const DEFAULT_STORE_MAX_ITEMS: usize = 100_000;

/// The merged feed's title when `[publish] title` is not set.
pub const DEFAULT_TITLE: &str = "Latest news";
/// 100 items: what readers expect from a "latest news" feed.
pub const DEFAULT_MAX_ITEMS: usize = 100;
/// Upper bound for `max_items`: rendering stays cheap and the feed stays a feed.
pub const MAX_MAX_ITEMS: usize = 10_000;
/// `en`: the language of the page's own words ("Sources", day names).
pub const DEFAULT_LANGUAGE: &str = "en";
/// UTC: the one zone that is right for nobody in particular and wrong for no one.
pub const DEFAULT_TIMEZONE: chrono_tz::Tz = chrono_tz::UTC;

/// How long a response may wait for a reader that stopped reading: nginx's
/// `send_timeout` default. A reader on a slow link still takes in some bytes in that
/// time; one that takes none holds a connection and its buffers for nothing.
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// The checked configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from, for log lines and reload.
    pub path: PathBuf,
    pub listen: SocketAddr,
    /// Where readers reach tributary (`[server] public_url`), ending in `/`. Self links
    /// are built on it; `None` means "from the request's Host header".
    pub public_url: Option<Url>,
    /// `[server] send_timeout`: how long a response may wait for a reader that has
    /// stopped reading before the connection is closed.
    pub send_timeout: Duration,
    pub store_path: PathBuf,
    /// `[store] cache_mb` in bytes: sled's page cache.
    pub store_cache_bytes: u64,
    pub retention: Retention,
    pub poll: PollConfig,
    pub publish: PublishConfig,
    pub sources: Vec<SourceConfig>,
    /// `[config] watch`: reload when the file itself changes, not only on SIGHUP.
    pub watch: bool,
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
#[derive(Clone, Debug)]
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
        self.sources
            .iter()
            .map(|source| match source.interval {
                Interval::Fixed(every) => every,
                Interval::Auto => self.poll.min_interval,
            })
            .min()
            .unwrap_or(self.poll.min_interval)
    }
}

impl SourceConfig {
    /// A hash of everything configured for the source: a source that answered 410
    /// Gone is polled again once any of it changes.
    pub fn fingerprint(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(format!("{self:?}").as_bytes())
    }
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source} (pass another file with --config or TRIBUTARY_CONFIG)", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", Problems(.problems))]
    Invalid { problems: Vec<Problem> },
}

/// One mistake in the file, with where it is and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// 1-based line and column; 0 when the problem has no place (an empty file).
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.path.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    config: RawConfigSection,
    #[serde(default)]
    server: RawServer,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    poll: RawPoll,
    #[serde(default)]
    publish: RawPublish,
    #[serde(default)]
    source: Vec<RawSource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfigSection {
    watch: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Option<Spanned<String>>,
    public_url: Option<Spanned<String>>,
    send_timeout: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStore {
    path: Option<PathBuf>,
    max_age: Option<Spanned<String>>,
    max_items: Option<Spanned<usize>>,
    cache_mb: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoll {
    interval: Option<Spanned<String>>,
    min_interval: Option<Spanned<String>>,
    max_interval: Option<Spanned<String>>,
    concurrency: Option<Spanned<usize>>,
    per_host: Option<Spanned<usize>>,
    timeout: Option<Spanned<String>>,
    connect_timeout: Option<Spanned<String>>,
    max_body_bytes: Option<Spanned<usize>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublish {
    title: Option<String>,
    description: Option<String>,
    link: Option<Spanned<String>>,
    max_items: Option<Spanned<usize>>,
    max_per_source: Option<Spanned<usize>>,
    language: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    url: Spanned<String>,
    name: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    interval: Option<Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    user_agent: Option<Spanned<String>>,
    timezone: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    selectors: Option<Spanned<RawSelectors>>,
    #[serde(default)]
    include: Vec<Spanned<String>>,
    #[serde(default)]
    exclude: Vec<Spanned<String>>,
    filter_on: Option<Spanned<String>>,
    max_items: Option<Spanned<usize>>,
    allow_private: Option<bool>,
}

/// `[source.selectors]` of a `kind = "html"` source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelectors {
    item: Option<Spanned<String>>,
    title: Option<Spanned<String>>,
    link: Option<Spanned<String>>,
    link_attribute: Option<Spanned<String>>,
    date: Option<Spanned<String>>,
    date_attribute: Option<Spanned<String>>,
    date_format: Option<Spanned<String>>,
    summary: Option<Spanned<String>>,
}

/// Reads and checks the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(path, &text, state_directory())
}

/// The first directory systemd gave in `STATE_DIRECTORY` (it may list several).
fn state_directory() -> Option<PathBuf> {
    let dirs = std::env::var_os("STATE_DIRECTORY")?;
    let first = dirs.to_str()?.split(':').next()?.trim();
    (!first.is_empty()).then(|| PathBuf::from(first))
}

/// Checks config `text` read from `path`. `state_dir` is the store's home when the file
/// names none (systemd's `STATE_DIRECTORY`).
pub fn parse(path: &Path, text: &str, state_dir: Option<PathBuf>) -> Result<Config, ConfigError> {
    let mut checker = Checker {
        path,
        text,
        problems: Vec::new(),
    };
    let raw: RawConfig = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(err) => {
            checker.report(err.span(), err.message().trim_end().to_string());
            return Err(checker.into_error());
        }
    };
    let config = checker.check(raw, state_dir);
    if checker.problems.is_empty() {
        Ok(config)
    } else {
        Err(checker.into_error())
    }
}

/// Collects every problem instead of stopping at the first, so one `tributary check`
/// shows all of them.
struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, span: Option<Range<usize>>, message: String) {
        let (line, column) = span
            .map(|span| line_column(self.text, span.start))
            .unwrap_or((0, 0));
        self.problems.push(Problem {
            path: self.path.to_owned(),
            line,
            column,
            message,
        });
    }

    fn into_error(self) -> ConfigError {
        ConfigError::Invalid {
            problems: self.problems,
        }
    }

    fn check(&mut self, raw: RawConfig, state_dir: Option<PathBuf>) -> Config {
        let listen = match raw.server.listen {
            Some(listen) => listen.as_ref().parse().unwrap_or_else(|_| {
                self.report(
                    Some(listen.span()),
                    format!(
                        "`{}` is not an address to listen on; write an IP and a port, like \"127.0.0.1:8080\" or \"[::]:8080\"",
                        listen.as_ref()
                    ),
                );
                default_listen()
            }),
            None => default_listen(),
        };
        let public_url = raw.server.public_url.and_then(|url| self.public_url(&url));
        let send_timeout = self.send_timeout(raw.server.send_timeout.as_ref());
        let store_path = raw
            .store
            .path
            .or(state_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STORE_PATH));
        let store_cache_bytes = match raw.store.cache_mb {
            None => crate::store::DEFAULT_CACHE_BYTES,
            Some(mb) => {
                let mb = self.at_least_one(Some(mb), "cache_mb", 2);
                (mb as u64).saturating_mul(1024 * 1024)
            }
        };
        let retention = Retention {
            max_age: self
                .duration(raw.store.max_age.as_ref(), "max_age")
                .unwrap_or(DEFAULT_MAX_AGE),
            max_items: self.at_least_one(raw.store.max_items, "max_items", DEFAULT_STORE_MAX_ITEMS),
        };

        let default_interval = self
            .interval(raw.poll.interval.as_ref(), "[poll] interval")
            .unwrap_or(Interval::Auto);
        let min_interval = self
            .duration(raw.poll.min_interval.as_ref(), "min_interval")
            .unwrap_or(DEFAULT_MIN_INTERVAL);
        let max_interval = self
            .duration(raw.poll.max_interval.as_ref(), "max_interval")
            .unwrap_or(DEFAULT_MAX_INTERVAL);
        if max_interval < min_interval {
            self.report(
                raw.poll.max_interval.as_ref().map(Spanned::span),
                format!(
                    "max_interval {} is shorter than min_interval {}",
                    humantime::format_duration(max_interval),
                    humantime::format_duration(min_interval)
                ),
            );
        }
        let poll = PollConfig {
            interval: default_interval,
            min_interval,
            max_interval: max_interval.max(min_interval),
            concurrency: self.at_least_one(
                raw.poll.concurrency,
                "concurrency",
                DEFAULT_CONCURRENCY,
            ),
            per_host: self.at_least_one(raw.poll.per_host, "per_host", DEFAULT_PER_HOST),
            timeout: self
                .duration(raw.poll.timeout.as_ref(), "timeout")
                .unwrap_or(DEFAULT_TIMEOUT),
            connect_timeout: self
                .duration(raw.poll.connect_timeout.as_ref(), "connect_timeout")
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            max_body_bytes: self.at_least_one(
                raw.poll.max_body_bytes,
                "max_body_bytes",
                DEFAULT_MAX_BODY_BYTES,
            ),
        };

        let max_items = match raw.publish.max_items {
            Some(max) if *max.as_ref() == 0 || *max.as_ref() > MAX_MAX_ITEMS => {
                self.report(
                    Some(max.span()),
                    format!("max_items must be between 1 and {MAX_MAX_ITEMS}"),
                );
                DEFAULT_MAX_ITEMS
            }
            Some(max) => max.into_inner(),
            None => DEFAULT_MAX_ITEMS,
        };
        let link = raw
            .publish
            .link
            .and_then(|link| self.http_url(&link, "[publish] link"));
        let publish = PublishConfig {
            title: raw
                .publish
                .title
                .unwrap_or_else(|| DEFAULT_TITLE.to_string()),
            description: raw
                .publish
                .description
                .unwrap_or_else(|| "The newest items of every source, newest first".to_string()),
            link,
            max_items,
            max_per_source: raw
                .publish
                .max_per_source
                .map(|cap| self.at_least_one(Some(cap), "max_per_source", max_items)),
            language: self.language(raw.publish.language),
            timezone: self.timezone(raw.publish.timezone),
        };

        let mut sources = Vec::with_capacity(raw.source.len());
        let mut seen: HashMap<String, usize> = HashMap::new();
        for raw_source in raw.source {
            let Some(url) = self.http_url(&raw_source.url, "source url") else {
                continue;
            };
            let start = raw_source.url.span().start;
            if let Some(first) = seen.get(url.as_str()) {
                let (line, _) = line_column(self.text, *first);
                self.report(
                    Some(raw_source.url.span()),
                    format!(
                        "duplicate source {url}: it is already listed on line {line}; remove one of the two [[source]] tables"
                    ),
                );
                continue;
            }
            seen.insert(url.to_string(), start);
            let interval = self
                .interval(raw_source.interval.as_ref(), "interval")
                .unwrap_or(default_interval);
            let name = raw_source
                .name
                .map(|name| name.trim().to_string())
                .filter(|name| !name.is_empty());
            let mut request = self.request_options(
                raw_source.headers,
                raw_source.username,
                raw_source.password,
                raw_source.user_agent,
            );
            request.addresses =
                AddressPolicy::for_source(&url, raw_source.allow_private.unwrap_or(false));
            let timezone = self.timezone(raw_source.timezone);
            let Some(kind) = self.kind(raw_source.kind, raw_source.selectors, &raw_source.url)
            else {
                continue;
            };
            let filter = Filter {
                include: self.rules(&raw_source.include, "include"),
                exclude: self.rules(&raw_source.exclude, "exclude"),
                on: self.filter_on(raw_source.filter_on),
            };
            let max_items = raw_source
                .max_items
                .map(|max| self.at_least_one(Some(max), "max_items", usize::MAX));
            sources.push(SourceConfig {
                id: SourceId(raw_source.url.as_ref().trim().to_string()),
                url,
                name,
                tags: raw_source.tags,
                interval,
                request,
                timezone,
                kind,
                filter,
                max_items,
            });
        }

        Config {
            path: self.path.to_owned(),
            listen,
            public_url,
            send_timeout,
            store_path,
            store_cache_bytes,
            retention,
            poll,
            publish,
            sources,
            watch: raw.config.watch.unwrap_or(false),
        }
    }

    /// `kind` and `[source.selectors]`: `None` (with the problems reported) when they
    /// do not make a usable source.
    fn kind(
        &mut self,
        kind: Option<Spanned<String>>,
        selectors: Option<Spanned<RawSelectors>>,
        url: &Spanned<String>,
    ) -> Option<SourceKind> {
        let html = match &kind {
            None => false,
            Some(kind) => match kind.as_ref().trim() {
                "feed" => false,
                "html" => true,
                other => {
                    self.report(
                        Some(kind.span()),
                        format!("kind `{other}` is not a source kind; write \"feed\" (the default) or \"html\""),
                    );
                    return None;
                }
            },
        };
        match (html, selectors) {
            (false, None) => Some(SourceKind::Feed),
            (false, Some(selectors)) => {
                self.report(
                    Some(selectors.span()),
                    "selectors are read only from a web page; add kind = \"html\" to this source, or remove its selectors".to_string(),
                );
                None
            }
            (true, None) => {
                self.report(
                    Some(kind.as_ref().map_or(url.span(), Spanned::span)),
                    "a kind = \"html\" source needs a [source.selectors] table with at least `item`, `title` and `link`".to_string(),
                );
                None
            }
            (true, Some(selectors)) => self.selectors(selectors),
        }
    }

    fn selectors(&mut self, raw: Spanned<RawSelectors>) -> Option<SourceKind> {
        let table = raw.span();
        let raw = raw.into_inner();
        let mut spans = HashMap::new();
        let mut take = |name: &'static str, value: Option<Spanned<String>>| {
            value.map(|v| {
                spans.insert(name, v.span());
                v.into_inner().trim().to_string()
            })
        };
        let item = take("item", raw.item);
        let title = take("title", raw.title);
        let link = take("link", raw.link);
        let text = RulesText {
            item: item.clone().unwrap_or_default(),
            title: title.clone().unwrap_or_default(),
            link: link.clone().unwrap_or_default(),
            link_attribute: take("link_attribute", raw.link_attribute),
            date: take("date", raw.date),
            date_attribute: take("date_attribute", raw.date_attribute),
            date_format: take("date_format", raw.date_format),
            summary: take("summary", raw.summary),
        };
        let mut ok = true;
        for (name, value) in [("item", &item), ("title", &title), ("link", &link)] {
            if value.as_deref().is_none_or(str::is_empty) {
                self.report(
                    Some(spans.get(name).cloned().unwrap_or(table.clone())),
                    format!("[source.selectors] needs `{name}`, a CSS selector"),
                );
                ok = false;
            }
        }
        if text.date.is_none() {
            for (name, value) in [
                ("date_attribute", &text.date_attribute),
                ("date_format", &text.date_format),
            ] {
                if value.is_some() {
                    self.report(
                        spans.get(name).cloned(),
                        format!(
                            "`{name}` is read from the `date` element; add `date`, a CSS selector"
                        ),
                    );
                    ok = false;
                }
            }
        }
        if let Some(format) = &text.date_format
            && chrono::format::StrftimeItems::new(format).parse().is_err()
        {
            self.report(
                spans.get("date_format").cloned(),
                format!("date_format `{format}` is not a chrono strftime format; write it like \"%H:%M %d.%m.%Y\""),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        match Rules::new(text) {
            Ok(rules) => Some(SourceKind::Html(Box::new(rules))),
            Err(err) => {
                self.report(spans.get(err.field).cloned(), err.to_string());
                None
            }
        }
    }

    fn http_url(&mut self, raw: &Spanned<String>, what: &str) -> Option<Url> {
        let text = raw.as_ref().trim();
        match Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
                Some(url)
            }
            Ok(url) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "{what} `{text}` uses `{}:`; only http:// and https:// URLs can be polled",
                        url.scheme()
                    ),
                );
                None
            }
            Err(err) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "{what} `{text}` is not a valid URL ({err}); write it in full, like \"https://example.org/rss.xml\""
                    ),
                );
                None
            }
        }
    }

    /// `[server] public_url`: an absolute http(s) URL without query or fragment; a
    /// missing final `/` is added, so `https://example.org/news` serves
    /// `https://example.org/news/feed.xml`.
    fn public_url(&mut self, raw: &Spanned<String>) -> Option<Url> {
        let mut url = self.http_url(raw, "[server] public_url")?;
        if url.query().is_some() || url.fragment().is_some() {
            self.report(
                Some(raw.span()),
                format!(
                    "[server] public_url `{}` has a query or fragment; give the base URL only, like \"https://news.example.org/\"",
                    raw.as_ref().trim()
                ),
            );
            return None;
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Some(url)
    }

    /// `[publish] language`: a BCP 47-shaped tag (letters, digits and hyphens).
    fn language(&mut self, raw: Option<Spanned<String>>) -> String {
        let Some(raw) = raw else {
            return DEFAULT_LANGUAGE.to_string();
        };
        let tag = raw.as_ref().trim();
        let mut parts = tag.split('-');
        let primary_ok = parts.next().is_some_and(|p| {
            (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic())
        });
        if primary_ok
            && parts
                .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            return tag.to_string();
        }
        self.report(
            Some(raw.span()),
            format!(
                "language `{tag}` is not a language tag; write it like \"en\", \"ru\" or \"pt-BR\""
            ),
        );
        DEFAULT_LANGUAGE.to_string()
    }

    /// `[publish] timezone` or a source's `timezone`: an IANA zone name.
    fn timezone(&mut self, raw: Option<Spanned<String>>) -> chrono_tz::Tz {
        let Some(raw) = raw else {
            return DEFAULT_TIMEZONE;
        };
        match raw.as_ref().trim().parse::<chrono_tz::Tz>() {
            Ok(zone) => zone,
            Err(_) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "timezone `{}` is not an IANA time zone name; write it like \"UTC\", \"Europe/Moscow\" or \"America/New_York\"",
                        raw.as_ref().trim()
                    ),
                );
                DEFAULT_TIMEZONE
            }
        }
    }

    /// `include` / `exclude`: regular expressions (the `regex` crate's syntax), each
    /// checked on its own so an error names the one that is wrong.
    fn rules(&mut self, raw: &[Spanned<String>], what: &str) -> Option<regex::RegexSet> {
        let mut ok = true;
        for rule in raw {
            if let Err(err) = regex::Regex::new(rule.as_ref()) {
                ok = false;
                let reason = match &err {
                    regex::Error::Syntax(text) => text.lines().last().unwrap_or(text).trim(),
                    _ => "the pattern is too large",
                };
                self.report(
                    Some(rule.span()),
                    format!(
                        "{what} rule `{}` is not a regular expression: {}",
                        rule.as_ref(),
                        reason.trim_start_matches("error: ")
                    ),
                );
            }
        }
        if !ok || raw.is_empty() {
            return None;
        }
        regex::RegexSet::new(raw.iter().map(|r| r.as_ref())).ok()
    }

    /// `filter_on`: "title", "summary" or "both".
    fn filter_on(&mut self, raw: Option<Spanned<String>>) -> FilterOn {
        let Some(raw) = raw else {
            return FilterOn::default();
        };
        match raw.as_ref().trim() {
            "title" => FilterOn::Title,
            "summary" => FilterOn::Summary,
            "both" => FilterOn::Both,
            other => {
                self.report(
                    Some(raw.span()),
                    format!("filter_on `{other}` must be \"title\", \"summary\" or \"both\""),
                );
                FilterOn::default()
            }
        }
    }

    fn duration(&mut self, raw: Option<&Spanned<String>>, what: &str) -> Option<Duration> {
        let raw = raw?;
        match humantime::parse_duration(raw.as_ref().trim()) {
            Ok(duration) if !duration.is_zero() => Some(duration),
            Ok(_) => {
                self.report(Some(raw.span()), format!("{what} must be longer than zero"));
                None
            }
            Err(err) => {
                self.report(
                    Some(raw.span()),
                    format!(
                        "{what} `{}` is not a duration ({err}); write it like \"90s\", \"15m\" or \"2h\"",
                        raw.as_ref()
                    ),
                );
                None
            }
        }
    }

    /// `[server] send_timeout`: at least a second, the period of the HTTP workers'
    /// deadline sweep.
    fn send_timeout(&mut self, raw: Option<&Spanned<String>>) -> Duration {
        let timeout = self
            .duration(raw, "[server] send_timeout")
            .unwrap_or(DEFAULT_SEND_TIMEOUT);
        if timeout < Duration::from_secs(1) {
            self.report(
                raw.map(Spanned::span),
                "[server] send_timeout must be at least 1s".into(),
            );
            return DEFAULT_SEND_TIMEOUT;
        }
        timeout
    }

    /// `"auto"`, or a duration of at least [`MIN_INTERVAL`].
    fn interval(&mut self, raw: Option<&Spanned<String>>, what: &str) -> Option<Interval> {
        if raw.is_some_and(|r| r.as_ref().trim().eq_ignore_ascii_case("auto")) {
            return Some(Interval::Auto);
        }
        let duration = self.duration(raw, what)?;
        if duration < MIN_INTERVAL {
            self.report(
                raw.map(Spanned::span),
                format!(
                    "{what} {} is shorter than the floor of {}; poll at most once a minute, or write \"auto\"",
                    humantime::format_duration(duration),
                    humantime::format_duration(MIN_INTERVAL)
                ),
            );
            return None;
        }
        Some(Interval::Fixed(duration))
    }

    fn request_options(
        &mut self,
        headers: BTreeMap<String, Spanned<String>>,
        username: Option<String>,
        password: Option<String>,
        user_agent: Option<Spanned<String>>,
    ) -> RequestOptions {
        let mut checked = BTreeMap::new();
        for (name, value) in headers {
            if !is_header_name(&name) {
                self.report(
                    Some(value.span()),
                    format!("`{name}` is not a valid HTTP header name"),
                );
            } else if !is_header_value(value.as_ref()) {
                self.report(
                    Some(value.span()),
                    format!("the value of header `{name}` contains control characters"),
                );
            } else {
                checked.insert(name, value.into_inner());
            }
        }
        let user_agent = user_agent.and_then(|agent| {
            if is_header_value(agent.as_ref()) && !agent.as_ref().trim().is_empty() {
                Some(agent.into_inner())
            } else {
                self.report(
                    Some(agent.span()),
                    "user_agent must be non-empty text without control characters".to_string(),
                );
                None
            }
        });
        RequestOptions {
            headers: checked,
            basic_auth: username.map(|user| (user, password)),
            user_agent,
            addresses: AddressPolicy::default(),
        }
    }

    fn at_least_one(&mut self, raw: Option<Spanned<usize>>, what: &str, default: usize) -> usize {
        match raw {
            Some(value) if *value.as_ref() == 0 => {
                self.report(Some(value.span()), format!("{what} must be at least 1"));
                default
            }
            Some(value) => value.into_inner(),
            None => default,
        }
    }
}

/// RFC 9110 token characters.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_header_value(value: &str) -> bool {
    value.chars().all(|c| c == '\t' || !c.is_control())
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("the default listen address is valid")
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary(offset)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Config, Vec<Problem>> {
        parse(Path::new("feeds.toml"), text, None).map_err(|err| match err {
            ConfigError::Invalid { problems } => problems,
            other => panic!("unexpected {other}"),
        })
    }

    fn places(problems: &[Problem]) -> Vec<(usize, usize)> {
        problems.iter().map(|p| (p.line, p.column)).collect()
    }

    #[test]
    fn html_sources_have_checked_selectors() {
        let config = check(
            "[[source]]\nurl = \"https://n.example/\"\nkind = \"html\"\ntimezone = \"Europe/Moscow\"\n[source.selectors]\nitem = \".news li\"\ntitle = \"a\"\nlink = \"a\"\ndate = \".time\"\ndate_format = \"%H:%M %d.%m.%Y\"\n",
        )
        .unwrap();
        let SourceKind::Html(rules) = &config.sources[0].kind else {
            panic!("not an html source");
        };
        assert_eq!(rules.text.item, ".news li");
        assert!(matches!(
            check("[[source]]\nurl = \"https://n.example/rss\"\n")
                .unwrap()
                .sources[0]
                .kind,
            SourceKind::Feed
        ));

        let problems = check(
            "[[source]]\nurl = \"https://a.example/\"\nkind = \"html\"\n[source.selectors]\nitem = \"div..x\"\ntitle = \"a\"\nlink = \"a\"\n\n[[source]]\nurl = \"https://b.example/\"\nkind = \"html\"\n\n[[source]]\nurl = \"https://c.example/\"\n[source.selectors]\nitem = \"li\"\n\n[[source]]\nurl = \"https://d.example/\"\nkind = \"page\"\n\n[[source]]\nurl = \"https://e.example/\"\nkind = \"html\"\n[source.selectors]\nitem = \"li\"\nlink = \"a\"\ndate_format = \"%Q\"\n",
        )
        .unwrap_err();
        let messages: Vec<_> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(places(&problems)[0], (5, 8), "{messages:?}");
        assert!(
            messages[0].contains("selector `item` (`div..x`) is not valid CSS"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("needs a [source.selectors] table"),
            "{messages:?}"
        );
        assert!(messages[2].contains("add kind = \"html\""), "{messages:?}");
        assert!(
            messages[3].contains("kind `page` is not a source kind"),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("needs `title`")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.contains("add `date`")),
            "{messages:?}"
        );
    }

    #[test]
    fn empty_file_gives_every_default() {
        let config = check("").unwrap();
        assert_eq!(config.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(config.store_path, PathBuf::from("data"));
        assert_eq!(config.store_cache_bytes, 2 * 1024 * 1024);
        let config = check("[store]\ncache_mb = 64\n").unwrap();
        assert_eq!(config.store_cache_bytes, 64 * 1024 * 1024);
        assert_eq!(
            places(&check("[store]\ncache_mb = 0\n").unwrap_err()),
            [(2, 12)]
        );
        assert_eq!(config.publish.title, DEFAULT_TITLE);
        assert_eq!(config.publish.max_items, DEFAULT_MAX_ITEMS);
        assert!(config.sources.is_empty());
    }

    #[test]
    fn state_directory_is_the_default_store() {
        let config = parse(
            Path::new("feeds.toml"),
            "",
            Some(PathBuf::from("/var/lib/tributary")),
        )
        .unwrap();
        assert_eq!(config.store_path, PathBuf::from("/var/lib/tributary"));
        let config = parse(
            Path::new("feeds.toml"),
            "[store]\npath = \"here\"\n",
            Some(PathBuf::from("/var/lib/tributary")),
        )
        .unwrap();
        assert_eq!(config.store_path, PathBuf::from("here"));
    }

    #[test]
    fn source_inherits_the_poll_interval() {
        let config = check(
            "[poll]\ninterval = \"20m\"\n[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"2h\"\nname = \"B\"\ntags = [\"x\"]\n",
        )
        .unwrap();
        assert_eq!(
            config.sources[0].interval,
            Interval::Fixed(Duration::from_secs(20 * 60))
        );
        assert_eq!(
            config.sources[1].interval,
            Interval::Fixed(Duration::from_secs(2 * 3600))
        );
        assert_eq!(config.sources[1].name.as_deref(), Some("B"));
        assert_eq!(config.sources[1].tags, vec!["x".to_string()]);
    }

    #[test]
    fn shortest_interval_counts_auto_sources_at_min_interval() {
        let fixed = |minutes: u64| Duration::from_secs(minutes * 60);
        // Fixed intervals only: the shortest of them.
        let config = check(
            "[poll]\ninterval = \"2h\"\n[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"45m\"\n",
        )
        .unwrap();
        assert_eq!(config.shortest_interval(), fixed(45));
        // An auto source may be polled as often as min_interval.
        let config = check(
            "[poll]\nmin_interval = \"15m\"\n[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"1h\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"auto\"\n",
        )
        .unwrap();
        assert_eq!(config.shortest_interval(), fixed(15));
        // A fixed interval shorter than min_interval wins over it.
        let config = check(
            "[poll]\nmin_interval = \"15m\"\n[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"auto\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"5m\"\n",
        )
        .unwrap();
        assert_eq!(config.shortest_interval(), fixed(5));
        // No sources: min_interval.
        let config = check("[poll]\nmin_interval = \"20m\"\n").unwrap();
        assert_eq!(config.shortest_interval(), fixed(20));
    }

    #[test]
    fn auto_is_the_default_interval_and_request_options_are_read() {
        let config = check(
            "[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\ninterval = \"auto\"\nusername = \"u\"\npassword = \"p\"\nuser_agent = \"Reader/1\"\nheaders = { \"X-Key\" = \"k\" }\n",
        )
        .unwrap();
        assert_eq!(config.sources[0].interval, Interval::Auto);
        assert_eq!(config.sources[0].timezone, Tz::UTC);
        assert_eq!(config.sources[1].interval, Interval::Auto);
        let request = &config.sources[1].request;
        assert_eq!(request.basic_auth, Some(("u".into(), Some("p".into()))));
        assert_eq!(request.user_agent.as_deref(), Some("Reader/1"));
        assert_eq!(request.headers.get("X-Key").map(String::as_str), Some("k"));
        let problems = check(
            "[[source]]\nurl = \"https://a.example/rss\"\nheaders = { \"Bad Name\" = \"k\" }\n",
        )
        .unwrap_err();
        assert_eq!(places(&problems), vec![(3, 26)]);
        let problems =
            check("[[source]]\nurl = \"https://a.example/rss\"\ntimezone = \"Mars/Olympus\"\n")
                .unwrap_err();
        assert_eq!(places(&problems), vec![(3, 12)]);
        let config =
            check("[[source]]\nurl = \"https://a.example/rss\"\ntimezone = \"Europe/Moscow\"\n")
                .unwrap();
        assert_eq!(config.sources[0].timezone, chrono_tz::Europe::Moscow);
    }

    #[test]
    fn allow_private_and_the_configured_address_set_the_address_policy() {
        use crate::fetch::AddressClass;
        let config = check(
            "[[source]]\nurl = \"https://a.example/rss\"\n[[source]]\nurl = \"http://127.0.0.1:8081/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\nallow_private = true\n",
        )
        .unwrap();
        let policy = |i: usize| config.sources[i].request.addresses;
        assert!(!policy(0).allows(AddressClass::Loopback));
        assert!(policy(1).allows(AddressClass::Loopback));
        assert!(!policy(1).allows(AddressClass::LinkLocal));
        assert!(policy(2).allows(AddressClass::LinkLocal));
        let problems =
            check("[[source]]\nurl = \"https://a.example/rss\"\nallow_private = \"yes\"\n")
                .unwrap_err();
        assert_eq!(problems[0].line, 3);
    }

    #[test]
    fn filters_and_per_source_caps_are_read_and_checked() {
        let config = check(
            "[[source]]\nurl = \"https://a.example/rss\"\ninclude = [\"(?i)rust\", \"^Go\"]\nexclude = [\"sponsored\"]\nfilter_on = \"title\"\nmax_items = 50\n[[source]]\nurl = \"https://b.example/rss\"\n",
        )
        .unwrap();
        let a = &config.sources[0];
        assert_eq!(a.filter.include.as_ref().unwrap().len(), 2);
        assert_eq!(a.filter.exclude.as_ref().unwrap().len(), 1);
        assert_eq!(a.filter.on, FilterOn::Title);
        assert_eq!(a.max_items, Some(50));
        let b = &config.sources[1];
        assert!(b.filter.is_empty());
        assert_eq!(b.filter.on, FilterOn::Both);
        assert_eq!(b.max_items, None);

        let problems = check(
            "[[source]]\nurl = \"https://a.example/rss\"\ninclude = [\"ok\", \"(unclosed\"]\nexclude = [\"a{2,1}\"]\nfilter_on = \"body\"\nmax_items = 0\n",
        )
        .unwrap_err();
        assert_eq!(
            places(&problems),
            vec![(3, 18), (4, 12), (5, 13), (6, 13)],
            "{problems:#?}"
        );
        assert!(
            problems[0].message.contains("`(unclosed`"),
            "{}",
            problems[0]
        );
        assert!(
            problems[0].message.contains("unclosed group"),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].message.contains("exclude rule"),
            "{}",
            problems[1]
        );
        assert!(problems[2].message.contains("filter_on"), "{}", problems[2]);
        assert!(problems[3].message.contains("max_items"), "{}", problems[3]);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let problems =
            check("[[source]]\nurl = \"https://a.example/rss\"\nintervall = \"5m\"\n").unwrap_err();
        assert_eq!(places(&problems), vec![(3, 1)]);
        assert!(problems[0].message.contains("intervall"), "{problems:?}");
        assert!(problems[0].to_string().starts_with("feeds.toml:3:1: "));
    }

    #[test]
    fn toml_syntax_error_names_line_and_column() {
        let problems = check("[server]\nlisten = \"127.0.0.1:80\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, 2);
    }

    #[test]
    fn every_bad_source_is_reported() {
        let text = "[[source]]\nurl = \"not a url\"\n\n[[source]]\nurl = \"ftp://a.example/x\"\n\n[[source]]\nurl = \"https://a.example/rss\"\ninterval = \"30s\"\n\n[[source]]\nurl = \"https://b.example/rss\"\n[[source]]\nurl = \"https://b.example/rss\"\n[[source]]\nurl = \"https://c.example/rss\"\ninterval = \"soon\"\n";
        let problems = check(text).unwrap_err();
        assert_eq!(
            places(&problems),
            vec![(2, 7), (5, 7), (9, 12), (14, 7), (17, 12)],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("not a valid URL"));
        assert!(problems[1].message.contains("only http"));
        assert!(problems[2].message.contains("floor"));
        assert!(problems[3].message.contains("line 12"));
        assert!(problems[4].message.contains("not a duration"));
    }

    #[test]
    fn send_timeout_has_a_default_and_a_floor() {
        assert_eq!(check("").unwrap().send_timeout, DEFAULT_SEND_TIMEOUT);
        let config = check("[server]\nsend_timeout = \"5m\"\n").unwrap();
        assert_eq!(config.send_timeout, Duration::from_secs(300));
        for (text, message) in [
            ("[server]\nsend_timeout = \"500ms\"\n", "at least 1s"),
            ("[server]\nsend_timeout = \"0s\"\n", "longer than zero"),
            ("[server]\nsend_timeout = \"a minute\"\n", "not a duration"),
        ] {
            let problems = check(text).unwrap_err();
            assert_eq!(places(&problems), vec![(2, 16)], "{text}");
            assert!(problems[0].message.contains(message), "{problems:#?}");
        }
    }

    #[test]
    fn bad_listen_and_max_items_are_reported() {
        let problems =
            check("[server]\nlisten = \"localhost\"\n[publish]\nmax_items = 0\n").unwrap_err();
        assert_eq!(places(&problems), vec![(2, 10), (4, 13)]);
    }

    #[test]
    fn publishing_keys_have_defaults_and_are_checked() {
        let config = check("").unwrap();
        assert_eq!(config.public_url, None);
        assert_eq!(config.publish.language, "en");
        assert_eq!(config.publish.timezone, chrono_tz::UTC);
        let config = check(
            "[server]\npublic_url = \"https://news.example.org/river\"\n[publish]\nlanguage = \"pt-BR\"\ntimezone = \"Europe/Moscow\"\n",
        )
        .unwrap();
        assert_eq!(
            config.public_url.unwrap().as_str(),
            "https://news.example.org/river/"
        );
        assert_eq!(config.publish.language, "pt-BR");
        assert_eq!(config.publish.timezone, chrono_tz::Europe::Moscow);
        let problems = check(
            "[server]\npublic_url = \"news.example.org\"\n[publish]\ntimezone = \"Mars/Olympus\"\nlanguage = \"english!\"\n",
        )
        .unwrap_err();
        assert_eq!(
            places(&problems),
            vec![(2, 14), (5, 12), (4, 12)],
            "{problems:#?}"
        );
        assert!(problems[0].message.contains("public_url"));
        assert!(problems[1].message.contains("language"));
        assert!(problems[2].message.contains("Mars/Olympus"));
        let problems = check("[server]\npublic_url = \"https://a.example/?x=1\"\n").unwrap_err();
        assert_eq!(places(&problems), vec![(2, 14)]);
    }

    #[test]
    fn missing_file_names_the_file() {
        let err = load(Path::new("/nonexistent/feeds.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/feeds.toml"), "{err}");
    }

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_column("ж\nжx", 5), (2, 2));
    }
}
